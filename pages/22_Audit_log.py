"""Audit log: who did what to which record and when, searched by administrators, newest first."""

import streamlit as st

from services import audit_log, db
from services.audit_log import AuditFilters
from services.errors import InputErrors
from services.permissions import Permission, has_permission
from ui.export_button import export_button
from ui.format import format_datetime, plain
from ui.forms import FieldMessages
from ui.guard import app_engine, require

FILTERS = "audit_log_filters"
CURSORS = "audit_log_cursors"  # where each page after the first starts: a stack, for "Newer"

user = require(Permission.VIEW_AUDIT, title="Audit log")
engine = app_engine()
st.title("Audit log")
st.caption("Sign-ins, views of a person's record, changes, exports and refusals. UK times, newest first.")

with db.reading(engine) as session:
    staff = audit_log.user_choices(session, user)
names = {choice.id: f"{choice.full_name} ({choice.username})" for choice in staff}


def _any(label) -> object:
    """A drop-down's words: "Any" for no filter, else the code's label (with the code, to search by either)."""
    return lambda code: "Any" if code is None else label(code)


def _with_code(label):
    return lambda code: f"{label(code)} ({code})"


with st.form("audit_filters"):
    messages = FieldMessages()
    who, what, which = st.columns(3)
    with who:
        user_id = st.selectbox("Member of staff", [None, *names], format_func=lambda key: "Anyone" if key is None
                               else names[key])
        username = st.text_input("Username as recorded", max_chars=audit_log.TEXT_FILTER_LIMIT,
                                 help="For failed sign-ins under names that match no account.")
        messages.under("username")
    with what:
        action = st.selectbox("Action", [None, *audit_log.KNOWN_ACTIONS],
                              format_func=_any(_with_code(audit_log.action_label)), accept_new_options=True,
                              help="Choose one (type to search its words or its code), or type another action's code.")
        messages.under("action")
        outcome = st.selectbox("Outcome", [None, *audit_log.OUTCOMES], format_func=_any(audit_log.outcome_label))
        messages.under("outcome")
    with which:
        entity = st.selectbox("Record type", [None, *audit_log.KNOWN_ENTITIES],
                              format_func=_any(_with_code(audit_log.entity_label)), accept_new_options=True)
        messages.under("entity")
        entity_id = st.number_input("Record id", min_value=1, value=None, step=1, format="%d")
        messages.under("entity_id")
    start, end = st.columns(2)
    with start:
        date_from = st.date_input("From (UK date)", value=None, format="DD/MM/YYYY")
        messages.under("date_from")
    with end:
        date_to = st.date_input("To (UK date, inclusive)", value=None, format="DD/MM/YYYY")
        messages.under("date_to")
    searched = st.form_submit_button("Search", type="primary")

if searched:
    asked = AuditFilters(user_id=user_id, username=username, action=action, entity=entity,
                         entity_id=int(entity_id) if entity_id is not None else None, outcome=outcome,
                         date_from=date_from, date_to=date_to)
    try:
        st.session_state[FILTERS] = audit_log.validate(asked)
        st.session_state[CURSORS] = []
    except InputErrors as refused:
        messages.show(refused.errors)

filters = st.session_state.get(FILTERS, AuditFilters())
cursors = st.session_state.setdefault(CURSORS, [])
with st.spinner("Searching the audit log…"), db.reading(engine) as session:
    page = audit_log.search(session, user, filters, after=cursors[-1] if cursors else None)

# The filters may quote what was typed (a username, an action's code): shown as typed, never as markdown.
st.caption(plain(f"Showing: {'everything' if filters == AuditFilters() else filters.describe()}"))
if not page.rows:
    st.info("No audit entries match these filters.")
else:
    st.dataframe(
        [
            {
                column.heading: format_datetime(row[column.key]) if column.key == "at"
                else ("" if row[column.key] is None else str(row[column.key]))
                for column in audit_log.COLUMNS
            }
            for row in page.rows
        ],
        hide_index=True,
    )

newer, where, older = st.columns(3)
newer.button("Newer entries", disabled=not cursors, on_click=cursors.pop if cursors else None, key="newer")
entries = "1 entry" if len(page.rows) == 1 else f"{len(page.rows)} entries"
where.caption(f"Page {len(cursors) + 1} · {entries} on this page")
older.button("Older entries", disabled=page.next_cursor is None, key="older",
             on_click=cursors.append, args=(page.next_cursor,))

# Drawn only for those who may export; the export service checks again and audits it.
export_button(user, "audit_log", filters, key="export_audit_log")
if has_permission(user, Permission.EXPORT):
    st.caption("The export holds every entry that matches these filters, not only this page, and is "
               "itself recorded in the audit log.")
