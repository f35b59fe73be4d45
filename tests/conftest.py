"""Shared fixtures.

- `engine`: a fresh, migrated-shape database, run once on SQLite and once on PostgreSQL (the
  PostgreSQL half is skipped, with the reason printed, when no server answers).
- `sqlite_engine`: SQLite only (for AppTest, which reads DATABASE_URL, and SQLite-only checks).
- `staff`: one team with sites and an account of each role, plus a second team.
- `app_test(path, user)`: an AppTest of a page file, signed in as `user` (or anonymous).
"""

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import models  # noqa: F401
from models import Site, Team, User
from models.codes import Role, SiteKind
from services import db, passwords, schema, sign_in_sessions
from services.accounts import SignedIn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery staple"
ROLE_LOCK = 4_241_991  # an advisory lock key: one test process at a time changes roles and grants
_postgres_reason: str | None = None


def postgres_url() -> str | None:
    """The PostgreSQL to test against, or None (with the reason kept for the skip message)."""
    global _postgres_reason
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        _postgres_reason = "no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is not set"
        return None
    return DEFAULT_POSTGRES_URL


def _schema_name(worker: str) -> str:
    """Each test process gets its own schema, so concurrent runs never see each other's rows."""
    return f"ldhub_test_{worker}_{os.getpid()}"


def _drop_schema(url: str, schema_name: str, *, create_again: bool = False) -> None:
    base = db.create_database_engine(url)
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
        if create_again:
            connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    base.dispose()


def _postgres_engine(url: str, worker: str) -> Engine:
    schema_name = _schema_name(worker)
    _drop_schema(url, schema_name, create_again=True)
    return db.create_database_engine(url, search_path=schema_name)


@dataclass(frozen=True)
class PostgresEngines:
    owner: Engine  # made the tables: empties them between tests
    app: Engine  # what the tests use: the least-privileged role the app connects as in production


def _as_app_role(url: str, owner: Engine, worker: str) -> Engine:
    """The PostgreSQL half runs as the role `manage.py create-app-role` makes (docs/security.md):
    not a superuser, not the owner, no UPDATE, DELETE or TRUNCATE on the audit trail."""
    import manage

    role = f"ldhub_suite_{worker}_{os.getpid()}".lower()  # not test_app_role.py's name: it drops its own
    with owner.begin() as connection:
        # Test processes run side by side; grants on the one database must not race ("tuple concurrently updated").
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ROLE_LOCK})")
        names = connection.execute(text("SELECT current_database(), current_user")).one()
        # The tables come from the models here, not the migrations: Alembic's table too, as in production.
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        for statement in manage.app_role_statements(role, database=names[0], schema_name=_schema_name(worker),
                                                    owner=names[1], password=None):
            connection.exec_driver_sql(statement)
    return db.create_database_engine(make_url(url).set(username=role).render_as_string(hide_password=False),
                                     search_path=_schema_name(worker))


def _drop_app_role(owner: Engine, app: Engine) -> None:
    role = app.url.username
    with owner.begin() as connection:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ROLE_LOCK})")
        connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
        connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="session")
def _postgres_session_engine(worker_id):
    url = postgres_url()
    if url is None:
        yield None
        return
    try:
        owner = _postgres_engine(url, worker_id)
        SQLModel.metadata.create_all(owner)
        engines = PostgresEngines(owner, _as_app_role(url, owner, worker_id))
    except Exception as error:  # an unreachable or refusing server: skip, saying why
        global _postgres_reason
        _postgres_reason = f"PostgreSQL at {url} refused: {str(error).splitlines()[0]}"
        yield None
        return
    yield engines
    engines.app.dispose()
    _drop_schema(url, _schema_name(worker_id))
    _drop_app_role(owner, engines.app)
    owner.dispose()


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _fresh_sqlite(tmp_path: Path) -> Engine:
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/ldhub-test.db")
    SQLModel.metadata.create_all(engine)
    with db.writing(engine) as session:
        schema.seed_code_lists(session)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path, _postgres_session_engine) -> Engine:
    if request.param == "sqlite":
        engine = _fresh_sqlite(tmp_path)
        yield engine
        engine.dispose()
        return
    if _postgres_session_engine is None:
        pytest.skip(f"PostgreSQL half skipped: {_postgres_reason}")
    _truncate_all(_postgres_session_engine.owner)
    with db.writing(_postgres_session_engine.app) as session:
        schema.seed_code_lists(session)
    yield _postgres_session_engine.app


@pytest.fixture
def sqlite_engine(tmp_path, monkeypatch) -> Engine:
    engine = _fresh_sqlite(tmp_path)
    monkeypatch.setenv("DATABASE_URL", str(engine.url))
    yield engine
    engine.dispose()


@dataclass
class Staff:
    team: Team
    other_team: Team
    sites: list[Site]
    practitioner: User
    second_practitioner: User
    team_lead: User
    administrator: User
    other_team_practitioner: User
    other_team_lead: User

    def by_role(self, role: Role) -> User:
        return {
            Role.PRACTITIONER: self.practitioner,
            Role.TEAM_LEAD: self.team_lead,
            Role.ADMINISTRATOR: self.administrator,
        }[role]


_password_hash = passwords.hash_password(PASSWORD)  # Argon2 is slow on purpose: hash once


def make_staff(engine: Engine) -> Staff:
    with db.writing(engine) as session:
        team = Team(name="Mid and South Essex Liaison and Diversion")
        other_team = Team(name="North Essex Liaison and Diversion")
        session.add_all([team, other_team])
        session.flush()
        sites = [
            Site(team_id=team.id, name="Southend custody suite", kind=SiteKind.CUSTODY_SUITE),
            Site(team_id=team.id, name="Basildon Magistrates' Court", kind=SiteKind.MAGISTRATES_COURT),
            Site(team_id=other_team.id, name="Colchester custody suite", kind=SiteKind.CUSTODY_SUITE),
        ]
        session.add_all(sites)

        def account(username: str, full_name: str, role: Role, team_id: int) -> User:
            user = User(username=username, full_name=full_name, role=role, team_id=team_id,
                        password_hash=_password_hash)
            session.add(user)
            return user

        staff = Staff(
            team=team,
            other_team=other_team,
            sites=sites,
            practitioner=account("practitioner", "Priya Practitioner", Role.PRACTITIONER, team.id),
            second_practitioner=account("second", "Sam Second", Role.PRACTITIONER, team.id),
            team_lead=account("lead", "Lee Lead", Role.TEAM_LEAD, team.id),
            administrator=account("admin", "Ada Administrator", Role.ADMINISTRATOR, team.id),
            other_team_practitioner=account("other", "Olu Other", Role.PRACTITIONER, other_team.id),
            other_team_lead=account("otherlead", "Orla Otherlead", Role.TEAM_LEAD, other_team.id),
        )
        session.flush()
    return staff


@pytest.fixture
def staff(engine) -> Staff:
    return make_staff(engine)


@pytest.fixture
def sqlite_staff(sqlite_engine) -> Staff:
    return make_staff(sqlite_engine)


@pytest.fixture
def app_test(sqlite_engine, monkeypatch):
    """Build an AppTest for a page file (path relative to the repository root)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("DEMO", raising=False)

    def build(path: str, user: User | None = None, query: dict[str, str] | None = None, timeout: float = 30):
        # Pages run under app.py as the entry script, as on the server, so that links between
        # pages resolve the same way.
        test = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        if path != "app.py":
            test.switch_page(path)
        if user is None:  # a tab that has said it kept no sign-in (in a browser it says so in a moment)
            test.session_state["session_keeper_asked"] = True
        else:  # signed in as the sign-in form would: a session row and this tab's token
            signed_in = SignedIn(user_id=user.id, session_epoch=user.session_epoch)
            with db.writing(sqlite_engine) as session:
                test.session_state["session_token"] = sign_in_sessions.start(session, signed_in)
            test.session_state["signed_in"] = signed_in
        for key, value in (query or {}).items():
            test.query_params[key] = value
        return test

    return build


def unescaped(text: str) -> str:
    """What a person reads: alerts escape markdown characters so that typed text shows as typed."""
    return re.sub(r"\\(.)", r"\1", text)


def shown_errors(test) -> list[str]:
    """The error alerts of an AppTest run, as a person reads them."""
    return [unescaped(error.value) for error in test.error]


_PYTEST_MAIN = sys.modules["__main__"]  # taken at import, before any fixture can run a page


@pytest.fixture(autouse=True)
def _keep_the_main_module():
    """Put pytest's __main__ back before and after each test.

    Streamlit's script runner (AppTest) leaves app.py installed as __main__ — also from module- or
    session-scoped fixtures, which set up before this one; a process started afterwards with the
    spawn or forkserver method would then run app.py while starting up.
    """
    sys.modules["__main__"] = _PYTEST_MAIN
    yield
    sys.modules["__main__"] = _PYTEST_MAIN
