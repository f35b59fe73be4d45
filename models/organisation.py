"""The service and its people: teams, sites, staff accounts, code lists and settings."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from models.base import Editable, UTCDateTime, code_column

NAME_LIMIT = 100


class Team(Editable, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_LIMIT, unique=True)
    active: bool = True


class SiteBase(Editable):
    name: str = Field(max_length=NAME_LIMIT)
    kind: str = Field(sa_type=code_column())
    active: bool = True


class Site(SiteBase, table=True):
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)


class User(Editable, table=True):
    """A member of staff. Passwords are Argon2id hashes; SSO users may have none."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    full_name: str = Field(max_length=NAME_LIMIT)
    email: str | None = Field(default=None, max_length=254, unique=True)
    role: str = Field(sa_type=code_column(20))
    team_id: int = Field(foreign_key="team.id", index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    must_change_password: bool = False
    active: bool = True
    can_export: bool | None = None  # None: the role decides; True/False: set for this user
    failed_sign_ins: int = 0
    first_failed_sign_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Incremented when the account is disabled or its password reset, so that every other
    # signed-in browser holding the old number is signed out at its next interaction.
    session_epoch: int = 0
    last_signed_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CodeItem(Editable, table=True):
    __table_args__ = (UniqueConstraint("list_name", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    list_name: str = Field(sa_type=code_column(), index=True)
    code: str = Field(max_length=40)
    label: str = Field(max_length=NAME_LIMIT)
    national_code: str | None = Field(default=None, max_length=10)
    sort_order: int = 0
    active: bool = True


class Setting(Editable, table=True):
    """A value an administrator may change (targets, time-outs, retention); stored as text."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)
    value: str = Field(max_length=200)
