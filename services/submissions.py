"""Idempotent creates: a second press of the same form finds the record the first press made.

A page gives each form a random submission token (ui/forms.py ``submission_token``) and keeps it
until the save succeeds; a double click or a rerun sends the same token again. A create calls

    earlier = submissions.claim(session, user, token, "request")
    if earlier is not None:
        return session.get(Request, earlier)   # the first press's record; nothing new is written
    ... create the record ...
    submissions.fulfil(session, token, request.id)

inside its one transaction. ``claim`` inserts the token first, so of two presses racing in two
transactions the second waits on the token's unique index (PostgreSQL) or on the write lock
(SQLite's BEGIN IMMEDIATE) and then finds the first one's record. A refused create rolls its
claim back with everything else, so the corrected form can be sent with the same token.

A token is the page's, not the person's: one used by another user, or for another kind of
record, is refused rather than answered with someone else's record.
"""

import re
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Submission, User
from services import clock, db
from services.errors import InputErrors

KEEP_DAYS = 2  # a press repeated days later is a new submission, not a double click

_TOKEN = re.compile(r"[0-9a-f]{32}")


def _earlier(session: Session, token: str) -> Submission | None:
    return session.exec(select(Submission).where(Submission.token == token)).first()


def claim(session: Session, user: User, token: str | None, entity: str) -> int | None:
    """Claim `token` for a new `entity` record, or return the id of the record it already made.

    ``None`` means: go on and create (with no token given, nothing is claimed: scripts and
    services calling each other do not need one).
    """
    if token is None:
        return None
    if not _TOKEN.fullmatch(token):
        raise InputErrors({"submission": "This form could not be sent as it is; reload the page and try again."})
    earlier = _earlier(session, token)
    if earlier is None:
        try:
            with session.begin_nested():
                session.add(Submission(token=token, user_id=user.id, entity=entity, created_at=clock.now()))
                session.flush()
            return None
        except IntegrityError:  # another transaction claimed it first and has committed since
            earlier = _earlier(session, token)
    if earlier is None or earlier.user_id != user.id or earlier.entity != entity or earlier.entity_id is None:
        raise InputErrors({"submission": "This form was already sent from another page; reload it and try again."})
    return earlier.entity_id


def fulfil(session: Session, token: str | None, entity_id: int) -> None:
    """Record which record the claimed token made (same transaction as the record)."""
    if token is None:
        return
    submission = _earlier(session, token)
    if submission is not None:
        submission.entity_id = entity_id
        session.add(submission)


def purge_expired(session: Session) -> int:
    """Forget tokens older than KEEP_DAYS (manage.py purge-expired); returns how many went."""
    db.require_writing(session)
    cutoff = clock.now() - timedelta(days=KEEP_DAYS)
    return session.exec(delete(Submission).where(Submission.created_at < cutoff)).rowcount or 0
