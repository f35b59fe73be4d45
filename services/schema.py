"""Creating and upgrading the database: Alembic migrations plus the seeded code lists."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlmodel import Session, select

from models import CodeItem
from models.codes import EDITABLE_CODE_LISTS

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(connection=None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def refresh_statistics(engine: Engine) -> None:
    """Give the query planner row statistics after a bulk load or an upgrade.

    Without them SQLite chose the (team, received) index for "this person's requests, newest
    first" and read the team's whole history: 205 ms at 100k requests, 8 ms with statistics.
    `analysis_limit` samples each index (a full ANALYZE took 10 s at 1M requests). Sampled or
    not, SQLite (built without STAT4) keeps averages, not how skewed a column is: with full
    statistics "open requests" (a few among many closed) looked like most of the table and the
    caseload page scanned it (10 → 36 ms at 100k), so the sampled figures are kept, and indexes
    are shaped so the plan does not hang on them (see migration 0003).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
        connection.exec_driver_sql("ANALYZE")


def seed_code_lists(session: Session) -> int:
    """Add any seeded code that is missing; never touches codes a team has edited."""
    existing = set(session.exec(select(CodeItem.list_name, CodeItem.code)).all())
    added = 0
    for list_name, items in EDITABLE_CODE_LISTS.items():
        for order, (code, label, national_code) in enumerate(items):
            if (list_name.value, code) in existing:
                continue
            session.add(CodeItem(list_name=list_name.value, code=code, label=label,
                                 national_code=national_code, sort_order=order))
            added += 1
    return added
