"""Triage queue: the team's open requests, soonest due first, with the response clock; allocate them."""

import streamlit as st

from models.codes import CodeList, RequestStatus, Urgency
from services import code_lists, db, organisation, requests
from services.errors import Conflict, InputErrors, NotFound, PermissionDenied
from services.permissions import Permission, has_permission
from services.requests import OPEN_STATUSES, RequestFilters
from ui.export_button import export_button
from ui.format import RAG_SYMBOLS, format_date, format_datetime, format_duration, plain
from ui.guard import app_engine, require
from ui.query_filters import FilterBar, FilterKind, QueryFilter

user = require(Permission.VIEW_REQUESTS, title="Triage queue")
engine = app_engine()
st.title("Triage queue")

CURSORS, SEEN, VERSIONS, NOTICE = "triage_cursors", "triage_filters_seen", "triage_versions", "triage_notice"
shown_versions: dict[int, int] = st.session_state.get(VERSIONS, {})  # what the page showed before this click

with db.reading(engine) as session:
    sites = {site.id: site.name for site in organisation.active_sites(session, user)}
    types = code_lists.labels(session, CodeList.REQUEST_TYPE)
    staff = {member.id: member.full_name for member in requests.allocatable_staff(session, user)}
allocated_choices = ["any", "none", *map(str, staff)]
allocated_names = {"any": "Anyone", "none": "Not allocated", **{str(key): name for key, name in staff.items()}}

bar = FilterBar("triage", [
    QueryFilter("site", FilterKind.INTS, choices=set(sites)),
    QueryFilter("type", FilterKind.TEXTS, choices=set(types)),
    QueryFilter("urgency", FilterKind.TEXTS, choices=set(Urgency.choices())),
    QueryFilter("status", FilterKind.TEXTS, default=OPEN_STATUSES, choices=set(RequestStatus.choices())),
    QueryFilter("allocated", FilterKind.TEXT, default="any", choices=set(allocated_choices)),
    QueryFilter("from", FilterKind.DATE),
    QueryFilter("to", FilterKind.DATE),
])
bar.start()
first, second, third, fourth = st.columns(4)
first.multiselect("Site", list(sites), format_func=sites.get, key=bar.key("site"), placeholder="All sites")
second.multiselect("Request type", list(types), format_func=types.get, key=bar.key("type"), placeholder="All types")
third.multiselect("Urgency", Urgency.choices(), format_func=Urgency.label_of, key=bar.key("urgency"),
                  placeholder="All urgencies")
fourth.multiselect("Status", RequestStatus.choices(), format_func=RequestStatus.label_of, key=bar.key("status"),
                   placeholder="Any status")
first.selectbox("Allocated to", allocated_choices, format_func=allocated_names.get, key=bar.key("allocated"))
second.date_input("Received from", key=bar.key("from"), format="DD/MM/YYYY")
third.date_input("Received to", key=bar.key("to"), format="DD/MM/YYYY")
chosen = bar.publish()
allocated = chosen["allocated"] or "any"
filters = RequestFilters(
    site_ids=chosen["site"], request_types=chosen["type"], urgencies=chosen["urgency"], statuses=chosen["status"],
    allocated_to_id=int(allocated) if allocated not in ("any", "none") else None,
    unallocated_only=allocated == "none", received_from=chosen["from"], received_to=chosen["to"],
)
if st.session_state.get(SEEN) != filters:  # new filters: back to the first page
    st.session_state[SEEN] = filters
    st.session_state[CURSORS] = [None]
cursors = st.session_state.setdefault(CURSORS, [None])

with db.reading(engine) as session:
    page = requests.triage_page(session, user, filters, after=cursors[-1])
    total = requests.count_requests(session, user, filters)

notice = st.session_state.pop(NOTICE, None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")
start = (len(cursors) - 1) * requests.PAGE_SIZE
st.caption(f"{total:,} requests match · showing {start + 1 if page.rows else 0:,}–{start + len(page.rows):,} · "
           "soonest due first · the clock runs until the first response")
st.dataframe(
    [
        {
            "Clock": RAG_SYMBOLS[row.clock.rag] if row.clock else ("Answered" if row.first_response_at else "—"),
            "Time left": format_duration(row.clock.time_left) if row.clock else "",
            "Reference": row.reference,
            "Received": format_datetime(row.received_at),
            "Due": format_datetime(row.due_at),
            "Urgency": row.urgency,
            "Type": row.request_type,
            "Status": row.status,
            "Site": row.site,
            "Person": row.person,
            "Allocated to": row.allocated_to,
        }
        for row in page.rows
    ],
    hide_index=True,
)


def go_back() -> None:
    st.session_state[CURSORS] = st.session_state[CURSORS][:-1] or [None]


def go_on(cursor) -> None:
    st.session_state[CURSORS] = [*st.session_state[CURSORS], cursor]


back, onward = st.columns(2)
back.button("Previous page", on_click=go_back, disabled=len(cursors) == 1)
onward.button("Next page", on_click=go_on, args=(page.next_cursor,), disabled=page.next_cursor is None)
export_button(user, "triage_queue", filters)
if chosen["from"] and chosen["to"] and chosen["from"] > chosen["to"]:
    st.warning(f"'Received from' ({format_date(chosen['from'])}) is after 'Received to'; nothing can match.")


def act(success, operation, *args) -> None:
    """Run one change; on success say so (``success`` turns the result into words) and redraw."""
    try:
        with db.writing(engine) as session:
            done = operation(session, user, *args)
    except (InputErrors, Conflict, NotFound, PermissionDenied) as refused:
        st.error(plain(" ".join(refused.errors.values()) if isinstance(refused, InputErrors) else str(refused)))
        return
    st.session_state[NOTICE] = success(done)
    st.rerun()


rows = {row.request_id: row for row in page.rows}
if rows:
    st.subheader("Open or allocate a request")
    request_id = st.selectbox("Request on this page", list(rows), format_func=lambda request_id: (
        f"{rows[request_id].reference} · {rows[request_id].person or 'no person'} · "
        f"due {format_datetime(rows[request_id].due_at)} · {rows[request_id].allocated_to or 'not allocated'}"))
    row = rows[request_id]
    version = shown_versions.get(row.request_id, row.version)
    clock_words = (f"{RAG_SYMBOLS[row.clock.rag]} · time left {format_duration(row.clock.time_left)}" if row.clock
                   else ("Answered" if row.first_response_at else row.status))
    st.markdown(f"{clock_words} · due {format_datetime(row.due_at)}")  # no typed text in this line
    st.page_link("pages/3_Request.py", label=f"Open {row.reference}", query_params={"id": str(row.request_id)},
                 icon=":material/open_in_new:")
    if has_permission(user, Permission.ALLOCATE_REQUESTS) and row.status_code != RequestStatus.CLOSED:
        to_column, button_column = st.columns([3, 1])
        to_user = to_column.selectbox("Allocate to", list(staff), format_func=staff.get, index=None,
                                      placeholder="Choose a member of the team")
        if button_column.button("Allocate", type="primary", disabled=to_user is None):
            act(lambda done: f"{done.reference} allocated to {staff[to_user]}.", requests.allocate, row.request_id,
                version, to_user)
    if (has_permission(user, Permission.ALLOCATE_TO_SELF) and row.allocated_to_id is None
            and row.status_code != RequestStatus.CLOSED and st.button("Allocate to me")):
        act(lambda done: f"{done.reference} allocated to you.", requests.allocate_to_me, row.request_id, version)
else:
    st.info("No requests match these filters.")

if has_permission(user, Permission.ALLOCATE_REQUESTS):
    with st.expander("Move all of one person's open requests (leave, leavers)"):
        from_user = st.selectbox("Move the open requests of", list(staff), format_func=staff.get, index=None,
                                 placeholder="Choose")
        to_users = st.multiselect("Share them, soonest due first, between", [key for key in staff if key != from_user],
                                  format_func=staff.get)
        if st.button("Move requests", disabled=from_user is None or not to_users):
            act(lambda moved: f"{moved} open requests moved.", requests.reallocate_open_requests, from_user, to_users)

st.session_state[VERSIONS] = {row.request_id: row.version for row in page.rows}
