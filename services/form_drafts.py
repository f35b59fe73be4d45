"""Unsaved typing kept for the person who typed it, so a time-out, a refresh or a lost connection loses nothing.

A page writes what its fields hold (at most once per change, on the rerun that follows each
field) under a form name — ``log_request``, ``screening:123`` — and offers it back when the form
is drawn afresh: after signing in again, after a refresh, on another day. A draft is:

- the person's own: read and written only under their user id; nobody else, administrators
  included, can see it through the app, and it is never exported or audited as a record;
- short-lived: deleted when the form is saved or the person discards it, and after
  ``KEEP_DAYS`` days in any case (``purge_expired``, run by ``manage.py purge-expired``);
- bounded: at most ``SIZE_LIMIT`` characters of field values, checked here.

It holds clinical text as typed, in the same database and under the same protection as the
records themselves (docs/security.md, "Unsaved typing"). It does not weaken the idle time-out or
sign-out: the screen and the browser session are cleared as before; only the database keeps the
draft, for the same person's next sign-in.
"""

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from models import FormDraft, User
from models.sessions import FORM_NAME_LIMIT
from services import clock, db
from services.errors import InputErrors

KEEP_DAYS = 7
SIZE_LIMIT = 200_000
_FORM_NAME = re.compile(rf"[a-z_]{{1,{FORM_NAME_LIMIT - 21}}}(:[0-9]{{1,20}})?")


@dataclass(frozen=True)
class Recalled:
    values: dict
    saved_at: datetime


def encode(values: dict) -> dict:
    """Field values as JSON: dates and times tagged so that they come back as dates and times."""

    def one(value):
        if isinstance(value, date):
            return {"date": value.isoformat()}
        if isinstance(value, time):
            return {"time": value.isoformat()}
        if isinstance(value, list | tuple):
            return [one(item) for item in value]
        return value

    return {str(key): one(value) for key, value in values.items()}


def decode(values: dict) -> dict:
    def one(value):
        if isinstance(value, dict) and value.keys() == {"date"}:
            return date.fromisoformat(value["date"])
        if isinstance(value, dict) and value.keys() == {"time"}:
            return time.fromisoformat(value["time"])
        if isinstance(value, list):
            return [one(item) for item in value]
        return value

    return {key: one(value) for key, value in values.items()}


def _check_form(form: str) -> None:
    if not _FORM_NAME.fullmatch(form):
        raise ValueError(f"not a form name: {form!r}")


def _mine(session: Session, user: User, form: str) -> FormDraft | None:
    _check_form(form)
    return session.exec(select(FormDraft).where(FormDraft.user_id == user.id, FormDraft.form == form)).first()


def keep(session: Session, user: User, form: str, values: dict) -> None:
    """Write (or replace) this person's draft of `form`; `values` as `encode` gives them."""
    db.require_writing(session)
    if len(json.dumps(values, ensure_ascii=False)) > SIZE_LIMIT:
        raise InputErrors({"draft": "What you typed is too long to keep as a draft; save it or shorten it."})
    draft = _mine(session, user, form) or FormDraft(user_id=user.id, form=form)
    draft.values = values
    draft.saved_at = clock.now()
    session.add(draft)


def recall(session: Session, user: User, form: str) -> Recalled | None:
    """This person's draft of `form` (values decoded), unless there is none or it has expired."""
    draft = _mine(session, user, form)
    if draft is None or draft.saved_at < clock.now() - timedelta(days=KEEP_DAYS):
        return None
    return Recalled(decode(draft.values), draft.saved_at)


def discard(session: Session, user: User, form: str) -> None:
    """Delete this person's draft of `form` (saved, or thrown away on purpose)."""
    db.require_writing(session)
    _check_form(form)
    session.exec(delete(FormDraft).where(FormDraft.user_id == user.id, FormDraft.form == form))


def purge_expired(session: Session) -> int:
    """Delete every draft older than KEEP_DAYS days; returns how many went."""
    db.require_writing(session)
    cutoff = clock.now() - timedelta(days=KEEP_DAYS)
    return session.exec(delete(FormDraft).where(FormDraft.saved_at < cutoff)).rowcount or 0
