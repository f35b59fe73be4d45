"""Engine and sessions.

One engine per process and database URL; one short session per business operation. On SQLite
every connection runs in WAL mode with a busy timeout and foreign keys on, and write sessions
begin with `BEGIN IMMEDIATE`: a deferred transaction that reads first and writes later fails with
"database is locked" under concurrent writers whatever the timeout, because SQLite cannot
upgrade its read lock while another writer waits.

Each process keeps a small pool of connections (services/config.py: ConnectionSettings, from
DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW and DATABASE_POOL_TIMEOUT). On PostgreSQL every session
runs with `statement_timeout` (DATABASE_STATEMENT_TIMEOUT_MS), and each connection is tested
before use (`pool_pre_ping`), so after a database restart the first click gets a fresh connection
rather than an error; a connection that breaks in use is thrown away with every other connection
opened before the break. SQLite has no statement time-out (a query runs inside the app's own
process); its busy timeout bounds only the wait for another writer's lock.

Several app processes may share one PostgreSQL: nothing here keeps data between operations, so
what one process writes, every other reads at its next operation.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from services.config import ConfigError, ConnectionSettings, connection_settings, load_config
from services.errors import PermissionDenied

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "ldhub_write"


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be reached or used as configured; the message is one readable line."""


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let us issue BEGIN ourselves (pysqlite's own BEGIN is always deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def create_database_engine(url: str, *, search_path: str | None = None,
                           settings: ConnectionSettings | None = None) -> Engine:
    """An engine with the settings below. `search_path` (PostgreSQL) lets tests use a schema each;
    `settings` default to the environment's (services/config.py)."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseUnavailable(f"DATABASE_URL is not a database address: {url!r}") from error
    try:
        settings = settings or connection_settings()
    except ConfigError as error:
        raise DatabaseUnavailable(str(error)) from error
    pool = {"pool_size": settings.pool_size, "max_overflow": settings.max_overflow,
            "pool_timeout": settings.pool_timeout_seconds}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        in_memory = not database or database == ":memory:"
        if not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,  # a logged database error must not carry names or notes
            **({} if in_memory else pool),  # an in-memory database is one connection per thread
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # JIT compilation off: PostgreSQL compiles any query it costs above 100,000, which the caseload
    # page's facts reach at 100k requests, and compiling took 34 ms of a 163 ms query that never
    # runs long enough to earn it back.
    # Options already in the address (`?options=-csearch_path=…`) are kept: ours are added to them.
    options = [parsed.query.get("options", ""), "-c jit=off",
               f"-c statement_timeout={settings.statement_timeout_ms}"]
    if search_path:
        options.append(f"-c search_path={search_path}")
    parsed = parsed.difference_update_query(["options"])
    connect_args: dict = {"connect_timeout": 5, "options": " ".join(option for option in options if option)}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, hide_parameters=True, **pool)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return create_database_engine(url)


def get_engine() -> Engine:
    return engine_for(load_config().database_url)


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseUnavailable(
            f"Cannot reach the database at {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from error


@contextmanager
def _session(engine: Engine | None, writing: bool) -> Iterator[Session]:
    engine = engine or get_engine()
    bound = engine.execution_options(**{WRITE_OPTION: writing})
    session = Session(bound, expire_on_commit=False)
    session.info["writing"] = writing
    try:
        yield session
        if writing:
            session.commit()
        # A reading session just closes: its transaction ends without expiring the objects
        # it loaded, so a page can still show them.
    except BaseException as error:
        if writing and getattr(error, "keeps_changes", False):
            session.commit()  # a refusal whose record must survive (a counted failed sign-in)
        else:
            session.rollback()
        if isinstance(error, PermissionDenied):
            session.close()
            _record_denial(engine, error)
        raise
    finally:
        session.close()


def _record_denial(engine: Engine, denial: PermissionDenied) -> None:
    """A refusal is audited in its own transaction: the refused operation's was rolled back."""
    from services import audit  # audit writes through this module

    with writing(engine) as session:
        audit.record(
            session,
            denial.user,
            denial.action or "unknown",
            entity=denial.entity,
            entity_id=denial.entity_id,
            outcome=audit.DENIED,
        )


def writing(engine: Engine | None = None):
    """A session for one business operation that writes; commits at the end or not at all."""
    return _session(engine, writing=True)


def reading(engine: Engine | None = None):
    """A session that only reads; whatever it might have changed is rolled back."""
    return _session(engine, writing=False)


def read_once(session: Session, key: object, read: Callable[[], T]) -> T:
    """`read()`, kept for the rest of a reading session under `key`.

    A click runs a few short reading sessions, and within one the same thing (the settings) was
    asked for several times, one query each. A reading session changes nothing and lives for one
    operation, so its first answer holds for the rest of it; a writing session (or one not made
    here) reads afresh, as it may have changed the rows since.
    """
    if session.info.get("writing") is not False:
        return read()
    kept = session.info.setdefault("read_once", {})
    if key not in kept:
        kept[key] = read()
    return kept[key]


def require_writing(session: Session) -> None:
    if not session.info.get("writing"):
        raise RuntimeError("a write was attempted in a read-only session; use db.writing()")
