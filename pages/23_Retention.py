"""Retention review: records past the retention period, deleted only on an administrator's approval."""

import streamlit as st

from services import db, retention
from services.errors import InputErrors
from services.permissions import Permission
from ui.editing import toast_after_rerun
from ui.format import format_date
from ui.forms import FieldMessages
from ui.guard import app_engine, require

RULE_LABELS = {retention.ADULT: "Adult", retention.CHILD: "Child"}
DONE = "retention_done"

user = require(Permission.REVIEW_RETENTION, title="Retention review")
engine = app_engine()
st.title("Retention review")

with st.spinner("Finding records past retention…"), db.reading(engine) as session:
    queue = retention.review_queue(session, user)

st.caption(f"Kept: {queue.rule.describe()} (Service settings). Your organisation must confirm its own policy. "
           "People are listed by id only: deletion is a records decision, not a clinical one.")
done = st.session_state.pop(DONE, None)
if done:
    st.success(done)

total, adults, children = st.columns(3)
total.metric("Past retention", queue.total)
adults.metric("Adults", queue.adults)
children.metric("Children", queue.children)

if not queue.cases:
    st.info("No records are past retention today.")
    st.stop()

if queue.total > len(queue.cases):
    st.caption(f"Showing the {len(queue.cases)} whose retention ended first; delete these to see the rest.")
st.dataframe(
    [
        {
            "Person id": str(case.person_id),
            "Team": queue.team_names.get(case.team_id, ""),
            "Rule": RULE_LABELS[case.kind],
            "Last contact": format_date(case.last_contact_on),
            "Kept until": format_date(case.retain_until),
        }
        for case in queue.cases
    ],
    hide_index=True,
)

shown = [case.person_id for case in queue.cases]
with st.form("approve_deletion"):
    messages = FieldMessages()
    everyone = st.checkbox(f"Choose all {len(shown)} shown" if len(shown) > 1 else "Choose the one shown")
    chosen = st.multiselect("Or choose by person id", shown, format_func=str)
    messages.under("person_ids")
    confirmed = st.checkbox(
        "I have checked that the chosen records are past our retention policy and approve their permanent "
        "deletion: the person, their requests, screenings and onward referrals. This cannot be undone."
    )
    messages.under("confirmed")
    approved = st.form_submit_button("Delete the chosen records permanently", type="primary")

if approved:
    person_ids = shown if everyone else chosen
    if not confirmed:
        messages.show({"confirmed": "Tick the box to confirm the deletion, or leave the page to cancel."})
    else:
        try:
            with st.spinner("Deleting…"), db.writing(engine) as session:
                deleted = retention.delete_past_retention(session, user, person_ids, today=queue.today)
        except InputErrors as refused:
            messages.show(refused.errors)
        else:
            records = "1 record" if len(deleted) == 1 else f"{len(deleted):,} records"
            st.session_state[DONE] = (f"Deleted {records}. Each deletion is in the audit log as "
                                      "“Deleted a record past retention”, without the deleted content.")
            toast_after_rerun(f"Deleted {records}.")
            st.rerun()
