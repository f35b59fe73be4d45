"""The audit trail: who did what to which record, when, and whether it was allowed.

Append-only: nothing in the app updates or deletes an AuditEvent. Details are never clinical.
"""

import logging

from sqlalchemy import event
from sqlmodel import Session

from models import AuditEvent, User
from services import db

log = logging.getLogger("ldhub.audit")

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


def record(
    session: Session,
    user: User | None,
    action: str,
    *,
    entity: str | None = None,
    entity_id: int | None = None,
    outcome: str = SUCCESS,
    detail: str | None = None,
    username: str | None = None,
) -> AuditEvent:
    """Add an audit row to the operation's own transaction, so both commit or neither does."""
    db.require_writing(session)
    row = AuditEvent(
        user_id=user.id if user else None,
        username=(user.username if user else username),
        action=action,
        entity=entity,
        entity_id=entity_id,
        outcome=outcome,
        detail=detail[:1000] if detail else None,
    )
    session.add(row)
    return row


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session, _context, _instances):
    for instance in list(session.dirty) + list(session.deleted):
        if isinstance(instance, AuditEvent):
            raise PermissionError("audit events are append-only")
