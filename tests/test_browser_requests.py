"""In real Chromium: a practitioner logs a request about a new person; a team lead sees it in the
triage queue with its response clock and allocates it."""

import pytest
from sqlmodel import select

from models import Person, Request
from services import db
from tests.browser import browser, choose, choose_row, field, live_app, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser


def _type(page, label: str, text: str) -> None:  # noqa: F811
    """Type into a field outside a form and leave it, as a person would, so that it commits."""
    typed_into = field(page, label)
    typed_into.fill(text)
    typed_into.press("Tab")


def test_practitioner_logs_a_request_and_a_team_lead_allocates_it_from_the_queue(page, live_app):  # noqa: F811
    sign_in(page, live_app, "practitioner")
    page.get_by_role("link", name="Log a request").click()
    page.get_by_role("heading", name="Log a request").wait_for()

    page.get_by_text("Record a new person").click()
    _type(page, "Given name", "Siôn")
    _type(page, "Family name", "Nguyễn-O'Brien")
    _type(page, "Date of birth (dd/mm/yyyy)", "05/11/1990")
    _type(page, "NHS number (if known)", "943 476 5919")

    choose(page, "Who is asking (source of referral)", "Police")
    field(page, "Requester's name").fill("PC Dawn Jones")
    field(page, "Requester's phone").fill("01702 123456")
    choose(page, "Site", "Southend custody suite")
    choose(page, "Request type", "Screening or assessment")
    page.get_by_text("Urgent (within 4 hours)").click()
    field(page, "Reason for the request").fill("Distressed in the cell; <script>x</script>")
    page.get_by_role("button", name="Log request").click()
    page.get_by_text("It is in the triage queue.").wait_for()

    with db.reading(live_app.engine) as session:
        request = session.exec(select(Request)).one()
        person = session.get(Person, request.person_id)
    assert (person.given_name, person.family_name, person.nhs_number) == ("Siôn", "Nguyễn-O'Brien", "9434765919")
    assert request.reason == "Distressed in the cell; <script>x</script>"
    assert request.status == "new" and request.allocated_to_id is None
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Triage queue", exact=True).click()
    page.get_by_role("heading", name="Triage queue").wait_for()
    page.get_by_text("1 request matches").wait_for()
    assert choose_row(page, 1)[2] == request.reference  # the row is chosen by its box, kept by its id
    # The request chosen below the queue shows its clock: received moments ago, 4 hours to go.
    page.get_by_text("🟢 On time · time left 3 h").wait_for()
    page.get_by_role("link", name=f"Open {request.reference}").wait_for()
    choose(page, f"Allocate {request.reference} to", "Sam Second")
    page.get_by_role("button", name=f"Allocate {request.reference}", exact=True).click()
    page.get_by_text(f"{request.reference} allocated to Sam Second.").first.wait_for()

    with db.reading(live_app.engine) as session:
        allocated = session.get(Request, request.id)
    assert (allocated.status, allocated.allocated_to_id) == ("allocated", live_app.staff.second_practitioner.id)
