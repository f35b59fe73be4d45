"""The Alembic history builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from services import db, schema


def test_migrations_match_the_models(tmp_path):
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/migrated.db")
    schema.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == [], "run: alembic revision --autogenerate -m 'why' and commit it"


def test_downgrade_to_base_and_back(tmp_path):
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/round-trip.db")
    schema.upgrade(engine)
    schema.downgrade(engine, "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    schema.upgrade(engine)
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())


def test_statistics_are_gathered_for_the_planner(tmp_path):
    engine = db.create_database_engine(f"sqlite:///{tmp_path}/analysed.db")
    schema.upgrade(engine)
    schema.refresh_statistics(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar()
