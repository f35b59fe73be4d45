"""Forms: a service's refusal next to the field it concerns, keeping what was typed; one record per submit.

Usage inside a form: create the widget, then `slots.under("field_name")`; after a refused save
call `slots.show(error.errors)`. Widget values stay as typed, because nothing resets them.

A form that creates a record passes `submission_token(name)` to the service and calls
`submission_done(name)` once the record is saved: a double click or a rerun in between sends the
same token, and the service answers with the record already made (services/submissions.py).
"""

import uuid

import streamlit as st

from ui.format import plain


class FieldMessages:
    def __init__(self) -> None:
        self._slots: dict[str, object] = {}

    def under(self, field: str) -> None:
        """Reserve the place under the widget just drawn for its error message."""
        self._slots[field] = st.empty()

    def show(self, errors: dict[str, str]) -> None:
        unplaced = []
        for field, message in errors.items():
            slot = self._slots.get(field)
            if slot is None:
                unplaced.append(plain(message))
            else:
                # Messages may quote what was typed; it must show as typed, never as markdown.
                slot.error(plain(message), icon=":material/error:")
        if unplaced:
            st.error("\n\n".join(unplaced), icon=":material/error:")
        st.toast("Not saved: correct the fields marked in red.", icon=":material/error:")


def submission_token(form: str) -> str:
    """This form's submission token: the same until `submission_done`, whatever reruns happen."""
    return st.session_state.setdefault(f"submission.{form}", uuid.uuid4().hex)


def submission_done(form: str) -> None:
    """The record is saved: the form's next submission is a new one."""
    st.session_state.pop(f"submission.{form}", None)
