"""The screening service: drafts saved by section, every bad input refused by field, completion, amendment.

Helpers at the top (`make_person`, `make_request`, `valid_screening`) are shared with the other
screening test modules.
"""

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from models import AuditEvent, CodeItem, InstrumentResult, Person, Request, Screening, ScreeningAmendment
from models.codes import CodeList, ConsentStatus, RiskLevel, ScreeningOutcome, ScreeningStatus
from services import clock, db, instruments, screening
from services.errors import Conflict, InputErrors, PermissionDenied
from services.matching import name_key
from services.permissions import NoSuchRecord
from services.screening import (
    Consent,
    InstrumentAnswers,
    Instruments,
    Outcome,
    PersonAndContext,
    Risk,
    Vulnerabilities,
)

SCRIPT = "<script>alert('x')</script>"
FORMULA = "=HYPERLINK(\"http://example.com\",\"click\")"


# --- shared helpers ---------------------------------------------------------------------------


def make_person(engine, staff, *, given="Siôn", family="O'Brien", born: date | None = date(1990, 5, 11), team=None):
    team_id = (team or staff.team).id
    with db.writing(engine) as session:
        person = Person(team_id=team_id, given_name=given, family_name=family, date_of_birth=born,
                        nhs_number_status="not_known", given_name_key=name_key(given), family_name_key=name_key(family))
        session.add(person)
        session.flush()
        return person


def make_request(engine, staff, person: Person | None, *, received_at: datetime | None = None, site=None):
    received_at = received_at or clock.now() - timedelta(hours=3)
    with db.writing(engine) as session:
        request = Request(
            team_id=staff.team.id, site_id=(site or staff.sites[0]).id, person_id=person.id if person else None,
            received_at=received_at, source_of_referral="police", requester_name="PC Jones",
            request_type="screening", urgency="urgent", reason="Seems confused", status="new",
            due_at=received_at + timedelta(hours=4), created_by_id=staff.practitioner.id,
        )
        session.add(request)
        session.flush()
        request.reference = f"R{request.id:05d}"
        return request


def start(engine, staff, *, born: date | None = date(1990, 5, 11), received_at: datetime | None = None, user=None):
    person = make_person(engine, staff, born=born)
    request = make_request(engine, staff, person, received_at=received_at)
    with db.writing(engine) as session:
        return screening.start_from_request(session, user or staff.practitioner, request.id)


def an_hour_ago() -> tuple[date, time]:
    moment = clock.to_london(clock.now() - timedelta(hours=1))
    return moment.date(), moment.time().replace(second=0, microsecond=0)


def context(staff, **overrides) -> PersonAndContext:
    on, at = an_hour_ago()
    values = dict(site_id=staff.sites[0].id, screened_on=on, screened_time=at, contact_mechanism="01",
                  custody_or_court_details="Cell 4")
    values.update(overrides)
    return PersonAndContext(**values)


def version_of(engine, screening_id: int) -> int:
    with db.reading(engine) as session:
        return session.get(Screening, screening_id).version


def save(engine, staff, draft_id: int, function, data, user=None, **kwargs):
    with db.writing(engine) as session:
        return function(session, user or staff.practitioner, draft_id, version_of(engine, draft_id), data, **kwargs)


def refused(engine, staff, draft_id: int, function, data, **kwargs) -> dict[str, str]:
    """Save, expect a refusal, and check nothing was written; return the errors."""
    before = version_of(engine, draft_id)
    audit_rows = audit_count(engine)
    with pytest.raises(InputErrors) as refusal:
        save(engine, staff, draft_id, function, data, **kwargs)
    assert version_of(engine, draft_id) == before
    assert audit_count(engine) == audit_rows
    return refusal.value.errors


def audit_count(engine) -> int:
    with db.reading(engine) as session:
        return len(session.exec(select(AuditEvent)).all())


PHQ9_MILD = {f"item{number}": 1 for number in range(1, 6)} | {f"item{number}": 0 for number in range(6, 10)}


def valid_screening(engine, staff, **start_options) -> int:
    """A draft with every section saved validly (no referral needed): completion must succeed."""
    draft = start(engine, staff, **start_options)
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    save(engine, staff, draft.id, screening.save_consent, Consent("given", "given"))
    save(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities(["mental_health"], "5", "5"))
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(dict(PHQ9_MILD))}))
    save(engine, staff, draft.id, screening.save_risk, Risk("low", None, "none", None, "low", None))
    save(engine, staff, draft.id, screening.save_outcome,
         Outcome("further_assessment", recommendation_fitness_for_interview="Fit for interview"))
    return draft.id


def complete(engine, staff, draft_id: int, user=None):
    with db.writing(engine) as session:
        return screening.complete(session, user or staff.practitioner, draft_id, version_of(engine, draft_id))


def view(engine, staff, draft_id: int):
    with db.reading(engine) as session:
        return screening.get_screening(session, staff.practitioner, draft_id)


# --- starting a draft -------------------------------------------------------------------------


def test_a_draft_starts_from_a_request_with_its_person_and_site(engine, staff):
    draft = start(engine, staff)
    assert draft.status == ScreeningStatus.DRAFT
    assert draft.site_id == staff.sites[0].id
    assert draft.practitioner_id == staff.practitioner.id
    with db.reading(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "create_screening")).all()
    assert [event.entity_id for event in events] == [draft.id]


def test_starting_again_from_the_same_request_continues_its_draft(engine, staff):
    draft = start(engine, staff)
    with db.writing(engine) as session:
        again = screening.start_from_request(session, staff.second_practitioner, draft.request_id)
    assert again.id == draft.id


def test_a_request_without_a_person_cannot_be_screened(engine, staff):
    request = make_request(engine, staff, None)
    with pytest.raises(InputErrors) as refusal, db.writing(engine) as session:
        screening.start_from_request(session, staff.practitioner, request.id)
    assert "person" in refusal.value.errors


def test_a_draft_starts_for_a_person_and_is_reused(engine, staff):
    person = make_person(engine, staff)
    with db.writing(engine) as session:
        first = screening.start_for_person(session, staff.practitioner, person.id)
    with db.writing(engine) as session:
        second = screening.start_for_person(session, staff.practitioner, person.id)
    assert first.id == second.id and first.request_id is None


def test_another_teams_person_cannot_be_screened_and_the_refusal_is_audited(engine, staff):
    person = make_person(engine, staff, team=staff.other_team)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        screening.start_for_person(session, staff.practitioner, person.id)
    with db.reading(engine) as session:
        denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
        assert session.exec(select(Screening)).all() == []
    assert denial.entity == "person" and denial.user_id == staff.practitioner.id


def test_an_administrator_cannot_screen(engine, staff):
    person = make_person(engine, staff)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        screening.start_for_person(session, staff.administrator, person.id)


def test_another_team_cannot_read_or_save_a_screening(engine, staff):
    draft = start(engine, staff)
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        screening.get_screening(session, staff.other_team_practitioner, draft.id)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        screening.save_risk(session, staff.other_team_lead, draft.id, draft.version, Risk("low"))


def test_an_unknown_screening_reads_as_another_teams(engine, staff):
    with pytest.raises(NoSuchRecord) as refused, db.reading(engine) as session:
        screening.get_screening(session, staff.practitioner, 999)
    assert str(refused.value) == "No such record in your team."


# --- person and context -----------------------------------------------------------------------


def test_person_and_context_is_saved_into_the_draft_with_the_age_at_the_screening_date(engine, staff):
    draft = start(engine, staff, born=date(1990, 5, 11))
    on, at = an_hour_ago()
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    shown = view(engine, staff, draft.id)
    assert shown.screening.screened_at == clock.from_london(on, at)
    assert shown.screening.contact_mechanism == "01"
    assert shown.age == on.year - 1990 - ((on.month, on.day) < (5, 11))
    assert shown.screening.sections_saved == ["person_and_context"]
    assert shown.section_saved("person_and_context") and not shown.section_saved("consent")
    values = screening.form_values(shown)
    assert values["screened_on"] == on and values["screened_time"] == at


def test_screening_time_in_the_future_is_refused(engine, staff):
    draft = start(engine, staff)
    later = clock.to_london(clock.now() + timedelta(hours=2))
    errors = refused(engine, staff, draft.id, screening.save_person_and_context,
                     context(staff, screened_on=later.date(), screened_time=later.time().replace(microsecond=0)))
    assert "cannot be in the future" in errors["screened_at"]


def test_screening_before_the_request_was_received_is_refused(engine, staff):
    draft = start(engine, staff, received_at=clock.now() - timedelta(minutes=30))
    errors = refused(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    assert "before the request was received" in errors["screened_at"]


def test_age_under_ten_at_the_screening_date_is_refused(engine, staff):
    today = clock.today_in_london()
    draft = start(engine, staff, born=date(today.year - 9, 1, 1))
    errors = refused(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    assert "age of criminal responsibility is 10" in errors["screened_at"]


def test_a_screening_before_the_person_was_born_is_refused(engine, staff):
    draft = start(engine, staff, born=clock.today_in_london() + timedelta(days=1))
    errors = refused(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    assert "before the person's date of birth" in errors["screened_at"]


def test_a_date_without_a_time_is_refused(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_person_and_context, context(staff, screened_time=None))
    assert "both the date" in errors["screened_at"]


def test_under_eighteen_always_needs_an_appropriate_adult_and_it_cannot_be_unset(engine, staff):
    today = clock.today_in_london()
    draft = start(engine, staff, born=date(today.year - 16, 1, 1))
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff, appropriate_adult_required=False))
    shown = view(engine, staff, draft.id)
    assert shown.age in (15, 16)
    assert shown.screening.appropriate_adult_required is True


def test_an_adult_needs_a_reason_for_an_appropriate_adult(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_person_and_context,
                     context(staff, appropriate_adult_required=True))
    assert "say why" in errors["appropriate_adult_reason"]
    save(engine, staff, draft.id, screening.save_person_and_context,
         context(staff, appropriate_adult_required=True, appropriate_adult_reason="Learning disability"))
    assert view(engine, staff, draft.id).screening.appropriate_adult_required is True


def test_another_teams_site_and_an_unknown_contact_mechanism_are_refused(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_person_and_context,
                     context(staff, site_id=staff.sites[2].id, contact_mechanism="77"))
    assert set(errors) == {"site_id", "contact_mechanism"}


def test_whether_the_person_attended_is_kept_as_its_national_code(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff, attendance="3"))
    assert view(engine, staff, draft.id).screening.attendance == "3"  # did not attend without warning


def test_an_attendance_outside_the_national_list_is_refused_and_nothing_saved(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_person_and_context, context(staff, attendance="9"))
    assert errors == {"attendance": "Attended or did not attend: choose one of the listed answers."}
    assert view(engine, staff, draft.id).screening.attendance is None


def test_free_text_over_its_limit_is_refused_with_the_field_named(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_person_and_context,
                     context(staff, custody_or_court_details="x" * 2001))
    assert errors["custody_or_court_details"].startswith("Custody or court details can be at most 2,000 characters")


def test_script_and_formula_like_text_is_stored_exactly_as_typed(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_person_and_context,
         context(staff, custody_or_court_details=f"{SCRIPT} {FORMULA} Nguyễn عربى 🙂"))
    stored = view(engine, staff, draft.id).screening.custody_or_court_details
    assert stored == f"{SCRIPT} {FORMULA} Nguyễn عربى 🙂"


def test_a_stale_version_is_refused_naming_who_saved_first(engine, staff):
    draft = start(engine, staff)
    shown_version = version_of(engine, draft.id)
    save(engine, staff, draft.id, screening.save_risk, Risk("low"), user=staff.second_practitioner)
    with pytest.raises(Conflict) as conflict, db.writing(engine) as session:
        screening.save_risk(session, staff.practitioner, draft.id, shown_version, Risk("high", "Threats"))
    assert "Sam Second" in str(conflict.value)
    assert view(engine, staff, draft.id).screening.risk_to_self == "low"


# --- consent ----------------------------------------------------------------------------------


def test_lacking_capacity_needs_who_decided_and_why(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_consent, Consent("lacks_capacity", "lacks_capacity"))
    assert set(errors) == {"capacity_decided_by", "capacity_reason"}
    save(engine, staff, draft.id, screening.save_consent,
         Consent("lacks_capacity", "lacks_capacity", "Dr Patel, FME", "Acutely psychotic"))
    assert view(engine, staff, draft.id).screening.capacity_decided_by == "Dr Patel, FME"


def test_an_unknown_consent_answer_is_refused(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_consent, Consent("maybe", "given"))
    assert set(errors) == {"consent_to_screening"}


def test_sharing_recorded_without_consent_is_refused(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_consent, Consent("given", "declined"))
    on, at = an_hour_ago()
    errors = refused(engine, staff, draft.id, screening.save_outcome,
                     Outcome("no_further_action", shared_with="Custody sergeant", shared_on=on, shared_time=at,
                             shared_what="Recommendations"))
    assert "consent to share" in errors["shared_with"]


def test_consent_to_share_cannot_be_withdrawn_while_sharing_is_recorded(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    save(engine, staff, draft.id, screening.save_consent, Consent("given", "given"))
    now = clock.to_london(clock.now())
    save(engine, staff, draft.id, screening.save_outcome,
         Outcome("no_further_action", shared_with="Custody sergeant", shared_on=now.date(),
                 shared_time=now.time().replace(second=0, microsecond=0), shared_what="Fit for interview"))
    errors = refused(engine, staff, draft.id, screening.save_consent, Consent("given", "declined"))
    assert "nothing may be marked as shared" in errors["consent_to_share"]


def test_sharing_before_the_screening_or_in_the_future_is_refused(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    save(engine, staff, draft.id, screening.save_consent, Consent("given", "given"))
    earlier = clock.to_london(clock.now() - timedelta(hours=2))
    errors = refused(engine, staff, draft.id, screening.save_outcome,
                     Outcome(shared_with="Court", shared_on=earlier.date(), shared_time=earlier.time(),
                             shared_what="x"))
    assert "before the screening" in errors["shared_at"]
    later = clock.to_london(clock.now() + timedelta(hours=2))
    errors = refused(engine, staff, draft.id, screening.save_outcome,
                     Outcome(shared_with="Court", shared_on=later.date(), shared_time=later.time(), shared_what="x"))
    assert "future" in errors["shared_at"]


# --- vulnerabilities --------------------------------------------------------------------------


def test_vulnerabilities_are_saved_as_rows_and_replaced(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities(["alcohol", "housing"], "5", "2"))
    save(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities(["housing", "autism"], "5", "1"))
    shown = view(engine, staff, draft.id)
    assert sorted(shown.vulnerability_codes) == ["autism", "housing"]
    assert shown.screening.autism_status == "1"


def test_a_withdrawn_vulnerability_is_refused_when_new_but_kept_when_already_recorded(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities(["veteran"], "5", "5"))
    with db.writing(engine) as session:
        for item in session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.VULNERABILITY,
                                                        CodeItem.code.in_(["veteran", "pregnancy"]))):
            item.active = False
            session.add(item)
    errors = refused(engine, staff, draft.id, screening.save_vulnerabilities,
                     Vulnerabilities(["veteran", "pregnancy"], "5", "5"))
    assert "pregnancy" in errors["vulnerabilities"] and "veteran" not in errors["vulnerabilities"]
    save(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities(["veteran", "alcohol"], "5", "5"))


def test_diagnosis_status_must_be_a_national_code(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_vulnerabilities, Vulnerabilities([], "9", "Q"))
    assert set(errors) == {"learning_disability_status", "autism_status"}


# --- instruments ------------------------------------------------------------------------------


def results_of(engine, draft_id: int) -> dict[str, InstrumentResult]:
    with db.reading(engine) as session:
        rows = session.exec(select(InstrumentResult).where(InstrumentResult.screening_id == draft_id)).all()
    return {row.instrument: row for row in rows}


def test_every_answer_total_band_flag_and_scoring_version_is_stored(engine, staff):
    draft = start(engine, staff)
    answers = {f"item{number}": 2 for number in range(1, 10)}  # total 18, item 9 above 0
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(answers), "gad7": InstrumentAnswers({"item1": 3})}))
    stored = results_of(engine, draft.id)
    phq9 = stored["phq9"]
    assert phq9.answers == answers and phq9.total == 18 and phq9.band == "moderately severe"
    assert phq9.scoring_version == instruments.PHQ9.version and phq9.complete
    assert phq9.flags == [instruments.FLAG_SELF_HARM]
    # A stored result can be recomputed from its answers.
    assert instruments.score("phq9", phq9.answers).total == phq9.total
    assert stored["gad7"].answers == {"item1": 3} and not stored["gad7"].complete and stored["gad7"].band is None
    assert view(engine, staff, draft.id).risk_flags == [instruments.FLAG_SELF_HARM]


def test_phq9_item_nine_raises_the_risk_flag_whatever_the_total(engine, staff):
    draft = start(engine, staff)
    answers = {f"item{number}": 0 for number in range(1, 9)} | {"item9": 1}  # total 1: minimal
    save(engine, staff, draft.id, screening.save_instruments, Instruments(scored={"phq9": InstrumentAnswers(answers)}))
    shown = view(engine, staff, draft.id)
    assert shown.results["phq9"].band == "minimal"
    assert shown.risk_flags == [instruments.FLAG_SELF_HARM]


def test_an_impossible_answer_is_refused_for_that_instrument(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_instruments,
                     Instruments(scored={"audit": InstrumentAnswers({"item9": 3})}))
    assert "cannot score 3" in errors["audit"]


def test_audit_c_answers_carry_into_the_full_audit(engine, staff):
    draft = start(engine, staff)
    auditc = {"item1": 4, "item2": 1, "item3": 2}  # 7: positive
    rest = {f"item{number}": 0 for number in range(4, 9)} | {"item9": 2, "item10": 4}
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"auditc": InstrumentAnswers(auditc), "audit": InstrumentAnswers(rest)}))
    stored = results_of(engine, draft.id)
    assert stored["auditc"].band == "positive" and instruments.FLAG_FULL_AUDIT in stored["auditc"].flags
    assert stored["audit"].answers == auditc | rest
    assert stored["audit"].total == 13 and stored["audit"].band == "increasing risk" and stored["audit"].complete


def test_audit_questions_one_to_three_answered_differently_are_refused(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_instruments,
                     Instruments(scored={"auditc": InstrumentAnswers({"item1": 4}),
                                         "audit": InstrumentAnswers({"item1": 0, "item4": 1})}))
    assert "answer them once" in errors["audit"]


def test_bjmhs_referral_rules_and_the_screeners_judgement_are_stored(engine, staff):
    draft = start(engine, staff)
    answers = {f"item{number}": 0 for number in range(1, 9)} | {"item8": 1}
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"bjmhs": InstrumentAnswers(answers, screener_refers=True)}))
    stored = results_of(engine, draft.id)["bjmhs"]
    assert stored.band == instruments.BJMHS_REFER
    assert stored.flags == [instruments.FLAG_BJMHS_HOSPITAL, instruments.FLAG_BJMHS_SCREENER]


def test_proprietary_tools_store_their_result_only(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(proprietary={"hasi": "Refer", "ldsq": None, "chat": ""}))
    stored = results_of(engine, draft.id)
    assert set(stored) == {"hasi"}
    assert stored["hasi"].result == "Refer" and stored["hasi"].answers == {} and stored["hasi"].total is None
    errors = refused(engine, staff, draft.id, screening.save_instruments, Instruments(proprietary={"hasi": "Maybe"}))
    assert "listed results" in errors["hasi"]


def test_an_instrument_cleared_of_answers_is_removed(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"gad7": InstrumentAnswers({"item1": 1})}))
    save(engine, staff, draft.id, screening.save_instruments, Instruments(scored={"gad7": InstrumentAnswers({})}))
    assert results_of(engine, draft.id) == {}


def test_not_completed_needs_a_reason_and_an_unanswered_question(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_instruments,
                     Instruments(scored={"gad7": InstrumentAnswers({"item1": 1}, not_completed=True)}))
    assert "Say why GAD-7 was not completed" in errors["gad7_not_completed_reason"]
    every = {f"item{number}": 1 for number in range(1, 8)}
    errors = refused(engine, staff, draft.id, screening.save_instruments,
                     Instruments(scored={"gad7": InstrumentAnswers(every, True, "Tired")}))
    assert "every question answered" in errors["gad7_not_completed_reason"]


# --- risk -------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["medium", "high"])
def test_medium_or_high_risk_needs_a_note(engine, staff, level):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_risk, Risk("none", None, level, "  ", "low", None))
    assert set(errors) == {"risk_to_others_note"}
    assert "a note is required" in errors["risk_to_others_note"]


def test_an_unknown_risk_level_is_refused(engine, staff):
    draft = start(engine, staff)
    errors = refused(engine, staff, draft.id, screening.save_risk, Risk("extreme"))
    assert set(errors) == {"risk_to_self"}


# --- completion -------------------------------------------------------------------------------


def test_completing_an_empty_draft_lists_every_problem_by_section_and_changes_nothing(engine, staff):
    draft = start(engine, staff)
    before = version_of(engine, draft.id)
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft.id)
    by_section = refusal.value.by_section
    assert set(by_section) == {"person_and_context", "consent", "vulnerabilities", "risk", "outcome"}
    assert {"screened_at", "contact_mechanism"} <= set(by_section["person_and_context"])
    assert {"consent_to_screening", "consent_to_share"} <= set(by_section["consent"])
    assert set(RISK_FIELDS) <= set(by_section["risk"])
    assert version_of(engine, draft.id) == before
    assert view(engine, staff, draft.id).screening.status == ScreeningStatus.DRAFT


RISK_FIELDS = ("risk_to_self", "risk_to_others", "risk_from_others")


def test_a_partly_answered_instrument_is_kept_in_a_draft_but_refused_on_completion(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(dict(PHQ9_MILD)), "gad7": InstrumentAnswers({"item1": 2})}))
    assert results_of(engine, draft_id)["gad7"].answers == {"item1": 2}
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft_id)
    assert refusal.value.by_section == {"instruments": {"gad7": refusal.value.errors["gad7"]}}
    assert "partly answered (1 of 7)" in refusal.value.errors["gad7"]
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(dict(PHQ9_MILD)),
                             "gad7": InstrumentAnswers({"item1": 2}, True, "Person became too distressed")}))
    complete(engine, staff, draft_id)
    assert results_of(engine, draft_id)["gad7"].not_completed_reason == "Person became too distressed"


def test_a_positive_audit_c_needs_the_full_audit_or_a_reason_on_completion(engine, staff):
    draft_id = valid_screening(engine, staff)
    positive = {"item1": 3, "item2": 1, "item3": 1}
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"auditc": InstrumentAnswers(dict(positive))}))
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft_id)
    assert "remaining seven AUDIT questions" in refusal.value.by_section["instruments"]["audit"]
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"auditc": InstrumentAnswers(dict(positive)),
                             "audit": InstrumentAnswers({}, True, "Released before it could be asked")}))
    complete(engine, staff, draft_id)
    stored = results_of(engine, draft_id)["audit"]
    assert stored.answers == positive and not stored.complete


def test_the_self_harm_flag_needs_a_risk_to_self_note_on_completion(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(PHQ9_MILD | {"item9": 1})}))
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft_id)
    assert set(refusal.value.errors) == {"risk_to_self_note"}


def test_declined_screening_with_instrument_answers_is_refused_on_completion(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_consent, Consent("declined", "declined"))
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft_id)
    assert "declined screening" in refusal.value.by_section["instruments"]["instruments"]


def test_a_complete_screening_is_recorded_audited_and_dates_the_persons_last_contact(engine, staff):
    draft_id = valid_screening(engine, staff)
    done = complete(engine, staff, draft_id)
    assert done.status == ScreeningStatus.COMPLETE and done.completed_at is not None
    with db.reading(engine) as session:
        person = session.get(Person, done.person_id)
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "complete_screening")).one()
    assert person.last_contact_on == clock.to_london(done.screened_at).date()
    assert event.entity_id == draft_id and event.detail is None
    with pytest.raises(InputErrors):
        complete(engine, staff, draft_id)


def test_audit_details_never_hold_clinical_text(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_risk, Risk("high", "Secret plan described", "none", None, "low"))
    with db.reading(engine) as session:
        details = [event.detail or "" for event in session.exec(select(AuditEvent)).all()]
    assert not any("Secret" in detail or "Cell 4" in detail for detail in details)


# --- amendment --------------------------------------------------------------------------------


def test_a_completed_screening_is_amended_only_with_a_reason_and_keeps_before_and_after(engine, staff):
    draft_id = valid_screening(engine, staff)
    complete(engine, staff, draft_id)
    errors = refused(engine, staff, draft_id, screening.save_risk, Risk("medium", None, "none", None, "low"))
    assert set(errors) == {"amendment_reason", "risk_to_self_note"}
    save(engine, staff, draft_id, screening.save_risk, Risk("medium", "Low mood, plan denied", "none", None, "low"),
         user=staff.second_practitioner, amendment_reason="Further information from custody nurse")
    with db.reading(engine) as session:
        amendment = session.exec(select(ScreeningAmendment)).one()
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "amend_screening")).one()
    assert amendment.amended_by_id == staff.second_practitioner.id
    assert amendment.reason == "Further information from custody nurse"
    assert amendment.changes == {"risk_to_self": {"before": "low", "after": "medium"},
                                 "risk_to_self_note": {"before": None, "after": "Low mood, plan denied"}}
    assert event.detail == "risk: risk_to_self, risk_to_self_note"
    history = view(engine, staff, draft_id).amendments
    assert history[0].amended_by == "Sam Second"
    assert history[0].changes[0] == ("Risk to self", "Low", "Medium")
    assert view(engine, staff, draft_id).screening.status == ScreeningStatus.COMPLETE


def test_an_amendment_that_changes_nothing_is_refused(engine, staff):
    draft_id = valid_screening(engine, staff)
    complete(engine, staff, draft_id)
    errors = refused(engine, staff, draft_id, screening.save_risk, Risk("low", None, "none", None, "low", None),
                     amendment_reason="Checking")
    assert "Nothing in this section has changed" in errors["amendment_reason"]


def test_an_amendment_that_would_leave_the_screening_incomplete_is_refused(engine, staff):
    draft_id = valid_screening(engine, staff)
    complete(engine, staff, draft_id)
    with pytest.raises(screening.CompletionRefused) as refusal:
        save(engine, staff, draft_id, screening.save_outcome, Outcome(ScreeningOutcome.ONWARD_REFERRAL),
             amendment_reason="Referred after all")
    assert "referrals" in refusal.value.by_section["referrals"]
    assert view(engine, staff, draft_id).screening.outcome == "further_assessment"


def test_amending_instruments_and_vulnerabilities_records_what_changed(engine, staff):
    draft_id = valid_screening(engine, staff)
    complete(engine, staff, draft_id)
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(PHQ9_MILD | {"item1": 3})}), amendment_reason="Misheard")
    save(engine, staff, draft_id, screening.save_vulnerabilities, Vulnerabilities(["mental_health", "debt"], "5", "5"),
         amendment_reason="Disclosed debt")
    history = view(engine, staff, draft_id).amendments
    assert [row.reason for row in history] == ["Misheard", "Disclosed debt"]
    phq9_change = history[0].changes[0]
    assert phq9_change[0] == "PHQ-9" and "total: 5" in phq9_change[1] and "total: 7" in phq9_change[2]
    assert history[1].changes[0] == ("Vulnerabilities", "Mental health",
                                     "Financial difficulty and debt, Mental health")


# --- lists ------------------------------------------------------------------------------------


def test_the_screening_list_query_gives_labelled_rows_for_the_team_only(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(PHQ9_MILD | {"item9": 2})}))
    save(engine, staff, draft_id, screening.save_risk, Risk("high", "Plan", "none", None, "low", None))
    complete(engine, staff, draft_id)
    other = make_person(engine, staff, given="Olu", family="Other", team=staff.other_team)
    second_person = make_person(engine, staff)
    with db.writing(engine) as session:
        screening.start_for_person(session, staff.other_team_practitioner, other.id)
        second_draft = screening.start_for_person(session, staff.practitioner, second_person.id)
    query = screening.screenings_query(staff.team_lead)
    assert list(query.statement.selected_columns.keys()) == [column.key for column in query.columns]
    with db.reading(engine) as session:
        rows = screening.list_screenings(session, staff.team_lead)
    assert [row["screening_id"] for row in rows] == [draft_id, second_draft.id]  # undated drafts last
    first = rows[0]
    assert first["status"] == "Complete" and first["outcome"] == "Further assessment"
    assert first["phq9_total"] == "7" and first["gad7_total"] is None  # text: a partial one says so
    assert first["phq9_band"] == "mild" and first["gad7_band"] is None
    assert first["vulnerabilities"] and rows[1]["vulnerabilities"] is None  # labels joined, none for a blank draft
    assert first["self_harm_flag"] is True and rows[1]["self_harm_flag"] is False
    assert first["risk_to_self"] == "High" and first["vulnerability_count"] == 1 and first["referral_count"] == 0
    assert first["given_name"] == "Siôn" and first["family_name"] == "O'Brien"
    with db.reading(engine) as session:
        drafts = screening.list_screenings(session, staff.team_lead, screening.ScreeningFilters(status="draft"))
        today = clock.today_in_london()
        dated = screening.list_screenings(session, staff.team_lead,
                                          screening.ScreeningFilters(screened_from=today - timedelta(days=1),
                                                                     screened_to=today))
    assert [row["screening_id"] for row in drafts] == [second_draft.id]
    assert [row["screening_id"] for row in dated] == [draft_id]


def test_an_administrator_granted_export_may_build_the_list_but_a_stranger_may_not(engine, staff):
    staff.administrator.can_export = True  # export is off for administrators until granted (docs/security.md)
    assert screening.screenings_query(staff.administrator).columns == screening.SCREENING_COLUMNS
    staff.practitioner.active = False  # an account disabled since the page was drawn
    with pytest.raises(PermissionDenied):
        screening.screenings_query(staff.practitioner)


def test_requests_awaiting_screening_leave_out_screened_ones(engine, staff):
    draft = start(engine, staff)
    waiting = make_request(engine, staff, make_person(engine, staff, given="Ann", family="Waiting"))
    make_request(engine, staff, None)
    with db.reading(engine) as session:
        rows = screening.requests_awaiting_screening(session, staff.practitioner)
    assert [row.request_id for row in rows] == [waiting.id]
    assert rows[0].person == "Ann Waiting" and draft.request_id != waiting.id


def test_consent_and_risk_values_match_the_code_lists():
    # The service's messages and list labels rely on these codes.
    assert ConsentStatus.GIVEN == "given" and RiskLevel.MEDIUM == "medium"


def test_a_new_person_and_their_draft_are_recorded_together_or_not_at_all(engine, staff):
    from services.people import NewPerson

    with db.writing(engine) as session:
        new = NewPerson("Aoife", "Ní Bhriain", "02/03/1985", nhs_number_status="not_known")
        draft = screening.start_for_new_person(session, staff.practitioner, new)
    shown = view(engine, staff, draft.id)
    assert shown.person.family_name == "Ní Bhriain" and shown.screening.request_id is None
    with pytest.raises(InputErrors) as refusal, db.writing(engine) as session:  # a likely duplicate, not confirmed
        screening.start_for_new_person(session, staff.practitioner,
                                       NewPerson("Aoife", "Ni Bhriain", "02/03/1985", nhs_number_status="not_known"))
    assert refusal.value.errors
    with pytest.raises(InputErrors), db.writing(engine) as session:
        screening.start_for_new_person(session, staff.practitioner, NewPerson("", "Nobody", "31/02/1990"))
    with db.reading(engine) as session:
        assert len(session.exec(select(Person)).all()) == 1
        assert len(session.exec(select(Screening)).all()) == 1


# --- property: what is stored can always be recomputed ------------------------------------------


@st.composite
def instrument_answers(draw):
    code = draw(st.sampled_from(["phq9", "gad7", "auditc", "bjmhs"]))
    items = instruments.INSTRUMENTS[code].items
    answers = {item.key: draw(st.one_of(st.none(), st.sampled_from(item.scores))) for item in items}
    return code, answers


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(instrument_answers())
def test_every_stored_result_recomputes_to_the_same_total_band_and_flags(engine, staff, drawn):
    code, answers = drawn
    with db.reading(engine) as session:
        existing = session.exec(select(Screening)).first()
    draft_id = existing.id if existing else start(engine, staff).id
    save(engine, staff, draft_id, screening.save_instruments, Instruments(scored={code: InstrumentAnswers(answers)}))
    stored = results_of(engine, draft_id).get(code)
    if all(value is None for value in answers.values()):
        assert stored is None
        return
    again = instruments.score(code, stored.answers)
    assert (stored.total, stored.band, stored.flags, stored.complete) == (
        again.total, again.band, list(again.flags), again.complete)
    assert stored.answers == {key: value for key, value in answers.items() if value is not None}
    assert stored.scoring_version == instruments.INSTRUMENTS[code].version
