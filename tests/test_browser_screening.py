"""In real Chromium: from a logged request to a completed screening with an onward referral."""

from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, InstrumentResult, OnwardReferral, Screening
from services import clock, db
from services.instruments import PHQ9
from tests.browser import browser, choose, idle, live_app, page, sign_in  # noqa: F401
from tests.test_screening import make_person, make_request

pytestmark = pytest.mark.browser


def submit(page, button: str, notice: str) -> None:  # noqa: F811
    page.get_by_role("button", name=button, exact=True).click()
    page.get_by_text(notice, exact=True).first.wait_for()  # under the button (and in a toast)
    idle(page)


def test_a_request_becomes_a_completed_screening_with_a_referral(page, live_app):  # noqa: F811
    person = make_person(live_app.engine, live_app.staff, given="Nguyễn", family="O'Brien-Ní")
    request = make_request(live_app.engine, live_app.staff, person, received_at=clock.now() - timedelta(hours=2))
    sign_in(page, live_app, "practitioner")

    page.get_by_role("link", name="Screening").click()
    choose(page, "Request", f"{request.reference} · Nguyễn O'Brien-Ní · received "
                            f"{clock.format_datetime(request.received_at)}")
    page.get_by_role("button", name=f"Start the screening for {request.reference} · Nguyễn O'Brien-Ní · received "
                                    f"{clock.format_datetime(request.received_at)}").click()
    page.get_by_text("Nguyễn O'Brien-Ní · born 11/05/1990").wait_for()

    choose(page, "Contact mechanism", "Face to face")
    page.get_by_role("textbox", name="Custody or court details", exact=True).fill("Cell 3 <script>alert(1)</script>")
    submit(page, "Save person and context", "Person and context saved.")

    choose(page, "Consent to screening", "Given")
    choose(page, "Consent to share information with police, court and probation", "Given")
    submit(page, "Save consent", "Consent saved.")

    choose(page, "Vulnerabilities identified", "Mental health")
    page.keyboard.press("Escape")
    choose(page, "Learning disability status", "No diagnosis")
    choose(page, "Autism status", "No diagnosis")
    submit(page, "Save vulnerabilities", "Vulnerabilities saved.")

    page.get_by_text("PHQ-9 — not started").click()
    for number, answer in enumerate(["Several days"] * 4 + ["Not at all"] * 5, start=1):
        question = page.get_by_role("radiogroup", name=f"{number}. {PHQ9.items[number - 1].text}", exact=True)
        question.get_by_text(answer, exact=True).click()
        page.get_by_text(f"{number} of 9 answered" if number < 9 else "total 4 — minimal").first.wait_for()
    page.get_by_text("PHQ-9: total 4 of 27 — minimal.").wait_for()  # scored live, before saving
    submit(page, "Save instruments", "Instruments saved.")

    for label in ("Risk to self", "Risk to others", "Risk from others"):
        choose(page, label, "Low")
    submit(page, "Save risk", "Risk saved.")

    choose(page, "Outcome", "Onward referral")
    recommendation = page.get_by_role("textbox", name="Recommendation: fitness for interview", exact=True)
    recommendation.fill("Fit for interview with an appropriate adult")
    submit(page, "Save outcome and recommendations", "Outcome and recommendations saved.")

    choose(page, "Service referred to", "Community mental health team")
    page.get_by_role("spinbutton", name="day, Date referred").click()  # day, month and year segments
    page.keyboard.type(clock.today_in_london().strftime("%d%m%Y"))
    page.keyboard.press("Tab")
    submit(page, "Add referral", "Referral to Community mental health team added.")

    page.get_by_role("button", name="Complete screening").click()
    page.get_by_text("Screening completed.").first.wait_for()
    page.get_by_role("link", name="Printable summary for sharing").wait_for()

    with db.reading(live_app.engine) as session:
        screening = session.exec(select(Screening)).one()
        referral = session.exec(select(OnwardReferral)).one()
        phq9 = session.exec(select(InstrumentResult)).one()
        actions = {event.action for event in session.exec(select(AuditEvent))}
    assert screening.status == "complete" and screening.request_id == request.id
    assert screening.custody_or_court_details == "Cell 3 <script>alert(1)</script>"
    assert referral.service == "community_mental_health" and referral.screening_id == screening.id
    assert phq9.total == 4 and phq9.answers["item1"] == 1 and phq9.answers["item9"] == 0
    assert {"create_screening", "save_screening_section", "create_onward_referral", "complete_screening"} <= actions
