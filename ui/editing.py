"""Running one service change from a page: the version a person saw, refusals, notices.

- `shown_version` keeps the version of a record as first shown, so a save made after someone
  else's is refused by the service (optimistic locking) instead of quietly using the newest.
- `attempt` runs one operation in one write transaction. Refused input is shown under its fields
  and nothing typed is lost; a conflict or success is announced after a rerun that redraws the
  page from the database, with the form started afresh.
- `toast_after_rerun` is the toast of a save that ends in `st.rerun()`: it is drawn by the run
  that follows (the guard calls `show_pending_toast`). A toast sent by the run that calls
  `st.rerun()` was often never drawn in Chromium: 3 times in 8 on a page's first save.
"""

from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import clock, db
from services.errors import InputErrors, ServiceError
from ui.format import plain
from ui.forms import FieldMessages, submission_done, submission_token

_NOTICE = "editing.notice"
_TOAST = "editing.toast"
_KEEP = "editing.keep"
_CHOSEN = "editing.chosen"
_NOTHING = object()


def shown_version(name: str, row_id: object, current: int | None) -> int | None:
    key = f"editing.version.{name}.{row_id}"
    if key not in st.session_state:
        st.session_state[key] = current
    return st.session_state[key]


def forget_version(name: str, row_id: object) -> None:
    st.session_state.pop(f"editing.version.{name}.{row_id}", None)


def form_round(name: str) -> int:
    """A number to put in a form's widget keys; it moves on when the form should start afresh."""
    return st.session_state.get(f"editing.round.{name}", 0)


def creating(operation: Callable, form: str) -> Callable:
    """`operation` (a create) sending the submission token of `form` in its current round.

    The token holds until the form starts afresh after a save (`attempt(..., form=form)`), so a
    double click or a rerun before then sends the same token, and the service answers with the
    record already made instead of a second one (services/submissions.py).
    """
    round_ = form_round(form)
    submission_done(f"{form}_{round_ - 1}")  # the previous round's record is saved: forget its token
    return partial(operation, submission=submission_token(f"{form}_{round_}"))


def _next_round(name: str) -> None:
    st.session_state[f"editing.round.{name}"] = form_round(name) + 1


def toast_after_rerun(message: str, icon: str = ":material/check_circle:") -> None:
    """Toast `message` in the run that follows; call it just before `st.rerun()`."""
    st.session_state[_TOAST] = (message, icon)


def show_pending_toast() -> None:
    """Draw the toast a save asked for just before its rerun, if any (the guard calls this on every page)."""
    pending = st.session_state.pop(_TOAST, None)
    if pending:
        message, icon = pending
        st.toast(message, icon=icon)


NOTICE_SECONDS = 10


def say_done(key: str, place: str, message: str) -> None:
    """Keep `message` to show at `place` (a section, a button) for NOTICE_SECONDS (see show_notice)."""
    st.session_state[key] = (place, message, clock.now())


def done_at(key: str, place: str) -> str | None:
    """The message `say_done` kept for `place`, while it is recent; None otherwise."""
    note = st.session_state.get(key)
    if not note or note[0] != place:
        return None
    if clock.now() - note[2] > timedelta(seconds=NOTICE_SECONDS):
        st.session_state.pop(key, None)
        return None
    return note[1]


def show_notice() -> None:
    """The outcome of the change made just before the last rerun, if any.

    Shown on every run in the NOTICE_SECONDS after the save, not only the first: a second click
    queued during the save (a double click) reruns the page at once, and the message would
    otherwise flash and vanish before it was read.
    """
    for kind, show in (("success", st.success), ("error", st.error)):
        if message := done_at(_NOTICE, kind):
            show(plain(message))


def attempt(
    engine: Engine,
    user: User,
    operation: Callable,
    *args,
    done: str | Callable[[object], str],
    messages: FieldMessages | None = None,
    form: str | None = None,
    versions: Iterable[tuple[str, object]] = (),
) -> None:
    """Run `operation(session, user, *args)`; on success or conflict, rerun with a notice.

    `done` is the success message, or a function making it from what the operation returned (to
    name the record it saved). Success is also a toast, where the eye is, whatever the scroll.
    Every `choose` box keeps its choice through the rerun, even when the change renamed it.
    """
    st.session_state.pop(_NOTICE, None)  # the last save's message is not this one's
    try:
        with st.spinner("Saving…"), db.writing(engine) as session:
            result = operation(session, user, *args)
    except InputErrors as refused:
        if messages is not None:
            messages.show(refused.errors)
        else:
            st.error("\n\n".join(refused.errors.values()), icon=":material/error:")
        return
    except ServiceError as problem:  # a conflict, a record gone, a refusal
        say_done(_NOTICE, "error", str(problem))
    else:
        message = done(result) if callable(done) else done
        say_done(_NOTICE, "success", message)
        toast_after_rerun(plain(message))
    for name, row_id in versions:  # the next drawing shows, and saves against, the newest version
        forget_version(name, row_id)
    if form is not None:
        _next_round(form)
    for key, value in st.session_state.get(_CHOSEN, {}).items():
        st.session_state[f"{_KEEP}.{key}"] = value
    st.rerun()


def choose(label: str, options: dict, key: str, default=None, **kwargs):
    """A select box of ids shown by name that keeps its choice when the chosen name changes.

    A select box remembers its choice by the text shown, so renaming the chosen record would
    otherwise move the choice to the first entry: a following click could act on another record.
    """
    kept = st.session_state.pop(f"{_KEEP}.{key}", _NOTHING)
    if kept is not _NOTHING and kept in options:
        st.session_state[key] = kept
    elif st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else next(iter(options), None)
    chosen = st.selectbox(label, list(options), format_func=options.get, key=key, **kwargs)
    st.session_state.setdefault(_CHOSEN, {})[key] = chosen
    return chosen
