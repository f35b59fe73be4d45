"""The database layer: SQLite settings in force, write transactions IMMEDIATE, clear failures."""

import logging
import sqlite3

import pytest
from sqlalchemy import event, text

from models import Team
from services import db
from ui import guard


def test_sqlite_pragmas_are_in_force(sqlite_engine):
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_postgresql_sessions_run_without_jit_and_keep_options_from_the_address(engine):
    """JIT compiling cost the caseload page 34 ms a query; options in DATABASE_URL still apply."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL settings")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
        schema_name = connection.exec_driver_sql("SELECT current_schema()").scalar()
    address = engine.url.set(query={"options": f"-csearch_path={schema_name}"})
    from_address = db.create_database_engine(address.render_as_string(hide_password=False))
    with from_address.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_schema()").scalar() == schema_name
        assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
    from_address.dispose()


def _begin_statements(engine):
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_connection, _cursor, statement, *_args):
        if statement.startswith("BEGIN"):
            seen.append(statement)

    return seen


def test_write_sessions_begin_immediate_and_reads_do_not(sqlite_engine):
    seen = _begin_statements(sqlite_engine)
    with db.writing(sqlite_engine) as session:
        session.add(Team(name="A team"))
    with db.reading(sqlite_engine) as session:
        session.exec(text("SELECT 1"))
    assert seen == ["BEGIN IMMEDIATE", "BEGIN"]


def test_write_session_holds_the_write_lock_from_its_first_statement(sqlite_engine):
    """A second writer cannot slip in between a read and a write of the first."""
    with db.writing(sqlite_engine) as session:
        session.exec(text("SELECT 1"))  # only a read so far, yet the lock is taken
        other = sqlite3.connect(sqlite_engine.url.database, timeout=0.1)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()


def test_foreign_keys_are_enforced(sqlite_engine):
    from models import Site

    with pytest.raises(Exception, match="FOREIGN KEY"), db.writing(sqlite_engine) as session:
        session.add(Site(team_id=999, name="Nowhere", kind="custody_suite"))


def test_a_failed_operation_writes_nothing(engine):
    with pytest.raises(RuntimeError), db.writing(engine) as session:
        session.add(Team(name="Half written"))
        session.flush()
        raise RuntimeError("part-way failure")
    with db.reading(engine) as session:
        assert session.exec(text("SELECT count(*) FROM team")).scalar() == 0


def test_reading_session_refuses_audit_writes(engine):
    from services import audit

    with pytest.raises(RuntimeError, match="read-only"), db.reading(engine) as session:
        audit.record(session, None, "anything")


def test_unreachable_database_is_one_clear_line():
    engine = db.create_database_engine("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(db.DatabaseUnavailable) as raised:
        db.check_connection(engine)
    message = str(raised.value)
    assert message.startswith("Cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "\n" not in message


def test_nonsense_database_url_is_refused_clearly():
    with pytest.raises(db.DatabaseUnavailable, match="not a database address"):
        db.create_database_engine("not a url")


def test_times_come_back_as_utc_on_every_database(engine):
    from datetime import UTC, datetime, timedelta, timezone

    summer_in_london = datetime(2026, 7, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    with db.writing(engine) as session:
        team = Team(name="Clock team", created_at=summer_in_london)
        session.add(team)
    with db.reading(engine) as session:
        stored = session.get(Team, team.id)
        assert stored.created_at == datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
        assert stored.created_at.tzinfo is not None


def test_naive_times_are_refused(engine):
    from datetime import datetime

    with pytest.raises(Exception, match="naive"), db.writing(engine) as session:
        session.add(Team(name="Naive", created_at=datetime(2026, 1, 1, 12, 0)))
        session.flush()


def test_logged_database_errors_carry_no_values(sqlite_engine):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError) as raised, db.writing(sqlite_engine) as session:
        session.add(Team(name="Siobhán's team"))
        session.add(Team(name="Siobhán's team"))
    assert "Siobhán" not in str(raised.value)


# --- Connections per process: the pool and the statement time-out -------------------------------

POOL_VARIABLES = ("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW", "DATABASE_POOL_TIMEOUT",
                  "DATABASE_STATEMENT_TIMEOUT_MS")


@pytest.fixture
def default_connection_settings(monkeypatch):
    for name in POOL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_each_process_keeps_a_small_pool_by_default(default_connection_settings, tmp_path):
    """5 kept and 5 more under load: one process's tabs each hold a connection for one short transaction."""
    for url in (f"sqlite:///{tmp_path}/pool.db", "postgresql://nobody@127.0.0.1:1/none"):
        engine = db.create_database_engine(url)
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (5, 5, 10)
        engine.dispose()


def test_pool_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "1")
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/pool.db")
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (3, 0, 1)
    engine.dispose()


def test_a_click_waits_for_a_free_connection_only_as_long_as_the_pool_timeout(monkeypatch, tmp_path):
    """The guard shows its plain message for this error (ui/guard.py: DATABASE_ERRORS)."""
    import time

    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from ui import guard

    monkeypatch.setenv("DATABASE_POOL_SIZE", "1")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "1")
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/pool.db")
    with engine.connect():
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as raised, engine.connect():
            pass
        waited = time.monotonic() - started
    assert 0.9 < waited < 5
    assert guard.is_database_unreachable(raised.value)
    engine.dispose()


@pytest.mark.parametrize(("name", "value"), [
    ("DATABASE_POOL_SIZE", "0"), ("DATABASE_POOL_SIZE", "five"), ("DATABASE_POOL_SIZE", "2.5"),
    ("DATABASE_MAX_OVERFLOW", "-1"), ("DATABASE_MAX_OVERFLOW", "101"),
    ("DATABASE_POOL_TIMEOUT", "0"), ("DATABASE_POOL_TIMEOUT", "10s"),
    ("DATABASE_STATEMENT_TIMEOUT_MS", "30 s"), ("DATABASE_STATEMENT_TIMEOUT_MS", "-5"),
])
def test_a_bad_connection_setting_is_refused_in_one_plain_line(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(db.DatabaseUnavailable) as raised:
        db.create_database_engine(f"sqlite:///{tmp_path}/refused.db")
    message = str(raised.value)
    assert message.startswith(f"{name} must be a whole number from ")
    assert repr(value) in message and "\n" not in message


def test_manage_py_refuses_to_start_on_a_bad_setting_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/refused.db", "DATABASE_POOL_SIZE": "lots"}
    finished = subprocess.run([sys.executable, "manage.py", "init-db"], cwd=ROOT, env=environment,
                              capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 1
    assert finished.stderr == "DATABASE_POOL_SIZE must be a whole number from 1 to 100, not 'lots'\n"
    assert not (tmp_path / "refused.db").exists()


def test_the_app_refuses_to_start_on_a_bad_setting_with_one_plain_line(app_test, sqlite_staff, monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_MS", "forever")
    with caplog.at_level(logging.ERROR, logger="ldhub.guard"):
        test = app_test("app.py").run()
    assert not test.exception
    assert [error.value for error in test.error] == [guard.CANNOT_START]
    assert ("The app cannot start: DATABASE_STATEMENT_TIMEOUT_MS must be a whole number from 0 to 3600000 "
            "milliseconds (0 for no limit), not 'forever'") in caplog.messages


def test_an_app_started_before_its_database_says_so_and_offers_to_try_again(app_test, monkeypatch, caplog):
    """A server rebooted: the app can be up before PostgreSQL is; once it is, Try again goes on."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    with caplog.at_level(logging.ERROR, logger="ldhub.guard"):
        test = app_test("app.py").run()
    assert not test.exception
    assert [error.value for error in test.error] == [guard.CANNOT_START]
    assert "nobody@127.0.0.1" not in guard.CANNOT_START  # the address is for the log, not for anyone at the page
    [logged] = caplog.messages
    assert logged.startswith("The app cannot start: Cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/")
    assert [button.label for button in test.button] == ["Try again"]


def test_postgresql_cancels_a_statement_that_runs_past_the_time_out(engine, monkeypatch):
    """A runaway query is cancelled by the server, not left holding a connection and its locks."""
    import time

    from sqlalchemy.exc import OperationalError

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no statement time-out: a query runs inside the app's own process")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "30s"  # the default
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_MS", "300")
    short = db.create_database_engine(engine.url.render_as_string(hide_password=False),
                                      search_path=_search_path(engine))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"), db.reading(short) as session:
        session.exec(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 3
    with db.reading(short) as session:  # the connection is usable again at once
        assert session.exec(text("SELECT count(*) FROM team")).scalar() == 0
    short.dispose()


def _search_path(engine) -> str:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT current_schema()").scalar()


def test_a_connection_broken_while_in_use_is_replaced_at_the_next_operation(engine):
    """PostgreSQL restarted (or the connection cut) in the middle of an operation: that operation
    fails, and the next one works on a fresh connection; so do the pool's other connections."""
    from sqlalchemy.exc import OperationalError

    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL server's connection cut from the server side")
    with engine.connect() as idle_one, engine.connect() as in_use:  # two connections into the pool
        idle_one.exec_driver_sql("SELECT 1")
        in_use.exec_driver_sql("SELECT 1")
    with db.reading(engine) as session:
        session.exec(text("SELECT 1"))
        ours = session.exec(text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as other:  # as a restart would: every backend of the pool goes
            other.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = current_user "
                "AND pid <> pg_backend_pid() AND datname = current_database()")
        with pytest.raises(OperationalError):
            session.exec(text("SELECT count(*) FROM team"))
    for _ in range(3):
        with db.reading(engine) as session:
            assert session.exec(text("SELECT pg_backend_pid()")).scalar() != ours
            assert session.exec(text("SELECT count(*) FROM team")).scalar() == 0
