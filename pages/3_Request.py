"""One request: details, response clock and timeline; allocate, answer, close or reopen it."""

import streamlit as st

from models.codes import CodeList, ContactMechanism, RequestStatus, Urgency
from models.requests import SUMMARY_LIMIT
from services import code_lists, people, requests, screening
from services.errors import PermissionDenied
from services.permissions import Permission, has_permission
from ui.editing import attempt, show_notice
from ui.format import RAG_SYMBOLS, format_date, format_datetime, format_duration, plain
from ui.forms import FieldMessages
from ui.guard import app_engine, require
from ui.london_time import when_it_happened
from ui.opening import opening
from ui.record_id import record_id_from_query
from ui.screening_start import open_draft

user = require(Permission.VIEW_REQUESTS, title="Request")
engine = app_engine()

request_id = record_id_from_query("id")
if request_id is None:
    st.title("Request")
    st.info("Choose a request from the triage queue or from My work.")
    st.page_link("pages/1_Triage_queue.py", label="Open the triage queue", icon=":material/inbox:")
    st.stop()
VERSION = f"request_{request_id}_version"
try:
    with opening(engine, "request", request_id) as (session, first):
        detail = requests.open_request(session, user, request_id, audited=first)
        closure_reasons = {item.code: item.label for item in code_lists.active_items(session, CodeList.CLOSURE_REASON)}
        staff = {member.id: member.full_name for member in requests.allocatable_staff(session, user)}
except PermissionDenied as refused:  # a missing id and another team's read the same (and are audited)
    st.title("Request")
    st.error(str(refused))
    st.stop()
request = detail.request
# Saves are checked against the version this page showed before the click, not the one just read.
shown_version = st.session_state.get(VERSION, request.version)
status = request.status
is_open = status != RequestStatus.CLOSED


def act(success: str, operation, *args, messages: FieldMessages | None = None) -> None:
    """Run one change to this request against the version shown; on success redraw with a notice."""
    attempt(engine, user, operation, request.id, shown_version, *args, done=success, messages=messages)


st.title(f"Request {request.reference}")
show_notice()
st.markdown(f"**{RequestStatus.label_of(status)}** · {Urgency.label_of(request.urgency)} · received "
            f"{format_datetime(request.received_at)} · due {format_datetime(request.due_at)}")
if detail.clock:
    st.markdown(f"{RAG_SYMBOLS[detail.clock.rag]} · time left {format_duration(detail.clock.time_left)}")
elif request.first_response_at:
    answered_in = format_duration(request.first_response_at - request.received_at)
    st.caption(f"Answered {format_datetime(request.first_response_at)}, {answered_in} after it was received"
               f"{' (late)' if request.first_response_at > request.due_at else ''}.")

st.header("Person")
st.text(people.describe(detail.person) if detail.person else "No person: a general advice request.")
if detail.person and is_open and has_permission(user, Permission.SCREEN) and st.button(
        plain(f"Screen {detail.person.given_name} for {request.reference} (opens their draft if one is started)"),
        icon=":material/assignment:"):
    open_draft(engine, user, screening.start_from_request, request.id)

st.header("The request")
left, right = st.columns(2)
left.text("\n".join(line for line in (
    f"Source of referral: {detail.source_of_referral}",
    f"Requester: {request.requester_name}" + (f" ({request.requester_role})" if request.requester_role else ""),
    f"Phone: {request.requester_phone}" if request.requester_phone else "",
    f"E-mail: {request.requester_email}" if request.requester_email else "",
    f"Site: {detail.site}",
) if line))
right.text("\n".join(line for line in (
    f"Request type: {detail.request_type}",
    f"Logged by: {detail.created_by}",
    f"Allocated to: {detail.allocated_to or 'nobody yet'}",
    f"Prison release date: {format_date(request.prison_release_on)}" if request.prison_release_on else "",
    f"Closure reason: {detail.closure_reason}" if request.closure_reason else "",
) if line))
st.caption("Reason for the request")
st.text(request.reason)
custody = [line for line in (
    f"Custody number: {request.custody_number}" if request.custody_number else "",
    f"Arrested: {format_datetime(request.arrested_at)}" if request.arrested_at else "",
    f"Offence: {request.offence}" if request.offence else "",
    f"Next hearing: {format_datetime(request.next_hearing_at)}" if request.next_hearing_at else "",
) if line]
if custody:
    st.caption("Custody or court details")
    st.text("\n".join(custody))
if request.first_response_at:
    st.caption(f"First response, {format_datetime(request.first_response_at)}, "
               f"{ContactMechanism.label_of(request.first_response_mechanism).lower()}")
    st.text(request.first_response_summary or "")

st.header("Timeline")
st.dataframe([{"When": format_datetime(entry.at), "What": entry.what, "By": entry.by, "Detail": entry.detail}
              for entry in detail.timeline], hide_index=True)

if is_open and has_permission(user, Permission.ALLOCATE_REQUESTS):
    to_column, button_column = st.columns([3, 1])
    to_user = to_column.selectbox("Allocate to", [key for key in staff if key != request.allocated_to_id],
                                  format_func=staff.get, index=None, placeholder="Choose a member of the team")
    if button_column.button("Allocate", disabled=to_user is None):
        act(f"Allocated to {staff.get(to_user)}.", requests.allocate, to_user)
elif (is_open and request.allocated_to_id is None and has_permission(user, Permission.ALLOCATE_TO_SELF)
      and st.button("Allocate to me")):
    act("Allocated to you.", requests.allocate_to_me)

if is_open and request.first_response_at is None and has_permission(user, Permission.RESPOND_TO_REQUEST):
    st.header("Record the first response")
    response_messages = FieldMessages()
    responded = when_it_happened("of the response", "respond")
    response_messages.under("responded_at")
    mechanism = st.selectbox("How the response was given", ContactMechanism.choices(), index=None,
                             format_func=ContactMechanism.label_of, placeholder="Choose…")
    response_messages.under("contact_mechanism")
    summary = st.text_area(requests.ADVICE_GIVEN_LABEL, help=f"Up to {SUMMARY_LIMIT:,} characters.")
    response_messages.under("summary")
    response_messages.under("first_response")
    if st.button("Record first response", type="primary"):
        act("First response recorded.", requests.record_first_response,
            requests.FirstResponse(responded.on, responded.at, mechanism, summary, responded.fold),
            messages=response_messages)

if status in (RequestStatus.ALLOCATED, RequestStatus.REOPENED) and has_permission(
        user, Permission.RESPOND_TO_REQUEST) and st.button("Mark in progress"):
    act("Marked in progress.", requests.start_work)

if requests.can_change_status(status, RequestStatus.CLOSED) and has_permission(user, Permission.RESPOND_TO_REQUEST):
    st.header("Close the request")
    close_messages = FieldMessages()
    reason = st.selectbox("Closure reason", list(closure_reasons), format_func=closure_reasons.get, index=None,
                          placeholder="Choose…")
    close_messages.under("closure_reason")
    closed = when_it_happened("closed", "close")
    close_messages.under("closed_at")
    close_messages.under("status")
    if st.button("Close request"):
        act("Request closed.", requests.close_request, reason, closed, messages=close_messages)

if status == RequestStatus.CLOSED and has_permission(user, Permission.REOPEN_REQUEST):
    with st.form("reopen"):
        reopen_messages = FieldMessages()
        why = st.text_input("Why reopen it (shown on the timeline; no clinical details)",
                            help=f"Up to {requests.REOPEN_REASON_LIMIT} characters.")
        reopen_messages.under("reopen_reason")
        if st.form_submit_button("Reopen request"):
            act("Request reopened.", requests.reopen_request, why, messages=reopen_messages)

st.session_state[VERSION] = request.version
