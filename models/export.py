"""Export preferences: a member of staff's named column sets, one list at a time."""

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field

from models.base import Timestamped, code_column

COLUMN_SET_NAME_LIMIT = 60


class SavedColumnSet(Timestamped, table=True):
    """The columns (their keys, in the order chosen) that a user saved under a name for a list."""

    __table_args__ = (UniqueConstraint("user_id", "list_name", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    list_name: str = Field(sa_type=code_column())
    name: str = Field(max_length=COLUMN_SET_NAME_LIMIT)
    columns: list[str] = Field(default_factory=list, sa_type=JSON)
