"""Signed-in sessions kept in the database: a refresh keeps you signed in; a time-out or sign-out does not.

A browser tab holds a random token (256 bits) in its own ``sessionStorage`` (ui/session_keeper.py):
it survives a refresh of that tab and goes when the tab closes. The database keeps only the
token's SHA-256 digest with the user, the session epoch signed in under, and two times:

- ``started_at``: the sign-in ends ``session_lifetime_hours`` later (default 12) whatever happens;
- ``last_active_at``: the last click, written at most once a minute; a tab reopened (refreshed)
  after the idle time-out finds its session ended.

Every click of a signed-in tab is checked here (`current_user`): the row must still exist, the
account be active with the same epoch, the lifetime not passed and the tab not idle. Signing out
deletes every session of the user and moves their epoch on (`end_all`), so every other tab, on
any app process, is signed out at its next click. A refreshed tab gets a new token (`resume`), so
a token read from one tab's storage is worth one use at most.

No clinical data is stored here; rows of ended sessions are deleted as they are found and by
`purge_ended`.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, select

from models import SignedInSession, Team, User
from services import accounts, audit, clock, db, settings
from services.accounts import SignedIn

TOUCH_EVERY = timedelta(minutes=1)  # last_active_at is written at most this often (one write a minute per tab)


@dataclass(frozen=True)
class Resumed:
    signed_in: SignedIn
    token: str  # the tab's new token: the one it came back with is spent


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _limits(session: Session) -> tuple[timedelta, timedelta]:
    return (timedelta(minutes=settings.get_int(session, "idle_timeout_minutes")),
            timedelta(hours=settings.get_int(session, "session_lifetime_hours")))


def _row(session: Session, token: str | None) -> SignedInSession | None:
    if not token or len(token) > 100:
        return None
    return session.exec(select(SignedInSession).where(SignedInSession.token_digest == _digest(token))).first()


def start(session: Session, signed_in: SignedIn) -> str:
    """A new session for a sign-in that has just succeeded; returns the token for the tab to keep."""
    db.require_writing(session)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(SignedInSession(token_digest=_digest(token), user_id=signed_in.user_id,
                                session_epoch=signed_in.session_epoch, single_sign_on=signed_in.single_sign_on,
                                started_at=now, last_active_at=now))
    return token


def renew(session: Session, token: str | None, signed_in: SignedIn) -> str:
    """The tab's sign-in after its own password change (which moved the epoch on): its old session
    goes, a new one under the new epoch starts; returns the new token."""
    db.require_writing(session)
    row = _row(session, token)
    if row is not None:
        session.delete(row)
    return start(session, signed_in)


def _valid_user(session: Session, row: SignedInSession, last_activity: datetime, now: datetime) -> User | None:
    idle, lifetime = _limits(session)
    if now - row.started_at > lifetime or now - last_activity > idle:
        return None
    return accounts.current_user(session, SignedIn(row.user_id, row.session_epoch, row.single_sign_on), last_activity)


@dataclass(frozen=True)
class Check:
    """The answer for one click: the user (None: sign in again) and what to write down, if anything.

    With a user, also the name of their team, which the page around it shows (read in the same
    transaction)."""

    user: User | None
    row_id: int | None = None
    touch: bool = False  # the session is alive and its last recorded click is a minute old or more
    ended: bool = False  # the session row is spent (time-out, lifetime, account change): delete it
    team_name: str = ""


def check(session: Session, token: str | None, last_activity: datetime | None) -> Check:
    """The user a tab is signed in as at this click (a read; `note` writes what it found, if anything).

    `last_activity` is the tab's own last click (kept in its server-side state, exact to the
    second); the idle time-out and the lifetime are checked on the server at every click.
    """
    row = _row(session, token)
    if row is None:
        return Check(None)
    now = clock.now()
    user = _valid_user(session, row, last_activity or row.last_active_at, now)
    if user is None:
        return Check(None, row.id, ended=True)
    team = session.get(Team, user.team_id)
    return Check(user, row.id, touch=now - row.last_active_at >= TOUCH_EVERY, team_name=team.name if team else "")


def note(session: Session, found: Check) -> None:
    """Write down what `check` found: a click (at most once a minute) or a spent session."""
    db.require_writing(session)
    row = session.get(SignedInSession, found.row_id) if found.row_id is not None else None
    if row is None:
        return
    if found.ended:
        session.delete(row)
    elif found.touch:
        row.last_active_at = clock.now()
        session.add(row)


def resume(session: Session, token: str | None) -> Resumed | None:
    """A refreshed tab comes back with its token: the same sign-in, under a new token, or None.

    Judged on the server alone: the idle time-out counts from the session's last recorded click.
    """
    db.require_writing(session)
    row = _row(session, token)
    if row is None:
        return None
    now = clock.now()
    user = _valid_user(session, row, row.last_active_at, now)
    if user is None:
        session.delete(row)
        return None
    fresh = secrets.token_urlsafe(32)
    row.token_digest = _digest(fresh)
    row.last_active_at = now
    session.add(row)
    audit.record(session, user, "resume_session", entity="user", entity_id=user.id)
    return Resumed(SignedIn(row.user_id, row.session_epoch, row.single_sign_on), fresh)


def end_all(session: Session, user_id: int) -> None:
    """Sign-out: every session of the user ends, in every tab and on every app process."""
    db.require_writing(session)
    session.exec(delete(SignedInSession).where(SignedInSession.user_id == user_id))
    user = session.get(User, user_id)
    if user is not None:
        user.session_epoch += 1  # tabs holding the old epoch are refused at their next click
        session.add(user)
        audit.record(session, user, "sign_out", entity="user", entity_id=user.id)


def purge_ended(session: Session) -> int:
    """Delete sessions past the longest they could still be used (manage.py purge-expired)."""
    db.require_writing(session)
    idle, lifetime = _limits(session)
    now = clock.now()
    ended = delete(SignedInSession).where(or_(SignedInSession.started_at < now - lifetime,
                                              SignedInSession.last_active_at < now - idle))
    return session.exec(ended).rowcount or 0
