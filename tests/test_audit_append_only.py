"""Audit rows cannot be changed or removed: by the ORM guard, and in the database itself through
the triggers of migrations 0002 and 0005 — on a schema built by the migrations, on SQLite and
PostgreSQL. Every statement that could rewrite or remove an existing row is tried: UPDATE, DELETE,
TRUNCATE, and an insert that reuses an existing id (REPLACE, INSERT OR REPLACE, upserts)."""

import os

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from models import AuditEvent
from services import audit, db, schema
from tests import conftest

SQLITE_TRIGGERS = {"auditevent_no_update", "auditevent_no_delete", "auditevent_no_rewrite"}
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


INSERT = ("INSERT {verb} auditevent (id, at, user_id, username, action, entity, entity_id, outcome, detail) "
          "VALUES (:id, :at, NULL, 'nobody', 'sign_in', NULL, NULL, 'success', 'rewritten') {tail}")
UPSERT = "ON CONFLICT (id) DO UPDATE SET username = excluded.username, detail = excluded.detail"
MERGE = ("MERGE INTO auditevent AS old USING (SELECT CAST(:id AS integer) AS id, CAST(:at AS timestamptz) AS at) "
         "AS new ON old.id = new.id WHEN MATCHED THEN {action}")
REWRITES = {
    "sqlite": [
        INSERT.format(verb="OR REPLACE INTO", tail="").replace("INSERT OR REPLACE", "REPLACE"),
        INSERT.format(verb="OR REPLACE INTO", tail=""),
        INSERT.format(verb="INTO", tail="ON CONFLICT DO UPDATE SET outcome = 'success'"),
        INSERT.format(verb="INTO", tail=UPSERT),
    ],
    "postgresql": [
        INSERT.format(verb="INTO", tail=UPSERT),
        INSERT.format(verb="INTO", tail="ON CONFLICT ON CONSTRAINT auditevent_pkey DO UPDATE SET outcome = 'success'"),
        MERGE.format(action="UPDATE SET outcome = 'success'"),
        MERGE.format(action="DELETE"),
    ],
}


@pytest.mark.parametrize("number", range(4))
def test_an_insert_over_an_existing_audit_row_is_refused(migrated, number):
    """REPLACE, INSERT OR REPLACE and upserts rewrote a row on SQLite: the delete half of a REPLACE
    fires no DELETE trigger (recursive_triggers is off), so 0005 refuses an insert of a taken id."""
    statement = REWRITES[migrated.dialect.name][number]
    row_id = _one_audit_row(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as connection:
        connection.execute(text(statement), {"id": row_id, "at": "2020-01-01 00:00:00+00:00"})
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
    assert _triggers(migrated) == (SQLITE_TRIGGERS if migrated.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as connection:
        connection.execute(text("DELETE FROM auditevent WHERE id = :id"), {"id": row_id})
    _unchanged(migrated, row_id)
