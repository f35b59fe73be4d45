"""Shared column types and the mixin every editable table uses."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import declared_attr
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A point in time, always stored and returned as UTC.

    SQLite keeps no time zone, so a naive value read back would be ambiguous; this type refuses
    naive input (a naive time is a bug: is it London or UTC?) and hands back aware UTC values on
    both SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; convert from London time first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def code_column(length: int = 40):
    """Codes are stored as plain strings so that a new code never needs a schema change."""
    return String(length)


class Timestamped(SQLModel):
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


class Editable(Timestamped):
    """An editable row: optimistic locking through SQLAlchemy's version counter.

    `updated_by_id` lets a refused save say who changed the record first. It is a plain number,
    not a foreign key: team and user would otherwise reference each other in a cycle.
    """

    version: int = Field(default=1, nullable=False)
    updated_by_id: int | None = None

    @declared_attr
    def __mapper_args__(cls):
        return {"version_id_col": cls.__table__.c.version}
