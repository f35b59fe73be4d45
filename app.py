"""Entry point: sign-in, then 'My work' — the signed-in user's open requests and drafts."""

import streamlit as st

from services import db, home
from services.permissions import Permission, has_permission
from ui.format import RAG_SYMBOLS, format_datetime, format_duration
from ui.guard import app_engine, require

user = require(Permission.VIEW_HOME, title="My work")
engine = app_engine()

st.title("My work")

with db.reading(engine) as session:
    counts = home.team_counts(session, user)
    requests = home.my_open_requests(session, user) if has_permission(user, Permission.VIEW_REQUESTS) else None
    drafts = home.my_draft_screenings(session, user) if has_permission(user, Permission.SCREEN) else None

if counts is not None:
    waiting, overdue = st.columns(2)
    waiting.metric("Requests waiting for allocation", counts.unallocated)
    overdue.metric("Open requests overdue", counts.overdue)
    st.page_link("pages/1_Triage_queue.py", label="Open the triage queue", icon=":material/inbox:")

if requests is not None:
    st.header(f"My open requests ({len(requests)})")
    if not requests:
        st.caption("No open requests are allocated to you.")
    for row in requests:
        line = st.container(border=True)
        state = (
            f"{RAG_SYMBOLS[row.clock.rag]} · time left {format_duration(row.clock.time_left)}"
            if row.clock else "✅ First response given"
        )
        line.markdown(f"{state} · **{row.reference}** · {row.request_type} · due {format_datetime(row.due_at)}")
        line.text(row.person)  # st.text: names are shown as typed, never as markdown
        line.page_link("pages/3_Request.py", label="Open request", query_params={"id": row.request_id})

if drafts is not None:
    st.header(f"My draft screenings ({len(drafts)})")
    if not drafts:
        st.caption("You have no screenings in draft.")
    for draft in drafts:
        line = st.container(border=True)
        line.text(f"{draft.person} — started {format_datetime(draft.started_at)}, "
                  f"{draft.sections_saved} section(s) saved")
        line.page_link("pages/5_Screening.py", label="Continue screening", query_params={"id": draft.screening_id})

if has_permission(user, Permission.MANAGE_USERS):
    st.header("Administration")
    st.page_link("pages/20_Users.py", label="Manage users", icon=":material/manage_accounts:")
