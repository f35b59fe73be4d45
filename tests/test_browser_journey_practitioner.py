"""Journey in real Chromium: a practitioner's request, from the phone call to a completed screening.

As a person clicks: a request about a new person is logged (the likely-duplicate check shows a
similar person already on record) with a double click on *Log request*; the request is taken from
the triage queue by a click on its row; the first response is recorded on its page; the screening
is opened from there and filled section by section, with a browser refresh in the middle while
typed text sits in a section not yet saved; the screening is completed after an *Add referral*
double click; the person's record shows the referral once. Every outcome is read back from the
database, not only from the screen.

And what a person does with typing put back after a refresh: "Start again" throws it away for good
(the fields empty in the browser, the draft gone, and nothing back at the next click).
"""

import time
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlmodel import func, select

from models import FormDraft, OnwardReferral, Person, Request, Screening
from services import clock, db, matching, requests
from tests.browser import (  # noqa: F401
    browser,
    choose,
    choose_row,
    field,
    grid_row_number,
    grid_rows,
    idle,
    live_app,
    log_request,
    page,
    rerun,
    sign_in,
    slow_saves,
    type_and_leave,
)

pytestmark = pytest.mark.browser

REASON = "Distressed in the cell; says <b>nobody</b> listens"
RECOMMENDATION = "Fit for interview with an appropriate adult present"


def _count(live_app, model, *conditions) -> int:  # noqa: F811
    with db.reading(live_app.engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def _double_click(page, live_app, button: str) -> None:  # noqa: F811
    """Two clicks with no wait between them while the first click's save waits on the database."""
    idle(page)
    target = page.get_by_role("button", name=button, exact=True)
    with slow_saves(live_app):
        target.dblclick()


def _save_section(page, button: str, notice: str) -> None:  # noqa: F811
    """Press a section's save button; its message shows under that button, in view, and in a toast."""
    page.get_by_role("button", name=button, exact=True).click()
    page.get_by_test_id("stToast").filter(has_text=notice).wait_for()  # shown for a few seconds only
    message = page.get_by_test_id("stAlertContentSuccess").filter(has_text=notice)
    message.wait_for()
    idle(page)
    expect(message).to_be_in_viewport()


def test_a_practitioner_logs_takes_answers_and_screens_a_request(page, live_app):  # noqa: F811
    staff = live_app.staff
    with db.writing(live_app.engine) as session:  # already on record: a likely duplicate of the new person
        existing = Person(team_id=staff.team.id, given_name="Sion", family_name="O'Brian",
                          nhs_number_status="not_known", date_of_birth=date(1990, 11, 5),
                          given_name_key=matching.name_key("Sion"), family_name_key=matching.name_key("O'Brian"))
        session.add(existing)
        session.flush()
        existing_id = existing.id
    # The practitioner's own earlier request sits first in their queue, so theirs is not the top row.
    log_request(live_app, staff.practitioner, minutes_ago=90, person_id=existing_id)
    with db.writing(live_app.engine) as session:
        earlier = session.exec(select(Request)).one()
        requests.allocate_to_me(session, staff.practitioner, earlier.id, earlier.version)
    people_before, requests_before = _count(live_app, Person), _count(live_app, Request)

    # --- Log the request ------------------------------------------------------------------------
    sign_in(page, live_app, "practitioner")
    page.get_by_role("link", name="Log a request").click()
    page.get_by_role("heading", name="Log a request").wait_for()
    rerun(page, lambda: page.get_by_text("Record a new person").click())
    type_and_leave(page, "Given name", "Siôn")
    type_and_leave(page, "Family name", "O'Brien")
    type_and_leave(page, "Date of birth (dd/mm/yyyy)", "05/11/1990")
    page.get_by_text("This may be someone already on record. Use them if it is the same person.").wait_for()
    expect(page.get_by_text("Sion O'Brian · born 05/11/1990", exact=False)).to_be_visible()
    rerun(page, lambda: page.get_by_text("None of these is the same person: record a new person").click())

    choose(page, "Who is asking (source of referral)", "Police")
    type_and_leave(page, "Requester's name", "PC Dawn Jones")
    type_and_leave(page, "Requester's phone", "01702 123456")
    choose(page, "Site", "Southend custody suite")
    choose(page, "Request type", "Screening or assessment")
    rerun(page, lambda: page.get_by_text("Urgent (within 4 hours)").click())
    type_and_leave(page, "Reason for the request", REASON)

    _double_click(page, live_app, "Log request")
    page.get_by_text("It is in the triage queue.").wait_for()
    page.get_by_test_id("stToast").filter(has_text="Logged R-").wait_for()
    idle(page)
    with db.reading(live_app.engine) as session:
        logged = session.exec(select(Request).where(Request.reason == REASON)).all()
        people = session.exec(select(Person).where(Person.given_name == "Siôn")).all()
    assert len(logged) == 1 and len(people) == 1, "a double click stored more than one request or person"
    assert (_count(live_app, Person), _count(live_app, Request)) == (people_before + 1, requests_before + 1)
    request, person = logged[0], people[0]
    assert request.person_id == person.id and request.allocated_to_id is None
    assert (person.family_name, person.date_of_birth) == ("O'Brien", date(1990, 11, 5))
    expect(page.get_by_text(f"Logged {request.reference}. It is in the triage queue.")).to_be_visible()
    expect(field(page, "Reason for the request")).to_have_value("")  # the form has started afresh
    expect(page.get_by_label("Given name", exact=True)).to_have_count(0)  # the person picker too

    # --- Take it from the queue -----------------------------------------------------------------
    rerun(page, lambda: page.get_by_role("link", name="Triage queue", exact=True).click())
    page.get_by_role("heading", name="Triage queue").wait_for()
    row = grid_row_number(page, request.reference)
    assert row > 1, "the new request should not be the top row (the practitioner's own comes first)"
    choose_row(page, row)
    page.get_by_text(f"Chosen: {request.reference} · Siôn O'Brien").wait_for()
    page.get_by_role("button", name=f"Allocate {request.reference} to me").click()
    page.get_by_text(f"{request.reference} allocated to you.").first.wait_for()
    with db.reading(live_app.engine) as session:
        assert session.get(Request, request.id).allocated_to_id == staff.practitioner.id

    # --- First response on the request's page ---------------------------------------------------
    rerun(page, lambda: page.get_by_role("link", name=f"Open {request.reference}").click())
    page.get_by_role("heading", name=f"Request {request.reference}").wait_for()
    choose(page, "How the response was given", "Telephone")
    field(page, "Advice given or action agreed").fill("Advised the custody sergeant; screening today")
    page.get_by_role("button", name="Record first response").click()
    page.get_by_text("First response recorded.").first.wait_for()
    idle(page)
    with db.reading(live_app.engine) as session:
        answered = session.get(Request, request.id)
    assert answered.first_response_at is not None and answered.status == "in_progress"
    assert answered.first_response_summary == "Advised the custody sergeant; screening today"

    # --- The screening, opened from the request -------------------------------------------------
    rerun(page, lambda: page.get_by_role(
        "button", name=f"Screen Siôn for {request.reference} (opens their draft if one is started)").click())
    page.get_by_role("heading", name="Screening").wait_for()
    page.get_by_text("Siôn O'Brien · born 05/11/1990").wait_for()
    with db.reading(live_app.engine) as session:
        draft = session.exec(select(Screening).where(Screening.request_id == request.id)).one()
    assert f"id={draft.id}" in page.url

    choose(page, "Contact mechanism", "Face to face")
    type_and_leave(page, "Custody or court details", "Cell 3, Southend")
    _save_section(page, "Save person and context", "Person and context saved.")

    choose(page, "Consent to screening", "Given")
    choose(page, "Consent to share information with police, court and probation", "Given")
    _save_section(page, "Save consent", "Consent saved.")

    choose(page, "Vulnerabilities identified", "Mental health")
    page.keyboard.press("Escape")
    choose(page, "Learning disability status", "No diagnosis")
    choose(page, "Autism status", "No diagnosis")
    _save_section(page, "Save vulnerabilities", "Vulnerabilities saved.")

    for label in ("Risk to self", "Risk to others", "Risk from others"):
        choose(page, label, "Low")
    _save_section(page, "Save risk", "Risk saved.")

    # Typed into the outcome section, not saved, then the tab is refreshed.
    choose(page, "Outcome", "Onward referral")
    type_and_leave(page, "Recommendation: fitness for interview", RECOMMENDATION)
    # The refresh comes once the field has reached the server (the run after Tab can end after the
    # Outcome choice's own run, which `type_and_leave` may have counted instead).
    _wait_for_draft(live_app, f"screening:{draft.id}", f"s{draft.id}.recommendation_fitness_for_interview",
                    RECOMMENDATION)
    page.reload()
    page.get_by_text("Siôn O'Brien · born 05/11/1990").wait_for()  # signed in again without a form
    idle(page)
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    expect(page.get_by_text("Signed in as Priya Practitioner")).to_be_visible()
    put_back = page.get_by_text(f"on {clock.format_date(clock.now())} and had not saved.")
    expect(put_back).to_be_visible()
    expect(put_back).to_contain_text("Put back what you typed by ")
    expect(field(page, "Recommendation: fitness for interview")).to_have_value(RECOMMENDATION)
    expect(field(page, "Outcome")).to_have_value("Onward referral")  # a select box shows its choice as its value
    expect(field(page, "Custody or court details")).to_have_value("Cell 3, Southend")  # saved before
    _save_section(page, "Save outcome and recommendations", "Outcome and recommendations saved.")
    with db.reading(live_app.engine) as session:
        saved = session.get(Screening, draft.id)
    assert (saved.outcome, saved.recommendation_fitness_for_interview) == ("onward_referral", RECOMMENDATION)

    # --- A referral, double-clicked; then complete --------------------------------------------
    choose(page, "Service referred to", "Community mental health team")
    referred = page.get_by_role("group", name="Date referred", exact=True).locator("visible=true")
    referred.get_by_role("spinbutton").first.click()  # day, month and year segments, typed in that order
    page.keyboard.type(clock.today_in_london().strftime("%d%m%Y"))
    page.keyboard.press("Tab")  # (a click sends every field's value with it, so no need to wait here)
    _double_click(page, live_app, "Add referral")
    page.get_by_test_id("stAlertContentSuccess").filter(
        has_text="Referral to Community mental health team added.").wait_for()
    idle(page)
    assert _count(live_app, OnwardReferral, OnwardReferral.screening_id == draft.id) == 1
    expect(field(page, "Service referred to")).to_have_value("")  # a fresh form for the next referral
    expect(referred.get_by_role("spinbutton").first).to_have_text("dd")
    # Pressed once more (the person is not sure it worked): the fresh form is refused, nothing is stored.
    page.get_by_role("button", name="Add referral", exact=True).click()
    page.get_by_text("Not saved: correct the fields marked in red.").first.wait_for()
    idle(page)
    assert _count(live_app, OnwardReferral, OnwardReferral.screening_id == draft.id) == 1

    page.get_by_role("button", name="Complete screening").click()
    page.get_by_text("Screening completed.").first.wait_for()
    idle(page)
    with db.reading(live_app.engine) as session:
        completed = session.get(Screening, draft.id)
        referrals = session.exec(select(OnwardReferral).where(OnwardReferral.person_id == person.id)).all()
    assert completed.status == "complete"
    assert [(row.service, row.screening_id) for row in referrals] == [("community_mental_health", draft.id)]

    # --- The person's record shows the referral once --------------------------------------------
    rerun(page, lambda: page.get_by_role("link", name="People").click())
    search = field(page, "Search by name, date of birth (dd/mm/yyyy), NHS number, or custody or PNC reference")
    search.fill("Siôn O'Brien")
    rerun(page, lambda: search.press("Enter"))
    page.get_by_text("1 found").wait_for()
    expect(page.get_by_text("Siôn O'Brien · born 05/11/1990")).to_be_visible()
    rerun(page, lambda: page.get_by_role("button", name="Open their record").click())
    page.get_by_role("heading", name="Onward referrals (1)").wait_for()
    referral_rows = grid_rows(page, 1)  # the screenings table, then the referrals table
    assert [cells[0] for cells in referral_rows] == ["Community mental health team"]


def _wait_for_draft(live_app, form: str, key: str, value: str, seconds: float = 20) -> None:  # noqa: F811
    deadline = time.monotonic() + seconds
    while (_draft_of(live_app, live_app.staff.practitioner, form) or {}).get(key) != value:
        assert time.monotonic() < deadline, f"{key} did not reach the draft of {form} within {seconds:.0f} s"
        time.sleep(0.1)


def _draft_of(live_app, user, form: str) -> dict | None:  # noqa: F811
    with db.reading(live_app.engine) as session:
        kept = session.exec(select(FormDraft).where(FormDraft.user_id == user.id, FormDraft.form == form)).first()
    return dict(kept.values) if kept else None


def test_typing_put_back_after_a_refresh_can_be_thrown_away_for_good(page, live_app):  # noqa: F811
    sign_in(page, live_app, "second")
    rerun(page, lambda: page.get_by_role("link", name="Log a request").click())
    type_and_leave(page, "Requester's name", "PC Put Back")
    assert _draft_of(live_app, live_app.staff.second_practitioner, "log_request")["log_requester_name"] == "PC Put Back"

    page.reload()
    expect(page.get_by_text("and had not saved. Check it, then save; or start again.")).to_be_visible()
    expect(field(page, "Requester's name")).to_have_value("PC Put Back")
    type_and_leave(page, "Requester's phone", "01702 999999")  # typed since: thrown away too
    rerun(page, lambda: page.get_by_role("button", name="Start again (throw away what was put back)").click())
    expect(field(page, "Requester's name")).to_have_value("")
    expect(field(page, "Requester's phone")).to_have_value("")
    assert _draft_of(live_app, live_app.staff.second_practitioner, "log_request") is None

    choose(page, "Site", "Southend custody suite")  # the next click does not bring any of it back
    expect(field(page, "Requester's name")).to_have_value("")
    expect(field(page, "Requester's phone")).to_have_value("")
    assert "PC Put Back" not in str(_draft_of(live_app, live_app.staff.second_practitioner, "log_request"))
