"""The screening pages through AppTest: drafts that survive a new session, refusals that keep what was
typed, completion problems by section, live scores, amendment history, the summary and the person record."""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, OnwardReferral, Screening
from services import clock, db, instruments, screening
from services.referrals import NewReferral, add_referral
from services.screening import Consent, Outcome, Risk
from tests.conftest import unescaped
from tests.test_screening import FORMULA, SCRIPT, complete, make_person, make_request, save, start, valid_screening

PAGE = "pages/5_Screening.py"
SUMMARY = "pages/6_Screening_summary.py"
PEOPLE = "pages/4_People.py"


def click(test, label: str):
    """Press the button a person reads as `label` (labels holding typed text are escaped markdown)."""
    matches = [button for button in test.button if unescaped(button.label) == label]
    assert matches, f"no button {label!r} among {[button.label for button in test.button]}"
    return matches[0].click().run()


def texts(test) -> str:
    return " ".join(str(element.value) for kind in ("text", "markdown", "caption", "info", "warning", "success")
                    for element in getattr(test, kind))


def errors(test) -> list[str]:
    return [element.value for element in test.error]


def opened(app_test, user, screening_id: int):
    test = app_test(PAGE, user, {"id": str(screening_id)}).run()
    assert not test.exception, test.exception
    return test


def stored(engine, screening_id: int) -> Screening:
    with db.reading(engine) as session:
        return session.get(Screening, screening_id)


def test_a_screening_starts_from_the_request_link(app_test, sqlite_engine, sqlite_staff):
    person = make_person(sqlite_engine, sqlite_staff)
    request = make_request(sqlite_engine, sqlite_staff, person)
    test = app_test(PAGE, sqlite_staff.practitioner, {"request": str(request.id)}).run()
    assert not test.exception
    test = click(test, f"Start the screening for {request.reference} · Siôn O'Brien · received "
                       f"{clock.format_datetime(request.received_at)}")
    assert not test.exception, test.exception
    with db.reading(sqlite_engine) as session:
        draft = session.exec(select(Screening)).one()
    assert test.query_params["id"] == [str(draft.id)] or test.query_params["id"] == str(draft.id)
    assert "Siôn O'Brien" in texts(test)
    assert test.selectbox(key=f"s{draft.id}.site_id").value == sqlite_staff.sites[0].id


def test_without_an_id_the_page_offers_requests_waiting_for_screening(app_test, sqlite_engine, sqlite_staff):
    person = make_person(sqlite_engine, sqlite_staff, given="Ann", family="Waiting")
    request = make_request(sqlite_engine, sqlite_staff, person)
    test = app_test(PAGE, sqlite_staff.practitioner).run()
    test.selectbox[0].select(request.id)
    test = click(test.run(), f"Start the screening for {request.reference} · Ann Waiting · received "
                             f"{clock.format_datetime(request.received_at)}")
    assert not test.exception
    assert stored(sqlite_engine, 1).request_id == request.id


def test_a_saved_section_survives_a_new_session(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.selectbox(key=key + "contact_mechanism").select("02")
    test.text_area(key=key + "custody_or_court_details").input(f"Cell 4 {SCRIPT} {FORMULA}")
    test = click(test, "Save person and context")
    assert not test.exception and not errors(test), errors(test)
    assert "Person and context saved." in texts(test)
    test.selectbox(key=key + "risk_to_self").select("low")
    test.selectbox(key=key + "risk_to_others").select("high")
    test.text_area(key=key + "risk_to_others_note").input("Threatened staff")
    test = click(test, "Save risk")
    assert not errors(test)
    # A refreshed tab or a new sign-in is a new session: everything saved is drawn again.
    fresh = opened(app_test, sqlite_staff.practitioner, draft.id)
    assert fresh.selectbox(key=key + "contact_mechanism").value == "02"
    assert fresh.text_area(key=key + "custody_or_court_details").value == f"Cell 4 {SCRIPT} {FORMULA}"
    assert fresh.selectbox(key=key + "risk_to_others").value == "high"
    assert fresh.text_area(key=key + "risk_to_others_note").value == "Threatened staff"
    assert "1. Person and context ✓" in [header.value for header in fresh.header]


def test_screening_time_in_the_future_is_refused_keeping_what_was_typed(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    tomorrow = clock.today_in_london() + timedelta(days=1)
    test.date_input(key=key + "screened_on").set_value(tomorrow)
    test.text_area(key=key + "custody_or_court_details").input("Cell 9")
    test = click(test, "Save person and context")
    assert any("cannot be in the future" in message for message in errors(test))
    assert test.date_input(key=key + "screened_on").value == tomorrow
    assert test.text_area(key=key + "custody_or_court_details").value == "Cell 9"
    assert stored(sqlite_engine, draft.id).screened_at is None


def test_screening_before_the_request_was_received_is_refused(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff, received_at=clock.now() - timedelta(minutes=10))
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.date_input(key=key + "screened_on").set_value(clock.today_in_london() - timedelta(days=2))
    test = click(test, "Save person and context")
    assert any("before the request was received" in message for message in errors(test))
    assert stored(sqlite_engine, draft.id).screened_at is None


def test_age_under_ten_is_refused(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff, born=date(clock.today_in_london().year - 8, 1, 1))
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test = click(test, "Save person and context")
    assert any("age of criminal responsibility is 10" in message for message in errors(test))


def test_an_under_eighteen_has_the_appropriate_adult_ticked_and_locked(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff, born=date(clock.today_in_london().year - 15, 1, 1))
    save(sqlite_engine, sqlite_staff, draft.id, screening.save_person_and_context,
         screening.PersonAndContext(sqlite_staff.sites[0].id, *_an_hour_ago(), "01"))
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    checkbox = test.checkbox(key=f"s{draft.id}.appropriate_adult_required")
    assert checkbox.value is True and checkbox.disabled


def _an_hour_ago():
    moment = clock.to_london(clock.now() - timedelta(hours=1))
    return moment.date(), moment.time().replace(second=0, microsecond=0)


def test_medium_risk_without_a_note_is_refused_keeping_the_choice(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.selectbox(key=key + "risk_to_self").select("medium")
    test = click(test, "Save risk")
    assert any("a note is required" in message for message in errors(test))
    assert test.selectbox(key=key + "risk_to_self").value == "medium"
    assert stored(sqlite_engine, draft.id).risk_to_self is None


def test_sharing_without_consent_is_refused_keeping_what_was_typed(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.text_input(key=key + "shared_with").input("DS Smith")
    test = click(test, "Save outcome and recommendations")
    assert any("does not record consent to share" in message for message in errors(test))
    assert test.text_input(key=key + "shared_with").value == "DS Smith"
    assert stored(sqlite_engine, draft.id).shared_with is None


def test_free_text_over_its_limit_is_refused_on_the_server(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.text_area(key=key + "recommendation_adjustments").input("a" * 2001)
    test = click(test, "Save outcome and recommendations")
    assert any("at most 2,000 characters; it is 2,001" in message for message in errors(test))
    assert test.text_area(key=key + "recommendation_adjustments").value == "a" * 2001  # nothing cut
    assert stored(sqlite_engine, draft.id).recommendation_adjustments is None


def test_instruments_are_scored_live_and_saved_with_every_answer(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    for number in range(1, 10):
        test.radio(key=f"{key}phq9.item{number}").set_value(2 if number < 9 else 1)
    test = test.run()
    shown = " ".join(info.value for info in test.info)
    assert "PHQ-9: total 17 of 27 — moderately severe." in shown
    assert any(warning.value == "Self-harm thoughts (PHQ-9 item 9)" for warning in test.warning)
    test.radio(key=f"{key}auditc.item1").set_value(2)
    test.radio(key=f"{key}auditc.item2").set_value(1)
    test = test.run()
    assert "of 3 answered" in " ".join(info.value for info in test.info)
    assert not [radio for radio in test.radio if radio.key == f"{key}audit.item4"]
    test.radio(key=f"{key}auditc.item3").set_value(3)  # AUDIT-C 6: the full AUDIT is offered
    test = test.run()
    assert [radio.label for radio in test.radio if radio.key == f"{key}audit.item4"] == [
        "4. " + instruments.AUDIT.items[3].text]
    test = click(test, "Save instruments")
    assert not errors(test) or all("Risk flag" in message for message in errors(test))
    view = _view(sqlite_engine, sqlite_staff, draft.id)
    assert view.results["phq9"].answers["item9"] == 1 and view.results["phq9"].total == 17
    assert view.results["auditc"].band == "positive" and "audit" not in view.results
    assert view.risk_flags == [instruments.FLAG_SELF_HARM]
    fresh = opened(app_test, sqlite_staff.practitioner, draft.id)
    assert fresh.radio(key=f"{key}phq9.item9").value == 1
    assert any("Risk flag" in message for message in errors(fresh))


def _view(engine, staff, screening_id):
    with db.reading(engine) as session:
        return screening.get_screening(session, staff.practitioner, screening_id)


def test_completion_lists_every_problem_next_to_its_section_and_keeps_the_draft(app_test, sqlite_engine,
                                                                                sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.text_area(key=f"s{draft.id}.custody_or_court_details").input("Cell 2")
    test = click(test, "Save person and context")
    test.selectbox(key=f"s{draft.id}.risk_to_self").select("high")  # chosen, then refused for want of a note
    test = click(test, "Save risk")
    test = click(test, "Complete screening")
    assert not test.exception
    shown = errors(test)
    for expected in ("Consent has not been saved yet.", "Risk has not been saved yet.",
                     "Outcome and recommendations has not been saved yet.", "Vulnerabilities has not been saved yet."):
        assert expected in shown
    assert any(message.startswith("Not complete yet") for message in shown)
    assert test.text_area(key=f"s{draft.id}.custody_or_court_details").value == "Cell 2"
    assert test.selectbox(key=f"s{draft.id}.risk_to_self").value == "high"
    assert stored(sqlite_engine, draft.id).status == "draft"


def test_a_screening_is_completed_from_the_page(app_test, sqlite_engine, sqlite_staff):
    draft_id = valid_screening(sqlite_engine, sqlite_staff)
    test = click(opened(app_test, sqlite_staff.practitioner, draft_id), "Complete screening")
    assert "Screening completed." in texts(test)
    assert stored(sqlite_engine, draft_id).status == "complete"
    assert not [button for button in test.button if button.label == "Complete screening"]
    assert [link.label for link in test.get("page_link") if link.label == "Printable summary for sharing"]


def test_an_amendment_needs_a_reason_and_appears_in_the_history(app_test, sqlite_engine, sqlite_staff):
    draft_id = valid_screening(sqlite_engine, sqlite_staff)
    complete(sqlite_engine, sqlite_staff, draft_id)
    key = f"s{draft_id}."
    test = opened(app_test, sqlite_staff.second_practitioner, draft_id)
    test.selectbox(key=key + "risk_from_others").select("none")
    test = click(test, "Amend risk")
    assert any("give a reason for the change" in message for message in errors(test))
    assert test.selectbox(key=key + "risk_from_others").value == "none"
    test.text_input(key=key + "risk.amendment_reason").input("Victim of threats was mistaken identity")
    test = click(test, "Amend risk")
    assert "Risk amended." in texts(test)
    history = test.dataframe[-1].value
    assert list(history["By"]) == ["Sam Second"]
    assert list(history["Changed"]) == ["Risk from others"]
    assert (list(history["Before"]), list(history["After"])) == (["Low"], ["None"])


def test_a_second_session_saving_after_the_first_is_told_who_saved_first(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    mine = opened(app_test, sqlite_staff.practitioner, draft.id)
    theirs = opened(app_test, sqlite_staff.second_practitioner, draft.id)
    theirs.selectbox(key=key + "risk_to_self").select("low")
    click(theirs, "Save risk")
    mine.selectbox(key=key + "risk_to_self").select("none")
    mine = click(mine, "Save risk")
    assert any("Changed by Sam Second" in message for message in errors(mine))
    assert stored(sqlite_engine, draft.id).risk_to_self == "low"
    mine = click(mine, "Reload the screening (discards changes not yet saved)")
    assert mine.selectbox(key=key + "risk_to_self").value == "low"


def test_a_referral_is_added_and_one_dated_before_the_screening_refused(app_test, sqlite_engine, sqlite_staff):
    draft_id = valid_screening(sqlite_engine, sqlite_staff)
    key = f"s{draft_id}."
    test = opened(app_test, sqlite_staff.practitioner, draft_id)
    test.selectbox(key=key + "referral.service").select("housing")
    test.date_input(key=key + "referral.referred_on").set_value(clock.today_in_london() - timedelta(days=3))
    test = click(test, "Add referral")
    assert any("before the screening" in message for message in errors(test))
    assert test.selectbox(key=key + "referral.service").value == "housing"
    test.date_input(key=key + "referral.referred_on").set_value(stored(sqlite_engine, draft_id).screened_at.astimezone(
        clock.LONDON).date())
    test = click(test, "Add referral")
    assert "Referral to Housing added." in texts(test)
    with db.reading(sqlite_engine) as session:
        assert [row.service for row in session.exec(select(OnwardReferral))] == ["housing"]
    assert list(test.dataframe[0].value["Service"]) == ["Housing"]


def test_the_summary_shares_recommendations_and_only_what_consent_allows(app_test, sqlite_engine, sqlite_staff):
    draft_id = valid_screening(sqlite_engine, sqlite_staff)
    save(sqlite_engine, sqlite_staff, draft_id, screening.save_consent, Consent("given", "declined"))
    save(sqlite_engine, sqlite_staff, draft_id, screening.save_outcome,
         Outcome("further_assessment", recommendation_adjustments=f"Explain slowly {SCRIPT}"))
    complete(sqlite_engine, sqlite_staff, draft_id)
    test = app_test(SUMMARY, sqlite_staff.practitioner, {"id": str(draft_id)}).run()
    assert not test.exception
    shown = texts(test)
    assert "OFFICIAL-SENSITIVE — contains personal data" in shown
    assert f"Explain slowly {SCRIPT}" in [element.value for element in test.text]  # shown as text, never run
    assert "no health information is included" in shown
    assert "Mental health" not in shown and "PHQ-9" not in shown and "Further assessment" not in shown
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "view_screening_summary")).one()


def test_the_summary_with_consent_includes_the_shared_information(app_test, sqlite_engine, sqlite_staff):
    draft_id = valid_screening(sqlite_engine, sqlite_staff)
    with db.writing(sqlite_engine) as session:
        add_referral(session, sqlite_staff.practitioner, draft_id, NewReferral("housing", _an_hour_ago()[0]))
    save(sqlite_engine, sqlite_staff, draft_id, screening.save_risk, Risk("low", "Private note", "none", None, "low"))
    complete(sqlite_engine, sqlite_staff, draft_id)
    test = app_test(SUMMARY, sqlite_staff.practitioner, {"id": str(draft_id)}).run()
    shown = texts(test)
    assert "Outcome: Further assessment" in shown and "Mental health" in shown
    assert "Private note" not in shown  # risk notes never leave the team
    assert list(test.dataframe[0].value["Instrument"]) == ["PHQ-9"]
    assert list(test.dataframe[1].value["Onward referral"]) == ["Housing"]


def test_a_draft_has_no_summary_and_another_team_sees_nothing(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    test = app_test(SUMMARY, sqlite_staff.practitioner, {"id": str(draft.id)}).run()
    assert "still a draft" in texts(test) and "Recommendations" not in texts(test)
    test = app_test(SUMMARY, sqlite_staff.other_team_practitioner, {"id": str(draft.id)}).run()
    assert errors(test) == ["No such record in your team."] and not test.main.text
    test = app_test(PAGE, sqlite_staff.other_team_practitioner, {"id": str(draft.id)}).run()
    assert errors(test) == ["No such record in your team."] and not test.text_input


@pytest.mark.parametrize("page", [PAGE, SUMMARY])
def test_a_malformed_id_is_handled_without_an_error(app_test, sqlite_staff, page):
    test = app_test(page, sqlite_staff.practitioner, {"id": "１２"}).run()  # full-width digits
    assert not test.exception


def test_returning_to_the_page_shows_the_latest_saved_draft(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    key = f"s{draft.id}."
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    save(sqlite_engine, sqlite_staff, draft.id, screening.save_risk, Risk("low"), user=sqlite_staff.second_practitioner)
    test.switch_page("app.py").run()  # to "My work" and back, in the same browser session
    test.switch_page(PAGE)
    test.query_params["id"] = str(draft.id)
    test = test.run()
    assert test.selectbox(key=key + "risk_to_self").value == "low"
    test.selectbox(key=key + "risk_to_others").select("none")
    test = click(test, "Save risk")
    assert "Risk saved." in texts(test)


# --- starting from a person, and the person record page ----------------------------------------


def test_a_screening_starts_for_a_person_found_with_the_picker(app_test, sqlite_engine, sqlite_staff):
    person = make_person(sqlite_engine, sqlite_staff)
    test = app_test(PAGE, sqlite_staff.practitioner).run()
    test.text_input(key="screening_person_search").input("obri").run()
    test = click(test, "Use this person")
    test = click(test, "Start screening for this person")
    assert not test.exception, test.exception
    with db.reading(sqlite_engine) as session:
        draft = session.exec(select(Screening)).one()
    assert draft.person_id == person.id and draft.request_id is None
    assert "Siôn O'Brien" in texts(test)


def test_recording_a_new_person_to_screen_refuses_bad_input_and_keeps_it(app_test, sqlite_engine, sqlite_staff):
    test = app_test(PAGE, sqlite_staff.practitioner).run()
    test.radio(key="screening_person_mode").set_value("Record a new person").run()
    test.text_input(key="screening_person_given").input("Zoë")
    test.text_input(key="screening_person_family").input("Ng")
    test.text_input(key="screening_person_born").input("29/02/2023")
    test = click(test.run(), "Record this person and start screening")
    assert any("2023 is not a leap year" in message for message in errors(test))
    assert test.text_input(key="screening_person_given").value == "Zoë"
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(Screening)).all() == []


def person_with_history(engine, staff) -> tuple[int, int]:
    draft_id = valid_screening(engine, staff)
    with db.writing(engine) as session:
        add_referral(session, staff.practitioner, draft_id, NewReferral("housing", _an_hour_ago()[0]))
    complete(engine, staff, draft_id)
    return stored(engine, draft_id).person_id, draft_id


def test_the_person_record_shows_history_and_scores_and_audits_the_view_once(app_test, sqlite_engine,
                                                                              sqlite_staff):
    person_id, draft_id = person_with_history(sqlite_engine, sqlite_staff)
    test = app_test(PEOPLE, sqlite_staff.practitioner, {"id": str(person_id)}).run()
    assert not test.exception, test.exception
    shown = texts(test)
    assert "Name: Siôn O'Brien" in shown and "Date of birth: 11/05/1990" in shown
    screenings = test.dataframe[0].value
    assert list(screenings["PHQ-9 total"]) == ["5"] and list(screenings["Status"]) == ["Complete"]
    assert list(test.dataframe[1].value["Service"]) == ["Housing"]
    assert test.get("arrow_vega_lite_chart") or test.get("vega_lite_chart")
    links = [link.label for link in test.get("page_link")]
    assert any(label.startswith("R0") for label in links) and any("Open the screening" in label for label in links)
    test.run()  # a redraw in the same browser session is not audited again
    with db.reading(sqlite_engine) as session:
        views = session.exec(select(AuditEvent).where(AuditEvent.action == "view_person")).all()
    assert [(event.entity_id, event.user_id) for event in views] == [(person_id, sqlite_staff.practitioner.id)]


def test_a_referral_is_followed_up_from_the_person_record(app_test, sqlite_engine, sqlite_staff):
    person_id, _ = person_with_history(sqlite_engine, sqlite_staff)
    test = app_test(PEOPLE, sqlite_staff.practitioner, {"id": str(person_id)}).run()
    status = next(box for box in test.selectbox if box.label == "Status")
    status.select("attended")
    test = click(test, "Save referral update")
    assert any("attended on time" in message for message in errors(test))  # attendance is missing
    assert next(box for box in test.selectbox if box.label == "Status").value == "attended"
    next(box for box in test.selectbox if box.label == "Attendance").select("5")
    test = click(test, "Save referral update")
    assert "Referral updated." in texts(test)
    with db.reading(sqlite_engine) as session:
        referral = session.exec(select(OnwardReferral)).one()
    assert (referral.status, referral.attendance) == ("attended", "5")


def test_a_referral_update_after_someone_elses_is_refused(app_test, sqlite_engine, sqlite_staff):
    from services.referrals import ReferralUpdate, update_referral

    person_id, _ = person_with_history(sqlite_engine, sqlite_staff)
    test = app_test(PEOPLE, sqlite_staff.practitioner, {"id": str(person_id)}).run()
    with db.writing(sqlite_engine) as session:
        referral = session.exec(select(OnwardReferral)).one()
        update_referral(session, sqlite_staff.second_practitioner, referral.id, referral.version,
                        ReferralUpdate("declined"))
    next(box for box in test.selectbox if box.label == "Status").select("accepted")
    test = click(test, "Save referral update")
    assert any("Changed by Sam Second" in message for message in errors(test))
    test = click(test, "Reload this referral (discards your changes)")
    assert next(box for box in test.selectbox if box.label == "Status").value == "declined"


def test_a_screening_starts_from_the_person_record(app_test, sqlite_engine, sqlite_staff):
    person = make_person(sqlite_engine, sqlite_staff)
    test = app_test(PEOPLE, sqlite_staff.practitioner, {"id": str(person.id)}).run()
    test = click(test, "Start a screening")
    assert not test.exception, test.exception
    with db.reading(sqlite_engine) as session:
        draft = session.exec(select(Screening)).one()
    assert draft.person_id == person.id
    assert [header.value for header in test.header][0].startswith("1. Person and context")


def test_people_page_finds_a_person_and_another_team_sees_nothing(app_test, sqlite_engine, sqlite_staff):
    person = make_person(sqlite_engine, sqlite_staff)
    test = app_test(PEOPLE, sqlite_staff.team_lead).run()
    test.text_input(key="people_search").input("siôn").run()
    test = click(test, "Open their record")  # one click on the search result opens the record
    assert "Name: Siôn O'Brien" in texts(test)
    test = app_test(PEOPLE, sqlite_staff.other_team_practitioner, {"id": str(person.id)}).run()
    assert errors(test) == ["No such record in your team."] and not test.dataframe


# --- Nothing typed is lost; feedback where the eye is; flags that say when they are dealt with ------


def test_typing_in_an_unsaved_section_survives_a_new_browser_session(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.text_area(key=f"s{draft.id}.capacity_reason").input("Drowsy; reassess at 14:00 <script>x</script>").run()
    test.text_area(key=f"s{draft.id}.risk_to_self_note").input("Said he would hurt himself").run()
    again = opened(app_test, sqlite_staff.practitioner, draft.id)  # a refresh, or signing in after a time-out
    assert again.text_area(key=f"s{draft.id}.capacity_reason").value == "Drowsy; reassess at 14:00 <script>x</script>"
    assert again.text_area(key=f"s{draft.id}.risk_to_self_note").value == "Said he would hurt himself"
    assert any("Put back what you typed" in info.value for info in again.info)
    colleague = opened(app_test, sqlite_staff.second_practitioner, draft.id)
    assert not colleague.text_area(key=f"s{draft.id}.capacity_reason").value  # typing is its author's alone


def test_a_saved_section_says_so_under_its_own_button(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    test.multiselect(key=f"s{draft.id}.vulnerabilities").set_value(["mental_health"]).run()
    test = click(test, "Save vulnerabilities")
    assert [success.value for success in test.success] == ["Vulnerabilities saved."]
    assert test.toast[0].value == "Vulnerabilities saved."  # its place on the screen is checked in Chromium


def test_age_at_screening_shows_from_the_start(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff, born=date(2010, 1, 1))  # not yet dated: the form starts at today
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    assert "age at screening not known" not in texts(test)
    assert f"age at screening {clock.today_in_london().year - 2010}" in texts(test)


def test_the_risk_banner_turns_into_a_note_once_the_risk_to_self_is_assessed(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    answers = {f"item{number}": 0 for number in range(1, 10)} | {"item9": 1}
    save(sqlite_engine, sqlite_staff, draft.id, screening.save_instruments, screening.Instruments(
        scored={instruments.PHQ9.code: screening.InstrumentAnswers(answers=answers)}))
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    assert any("Assess the risk to self now" in error.value for error in test.error)
    save(sqlite_engine, sqlite_staff, draft.id, screening.save_risk,
         Risk("medium", "Thoughts, no plan; custody informed", "low", None, "low", None))
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    assert not any("Assess the risk to self now" in error.value for error in test.error)
    assert any("Risk to self assessed in section 5 (Medium)" in info.value for info in test.info)


def test_complete_full_audit_is_settled_once_the_full_audit_is_answered(app_test, sqlite_engine, sqlite_staff):
    draft = start(sqlite_engine, sqlite_staff)
    test = opened(app_test, sqlite_staff.practitioner, draft.id)
    for item in ("item1", "item2", "item3"):
        test.radio(key=f"s{draft.id}.{instruments.AUDIT_C.code}.{item}").set_value(2)
    test.run()
    assert any("Complete full AUDIT" in warning.value for warning in test.warning)
    for item in instruments.AUDIT.items[3:]:
        test.radio(key=f"s{draft.id}.{instruments.AUDIT.code}.{item.key}").set_value(0)
    test.run()
    assert not any("Complete full AUDIT" in warning.value for warning in test.warning)
    assert any("Complete full AUDIT (AUDIT-C total 5 or more): done below (AUDIT total 6" in caption.value
               for caption in test.caption)
