"""A person's record: details and history, with every view audited and other teams refused."""

from datetime import timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, Screening
from services import clock, db, person_record, screening
from services.errors import PermissionDenied
from services.referrals import NewReferral, add_referral
from services.screening import InstrumentAnswers, Instruments, Outcome
from tests.test_screening import PHQ9_MILD, an_hour_ago, complete, make_person, make_request, save, valid_screening


def open_record(engine, user, person_id):
    with db.writing(engine) as session:
        return person_record.open_record(session, user, person_id)


def test_the_record_holds_requests_screenings_scores_over_time_and_referrals(engine, staff):
    first = valid_screening(engine, staff)
    complete(engine, staff, first)
    with db.reading(engine) as session:
        person_id = session.get(Screening, first).person_id
    with db.writing(engine) as session:
        second = screening.start_for_person(session, staff.practitioner, person_id)
    save(engine, staff, second.id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(PHQ9_MILD | {"item1": 3, "item2": 3})}))
    with db.writing(engine) as session:
        add_referral(session, staff.practitioner, first, NewReferral("housing", an_hour_ago()[0]))
    later_request = make_request(engine, staff, None, received_at=clock.now() - timedelta(minutes=5))
    with db.writing(engine) as session:
        later = session.get(type(later_request), later_request.id)
        later.person_id = person_id
    record = open_record(engine, staff.practitioner, person_id)
    assert record.person.given_name == "Siôn" and record.age_today is not None
    with db.reading(engine) as session:
        first_request_id = session.get(Screening, first).request_id
    assert [row.request_id for row in record.requests] == [later_request.id, first_request_id]  # newest first
    assert record.requests[0].request_type == "Screening or assessment"
    assert {row["screening_id"] for row in record.screenings} == {first, second.id}
    assert [(point.instrument, point.total, point.band) for point in record.scores] == [("PHQ-9", 5, "mild")]
    assert [row.service for row in record.referrals] == ["Housing"]
    assert [column.key for column in record.screening_columns][0] == "screening_id"


def test_viewing_a_record_is_audited_as_view_person(engine, staff):
    person = make_person(engine, staff)
    open_record(engine, staff.team_lead, person.id)
    with db.reading(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "view_person")).one()
    assert (event.user_id, event.entity, event.entity_id) == (staff.team_lead.id, "person", person.id)


def test_scores_over_time_are_oldest_first_and_leave_out_drafts(engine, staff):
    first = valid_screening(engine, staff)
    complete(engine, staff, first)
    with db.reading(engine) as session:
        person_id = session.get(Screening, first).person_id
    with db.writing(engine) as session:
        draft = screening.start_for_person(session, staff.practitioner, person_id)
    save(engine, staff, draft.id, screening.save_instruments,
         Instruments(scored={"phq9": InstrumentAnswers(PHQ9_MILD)}))
    save(engine, staff, draft.id, screening.save_outcome, Outcome("no_further_action"))
    with db.reading(engine) as session:
        points = person_record.score_history(session, staff.practitioner, person_id)
    assert [point.screening_id for point in points] == [first]


def test_another_teams_person_is_refused_and_the_refusal_audited(engine, staff):
    person = make_person(engine, staff, team=staff.other_team)
    with pytest.raises(PermissionDenied):
        open_record(engine, staff.practitioner, person.id)
    with db.reading(engine) as session:
        events = session.exec(select(AuditEvent)).all()
    assert [(event.action, event.outcome) for event in events] == [("view_person", "denied")]


def test_an_administrator_cannot_open_a_persons_record(engine, staff):
    person = make_person(engine, staff)
    with pytest.raises(PermissionDenied):
        open_record(engine, staff.administrator, person.id)
