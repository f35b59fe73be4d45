"""Keeping a form's unsaved typing in the database as it is typed, and offering it back (services/form_drafts.py).

A page calls, around its form::

    drafts.restore(engine, user, "log_request", KEYS)      # before the widgets: put back what was kept
    ... draw the widgets (keys in KEYS) ...
    drafts.keep(engine, user, "log_request", KEYS, blank)  # after them: write what they hold, if it changed
    drafts.forget(engine, user, "log_request")             # once the form is saved

Fields outside an `st.form` send their value when the person leaves them, so each field typed
reaches the draft on the rerun that follows. `blank` is what the form holds when nothing has been
typed (a fresh form's defaults, or the record as saved): a form back to blank keeps no draft.
"""

import hashlib
import json
from collections.abc import Iterable

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import clock, db, form_drafts
from services.errors import InputErrors


def _state(form: str, what: str) -> str:
    return f"draft.{form}.{what}"


def _current(keys: Iterable[str]) -> dict:
    return form_drafts.encode({key: st.session_state[key] for key in keys if key in st.session_state})


def _digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def restore(engine: Engine, user: User, form: str, keys: Iterable[str]) -> None:
    """Put back this person's unsaved typing of `form` (once per browser session, before the widgets)."""
    if st.session_state.get(_state(form, "restored")):
        return
    st.session_state[_state(form, "restored")] = True
    with db.reading(engine) as session:
        kept = form_drafts.recall(session, user, form)
    if kept is None:
        return
    wanted = set(keys)
    for key, value in kept.values.items():
        if key in wanted:
            st.session_state[key] = value
    st.session_state[_state(form, "written")] = _digest(_current(wanted))
    st.session_state[_state(form, "restored_from")] = kept.saved_at


def offer(engine: Engine, user: User, form: str, keys: Iterable[str]) -> None:
    """Say that typing was put back, with a button to throw it away (draw where the form starts)."""
    saved_at = st.session_state.get(_state(form, "restored_from"))
    if saved_at is None:
        return
    st.info(f"Put back what you typed by {clock.format_time(saved_at)} on {clock.format_date(saved_at)} and had "
            "not saved. Check it, then save; or start again.", icon=":material/history:")
    if st.button("Start again (throw away what was put back)", key=_state(form, "discard")):
        forget(engine, user, form)
        for key in keys:
            st.session_state.pop(key, None)
        st.session_state[_state(form, "started_again")] = True
        st.rerun()


def started_again(form: str) -> bool:
    """True once, in the run after "Start again" was pressed: set the form's fields blank before drawing them.

    Deleting their keys (as `offer` does) is not enough for fields the page does not set again
    itself: the browser would keep showing what was thrown away, and send it back with the next
    click, so the draft came back.
    """
    return st.session_state.pop(_state(form, "started_again"), False)


def keep(engine: Engine, user: User, form: str, keys: Iterable[str], blank: dict) -> None:
    """Write what the fields hold now, when it changed since last written (after the widgets).

    Nothing typed (every key of `blank` as it is there) means no draft: one already written goes.
    """
    current = _current(keys)
    written = st.session_state.get(_state(form, "written"))
    digest = _digest(current)
    if digest == written:
        return
    untouched = all(current.get(key, value) == value for key, value in form_drafts.encode(blank).items())
    if untouched and written is None:
        return
    try:
        with db.writing(engine) as session:
            if untouched:
                form_drafts.discard(session, user, form)
            else:
                form_drafts.keep(session, user, form, current)
    except InputErrors as refused:
        st.warning(" ".join(refused.errors.values()), icon=":material/warning:")
        return
    st.session_state[_state(form, "written")] = None if untouched else digest


def forget(engine: Engine, user: User, form: str) -> None:
    """The form was saved (or thrown away): its draft goes, and the page starts clean."""
    with db.writing(engine) as session:
        form_drafts.discard(session, user, form)
    for what in ("written", "restored_from"):
        st.session_state.pop(_state(form, what), None)
