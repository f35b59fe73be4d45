"""The database layer: SQLite settings in force, write transactions IMMEDIATE, clear failures."""

import sqlite3

import pytest
from sqlalchemy import event, text

from models import Team
from services import db


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
