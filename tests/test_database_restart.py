"""PostgreSQL restarting or stopping under a signed-in person (issue #16, "Beyond one process").

The test starts a PostgreSQL server of its own (initdb into a temporary folder, `pg_ctl start` on a
free port) and runs the app on it, so that it can restart and stop that server without touching the
shared one. What a person sees:

- after a restart (`pg_ctl restart -m fast`: every connection the app held is cut) the next click
  simply works: the pool tests each connection before use and replaces the dead ones;
- while the server is down a click shows the plain "database could not be reached" message, with
  no traceback and no Streamlit error box, and what they had typed stays in its fields;
- once the server is back, the next click (the message's "Try again") works, the typed text is
  still in its fields, saved or not, and the draft in the database has caught up with it.

The service-level tests show the same without a browser: an operation in progress when the server
goes fails with an error the guard shows plainly, and the next one gets a fresh connection.

Skipped, saying why, when PostgreSQL's server programs are not installed or cannot be run as the
`postgres` user (initdb refuses to run as root).
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services import db, form_drafts
from tests.browser import browser, field, free_port, idle, page, rerun, serve, sign_in  # noqa: F401
from ui import guard

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class OwnPostgres:
    """A PostgreSQL server this module started, on `port`; `run` prefixes a command to run it as its owner."""

    data: Path
    port: int
    run: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *arguments: str) -> None:
        subprocess.run([*self.run, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *arguments],
                       check=True, capture_output=True, timeout=60)

    @property
    def log(self) -> str:
        # Given at every start and restart: a server started without it writes to pg_ctl's own
        # output, which we read to its end, and that end would never come.
        return str(self.data.parent / "server.log")

    def start(self) -> None:
        # fsync off: a test server's data need not survive a power cut, and the restarts are quicker.
        self.pg_ctl("-l", self.log, "-o",
                    f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.pg_ctl("-l", self.log, "-m", "fast", "restart")


def _as_postgres() -> list[str]:
    """How to run the server programs: as ourselves, or (initdb refuses root) as the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run PostgreSQL's server as")
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing, so PostgreSQL's server cannot run as postgres")
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="module")
def own_postgres():
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL's server programs are not in {PG_BIN} (set PG_BIN)")
    run = _as_postgres()
    # Not under pytest's tmp folder: that is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="ldhub-restart-"))
    if run:
        shutil.chown(folder, "postgres", "postgres")
    server = OwnPostgres(data=folder / "data", port=free_port(), run=run)
    try:
        subprocess.run([*run, str(PG_BIN / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "--no-locale", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        server.start()
    except subprocess.CalledProcessError as error:
        shutil.rmtree(folder, ignore_errors=True)
        reason = (error.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or [str(error)]
        pytest.skip(f"could not start a PostgreSQL server of the test's own: {reason[0]}")
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):  # a test left it stopped
        server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, own_postgres):
    yield from serve(tmp_path_factory, database_url=own_postgres.url)


@pytest.fixture
def running(own_postgres):
    """The server is up at the start of the test and again at its end, whatever the test did."""
    yield own_postgres
    with contextlib.suppress(subprocess.CalledProcessError):  # it is already running
        own_postgres.start()


def _count_teams(engine) -> int:
    with db.reading(engine) as session:
        return session.exec(text("SELECT count(*) FROM team")).scalar()


def test_the_next_operation_after_a_restart_works_and_one_cut_off_fails_plainly(running, live_app):
    engine = db.create_database_engine(running.url)
    teams = _count_teams(engine)  # a connection now waits in the pool
    running.restart()
    assert _count_teams(engine) == teams  # the pooled connection was dead: tested, replaced, no error

    with db.reading(engine) as session:
        session.exec(text("SELECT 1"))
        running.restart()  # in the middle of an operation
        with pytest.raises(OperationalError) as raised:
            session.exec(text("SELECT count(*) FROM team"))
    assert guard.is_database_unreachable(raised.value)  # shown as the plain message
    assert _count_teams(engine) == teams

    running.stop()
    with pytest.raises(OperationalError) as raised, db.reading(engine) as session:
        session.exec(text("SELECT 1"))
    assert guard.is_database_unreachable(raised.value)
    with pytest.raises(db.DatabaseUnavailable, match=f"^Cannot reach the database at .*:{running.port}/postgres: "):
        db.check_connection(engine)
    running.start()
    assert _count_teams(engine) == teams
    engine.dispose()


def _no_error_box(tab) -> None:
    expect(tab.locator('[data-testid="stException"]')).to_have_count(0)
    for words in ("Traceback", "OperationalError", "psycopg", "connection"):
        expect(tab.get_by_text(words)).to_have_count(0)


def test_a_person_sees_a_plain_message_while_the_database_is_down_and_loses_nothing_typed(
        page, running, live_app):  # noqa: F811
    sign_in(page, live_app, "practitioner")
    running.restart()  # every connection the app holds is cut while the person reads
    rerun(page, lambda: page.get_by_role("link", name="Log a request").click())
    page.get_by_role("heading", name="Log a request").wait_for()  # the click after a restart just works
    _no_error_box(page)
    requester = field(page, "Requester's name")
    requester.fill("PC Dawn Jones")
    rerun(page, lambda: requester.press("Tab"))  # saved as a draft in the database

    running.stop()
    reason = field(page, "Reason for the request")
    reason.fill("Distressed in the cell; asked for his sister.")
    reason.press("Tab")  # the draft cannot be saved now
    page.get_by_text(guard.DATABASE_UNREACHABLE).wait_for()
    idle(page)
    _no_error_box(page)

    running.start()
    rerun(page, lambda: page.get_by_role("button", name=guard.TRY_AGAIN).click())
    page.get_by_role("heading", name="Log a request").wait_for()
    expect(page.get_by_text(guard.DATABASE_UNREACHABLE)).to_have_count(0)
    assert field(page, "Requester's name").input_value() == "PC Dawn Jones"
    assert field(page, "Reason for the request").input_value() == "Distressed in the cell; asked for his sister."
    with db.reading(live_app.engine) as session:  # and the draft kept in the database has caught up
        kept = form_drafts.recall(session, live_app.staff.practitioner, "log_request")
    assert kept.values["log_reason"] == "Distressed in the cell; asked for his sister."
    assert kept.values["log_requester_name"] == "PC Dawn Jones"


# --- Without a browser: pages with buttons, tables and charts take their fields back -----------

PAGES_BY_ROLE = [("pages/2_Log_request.py", "practitioner"), ("pages/1_Triage_queue.py", "team_lead"),
                 ("pages/7_Caseload.py", "team_lead"), ("pages/5_Screening.py", "practitioner"),
                 ("pages/20_Users.py", "administrator"), ("pages/21_Service_settings.py", "administrator"),
                 ("pages/9_Export.py", "team_lead"), ("pages/24_My_account.py", "practitioner")]


@pytest.mark.parametrize(("path", "role"), PAGES_BY_ROLE)
def test_a_page_drawn_again_after_an_outage_takes_its_values_back_without_an_error(
        app_test, sqlite_staff, monkeypatch, path, role):
    """Fields are given back their values, buttons, tables and charts left alone: Streamlit refuses
    a value given to a button, and that would turn the first click after an outage into an error.
    (That the fields show what was typed is the browser test's above.)"""
    from models.codes import Role
    from services import sign_in_sessions

    test = app_test(path, sqlite_staff.by_role(Role(role))).run()
    assert not test.exception
    working = sign_in_sessions.check

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT", (), Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(sign_in_sessions, "check", unreachable)
    test.run()
    assert [error.value for error in test.error] == [guard.DATABASE_UNREACHABLE]
    assert guard.KEPT_THROUGH_OUTAGE in test.session_state
    monkeypatch.setattr(sign_in_sessions, "check", working)
    test.run()
    assert not test.exception
    assert guard.DATABASE_UNREACHABLE not in [error.value for error in test.error]


def test_the_idle_check_meeting_the_outage_shows_the_plain_message_and_try_again(app_test, sqlite_staff, monkeypatch):
    """The idle check (a fragment run every 30 s, in the sidebar) reads a setting: an outage it meets
    ends the run like any other, with the plain message and the button, not an error."""
    from types import SimpleNamespace

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT", (), Exception("server closed the connection unexpectedly"))

    test = app_test("app.py", sqlite_staff.practitioner).run()
    monkeypatch.setattr(guard, "settings", SimpleNamespace(get_int=unreachable))  # read by the idle check only
    test.run()
    assert not test.exception
    assert [error.value for error in test.sidebar.error] == [guard.DATABASE_UNREACHABLE]
    assert [button.label for button in test.sidebar.button] == [guard.TRY_AGAIN]
