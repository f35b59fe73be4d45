"""The append-only audit trail. Never holds clinical text."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, code_column, utc_now


class AuditEvent(SQLModel, table=True):
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_user_at", "user_id", "at"),
        Index("ix_audit_action_at", "action", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    # Kept as text too, so the trail still reads after an account is renamed, and for
    # failed sign-ins by names that match no account.
    username: str | None = Field(default=None, max_length=64)
    action: str = Field(sa_type=code_column())
    entity: str | None = Field(default=None, sa_type=code_column())
    entity_id: int | None = None
    outcome: str = Field(sa_type=code_column(20))
    detail: str | None = Field(default=None, max_length=1000)
