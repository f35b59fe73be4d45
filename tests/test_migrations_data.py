"""Alembic upgrade → downgrade → upgrade on a copy with demo data keeps every row.

A database is migrated to head and filled by the demo-data generator (~500 requests with their
people, screenings, instrument results, referrals, activities), plus a row in each table the
generator leaves empty (a setting, a saved column set, a screening amendment) written through the
services. On SQLite the test works on a copy made with the online backup API and compares with
the untouched original; on PostgreSQL it works in a schema of its own.

Every migration step that can be reversed with data in place is walked from head down: downgrade
one step, then upgrade again. A step whose downgrade drops tables (the baseline, 0001 → base,
drops everything by design) cannot keep rows and is not walked; the test names the steps it
walked and requires at least one. After each downgrade every table still there, and after each
upgrade every table, holds exactly the rows it held before (row counts and a digest of the
rows' contents), and the append-only audit triggers of 0002 are back in force.
"""

import hashlib
import os
import sqlite3
from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, func, inspect, text
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from models import Screening, Setting, User
from models.codes import ScreeningStatus
from sample_data.generator import generate
from services import administration, db, export, schema, screening
from tests.conftest import postgres_url

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
REQUESTS = 500
PASSWORD = "demo password for the tests"
# Tables of what a browser holds between clicks (migration 0004): signed-in sessions, unsaved
# drafts, submission tokens. Downgrading past 0004 drops them by design (people sign in again and
# retype unsaved text), so they are left empty here rather than counted as rows a step must keep.
TRANSIENT = {"formdraft", "signedinsession", "submission"}
# Columns whose downgrade drops what people recorded in them: the older schema has nowhere to keep
# it, so a downgrade below the revision that added one loses it by design (deploy/README.md: take a
# backup first). The walk compares every other column, and checks the column comes back empty.
DROPPED_BY_DOWNGRADE = {("screening", "attendance"): "0007"}


def reversible_steps() -> list[tuple[str, str]]:
    """(revision, the revision below it) for every step from head down whose downgrade keeps tables."""
    script = ScriptDirectory.from_config(schema.alembic_config())
    return [(revision.revision, revision.down_revision) for revision in script.walk_revisions()
            if revision.down_revision is not None]


def table_names(engine: Engine) -> list[str]:
    return sorted(name for name in inspect(engine).get_table_names() if name != "alembic_version")


ROWS = "#rows"


def contents(engine: Engine) -> dict[str, dict[str, str]]:
    """Each table's row count and, per column, a digest of its values read in primary-key order
    (tables as they are now). Per column, so that a step which adds a column (and drops it again on
    its downgrade) is compared on every other column of every row."""
    found = {}
    with engine.connect() as connection:
        for name in table_names(engine):
            table = Table(name, MetaData(), autoload_with=connection)
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(select(table).order_by(*order)).mappings().all()
            found[name] = {ROWS: str(len(rows))} | {
                column: hashlib.sha256(repr([row[column] for row in rows]).encode()).hexdigest()
                for column in (column.key for column in table.c)}
    return found


def total_rows(found: dict[str, dict[str, str]]) -> int:
    return sum(int(columns[ROWS]) for columns in found.values())


def in_common(found: dict[str, dict[str, str]], reference: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """`found` limited to the tables and columns it shares with `reference`, and `reference` likewise."""
    return {name: {column: value for column, value in columns.items() if column in reference[name]}
            for name, columns in found.items() if name in reference}


def current_revision(engine: Engine) -> str:
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def fill(engine: Engine) -> None:
    """Demo data, plus a row in each table the generator leaves empty, through the services."""
    generate(engine, requests=REQUESTS, demo_password=PASSWORD, now=NOW)
    with db.reading(engine) as session:
        users = {user.username: user for user in session.exec(select(User)).all()}
        completed = session.exec(select(Screening).where(Screening.status == ScreeningStatus.COMPLETE)
                                 .order_by(Screening.id)).first()
    with db.writing(engine) as session:
        administration.change_settings(session, users["admin"], {"amber_percent": 80}, {})
    with db.writing(engine) as session:
        export.save_column_set(session, users["lead"], "triage_queue", "Names and times",
                               ["reference", "received_at", "given_name", "family_name"])
    with db.writing(engine) as session:
        practitioner = session.get(User, completed.practitioner_id)
        view = screening.get_screening(session, practitioner, completed.id)
        values = screening.form_values(view)
        data = screening.section_input(screening.OUTCOME, values)
        data.recommendation_adjustments = f"{data.recommendation_adjustments or ''} Breaks every hour.".strip()
        screening.save_outcome(session, practitioner, completed.id, completed.version, data,
                               amendment_reason="Adjustment agreed with the custody sergeant")


def append_only_in_force(engine: Engine) -> bool:
    """The 0002 triggers refuse an UPDATE of an audit row (in a transaction rolled back either way)."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text("UPDATE auditevent SET detail = 'tampered'"))
        except DBAPIError as refused:
            transaction.rollback()
            return "append-only" in str(refused)
        transaction.rollback()
        return False


def without_dropped(found: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: {column: value for column, value in columns.items() if (name, column) not in DROPPED_BY_DOWNGRADE}
            for name, columns in found.items()}


def walk(engine: Engine, reference: dict[str, tuple[int, str]]) -> list[str]:
    """Downgrade one step and upgrade again, for each reversible step from head down; checks every table."""
    walked = []
    assert contents(engine) == reference
    reference = without_dropped(reference)
    for revision, below in reversible_steps():
        tables_before = table_names(engine)
        schema.downgrade(engine, below)
        assert current_revision(engine) == below
        kept = without_dropped(contents(engine))
        dropped = [name for name in tables_before if name not in kept and int(reference.get(name, {ROWS: "0"})[ROWS])]
        assert dropped == [], f"downgrading {revision} → {below} dropped tables holding rows: {dropped}"
        assert in_common(kept, reference) == in_common(reference, kept), f"rows changed by downgrading {revision}"
        if revision == "0002":
            assert not append_only_in_force(engine), "the downgrade of 0002 did not run: its triggers are still there"
        schema.upgrade(engine, revision)
        assert current_revision(engine) == revision
        # tables and columns of later revisions come back with the final upgrade
        now_there = without_dropped(contents(engine))
        assert in_common(now_there, reference) == in_common(reference, now_there), (
            f"rows changed by upgrading {below} → {revision} again")
        walked.append(f"{revision} → {below} → {revision}")
    schema.upgrade(engine)
    assert without_dropped(contents(engine)) == reference
    with engine.connect() as connection:
        for (table, column), revision in DROPPED_BY_DOWNGRADE.items():
            kept_values = select(func.count(sql_column(column))).select_from(sql_table(table))
            assert connection.execute(kept_values).scalar_one() == 0, (
                f"{table}.{column} kept values through a downgrade below {revision}: the list above is wrong")
    assert append_only_in_force(engine)
    return walked


def test_there_is_a_step_to_walk():
    assert ("0002", "0001") in reversible_steps()


def test_downgrade_and_upgrade_again_keep_every_row_on_a_sqlite_copy(tmp_path):
    original_path, copy_path = tmp_path / "demo.db", tmp_path / "copy.db"
    original = db.create_database_engine(f"sqlite:///{original_path}")
    schema.upgrade(original)
    fill(original)
    reference = contents(original)
    original.dispose()
    source, target = sqlite3.connect(original_path), sqlite3.connect(copy_path)
    with target:
        source.backup(target)  # the online backup API, as manage.py backup does; never a file copy of a WAL database
    source.close()
    target.close()

    copy = db.create_database_engine(f"sqlite:///{copy_path}")
    empty = [name for name, columns in reference.items() if columns[ROWS] == "0" and name not in TRANSIENT]
    assert empty == [], f"tables without rows prove nothing: {empty}"
    walked = walk(copy, reference)
    copy.dispose()
    original = db.create_database_engine(f"sqlite:///{original_path}")
    assert contents(original) == reference  # the original was never touched
    original.dispose()
    print(f"\nsqlite: {total_rows(reference):,} rows in {len(reference)} tables kept through "
          f"{', '.join(walked)}")


@pytest.mark.postgres
def test_downgrade_and_upgrade_again_keep_every_row_on_postgresql(worker_id):
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is not set")
    name = f"ldhub_migrations_data_{worker_id}_{os.getpid()}"
    base = db.create_database_engine(url)
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = db.create_database_engine(url, search_path=name)
    try:
        schema.upgrade(engine)
        fill(engine)
        reference = contents(engine)
        empty = [table for table, columns in reference.items() if columns[ROWS] == "0" and table not in TRANSIENT]
        assert empty == [], f"tables without rows prove nothing: {empty}"
        walked = walk(engine, reference)
        with db.reading(engine) as session:
            assert session.exec(select(Setting.value).where(Setting.key == "amber_percent")).one() == "80"
        print(f"\npostgresql: {total_rows(reference):,} rows in {len(reference)} tables kept "
              f"through {', '.join(walked)}")
    finally:
        engine.dispose()
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        base.dispose()

