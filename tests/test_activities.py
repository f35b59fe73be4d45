"""Activities: MAPPA meetings, training, pre-sentence report information, prison release liaison.

On SQLite and PostgreSQL: each bad input refused for its field with nothing written; team scoping;
optimistic locking; the list queries (what the export streams) and the monthly counts.
"""

import uuid
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlmodel import func, select

from models import Activity, AuditEvent, Person, Submission
from models.codes import ActivityKind, CodeList, ConsentStatus, ReportType, SiteKind
from services import activities, administration, clock, code_lists, db, matching
from services.activities import (
    ActivityFilters,
    MappaMeetingInput,
    PreSentenceReportInput,
    PrisonReleaseInput,
    TrainingInput,
)
from services.errors import Conflict, InputErrors, PermissionDenied

TODAY = clock.today_in_london()
LAST_WEEK = TODAY - timedelta(days=7)


def _person(engine, team, given="Siôn", family="O'Brien", nhs_number="9990000018"):
    with db.writing(engine) as session:
        person = Person(team_id=team.id, given_name=given, family_name=family, nhs_number=nhs_number,
                        nhs_number_status="present", date_of_birth=date(1990, 5, 11),
                        given_name_key=matching.name_key(given), family_name_key=matching.name_key(family))
        session.add(person)
        session.flush()
        return person


@pytest.fixture
def person(engine, staff):
    return _person(engine, staff.team)


def mappa(**changes) -> MappaMeetingInput:
    return replace(MappaMeetingInput(activity_on=LAST_WEEK, mappa_category=2, mappa_level=3,
                                     agencies_present="Police, probation, children's services",
                                     contribution="Mental health history summarised", minutes_spent=90), **changes)


def training(**changes) -> TrainingInput:
    return replace(TrainingInput(activity_on=LAST_WEEK, audience_agency="police", topic="Spotting autism in custody",
                                 number_trained=12, minutes_spent=120), **changes)


def report(person_id, **changes) -> PreSentenceReportInput:
    return replace(PreSentenceReportInput(person_id=person_id, offender_manager="Jo Bloggs",
                                          report_type=ReportType.FAST_DELIVERY, requested_on=LAST_WEEK,
                                          provided_on=TODAY, shared_what="Diagnosis and care coordinator",
                                          consent=ConsentStatus.GIVEN), **changes)


def release(person_id, **changes) -> PrisonReleaseInput:
    return replace(PrisonReleaseInput(person_id=person_id, release_on=TODAY + timedelta(days=14),
                                      prison="HMP Chelmsford", services_referred=["community_mental_health"]),
                   **changes)


def _log(engine, user, data, submission=None):
    with db.writing(engine) as session:
        return activities.log_activity(session, user, data, submission=submission)


def _count(engine, model=Activity, *conditions) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def _refused(engine, user, data) -> dict[str, str]:
    with pytest.raises(InputErrors) as refused:
        _log(engine, user, data)
    assert _count(engine) == 0, "a refused activity must write nothing"
    assert _count(engine, AuditEvent, AuditEvent.action == "log_activity") == 0
    return refused.value.errors


# --- Logging each kind ---------------------------------------------------------------------


def test_each_kind_is_logged_for_the_team_and_audited(engine, staff, person):
    for data in (mappa(person_id=person.id), training(), report(person.id), release(person.id)):
        activity = _log(engine, staff.practitioner, data)
        assert activity.kind == data.kind and activity.team_id == staff.team.id
        assert activity.practitioner_id == staff.practitioner.id and activity.version == 1
    with db.reading(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "log_activity")).all()
    assert sorted(event.detail for event in events) == sorted(f"kind {kind.value}" for kind in ActivityKind)


# --- One record per submission (a double click, a rerun) ------------------------------------


@pytest.mark.parametrize("kind", list(ActivityKind))
def test_a_second_submit_of_the_same_form_returns_the_first_record_and_writes_nothing(engine, staff, person, kind):
    data = {ActivityKind.MAPPA_MEETING: mappa(), ActivityKind.TRAINING: training(),
            ActivityKind.PRE_SENTENCE_REPORT: report(person.id),
            ActivityKind.PRISON_RELEASE: release(person.id)}[kind]
    token = uuid.uuid4().hex
    first = _log(engine, staff.practitioner, data, submission=token)
    written = (_count(engine), _count(engine, AuditEvent), _count(engine, Submission))
    again = _log(engine, staff.practitioner, data, submission=token)
    assert (again.id, again.kind, again.version) == (first.id, kind, 1)
    assert (_count(engine), _count(engine, AuditEvent), _count(engine, Submission)) == written == (1, 1, 1)
    assert _log(engine, staff.practitioner, data, submission=uuid.uuid4().hex).id != first.id  # a new form


def test_a_refused_submit_leaves_its_token_free_for_the_corrected_form(engine, staff):
    token = uuid.uuid4().hex
    with pytest.raises(InputErrors):
        _log(engine, staff.practitioner, training(topic=""), submission=token)
    assert (_count(engine), _count(engine, Submission)) == (0, 0)
    saved = _log(engine, staff.practitioner, training(), submission=token)
    assert _log(engine, staff.practitioner, training(), submission=token).id == saved.id
    assert _count(engine) == 1


def test_another_users_submission_token_is_refused_not_answered(engine, staff):
    token = uuid.uuid4().hex
    _log(engine, staff.practitioner, training(), submission=token)
    with pytest.raises(InputErrors) as refused:
        _log(engine, staff.other_team_practitioner, training(), submission=token)
    assert "already sent" in refused.value.errors["submission"]
    assert _count(engine) == 1


def test_counted_dates_follow_each_kind(engine, staff, person):
    psr = _log(engine, staff.practitioner, report(person.id))
    prison = _log(engine, staff.practitioner, release(person.id))
    assert psr.activity_on == psr.requested_on == LAST_WEEK
    assert prison.activity_on == prison.release_on == TODAY + timedelta(days=14)
    assert prison.services_referred == "community_mental_health"


def test_text_is_stored_as_typed(engine, staff):
    typed = "<script>alert('x')</script> Nguyễn 👍 שלום =1+1"
    activity = _log(engine, staff.practitioner, mappa(agencies_present=typed, contribution=typed))
    with db.reading(engine) as session:
        stored = session.get(Activity, activity.id)
    assert stored.agencies_present == typed and stored.contribution == typed


# --- Bad input: refused per field, nothing written -----------------------------------------


@pytest.mark.parametrize("value", [0, 4, -1, 99, "two", 1.5])
@pytest.mark.parametrize("field", ["mappa_category", "mappa_level"])
def test_mappa_category_and_level_outside_one_to_three_are_refused(engine, staff, field, value):
    errors = _refused(engine, staff.practitioner, mappa(**{field: value}))
    assert set(errors) == {field}
    assert "must be 1, 2 or 3" in errors[field] or "whole number" in errors[field]


def test_mappa_category_message_explains_the_categories(engine, staff):
    errors = _refused(engine, staff.practitioner, mappa(mappa_category=4))
    assert errors["mappa_category"] == (
        "MAPPA category must be 1, 2 or 3 (1 registered sexual offenders, 2 violent offenders, "
        "3 other dangerous offenders); you entered 4."
    )


@pytest.mark.parametrize("value", [-1, 501, 10_000])
def test_numbers_trained_negative_or_over_500_are_refused(engine, staff, value):
    errors = _refused(engine, staff.practitioner, training(number_trained=value))
    assert errors == {"number_trained": f"Number trained must be from 0 to 500; you entered {value}."}


@pytest.mark.parametrize("value", [0, 500])
def test_numbers_trained_from_0_to_500_are_accepted(engine, staff, value):
    assert _log(engine, staff.practitioner, training(number_trained=value)).number_trained == value


def test_a_date_provided_before_the_date_requested_is_refused(engine, staff, person):
    errors = _refused(engine, staff.practitioner, report(person.id, requested_on=TODAY, provided_on=LAST_WEEK))
    assert errors == {"provided_on": (
        f"Date provided ({clock.format_date(LAST_WEEK)}) cannot be before the date requested "
        f"({clock.format_date(TODAY)})."
    )}


def test_information_provided_the_day_it_was_requested_is_accepted(engine, staff, person):
    assert _log(engine, staff.practitioner, report(person.id, requested_on=TODAY, provided_on=TODAY)).id


def test_information_shared_needs_the_consent_it_was_shared_under(engine, staff, person):
    errors = _refused(engine, staff.practitioner, report(person.id, consent=None))
    assert set(errors) == {"consent"}
    errors = _refused(engine, staff.practitioner, report(person.id, shared_what=""))
    assert set(errors) == {"shared_what"} and "What was shared is required" in errors["shared_what"]
    awaiting = _log(engine, staff.practitioner, report(person.id, provided_on=None, shared_what=None, consent=None))
    assert awaiting.provided_on is None


@pytest.mark.parametrize(("data", "field"), [
    (lambda: mappa(activity_on=TODAY + timedelta(days=1)), "activity_on"),
    (lambda: mappa(activity_on=date(1999, 12, 31)), "activity_on"),
    (lambda: mappa(activity_on=None), "activity_on"),
    (lambda: mappa(agencies_present="  "), "agencies_present"),
    (lambda: mappa(agencies_present="x" * 501), "agencies_present"),
    (lambda: mappa(contribution="bad \x00 byte"), "contribution"),
    (lambda: mappa(minutes_spent=0), "minutes_spent"),
    (lambda: mappa(minutes_spent=24 * 60 + 1), "minutes_spent"),
    (lambda: mappa(minutes_spent=None), "minutes_spent"),
    (lambda: training(audience_agency="fire_service"), "audience_agency"),
    (lambda: training(topic=""), "topic"),
    (lambda: training(number_trained=None), "number_trained"),
])
def test_other_bad_input_is_refused_for_its_field(engine, staff, data, field):
    errors = _refused(engine, staff.practitioner, data())
    assert set(errors) == {field}


def test_every_problem_is_reported_at_once(engine, staff):
    errors = _refused(engine, staff.practitioner, MappaMeetingInput(None, 0, 9, "", "", -3))
    assert set(errors) == {"activity_on", "mappa_category", "mappa_level", "agencies_present", "contribution",
                           "minutes_spent"}


def test_a_release_date_more_than_a_year_ahead_is_refused(engine, staff, person):
    errors = _refused(engine, staff.practitioner, release(person.id, release_on=TODAY + timedelta(days=400)))
    assert "cannot be after a year from today" in errors["release_on"]


def test_a_person_is_required_where_the_kind_needs_one(engine, staff):
    for data in (report(None), release(None)):
        errors = _refused(engine, staff.practitioner, data)
        assert set(errors) == {"person_id"} and "Choose the person" in errors["person_id"]


def test_another_teams_person_cannot_be_attached(engine, staff):
    stranger = _person(engine, staff.other_team, "Olu", "Stranger", nhs_number="9990000026")
    for data in (mappa(person_id=stranger.id), report(stranger.id), release(stranger.id)):
        errors = _refused(engine, staff.practitioner, data)
        assert errors == {"person_id": "No such person in your team's records; search again and choose from the list."}


def _deactivate_service(engine, staff, code="crisis_team"):
    with db.reading(engine) as session:
        [item] = [item for item in administration.list_codes(session, staff.administrator, CodeList.ONWARD_SERVICE)
                  if item.code == code]
    with db.writing(engine) as session:
        administration.set_code_active(session, staff.administrator, item.id, item.version, False)


def test_a_deactivated_service_in_a_new_record_is_refused(engine, staff, person):
    _deactivate_service(engine, staff)
    errors = _refused(engine, staff.practitioner, release(person.id, services_referred=["housing", "crisis_team"]))
    assert errors == {"services_referred": (
        "Crisis team is not an active choice in onward services; choose from the list "
        "(it may have been withdrawn by an administrator)."
    )}
    errors = _refused(engine, staff.practitioner, release(person.id, services_referred=["made_up"]))
    assert set(errors) == {"services_referred"}


def test_a_service_withdrawn_after_saving_stays_on_the_old_record(engine, staff, person):
    saved = _log(engine, staff.practitioner, release(person.id, services_referred=["crisis_team"]))
    _deactivate_service(engine, staff)
    with db.writing(engine) as session:
        edited = activities.update_activity(session, staff.practitioner, saved.id, saved.version,
                                            release(person.id, services_referred=["crisis_team", "housing"]))
    assert edited.services_referred == "crisis_team,housing"


def _prison_site(engine, staff, name="HMP Chelmsford", team=None):
    with db.writing(engine) as session:
        return administration.add_site(session, staff.administrator, (team or staff.team).id, name, SiteKind.PRISON)


def test_a_prison_is_chosen_from_the_teams_active_prisons(engine, staff, person):
    site = _prison_site(engine, staff)
    with db.reading(engine) as session:
        assert [choice.name for choice in activities.prison_choices(session, staff.practitioner)] == ["HMP Chelmsford"]
        assert activities.prison_choices(session, staff.other_team_practitioner) == []
    activity = _log(engine, staff.practitioner, release(person.id, prison=None, prison_site_id=site.id))
    assert activity.prison == "HMP Chelmsford"


def test_a_deactivated_prison_site_in_a_new_record_is_refused(engine, staff, person):
    site = _prison_site(engine, staff)
    with db.writing(engine) as session:
        administration.set_site_active(session, staff.administrator, site.id, site.version, False)
    errors = _refused(engine, staff.practitioner, release(person.id, prison=None, prison_site_id=site.id))
    assert errors == {"prison": (
        "HMP Chelmsford is no longer an active site; choose another prison from the list, or type its name."
    )}
    with db.reading(engine) as session:
        assert activities.prison_choices(session, staff.practitioner) == []


def test_another_teams_or_non_prison_site_is_refused(engine, staff, person):
    theirs = _prison_site(engine, staff, "HMP Elsewhere", team=staff.other_team)
    for site_id in (theirs.id, staff.sites[0].id, 99_999):
        errors = _refused(engine, staff.practitioner, release(person.id, prison=None, prison_site_id=site_id))
        assert errors == {"prison": "Choose the prison from the list, or type its name."}


# --- Permissions and team scoping ----------------------------------------------------------


def test_administrators_neither_log_nor_view_activities(engine, staff):
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        activities.log_activity(session, staff.administrator, training())
    with pytest.raises(PermissionDenied):
        activities.activity_list(staff.administrator, ActivityKind.TRAINING)
    assert _count(engine) == 0


def test_a_team_lead_sees_and_edits_the_teams_activities(engine, staff):
    saved = _log(engine, staff.practitioner, training())
    with db.writing(engine) as session:
        edited = activities.update_activity(session, staff.team_lead, saved.id, saved.version,
                                            training(number_trained=15))
    assert edited.number_trained == 15 and edited.updated_by_id == staff.team_lead.id


def test_another_teams_activity_by_id_is_refused_and_audited(engine, staff, person):
    saved = _log(engine, staff.practitioner, mappa(person_id=person.id))
    for intruder in (staff.other_team_practitioner, staff.other_team_lead):
        with pytest.raises(PermissionDenied, match="No such record in your team"), db.reading(engine) as session:
            activities.get_activity(session, intruder, saved.id)
        with pytest.raises(PermissionDenied), db.writing(engine) as session:
            activities.update_activity(session, intruder, saved.id, saved.version, mappa(contribution="Changed"))
    with db.reading(engine) as session:
        assert session.get(Activity, saved.id).contribution == "Mental health history summarised"
        denials = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert len(denials) == 4
    assert {(denial.action, denial.entity, denial.entity_id) for denial in denials} == {
        ("view_activity", "activity", saved.id)}
    # A missing id reads (and is audited) as another team's: the answer gives nothing away.
    with pytest.raises(PermissionDenied, match="No such record in your team"), db.reading(engine) as session:
        activities.get_activity(session, staff.practitioner, saved.id + 1000)


def test_lists_and_counts_never_show_another_teams_activities(engine, staff):
    _log(engine, staff.practitioner, training())
    _log(engine, staff.other_team_practitioner, training(topic="Their topic"))
    with db.reading(engine) as session:
        mine = activities.list_activities(session, staff.practitioner, ActivityKind.TRAINING)
        counts = activities.monthly_activity_counts(session, staff.practitioner, LAST_WEEK, LAST_WEEK)
    assert [row["topic"] for row in mine.rows] == ["Spotting autism in custody"]
    assert counts["activities"].sum() == 1


# --- Editing with optimistic locking -------------------------------------------------------


def test_an_edit_is_saved_and_audited_by_field_name_only(engine, staff):
    saved = _log(engine, staff.practitioner, mappa())
    with db.writing(engine) as session:
        edited = activities.update_activity(session, staff.second_practitioner, saved.id, 1,
                                            mappa(mappa_level=1, contribution="Risk plan agreed"))
    assert (edited.mappa_level, edited.version, edited.updated_by_id) == (1, 2, staff.second_practitioner.id)
    with db.reading(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "update_activity")).all()
    assert event.detail == "kind mappa_meeting; changed contribution, mappa_level"
    assert "Risk plan" not in event.detail


def test_a_stale_edit_is_refused_naming_who_saved_first(engine, staff):
    saved = _log(engine, staff.practitioner, mappa())
    with db.writing(engine) as session:
        activities.update_activity(session, staff.second_practitioner, saved.id, 1, mappa(mappa_level=1))
    with pytest.raises(Conflict) as conflict, db.writing(engine) as session:
        activities.update_activity(session, staff.practitioner, saved.id, 1, mappa(mappa_level=2))
    assert "Changed by Sam Second" in str(conflict.value) and "reload" in str(conflict.value)
    with db.reading(engine) as session:
        assert session.get(Activity, saved.id).mappa_level == 1


def test_a_bad_edit_changes_nothing(engine, staff):
    saved = _log(engine, staff.practitioner, training())
    with pytest.raises(InputErrors), db.writing(engine) as session:
        activities.update_activity(session, staff.practitioner, saved.id, 1, training(number_trained=501))
    with db.reading(engine) as session:
        assert session.get(Activity, saved.id).version == 1


def test_an_edit_of_the_wrong_kind_is_refused(engine, staff):
    saved = _log(engine, staff.practitioner, training())
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        activities.update_activity(session, staff.practitioner, saved.id, 1, mappa())
    assert set(refused.value.errors) == {"kind"}


def test_as_input_round_trips_a_saved_record(engine, staff, person):
    saved = _log(engine, staff.practitioner, release(person.id, services_referred=["housing", "crisis_team"]))
    data = activities.as_input(saved)
    assert data == release(person.id, services_referred=["housing", "crisis_team"])


# --- Lists: the query the screen and the export share --------------------------------------


def _seed_lists(engine, staff, person):
    _log(engine, staff.practitioner, mappa(activity_on=TODAY - timedelta(days=40), mappa_category=1))
    _log(engine, staff.second_practitioner, mappa(person_id=person.id, mappa_category=3, mappa_level=1))
    _log(engine, staff.practitioner, training(audience_agency="court", topic="Court 100% ready"))
    _log(engine, staff.practitioner, report(person.id, provided_on=None, shared_what=None, consent=None))
    _log(engine, staff.practitioner, report(person.id, report_type=ReportType.ORAL))
    _log(engine, staff.practitioner, release(person.id, services_referred=["housing", "crisis_team"]))


def test_audiences_read_as_words_in_the_list_never_as_codes(engine, staff):
    _log(engine, staff.practitioner, training(audience_agency="youth_offending_team", topic="Youth"))
    older = _log(engine, staff.practitioner, training(activity_on=LAST_WEEK - timedelta(days=1), topic="Old"))
    with db.writing(engine) as session:  # a code from before the list had it, or from imported data
        session.get(Activity, older.id).audience_agency = "magistrates_bench"
    with db.reading(engine) as session:
        rows = activities.list_activities(session, staff.practitioner, ActivityKind.TRAINING).rows
    assert [row["audience_agency"] for row in rows] == ["Youth offending team", "Magistrates bench"]


def test_each_list_has_its_columns_newest_first(engine, staff, person):
    _seed_lists(engine, staff, person)
    with db.reading(engine) as session:
        meetings = activities.list_activities(session, staff.practitioner, ActivityKind.MAPPA_MEETING)
        reports = activities.list_activities(session, staff.practitioner, ActivityKind.PRE_SENTENCE_REPORT)
        releases = activities.list_activities(session, staff.practitioner, ActivityKind.PRISON_RELEASE)
    listing = activities.activity_list(staff.practitioner, ActivityKind.MAPPA_MEETING)
    assert [column.key for column in listing.columns] == list(meetings.rows[0])
    assert [row["activity_on"] for row in meetings.rows] == [LAST_WEEK, TODAY - timedelta(days=40)]
    assert meetings.rows[0]["person"] == "Siôn O'Brien" and meetings.rows[1]["person"] is None
    assert meetings.rows[0]["practitioner"] == "Sam Second"
    assert {row["report_type"] for row in reports.rows} == {"Oral", "Fast delivery"}
    assert {row["consent"] for row in reports.rows} == {"Given", None}
    assert set(releases.rows[0]["services_referred"].split(", ")) == {"Housing", "Crisis team"}
    assert {column.kind for column in listing.columns} <= {"identifier", "text", "date", "number"}


def test_list_filters(engine, staff, person):
    _seed_lists(engine, staff, person)

    def rows(kind, **filters):
        with db.reading(engine) as session:
            return activities.list_activities(session, staff.practitioner, kind, ActivityFilters(**filters)).rows

    assert [row["mappa_category"] for row in rows(ActivityKind.MAPPA_MEETING, mappa_category=3)] == [3]
    assert len(rows(ActivityKind.MAPPA_MEETING, date_from=TODAY - timedelta(days=10))) == 1
    assert len(rows(ActivityKind.MAPPA_MEETING, date_to=TODAY - timedelta(days=10))) == 1
    assert len(rows(ActivityKind.MAPPA_MEETING, practitioner_id=staff.second_practitioner.id)) == 1
    assert len(rows(ActivityKind.MAPPA_MEETING, person_id=person.id)) == 1
    assert len(rows(ActivityKind.MAPPA_MEETING, mappa_level=1)) == 1
    assert [row["topic"] for row in rows(ActivityKind.TRAINING, text="100%")] == ["Court 100% ready"]
    assert rows(ActivityKind.TRAINING, text="10_%") == []  # wildcards are matched literally
    assert len(rows(ActivityKind.TRAINING, audience_agency="police")) == 0
    assert len(rows(ActivityKind.PRE_SENTENCE_REPORT, awaiting_information=True)) == 1
    assert len(rows(ActivityKind.PRE_SENTENCE_REPORT, report_type="oral")) == 1


def test_the_list_query_streams_whole_for_an_export_and_describes_its_filters(engine, staff, person):
    _seed_lists(engine, staff, person)
    listing = activities.activity_list(staff.practitioner, "mappa_meeting",
                                       ActivityFilters(mappa_category=1, date_from=date(2020, 1, 31)))
    assert listing.filters == (("Activity", "MAPPA meeting"), ("From", "31/01/2020"), ("MAPPA category", "1"))
    with db.reading(engine) as session:
        streamed = [dict(row._mapping) for row in session.exec(listing.query.execution_options(yield_per=2))]
    assert len(streamed) == 1 and streamed[0]["mappa_category"] == 1


def test_a_list_says_when_more_rows_match_than_shown(engine, staff):
    for _ in range(3):
        _log(engine, staff.practitioner, training())
    with db.reading(engine) as session:
        page = activities.list_activities(session, staff.practitioner, ActivityKind.TRAINING, limit=2)
    assert len(page.rows) == 2 and page.more


# --- Monthly counts for the caseload page --------------------------------------------------


def test_monthly_counts_by_month_and_kind_with_empty_months(engine, staff, person):
    _log(engine, staff.practitioner, training(activity_on=date(2025, 1, 31), number_trained=10, minutes_spent=60))
    _log(engine, staff.practitioner, training(activity_on=date(2025, 1, 1), number_trained=5, minutes_spent=30))
    _log(engine, staff.practitioner, mappa(activity_on=date(2025, 3, 15)))
    _log(engine, staff.practitioner, report(person.id, requested_on=date(2025, 3, 1), provided_on=None,
                                            shared_what=None, consent=None))
    _log(engine, staff.practitioner, mappa(activity_on=date(2025, 4, 1)))  # outside the period
    with db.reading(engine) as session:
        counts = activities.monthly_activity_counts(session, staff.team_lead, date(2025, 1, 1), date(2025, 3, 31))
    assert list(counts.columns) == activities.MONTHLY_COLUMNS
    assert len(counts) == 3 * len(ActivityKind)
    indexed = counts.set_index(["month", "kind"])
    january_training = indexed.loc[(date(2025, 1, 1), "training")]
    assert (january_training["activities"], january_training["people_trained"],
            january_training["minutes_spent"]) == (2, 15, 90)
    assert indexed.loc[(date(2025, 2, 1), "training")]["activities"] == 0
    assert indexed.loc[(date(2025, 3, 1), "mappa_meeting")]["activities"] == 1
    assert indexed.loc[(date(2025, 3, 1), "pre_sentence_report")]["activities"] == 1
    assert counts["activities"].sum() == 4
    assert set(counts["kind_label"]) == {kind.label for kind in ActivityKind}


def test_monthly_counts_for_the_caseload_page_need_caseload_or_activity_permission(engine, staff):
    with db.reading(engine) as session:
        admin_counts = activities.monthly_activity_counts(session, staff.administrator, LAST_WEEK, TODAY)
        assert admin_counts["activities"].sum() == 0  # administrators see caseload counts (no names)
        with pytest.raises(InputErrors):
            activities.monthly_activity_counts(session, staff.team_lead, TODAY, LAST_WEEK)


# --- Person search -------------------------------------------------------------------------


def test_people_are_found_by_name_or_nhs_number_in_the_team_only(engine, staff, person):
    _person(engine, staff.other_team, "Siôn", "O'Brien", nhs_number="9990000026")
    with db.reading(engine) as session:
        by_name = activities.find_people(session, staff.practitioner, "sion obrien")
        by_family = activities.find_people(session, staff.practitioner, "O’Bri")
        by_number = activities.find_people(session, staff.practitioner, "999 000 0018")
        wildcard = activities.find_people(session, staff.practitioner, "%")
        other_number = activities.find_people(session, staff.practitioner, "9990000026")
    assert [choice.person_id for choice in by_name] == [person.id]
    assert [choice.person_id for choice in by_family] == [person.id]
    assert [choice.person_id for choice in by_number] == [person.id]
    assert by_name[0].label == "Siôn O'Brien · born 11/05/1990 · NHS 999 000 0018"
    assert wildcard == [] and other_number == []


def test_codes_used_by_forms_are_the_active_ones(engine, staff):
    _deactivate_service(engine, staff)
    with db.reading(engine) as session:
        codes = [item.code for item in activities.service_choices(session, staff.practitioner)]
        labels = activities.service_labels(session, staff.practitioner)
        everything = code_lists.labels(session, CodeList.ONWARD_SERVICE)
    assert "crisis_team" not in codes and labels == everything

