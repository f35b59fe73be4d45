"""What a person's browser relies on between clicks, kept in the database rather than in one process.

- ``Submission``: a form submission already acted on. A second press of the same form (a double
  click, a rerun) carries the same token and finds the record the first press made, so a create
  is idempotent (services/submissions.py).
- ``SignedInSession``: a sign-in that survives a browser refresh. The browser tab keeps a random
  token in its own ``sessionStorage``; only the token's SHA-256 digest is stored here, so a copy
  of the database cannot be used to sign in (services/sign_in_sessions.py; docs/security.md).
- ``FormDraft``: what a person typed into a form and has not saved yet, kept for them alone until
  they save or discard it, or it expires (services/form_drafts.py).
"""

from datetime import datetime

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, code_column, utc_now

TOKEN_LIMIT = 64
FORM_NAME_LIMIT = 80


class Submission(SQLModel, table=True):
    __table_args__ = (Index("ix_submission_created", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=TOKEN_LIMIT, unique=True)
    user_id: int = Field(foreign_key="user.id")
    entity: str = Field(sa_type=code_column())
    entity_id: int | None = None  # filled in once the record exists, in the same transaction
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class SignedInSession(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=TOKEN_LIMIT, unique=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    session_epoch: int  # the user's epoch at sign-in: a later disable, reset or sign-out ends it
    single_sign_on: bool = False
    started_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_active_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class FormDraft(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("user_id", "form"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    form: str = Field(max_length=FORM_NAME_LIMIT)
    values: dict = Field(default_factory=dict, sa_type=JSON)
    saved_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
