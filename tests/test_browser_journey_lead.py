"""Journey in real Chromium: a team lead works the triage queue as people click it.

- The queue is filtered, and a request that is not the first row is chosen by a click on its row in
  the grid. Meanwhile another session allocates a request, so the list the lead is looking at is
  out of date when they click: the click still means the row they saw. A later rerun (another
  filter) re-sorts the rows; the choice stays on that request, and allocating it allocates it and
  nothing else (read back from the database).
- The bulk move of one person's open requests confirms how many go to whom, and moves exactly what
  it named: when the number changes between the confirmation and the press, the press is refused
  and the new numbers are shown to be confirmed again.
"""

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import Request
from models.codes import RequestStatus
from services import db, requests
from tests.browser import (  # noqa: F401
    browser,
    choose,
    choose_row,
    click_grid,
    grid_row_number,
    grid_rows,
    idle,
    live_app,
    log_request,
    page,
    rerun,
    selected_grid_rows,
    sign_in,
)

pytestmark = pytest.mark.browser

REFERENCE_COLUMN = 2  # Clock, Time left, Reference, ...


def _references(page) -> list[str]:  # noqa: F811
    return [cells[REFERENCE_COLUMN] for cells in grid_rows(page)]


def _allocations(live_app) -> dict[str, int | None]:  # noqa: F811
    with db.reading(live_app.engine) as session:
        return {row.reference: row.allocated_to_id for row in session.exec(select(Request))}


def _open_queue(page, live_app) -> None:  # noqa: F811
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Triage queue", exact=True).click()
    page.get_by_role("heading", name="Triage queue").wait_for()
    idle(page)


def test_a_lead_chooses_a_row_that_moves_and_allocates_that_request_only(page, live_app):  # noqa: F811
    staff = live_app.staff
    # Three urgent requests (due soonest first: first, middle, last) and two routine ones.
    first, middle, last = (log_request(live_app, staff.practitioner, minutes_ago=minutes, requester_name=name)
                           for minutes, name in ((50, "PC Ash"), (40, "PC Birch"), (30, "PC Cedar")))
    for minutes in (20, 15):
        log_request(live_app, staff.practitioner, minutes_ago=minutes, urgency="routine")

    _open_queue(page, live_app)
    page.get_by_text("5 requests match").wait_for()
    hint = page.get_by_text("Use the box at the start of the row; a click on another cell only outlines that cell.")
    expect(hint).to_be_visible()
    # A click on the top row's reference only outlines that cell (the hint says where to click):
    # after the next run (a filter), nothing is chosen.
    assert click_grid(page, 1, 250)[REFERENCE_COLUMN] == first.reference
    choose(page, "Urgency", "Urgent")
    page.keyboard.press("Escape")
    page.get_by_text("3 requests match").wait_for()
    expect(hint).to_be_visible()
    assert _references(page) == [first.reference, middle.reference, last.reference]

    # Another session takes the first request: in the lead's queue it now belongs after the
    # unallocated ones, but the lead's screen has not redrawn and still shows it first.
    with db.writing(live_app.engine) as session:
        requests.allocate_to_me(session, staff.second_practitioner, first.id, first.version)
    assert _references(page) == [first.reference, middle.reference, last.reference]

    chosen_cells = choose_row(page, 2)  # the second row as drawn: the middle request
    assert chosen_cells[REFERENCE_COLUMN] == middle.reference
    page.get_by_text(f"Chosen: {middle.reference} ·").wait_for()
    # The redraw re-sorted the rows; the highlight moved with the request.
    assert _references(page) == [middle.reference, last.reference, first.reference]
    assert [cells[REFERENCE_COLUMN] for cells in selected_grid_rows(page)] == [middle.reference]

    # A rerun for another reason (an unrelated filter) keeps the choice on the same request.
    choose(page, "Site", "Southend custody suite")
    page.keyboard.press("Escape")
    idle(page)
    expect(page.get_by_text(f"Chosen: {middle.reference} ·")).to_be_visible()
    assert grid_row_number(page, middle.reference) == 1

    choose(page, f"Allocate {middle.reference} to", "Sam Second")
    page.get_by_role("button", name=f"Allocate {middle.reference}", exact=True).click()
    page.get_by_text(f"{middle.reference} allocated to Sam Second.").first.wait_for()
    idle(page)

    allocations = _allocations(live_app)
    assert allocations[middle.reference] == staff.second_practitioner.id
    assert allocations[first.reference] == staff.second_practitioner.id  # the other session's, untouched
    assert [reference for reference, to in allocations.items() if to is not None] == sorted(
        [first.reference, middle.reference])  # nothing else allocated
    expect(page.get_by_text(f"Chosen: {middle.reference} ·")).to_be_visible()  # the choice survives the save


def _open_requests(live_app, user) -> list[Request]:  # noqa: F811
    with db.reading(live_app.engine) as session:
        return list(session.exec(select(Request).where(
            Request.allocated_to_id == user.id, Request.status != RequestStatus.CLOSED).order_by(
            Request.due_at, Request.id)))


def test_the_bulk_move_moves_what_its_confirmation_named(page, live_app):  # noqa: F811
    staff = live_app.staff
    second = staff.second_practitioner
    for minutes in (30, 25, 20):
        logged = log_request(live_app, staff.practitioner, minutes_ago=minutes, urgency="routine")
        with db.writing(live_app.engine) as session:
            requests.allocate(session, staff.team_lead, logged.id, logged.version, second.id)
    already = len(_open_requests(live_app, second))  # with the earlier test's two
    assert already == 5
    before_priya, before_lee = (len(_open_requests(live_app, user)) for user in (staff.practitioner, staff.team_lead))

    _open_queue(page, live_app)
    choose(page, "Move the open requests of", "Sam Second")
    choose(page, "Share them, soonest due first, between", "Priya Practitioner")
    choose(page, "Share them, soonest due first, between", "Lee Lead")
    page.keyboard.press("Escape")
    page.get_by_text("This moves 5 open requests from Sam Second to Priya Practitioner (3), Lee Lead (2).").wait_for()
    move = page.get_by_role("button", name="Move 5 requests")
    expect(move).to_be_visible()

    # Someone allocates Sam one more before the lead presses: the press must not move six.
    extra = log_request(live_app, staff.practitioner, minutes_ago=5, urgency="routine")
    with db.writing(live_app.engine) as session:
        requests.allocate(session, staff.team_lead, extra.id, extra.version, second.id)
    rerun(page, move.click)
    page.get_by_text("not the 5 you confirmed").wait_for()
    assert len(_open_requests(live_app, second)) == 6  # nothing moved
    # The new numbers are shown, to be confirmed again.
    page.get_by_text("This moves 6 open requests from Sam Second to Priya Practitioner (3), Lee Lead (3).").wait_for()
    expect(page.get_by_role("button", name="Move 5 requests")).to_have_count(0)

    moving = _open_requests(live_app, second)
    rerun(page, page.get_by_role("button", name="Move 6 requests").click)
    page.get_by_text("Moved 6 open requests from Sam Second to Priya Practitioner (3), Lee Lead (3).").first.wait_for()

    assert _open_requests(live_app, second) == []
    with db.reading(live_app.engine) as session:
        moved_to = [session.get(Request, request.id).allocated_to_id for request in moving]
    # Shared in turn, soonest due first.
    assert moved_to == [staff.practitioner.id, staff.team_lead.id] * 3
    assert len(_open_requests(live_app, staff.practitioner)) == before_priya + 3
    assert len(_open_requests(live_app, staff.team_lead)) == before_lee + 3
    # A fresh pair of boxes for the next move.
    expect(page.get_by_role("button", name="Move 6 requests")).to_have_count(0)
