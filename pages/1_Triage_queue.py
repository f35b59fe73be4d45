"""Triage queue: the team's open requests, soonest due first, with the response clock; allocate them."""

from functools import partial

import streamlit as st

from models.codes import CodeList, RequestStatus, Urgency
from services import code_lists, db, organisation, requests
from services.permissions import Permission, has_permission
from services.requests import OPEN_STATUSES, RequestFilters, TriageRow
from ui.bulk_move import bulk_move
from ui.editing import attempt, show_notice
from ui.export_button import export_button, view_rows
from ui.format import RAG_SYMBOLS, format_date, format_datetime, format_duration, plural
from ui.guard import app_engine, require
from ui.query_filters import FilterBar, FilterKind, QueryFilter

user = require(Permission.VIEW_REQUESTS, title="Triage queue")
engine = app_engine()
st.title("Triage queue")

CURSORS, SEEN, VERSIONS, CHOSEN = "triage_cursors", "triage_filters_seen", "triage_versions", "triage_chosen"
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

show_notice()
start = (len(cursors) - 1) * requests.PAGE_SIZE
st.caption(f"{plural(total, 'request matches', 'requests match')} · showing "
           f"{start + 1 if page.rows else 0:,}–{start + len(page.rows):,} · your unanswered requests first, then "
           "unallocated, then the rest, soonest due first in each · the clock runs until the first response")


def clock_words(row: TriageRow) -> str:
    return RAG_SYMBOLS[row.clock.rag] if row.clock else (requests.ANSWERED if row.first_response_at
                                                         else requests.NO_CLOCK)


def choose_row(shown_ids: list[int]) -> None:
    """Selection callback: the row clicked, by the id it had in the table the person saw.

    Streamlit reports a selection by row position; `shown_ids` are the ids of the table as drawn
    when the click was made (bound as it was drawn), so a rerun that re-sorts the rows cannot
    turn the click into another request.
    """
    positions = st.session_state[table_key].selection.rows
    st.session_state[CHOSEN] = shown_ids[positions[0]] if positions and positions[0] < len(shown_ids) else None


shown_ids = [row.request_id for row in page.rows]
chosen_id = st.session_state.get(CHOSEN)
# A table with other rows is a new table: no stale highlight can sit on a row that moved.
table_key = f"triage_table_{hash(tuple(shown_ids))}"
st.dataframe(  # the columns "Export this view" writes, from the one definition (requests.TRIAGE_VIEW)
    view_rows("triage_queue", [row.values for row in page.rows]),
    hide_index=True, key=table_key, on_select=partial(choose_row, shown_ids), selection_mode="single-row",
    selection_default={"selection": {"rows": [shown_ids.index(chosen_id)] if chosen_id in shown_ids else []}},
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


rows = {row.request_id: row for row in page.rows}
st.header("Open or allocate a request")
row = rows.get(chosen_id)
if row is None:
    # A click on a row's cell only outlines that cell: the row is chosen by its box (checked in Chromium).
    st.info("Click a request's row in the list to choose it. Use the box at the start of the row; a click on "
            "another cell only outlines that cell." if rows else "No requests match these filters.")
else:
    version = shown_versions.get(row.request_id, row.version)
    st.text(f"Chosen: {row.reference} · {row.person or 'no person'} · {row.request_type} · due "
            f"{format_datetime(row.due_at)} · {row.allocated_to or 'not allocated'}")
    st.markdown(f"{clock_words(row)}"
                + (f" · time left {format_duration(row.clock.time_left)}" if row.clock else ""))  # no typed text
    st.page_link("pages/3_Request.py", label=f"Open {row.reference}", query_params={"id": str(row.request_id)},
                 icon=":material/open_in_new:")
    if has_permission(user, Permission.ALLOCATE_REQUESTS) and row.status_code != RequestStatus.CLOSED:
        to_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
        to_user = to_column.selectbox(f"Allocate {row.reference} to", list(staff), format_func=staff.get, index=None,
                                      placeholder="Choose a member of the team", key=f"allocate_to_{row.request_id}")
        if button_column.button(f"Allocate {row.reference}", type="primary", disabled=to_user is None):
            attempt(engine, user, requests.allocate, row.request_id, version, to_user,
                    done=lambda done: f"{done.reference} allocated to {staff[to_user]}.")
    if (has_permission(user, Permission.ALLOCATE_TO_SELF) and row.allocated_to_id is None
            and row.status_code != RequestStatus.CLOSED and st.button(f"Allocate {row.reference} to me")):
        attempt(engine, user, requests.allocate_to_me, row.request_id, version,
                done=lambda done: f"{done.reference} allocated to you.")

if has_permission(user, Permission.ALLOCATE_REQUESTS):
    bulk_move(engine, user, staff)

st.session_state[VERSIONS] = {row.request_id: row.version for row in page.rows}
