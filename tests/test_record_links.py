"""Opening one record by its id (`?id=…`): odd ids get a plain message, never an exception; a missing
id and another team's record read the same and leave the same denied audit row (issue #14, items 5
and 6). Services: people, screening (and its summary), activities. Pages: People, Screening summary."""

import pytest
from sqlmodel import select

from models import AuditEvent
from services import activities, db, people, screening
from services.errors import NotFound, PermissionDenied
from services.permissions import NO_SUCH_RECORD
from tests.conftest import shown_errors
from tests.test_activities import mappa
from tests.test_screening import make_person, start
from ui.record_id import LARGEST_ID, NOT_A_RECORD_ID, parse_record_id

PEOPLE = "pages/4_People.py"
SUMMARY = "pages/6_Screening_summary.py"
THIRTY_NINES = "9" * 30
ODD_IDS = [THIRTY_NINES, "-1", "0", "1e3", "١٢", " 12", "12 ", "１２", "1_000", "+5", "0x1f", str(LARGEST_ID + 1)]


# --- the one parser ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*ODD_IDS, "", None, "abc", "12.0", "1" * 400])
def test_anything_but_a_positive_64_bit_whole_number_is_not_an_id(text):
    assert parse_record_id(text) is None


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("42", 42), ("007", 7), (str(LARGEST_ID), LARGEST_ID)])
def test_ids_are_read(text, number):
    assert parse_record_id(text) == number


# --- the pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [PEOPLE, SUMMARY])
@pytest.mark.parametrize("odd", [THIRTY_NINES, "-1", "0", "1e3", "١٢", " 12"])
def test_an_odd_id_gets_a_plain_message_and_no_exception(app_test, sqlite_staff, page, odd):
    test = app_test(page, sqlite_staff.team_lead, {"id": odd}).run()
    assert not test.exception, test.exception
    assert shown_errors(test) == [NOT_A_RECORD_ID]
    assert not test.dataframe and not test.main.text  # no record, nobody's details (the sidebar names the user)


def _denials(engine, user) -> list[tuple[str, str, int]]:
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.user_id == user.id, AuditEvent.outcome == "denied")
                            .order_by(AuditEvent.id)).all()
    return [(row.action, row.entity, row.entity_id) for row in rows]


def test_people_page_answers_a_missing_id_as_another_teams(app_test, sqlite_engine, sqlite_staff):
    theirs = make_person(sqlite_engine, sqlite_staff, team=sqlite_staff.other_team)
    missing = theirs.id + 1000
    answers = []
    for person_id in (theirs.id, missing):
        test = app_test(PEOPLE, sqlite_staff.practitioner, {"id": str(person_id)}).run()
        assert not test.exception, test.exception
        answers.append(shown_errors(test))
    assert answers == [[NO_SUCH_RECORD], [NO_SUCH_RECORD]]
    assert _denials(sqlite_engine, sqlite_staff.practitioner) == [
        ("view_person", "person", theirs.id), ("view_person", "person", missing)]


def test_summary_page_answers_a_missing_id_as_another_teams(app_test, sqlite_engine, sqlite_staff):
    theirs = start(sqlite_engine, sqlite_staff)
    missing = theirs.id + 1000
    answers = []
    for screening_id in (theirs.id, missing):
        test = app_test(SUMMARY, sqlite_staff.other_team_practitioner, {"id": str(screening_id)}).run()
        assert not test.exception, test.exception
        answers.append(shown_errors(test))
    assert answers == [[NO_SUCH_RECORD], [NO_SUCH_RECORD]]
    assert _denials(sqlite_engine, sqlite_staff.other_team_practitioner) == [
        ("view_screening", "screening", theirs.id), ("view_screening", "screening", missing)]


# --- the services -----------------------------------------------------------------------------


def _probe(engine, user, call, record_id) -> str:
    with pytest.raises(PermissionDenied) as refused, db.writing(engine) as session:
        call(session, user, record_id)
    assert not isinstance(refused.value, NotFound)  # the kind of refusal gives nothing away either
    return str(refused.value)


def _activity(engine, staff):
    with db.writing(engine) as session:
        return activities.log_activity(session, staff.practitioner, mappa())


@pytest.mark.parametrize(("name", "make", "call", "action", "entity"), [
    ("person", lambda e, s: make_person(e, s), people.view_person, "view_person", "person"),
    ("screening", start, screening.get_screening, "view_screening", "screening"),
    ("summary", start, screening.sharing_summary, "view_screening", "screening"),
    ("activity", _activity, activities.get_activity, "view_activity", "activity"),
    ("opened activity", _activity, activities.open_activity, "view_activity", "activity"),
])
def test_a_missing_id_reads_and_is_audited_as_another_teams(engine, staff, name, make, call, action, entity):
    theirs = make(engine, staff)
    intruder = staff.other_team_practitioner
    missing = theirs.id + 1000
    assert _probe(engine, intruder, call, theirs.id) == _probe(engine, intruder, call, missing) == NO_SUCH_RECORD
    assert _denials(engine, intruder) == [(action, entity, theirs.id), (action, entity, missing)]


def test_screening_starts_answer_a_missing_id_as_another_teams(engine, staff):
    theirs = start(engine, staff)
    intruder = staff.other_team_lead
    for call, record_id in ((screening.start_from_request, theirs.request_id),
                            (screening.start_for_person, theirs.person_id)):
        assert _probe(engine, intruder, call, record_id) == _probe(engine, intruder, call, record_id + 1000)
    assert [entity for _action, entity, _id in _denials(engine, intruder)] == ["request"] * 2 + ["person"] * 2


# --- viewing one activity is audited ----------------------------------------------------------


def test_opening_an_activity_is_audited_once_per_opening(engine, staff):
    activity = _activity(engine, staff)
    with db.writing(engine) as session:
        shown = activities.open_activity(session, staff.team_lead, activity.id)
    with db.reading(engine) as session:  # a redraw of the same record in the same browser session
        activities.open_activity(session, staff.team_lead, activity.id, audited=False)
    assert shown.id == activity.id
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "view_activity")).all()
    assert [(row.user_id, row.entity, row.entity_id, row.outcome) for row in rows] == [
        (staff.team_lead.id, "activity", activity.id, "success")]


def test_opening_an_activity_with_its_audit_needs_a_writing_session(engine, staff):
    activity = _activity(engine, staff)
    with pytest.raises(RuntimeError, match="read-only"), db.reading(engine) as session:
        activities.open_activity(session, staff.team_lead, activity.id)
