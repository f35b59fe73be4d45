"""Audit rows cannot be changed or removed: by the ORM guard, and in the database itself through
the triggers of migration 0002 — on a schema built by the migrations, on SQLite and PostgreSQL."""

import os

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from models import AuditEvent
from services import audit, db, schema
from tests import conftest

SQLITE_TRIGGERS = {"auditevent_no_update", "auditevent_no_delete"}
POSTGRESQL_TRIGGERS = {"auditevent_no_update_or_delete", "auditevent_no_truncate"}


def _postgres_migrated_engine(worker_id: str):
    url = conftest.postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL half skipped: {conftest._postgres_reason}")
    # The process id too: two test runs at once (two engineers, one server) must not share a schema.
    schema_name = f"ldhub_migrated_{worker_id}_{os.getpid()}"
    try:
        base = db.create_database_engine(url)
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
        base.dispose()
    except Exception as error:  # a server that answers but refuses us: skip, saying why
        pytest.skip(f"PostgreSQL half skipped: {url} refused: {str(error).splitlines()[0]}")
    return db.create_database_engine(url, search_path=schema_name), schema_name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated(request, tmp_path, worker_id):
    """A database built by the Alembic migrations (not create_all), so the triggers are there."""
    if request.param == "sqlite":
        engine = db.create_database_engine(f"sqlite:///{tmp_path}/migrated.db")
        schema.upgrade(engine)
        yield engine
        engine.dispose()
        return
    engine, schema_name = _postgres_migrated_engine(worker_id)
    schema.upgrade(engine)
    yield engine
    engine.dispose()
    base = db.create_database_engine(conftest.postgres_url())
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
    base.dispose()


def _one_audit_row(engine) -> int:
    with db.writing(engine) as session:
        row = audit.record(session, None, "sign_in", outcome=audit.FAILURE, username="someone")
        session.flush()
        return row.id


def _triggers(engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'auditevent'"
        else:
            query = ("SELECT tgname FROM pg_trigger WHERE tgrelid = 'auditevent'::regclass "
                     "AND NOT tgisinternal")
        return set(connection.execute(text(query)).scalars())


def _unchanged(engine, row_id: int) -> None:
    with db.reading(engine) as session:
        row = session.get(AuditEvent, row_id)
    assert row is not None and row.username == "someone" and row.outcome == audit.FAILURE


def test_the_triggers_exist_at_head(migrated):
    expected = SQLITE_TRIGGERS if migrated.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    assert _triggers(migrated) == expected, "a later migration lost the append-only triggers: recreate them"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE auditevent SET outcome = 'success', username = 'nobody' WHERE id = :id",
        "DELETE FROM auditevent WHERE id = :id",
    ],
)
def test_sql_update_and_delete_of_an_audit_row_are_refused(migrated, statement):
    row_id = _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as connection:
        connection.execute(text(statement), {"id": row_id})
    _unchanged(migrated, row_id)


def test_orm_bulk_statements_are_refused_by_the_database(migrated):
    """`session.execute(update(...))` never reaches the ORM flush guard; the trigger stops it."""
    row_id = _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), db.writing(migrated) as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == row_id).values(detail="rewritten"))
    with pytest.raises(DBAPIError, match="append-only"), db.writing(migrated) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.id == row_id))
    _unchanged(migrated, row_id)


def test_orm_changes_to_a_loaded_audit_row_are_refused(migrated):
    row_id = _one_audit_row(migrated)
    with pytest.raises(PermissionError, match="append-only"), db.writing(migrated) as session:
        session.get(AuditEvent, row_id).outcome = audit.SUCCESS
    with pytest.raises(PermissionError, match="append-only"), db.writing(migrated) as session:
        session.delete(session.get(AuditEvent, row_id))
    _unchanged(migrated, row_id)


def test_truncate_is_refused_on_postgresql(migrated):
    if migrated.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE trigger covers `DELETE FROM auditevent`")
    row_id = _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as connection:
        connection.execute(text("TRUNCATE auditevent"))
    _unchanged(migrated, row_id)


def test_appending_still_works(migrated):
    first, second = _one_audit_row(migrated), _one_audit_row(migrated)
    with db.reading(migrated) as session:
        assert len(session.exec(select(AuditEvent).where(AuditEvent.id.in_([first, second]))).all()) == 2


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(migrated):
    row_id = _one_audit_row(migrated)
    schema.downgrade(migrated, "0001")
    assert _triggers(migrated) == set()
    schema.upgrade(migrated)
    assert _triggers(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as connection:
        connection.execute(text("DELETE FROM auditevent WHERE id = :id"), {"id": row_id})
    _unchanged(migrated, row_id)
