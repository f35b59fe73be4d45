"""Optimistic locking for editable rows: a stale save is refused, never silently applied.

The page keeps the `version` it showed. Before changing a row a service calls `check_version`;
when another save came first it raises `Conflict` naming who saved and when. Two transactions
that both pass the check at once (possible on PostgreSQL) are caught at flush by SQLAlchemy's
version counter, and `flush` turns that into the same `Conflict`.
"""

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from models import User
from models.base import Editable
from services import clock
from services.errors import Conflict


def check_version(session: Session, row: Editable, expected_version: int | None) -> None:
    """Refuse the change when the row is no longer the version the person saw."""
    if row.version == expected_version:
        return
    changed_by = session.get(User, row.updated_by_id) if row.updated_by_id else None
    raise Conflict(changed_by.full_name if changed_by else "someone else", row.updated_at)


def touch(row: Editable, user: User) -> None:
    """Stamp a change with its time and author, so a later refusal can say who and when."""
    row.updated_at = clock.now()
    row.updated_by_id = user.id


def flush(session: Session) -> None:
    """Flush, turning a lost race on the version counter into a Conflict."""
    try:
        session.flush()
    except StaleDataError as error:
        raise Conflict("someone else", clock.now()) from error
