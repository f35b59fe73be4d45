"""Requests: logging with every check, status changes, allocation, locking, team walls, the queue.

Every test runs on SQLite and on PostgreSQL (the `engine` fixture). The clock is fixed at
NOW so that "future", "overdue" and London dates are exact.
"""

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from models import AuditEvent, CodeItem, OnwardReferral, Person, Request, RequestEvent, Screening, Setting, User
from models.codes import CodeList, RequestStatus
from services import clock, db, people, requests
from services.errors import Conflict, InputErrors, PermissionDenied
from services.people import NewPerson
from services.requests import FirstResponse, NewRequest, RequestFilters

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 12:00 in London too (GMT)
TODAY = date(2026, 3, 10)
S = RequestStatus


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def london(moment: datetime) -> tuple[date, time]:
    local = clock.to_london(moment)
    return local.date(), local.time().replace(second=0, microsecond=0)


def new_request(staff, *, received: datetime | None = None, **changes) -> NewRequest:
    received_on, received_time = london(received or NOW - timedelta(minutes=10))
    values = dict(
        received_on=received_on,
        received_time=received_time,
        source_of_referral="police",
        requester_name="PC Dawn Jones",
        requester_role="Custody sergeant",
        requester_phone="01702 123456",
        site_id=staff.sites[0].id,
        request_type="screening",
        urgency="urgent",
        reason="Detained person appears very distressed and is not eating.",
    )
    values.update(changes)
    return NewRequest(**values)


def log(engine, user, staff, **changes) -> Request:
    with db.writing(engine) as session:
        return requests.log_request(session, user, new_request(staff, **changes))


def count(engine, model) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def written(engine) -> tuple[int, ...]:
    return tuple(count(engine, model) for model in (Request, Person, RequestEvent, AuditEvent))


def fetch(engine, request_id) -> Request:
    with db.reading(engine) as session:
        return session.get(Request, request_id)


def events(engine, request_id) -> list[tuple[str, str | None]]:
    with db.reading(engine) as session:
        rows = session.exec(select(RequestEvent).where(RequestEvent.request_id == request_id)
                            .order_by(RequestEvent.id)).all()
    return [(row.kind, row.detail) for row in rows]


def actions(engine, entity_id=None) -> list[str]:
    with db.reading(engine) as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if entity_id is not None:
            query = query.where(AuditEvent.entity == "request", AuditEvent.entity_id == entity_id)
        return [row.action for row in session.exec(query).all()]


# --- Logging --------------------------------------------------------------------------------


def test_log_a_request_about_a_new_person(engine, staff):
    request = log(engine, staff.practitioner, staff,
                  new_person=NewPerson("Siobhán", "O'Brien", "05/11/1990", nhs_number="943 476 5919"))
    stored = fetch(engine, request.id)
    assert stored.reference == f"R-2026-{request.id:06d}"
    assert stored.status == S.NEW and stored.allocated_to_id is None
    assert stored.received_at == datetime(2026, 3, 10, 11, 50, tzinfo=UTC)
    assert stored.due_at == stored.received_at + timedelta(hours=4)
    assert stored.team_id == staff.team.id and stored.created_by_id == staff.practitioner.id
    with db.reading(engine) as session:
        person = session.get(Person, stored.person_id)
    assert (person.given_name, person.team_id, person.last_contact_on) == ("Siobhán", staff.team.id, TODAY)
    assert events(engine, request.id) == [("received", "logged by Priya Practitioner")]
    assert actions(engine) == ["create_person", "log_request"]


@pytest.mark.parametrize(("urgency", "target"), [
    ("emergency", timedelta(hours=1)), ("urgent", timedelta(hours=4)), ("routine", timedelta(days=3))])
def test_due_time_follows_the_urgency_target(engine, staff, urgency, target):
    request = log(engine, staff.practitioner, staff, urgency=urgency)
    assert request.due_at - request.received_at == target


def test_targets_are_settings(engine, staff):
    with db.writing(engine) as session:
        session.add(Setting(key="target_minutes.urgent", value="30"))
    request = log(engine, staff.practitioner, staff)
    assert request.due_at - request.received_at == timedelta(minutes=30)


def test_received_time_is_london_time_in_summer(engine, staff):
    request = log(engine, staff.practitioner, staff, received_on=date(2025, 7, 1), received_time=time(0, 30))
    assert request.received_at == datetime(2025, 6, 30, 23, 30, tzinfo=UTC)
    assert request.reference.startswith("R-2025-")  # the year on a London calendar


def test_general_advice_needs_no_person(engine, staff):
    request = log(engine, staff.team_lead, staff, request_type="advice")
    assert request.person_id is None


def test_an_existing_person_is_linked_not_copied(engine, staff):
    with db.writing(engine) as session:
        person = people.create_person(session, staff.practitioner, NewPerson("Ann", "Lee", date(1980, 1, 1)))
    request = log(engine, staff.practitioner, staff, person_id=person.id)
    assert request.person_id == person.id and count(engine, Person) == 1


def test_references_are_unique_and_never_reused(engine, staff):
    first = log(engine, staff.practitioner, staff)
    second = log(engine, staff.practitioner, staff)
    with engine.begin() as connection:  # as if the newest request had been purged
        connection.execute(text("DELETE FROM requestevent WHERE request_id = :id"), {"id": second.id})
        connection.execute(text("DELETE FROM request WHERE id = :id"), {"id": second.id})
    third = log(engine, staff.practitioner, staff)
    assert third.id > second.id > first.id
    assert third.reference not in (first.reference, second.reference)


HTML_AND_FORMULAS = ["<script>alert('x')</script>", '=HYPERLINK("http://evil.example","Click")', "<b>bold</b>"]


@pytest.mark.parametrize("typed", HTML_AND_FORMULAS)
def test_html_and_formulas_are_stored_as_typed_in_every_text_field(engine, staff, typed):
    request = log(engine, staff.practitioner, staff, requester_name=typed, requester_role=typed, reason=typed,
                  custody_number=typed[:40], offence=typed, request_type="advice",
                  new_person=NewPerson(typed, typed, "01/01/1980", pnc_reference=typed[:40],
                                       custody_reference=typed[:40], communication_needs=typed))
    stored = fetch(engine, request.id)
    assert [stored.requester_name, stored.requester_role, stored.reason, stored.offence] == [typed] * 4
    assert stored.custody_number == typed[:40]
    with db.reading(engine) as session:
        person = session.get(Person, stored.person_id)
    assert [person.given_name, person.family_name, person.communication_needs] == [typed] * 3
    assert [person.pnc_reference, person.custody_reference] == [typed[:40]] * 2


@pytest.mark.parametrize("name", ["Seán O'Brien", "Siôn Dafydd", "Nguyễn Thị Minh", "عمر الفاروق", "Zoë 🌈 Hart"])
def test_requester_names_round_trip(engine, staff, name):
    request = log(engine, staff.practitioner, staff, requester_name=name)
    assert fetch(engine, request.id).requester_name == name


def _person_born(engine, staff, born: date) -> int:
    with db.writing(engine) as session:
        person = Person(team_id=staff.team.id, given_name="Kim", family_name="Ray", given_name_key="kim",
                        family_name_key="ray", date_of_birth=born, nhs_number_status="not_known")
        session.add(person)
        session.flush()
        return person.id


BAD_REQUESTS = [
    ("received later today", dict(received_time=time(14, 0)), "received_at", "cannot be in the future"),
    ("received tomorrow", dict(received_on=TODAY + timedelta(days=1)), "received_at", "cannot be in the future"),
    ("no received time", dict(received_time=None), "received_at", "both the date and the time"),
    ("no received date or time", dict(received_on=None, received_time=None), "received_at", "Enter the date"),
    ("received before the new person was born",
     dict(received_on=date(2000, 1, 1), new_person=NewPerson("Kim", "Ray", "01/06/2000")), "date_of_birth",
     "before this date of birth"),
    ("new person under 10 on the received date",
     dict(new_person=NewPerson("Kim", "Ray", "11/03/2016")), "date_of_birth", "age of criminal responsibility"),
    ("wrong NHS check digit", dict(new_person=NewPerson("Kim", "Ray", "01/01/1990", nhs_number="9434765918")),
     "nhs_number", "check digit"),
    ("NHS number of 9 digits", dict(new_person=NewPerson("Kim", "Ray", "01/01/1990", nhs_number="943 476 591")),
     "nhs_number", "10 digits"),
    ("NHS number of 11 digits", dict(new_person=NewPerson("Kim", "Ray", "01/01/1990", nhs_number="94347659190")),
     "nhs_number", "10 digits"),
    ("NHS number with letters", dict(new_person=NewPerson("Kim", "Ray", "01/01/1990", nhs_number="943 476 591O")),
     "nhs_number", "only the digits"),
    ("NHS number in full-width digits",
     dict(new_person=NewPerson("Kim", "Ray", "01/01/1990", nhs_number="９４３４７６５９１９")), "nhs_number",
     "full-width"),
    ("date of birth 29/02 in a non-leap year", dict(new_person=NewPerson("Kim", "Ray", "29/02/1990")),
     "date_of_birth", "not a leap year"),
    ("no way to reply", dict(requester_phone="", requester_email=" "), "requester_phone", "phone number or an e-mail"),
    ("e-mail without @", dict(requester_email="dawn.jones.police.uk"), "requester_email", "exactly one @"),
    ("phone with letters", dict(requester_phone="01702 CALL ME"), "requester_phone", "only the digits"),
    ("reason over its limit", dict(reason="x" * 2001), "reason", "at most 2,000 characters"),
    ("no reason", dict(reason="   "), "reason", "required"),
    ("no requester name", dict(requester_name=""), "requester_name", "required"),
    ("offence over its limit", dict(offence="x" * 201), "offence", "at most 200"),
    ("custody number over its limit", dict(custody_number="x" * 41), "custody_number", "at most 40"),
    ("unknown source of referral", dict(source_of_referral="martians"), "source_of_referral", "not an active choice"),
    ("no source of referral", dict(source_of_referral=None), "source_of_referral", "Choose"),
    ("unknown request type", dict(request_type="gossip"), "request_type", "not an active choice"),
    ("unknown urgency", dict(urgency="whenever"), "urgency", "emergency, urgent or routine"),
    ("no site", dict(site_id=None), "site_id", "your team's sites"),
    ("prison release without a date", dict(request_type="prison_release"), "prison_release_on", "release date"),
    ("arrest in the future", dict(arrested_on=TODAY, arrested_time=time(13, 0)), "arrested_at", "future"),
    ("hearing date without a time", dict(next_hearing_on=TODAY + timedelta(days=1)), "next_hearing_at",
     "both the date and the time"),
    ("a person chosen and typed", dict(person_id=1, new_person=NewPerson("Kim", "Ray", "01/01/1990")), "person",
     "not both"),
]


@pytest.mark.parametrize(("why", "changes", "field", "says"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_is_refused_for_its_field_and_nothing_is_written(engine, staff, why, changes, field, says):
    before = written(engine)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, new_request(staff, **changes))
    assert field in refused.value.errors, refused.value.errors
    assert says in refused.value.errors[field]
    assert written(engine) == before


def test_another_teams_site_is_refused(engine, staff):
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, new_request(staff, site_id=staff.sites[2].id))
    assert "site_id" in refused.value.errors


def test_a_withdrawn_code_is_refused(engine, staff):
    with db.writing(engine) as session:
        item = session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.SOURCE_OF_REFERRAL,
                                                   CodeItem.code == "police")).one()
        item.active = False
        session.add(item)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, new_request(staff))
    assert "withdrawn" in refused.value.errors["source_of_referral"]


@pytest.mark.parametrize(("born", "says"), [(date(2016, 6, 1), "age of criminal responsibility"),
                                            (date(2026, 3, 11), "was born on 11/03/2026")])
def test_existing_person_born_too_late_for_the_received_date(engine, staff, born, says):
    person_id = _person_born(engine, staff, born)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, new_request(staff, person_id=person_id))
    assert says in refused.value.errors["received_at"]
    assert count(engine, Request) == 0


def test_every_problem_is_reported_at_once(engine, staff):
    bad = new_request(staff, received_time=time(18, 0), requester_phone="", reason="",
                      new_person=NewPerson("", "Ray", "31/02/1990", nhs_number="123"))
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, bad)
    assert {"received_at", "requester_phone", "reason", "given_name", "date_of_birth", "nhs_number"} <= set(
        refused.value.errors)


def test_a_likely_duplicate_person_needs_confirmation(engine, staff):
    log(engine, staff.practitioner, staff, new_person=NewPerson("Siobhán", "O'Brien", "05/11/1990"))
    before = written(engine)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, staff.practitioner,
                             new_request(staff, new_person=NewPerson("Siobhan", "OBrien", "05/11/1990")))
    assert "1 person already on record" in refused.value.errors["confirm_new_person"]
    assert written(engine) == before
    confirmed = log(engine, staff.practitioner, staff, new_person=NewPerson("Siobhan", "OBrien", "05/11/1990"),
                    confirm_new_person=True)
    assert count(engine, Person) == 2 and confirmed.person_id is not None


def test_another_teams_person_cannot_be_used(engine, staff):
    with db.writing(engine) as session:
        theirs = people.create_person(session, staff.other_team_practitioner, NewPerson("Ann", "Lee", "01/01/1980"))
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.log_request(session, staff.practitioner, new_request(staff, person_id=theirs.id))
    assert count(engine, Request) == 0


def test_administrators_do_not_log_requests(engine, staff):
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.log_request(session, staff.administrator, new_request(staff))


def test_a_log_that_fails_part_way_leaves_nothing(engine, staff, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(requests.audit, "record", broken)
    with pytest.raises(RuntimeError), db.writing(engine) as session:
        requests.log_request(session, staff.practitioner,
                             new_request(staff, new_person=NewPerson("Kim", "Ray", "01/01/1990")))
    monkeypatch.undo()
    assert written(engine)[:3] == (0, 0, 0)


# --- Status changes -------------------------------------------------------------------------

ALL = list(S)
ALLOWED = {(S.NEW, S.ALLOCATED), (S.ALLOCATED, S.IN_PROGRESS), (S.IN_PROGRESS, S.CLOSED), (S.CLOSED, S.REOPENED),
           (S.REOPENED, S.ALLOCATED), (S.REOPENED, S.IN_PROGRESS), (S.REOPENED, S.CLOSED)}


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("new", ALL)
def test_the_table_of_allowed_status_changes(current, new):
    assert requests.can_change_status(current, new) is ((current, new) in ALLOWED)


def allocate(engine, user, request, to_user, version=None):
    with db.writing(engine) as session:
        return requests.allocate(session, user, request.id, version or fetch(engine, request.id).version, to_user.id)


def respond(engine, user, request, *, at: datetime | None = None, mechanism="02", summary="Advised custody staff."):
    day, clock_time = london(at or NOW - timedelta(minutes=5))
    with db.writing(engine) as session:
        return requests.record_first_response(session, user, request.id, fetch(engine, request.id).version,
                                              FirstResponse(day, clock_time, mechanism, summary))


def close(engine, user, request, reason="advice_given"):
    with db.writing(engine) as session:
        return requests.close_request(session, user, request.id, fetch(engine, request.id).version, reason)


def reopen(engine, user, request, reason="Police asked again"):
    with db.writing(engine) as session:
        return requests.reopen_request(session, user, request.id, fetch(engine, request.id).version, reason)


def test_the_whole_journey_with_its_timeline_and_audit(engine, staff):
    request = log(engine, staff.practitioner, staff)
    allocate(engine, staff.team_lead, request, staff.practitioner)
    stored = fetch(engine, request.id)
    assert (stored.status, stored.allocated_to_id, stored.allocated_at) == (S.ALLOCATED, staff.practitioner.id, NOW)
    respond(engine, staff.practitioner, request, summary="Advised: request a screening at 14:00.")
    stored = fetch(engine, request.id)
    assert stored.status == S.IN_PROGRESS
    assert (stored.first_response_at, stored.first_response_mechanism) == (NOW - timedelta(minutes=5), "02")
    assert stored.first_response_summary == "Advised: request a screening at 14:00."
    close(engine, staff.practitioner, request, "screened")
    stored = fetch(engine, request.id)
    assert (stored.status, stored.closed_at, stored.closure_reason) == (S.CLOSED, NOW, "screened")
    reopen(engine, staff.team_lead, request)
    stored = fetch(engine, request.id)
    assert (stored.status, stored.closed_at, stored.closure_reason) == (S.REOPENED, None, None)
    assert events(engine, request.id) == [
        ("received", "logged by Priya Practitioner"),
        ("allocated", "to Priya Practitioner"),
        ("first_response", "Telephone"),
        ("in_progress", None),
        ("closed", "Screened"),
        ("reopened", "Police asked again"),
    ]
    assert actions(engine, request.id) == ["log_request", "allocate_request", "record_first_response",
                                           "close_request", "reopen_request"]
    assert stored.updated_by_id == staff.team_lead.id and stored.version == 6


def test_a_reopened_request_can_be_allocated_worked_and_closed_again(engine, staff):
    request = log(engine, staff.practitioner, staff)
    allocate(engine, staff.team_lead, request, staff.practitioner)
    respond(engine, staff.practitioner, request)
    close(engine, staff.practitioner, request)
    reopen(engine, staff.team_lead, request)
    allocate(engine, staff.team_lead, request, staff.second_practitioner)
    assert fetch(engine, request.id).status == S.ALLOCATED
    with db.writing(engine) as session:
        requests.start_work(session, staff.second_practitioner, request.id, fetch(engine, request.id).version)
    assert fetch(engine, request.id).status == S.IN_PROGRESS
    close(engine, staff.second_practitioner, request, "referred_on")
    assert fetch(engine, request.id).status == S.CLOSED


def test_a_reopened_request_can_be_closed_directly(engine, staff):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.practitioner, request)
    close(engine, staff.practitioner, request)
    reopen(engine, staff.team_lead, request)
    close(engine, staff.team_lead, request, "duplicate")
    assert fetch(engine, request.id).status == S.CLOSED


def test_responding_to_a_new_request_allocates_it_to_the_responder_first(engine, staff):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.second_practitioner, request)
    stored = fetch(engine, request.id)
    assert (stored.status, stored.allocated_to_id) == (S.IN_PROGRESS, staff.second_practitioner.id)
    assert [kind for kind, _detail in events(engine, request.id)] == [
        "received", "allocated", "first_response", "in_progress"]


@pytest.mark.parametrize("step", ["new", "allocated", "closed"])
def test_closing_is_refused_unless_in_progress_or_reopened(engine, staff, step):
    request = log(engine, staff.practitioner, staff)
    if step != "new":
        allocate(engine, staff.team_lead, request, staff.practitioner)
    if step == "closed":
        respond(engine, staff.practitioner, request)
        close(engine, staff.practitioner, request)
    before = written(engine)
    with pytest.raises(InputErrors) as refused:
        close(engine, staff.practitioner, request)
    assert "status" in refused.value.errors and written(engine) == before


@pytest.mark.parametrize(("reason", "says"), [(None, "Choose a closure reason"), ("nonsense", "not an active")])
def test_closing_needs_an_active_closure_reason(engine, staff, reason, says):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.practitioner, request)
    with pytest.raises(InputErrors) as refused:
        close(engine, staff.practitioner, request, reason)
    assert says in refused.value.errors["closure_reason"]
    assert fetch(engine, request.id).status == S.IN_PROGRESS


def test_only_a_team_lead_reopens_and_only_a_closed_request(engine, staff):
    request = log(engine, staff.practitioner, staff)
    with pytest.raises(InputErrors) as refused:
        reopen(engine, staff.team_lead, request)
    assert refused.value.errors == {"status": "Only a closed request can be reopened."}
    respond(engine, staff.practitioner, request)
    close(engine, staff.practitioner, request)
    with pytest.raises(PermissionDenied):
        reopen(engine, staff.practitioner, request)
    with pytest.raises(InputErrors) as refused:
        reopen(engine, staff.team_lead, request, reason=" ")
    assert "reopen_reason" in refused.value.errors
    assert fetch(engine, request.id).status == S.CLOSED


def test_start_work_only_from_allocated_or_reopened(engine, staff):
    request = log(engine, staff.practitioner, staff)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.start_work(session, staff.practitioner, request.id, None)
    assert "cannot become in progress" in refused.value.errors["status"]


@pytest.mark.parametrize(("response", "field", "says"), [
    (dict(at=NOW + timedelta(hours=1)), "responded_at", "future"),
    (dict(at=NOW - timedelta(hours=2)), "responded_at", "before the request was received"),
    (dict(mechanism="99"), "contact_mechanism", "Choose how"),
    (dict(summary=""), "summary", "required"),
    (dict(summary="y" * 2001), "summary", "at most 2,000"),
])
def test_bad_first_response_is_refused(engine, staff, response, field, says):
    request = log(engine, staff.practitioner, staff)
    before = written(engine)
    with pytest.raises(InputErrors) as refused:
        respond(engine, staff.practitioner, request, **response)
    assert says in refused.value.errors[field]
    assert written(engine) == before


def test_the_first_response_is_recorded_once(engine, staff):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.practitioner, request)
    with pytest.raises(InputErrors) as refused:
        respond(engine, staff.practitioner, request)
    assert "already recorded" in refused.value.errors["first_response"]


def test_a_closed_request_cannot_be_allocated_or_answered(engine, staff):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.practitioner, request)
    close(engine, staff.practitioner, request)
    with pytest.raises(InputErrors):
        allocate(engine, staff.team_lead, request, staff.second_practitioner)


# --- Allocation -----------------------------------------------------------------------------


def test_a_practitioner_takes_an_unallocated_request_but_not_someone_elses(engine, staff):
    request = log(engine, staff.team_lead, staff)
    with db.writing(engine) as session:
        requests.allocate_to_me(session, staff.practitioner, request.id, fetch(engine, request.id).version)
    assert fetch(engine, request.id).allocated_to_id == staff.practitioner.id
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.allocate_to_me(session, staff.second_practitioner, request.id, fetch(engine, request.id).version)
    assert "already allocated to Priya Practitioner" in refused.value.errors["allocated_to"]
    assert actions(engine, request.id) == ["log_request", "allocate_request_to_self"]


def test_practitioners_cannot_allocate_to_others(engine, staff):
    request = log(engine, staff.practitioner, staff)
    with pytest.raises(PermissionDenied):
        allocate(engine, staff.practitioner, request, staff.second_practitioner)
    assert fetch(engine, request.id).allocated_to_id is None


def test_reallocation_keeps_the_status_and_says_who_from(engine, staff):
    request = log(engine, staff.practitioner, staff)
    allocate(engine, staff.team_lead, request, staff.practitioner)
    respond(engine, staff.practitioner, request)
    allocate(engine, staff.team_lead, request, staff.second_practitioner)
    stored = fetch(engine, request.id)
    assert (stored.status, stored.allocated_to_id) == (S.IN_PROGRESS, staff.second_practitioner.id)
    assert events(engine, request.id)[-1] == ("reallocated", "from Priya Practitioner to Sam Second")
    with pytest.raises(InputErrors) as refused:
        allocate(engine, staff.team_lead, request, staff.second_practitioner)
    assert "already allocated to Sam Second" in refused.value.errors["allocated_to"]


@pytest.mark.parametrize("who", ["other_team_practitioner", "administrator", "inactive"])
def test_allocation_only_to_active_clinical_staff_of_the_team(engine, staff, who):
    request = log(engine, staff.practitioner, staff)
    target = staff.second_practitioner if who == "inactive" else getattr(staff, who)
    if who == "inactive":
        with db.writing(engine) as session:
            row = session.get(User, target.id)
            row.active = False
            session.add(row)
    with pytest.raises(InputErrors) as refused:
        allocate(engine, staff.team_lead, request, target)
    assert "your team" in refused.value.errors["allocated_to"]


def test_allocatable_staff_are_the_teams_practitioners_and_leads(engine, staff):
    with db.reading(engine) as session:
        names = [member.full_name for member in requests.allocatable_staff(session, staff.practitioner)]
    assert names == ["Lee Lead", "Priya Practitioner", "Sam Second"]


def test_moving_all_of_one_practitioners_open_requests(engine, staff):
    mine = [log(engine, staff.practitioner, staff, received=NOW - timedelta(minutes=60 - minute))
            for minute in range(5)]
    for request in mine:
        allocate(engine, staff.team_lead, request, staff.practitioner)
    respond(engine, staff.practitioner, mine[4])
    close(engine, staff.practitioner, mine[4])
    with db.writing(engine) as session:
        moved = requests.reallocate_open_requests(session, staff.team_lead, staff.practitioner.id,
                                                  [staff.second_practitioner.id, staff.team_lead.id])
    assert moved == 4
    owners = [fetch(engine, request.id).allocated_to_id for request in mine]
    assert owners == [staff.second_practitioner.id, staff.team_lead.id, staff.second_practitioner.id,
                      staff.team_lead.id, staff.practitioner.id]  # in turn by due time; the closed one stays
    assert events(engine, mine[0].id)[-1] == ("reallocated", "from Priya Practitioner to Sam Second")
    assert actions(engine).count("reallocate_request") == 4
    assert actions(engine)[-1] == "reallocate_open_requests"


def test_the_move_is_planned_in_words_and_refused_when_the_number_changed_since(engine, staff):
    mine = [log(engine, staff.practitioner, staff, received=NOW - timedelta(minutes=60 - minute))
            for minute in range(5)]
    for request in mine:
        allocate(engine, staff.team_lead, request, staff.practitioner)
    recipients = [staff.second_practitioner.id, staff.team_lead.id]
    with db.reading(engine) as session:
        plan = requests.plan_reallocation(session, staff.team_lead, staff.practitioner.id, recipients)
    assert plan.words() == "5 open requests from Priya Practitioner to Sam Second (3), Lee Lead (2)"
    before = [fetch(engine, request.id).version for request in mine]
    respond(engine, staff.practitioner, mine[0])
    close(engine, staff.practitioner, mine[0])  # meanwhile one is closed: 4 would move, not the 5 confirmed
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.reallocate_open_requests(session, staff.team_lead, staff.practitioner.id, recipients,
                                          expected_count=plan.count)
    assert "has 4 open requests now, not the 5 you confirmed" in refused.value.errors["from_user"]
    assert [fetch(engine, request.id).allocated_to_id for request in mine[1:]] == [staff.practitioner.id] * 4
    assert [fetch(engine, request.id).version for request in mine[1:]] == before[1:]
    with db.writing(engine) as session:
        assert requests.reallocate_open_requests(session, staff.team_lead, staff.practitioner.id, recipients,
                                                 expected_count=4) == 4


@pytest.mark.parametrize(("to", "field"), [([], "to_users"), (["practitioner"], "to_users"),
                                           (["other_team_practitioner"], "to_users")])
def test_moving_requests_refuses_bad_recipients(engine, staff, to, field):
    log(engine, staff.practitioner, staff)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.reallocate_open_requests(session, staff.team_lead, staff.practitioner.id,
                                          [getattr(staff, name).id for name in to])
    assert field in refused.value.errors


def test_practitioners_cannot_move_requests_in_bulk(engine, staff):
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.reallocate_open_requests(session, staff.practitioner, staff.second_practitioner.id,
                                          [staff.practitioner.id])


# --- Optimistic locking ---------------------------------------------------------------------


def test_a_stale_save_is_refused_with_who_and_when_and_nothing_is_overwritten(engine, staff):
    request = log(engine, staff.practitioner, staff)
    shown_version = fetch(engine, request.id).version  # both pages show version 1
    allocate(engine, staff.team_lead, request, staff.second_practitioner, version=shown_version)
    with pytest.raises(Conflict) as refused, db.writing(engine) as session:
        requests.allocate_to_me(session, staff.practitioner, request.id, shown_version)
    assert refused.value.changed_by == "Lee Lead"
    assert "Changed by Lee Lead at 12:00 on 10/03/2026" in str(refused.value)
    assert fetch(engine, request.id).allocated_to_id == staff.second_practitioner.id
    with pytest.raises(Conflict), db.writing(engine) as session:
        requests.record_first_response(session, staff.practitioner, request.id, shown_version,
                                       FirstResponse(TODAY, time(11, 55), "02", "Advice"))
    assert fetch(engine, request.id).first_response_at is None


def test_randomised_interleavings_never_overwrite_silently(engine, staff):
    """Two open pages keep saving from the version they last showed; every stale save is refused."""
    generator = random.Random(20260310)
    request = log(engine, staff.practitioner, staff)
    first_version = fetch(engine, request.id).version
    shown = {"page A": first_version, "page B": first_version}
    accepted = refused = 0
    for _ in range(60):
        page = generator.choice(list(shown))
        if generator.random() < 0.4:  # that page was reloaded first
            shown[page] = fetch(engine, request.id).version
        current = fetch(engine, request.id)
        second = staff.second_practitioner
        target = second if current.allocated_to_id != second.id else staff.team_lead
        try:
            with db.writing(engine) as session:
                requests.allocate(session, staff.team_lead, request.id, shown[page], target.id)
        except Conflict:
            assert shown[page] != current.version
            assert fetch(engine, request.id).allocated_to_id == current.allocated_to_id, "overwritten"
            refused += 1
            continue
        assert shown[page] == current.version, "a stale save was accepted"
        accepted += 1
        shown[page] = fetch(engine, request.id).version
    assert accepted and refused
    assert fetch(engine, request.id).version == first_version + accepted


# --- Team walls and viewing -----------------------------------------------------------------


def test_another_team_sees_nothing_and_each_refusal_is_audited(engine, staff):
    request = log(engine, staff.practitioner, staff)
    outsider = staff.other_team_practitioner
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.open_request(session, outsider, request.id)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.allocate_to_me(session, outsider, request.id, 1)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        requests.allocate(session, staff.other_team_lead, request.id, 1, staff.other_team_practitioner.id)
    with db.reading(engine) as session:
        assert requests.triage_page(session, outsider, RequestFilters()).rows == []
        assert requests.count_requests(session, outsider, RequestFilters()) == 0
        denials = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert [(row.user_id, row.entity_id) for row in denials] == [
        (outsider.id, request.id), (outsider.id, request.id), (staff.other_team_lead.id, request.id)]
    assert fetch(engine, request.id).allocated_to_id is None


def test_a_missing_request_reads_and_is_audited_as_another_teams(engine, staff):
    theirs = log(engine, staff.other_team_practitioner, staff, site_id=staff.sites[2].id)
    for request_id in (999, theirs.id):
        with pytest.raises(PermissionDenied) as refused, db.writing(engine) as session:
            requests.open_request(session, staff.practitioner, request_id)
        assert str(refused.value) == "No such record in your team."
    with db.reading(engine) as session:
        denials = session.exec(select(AuditEvent.entity_id).where(AuditEvent.outcome == "denied")
                               .order_by(AuditEvent.id)).all()
    assert denials == [999, theirs.id]


def test_opening_a_request_audits_the_view_of_it_and_of_its_person(engine, staff):
    request = log(engine, staff.practitioner, staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    with db.writing(engine) as session:
        detail = requests.open_request(session, staff.team_lead, request.id)
    assert detail.person.given_name == "Kim" and detail.site == "Southend custody suite"
    assert (detail.source_of_referral, detail.request_type, detail.created_by) == (
        "Police", "Screening or assessment", "Priya Practitioner")
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.user_id == staff.team_lead.id)).all()
    assert {(row.action, row.entity, row.entity_id) for row in rows} == {
        ("view_person", "person", request.person_id), ("view_request", "request", request.id)}


def test_a_redraw_reads_the_request_without_auditing_it_again(engine, staff):
    request = log(engine, staff.practitioner, staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    with db.reading(engine) as session:
        detail = requests.open_request(session, staff.team_lead, request.id, audited=False)
    assert detail.person.given_name == "Kim"
    with db.reading(engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.user_id == staff.team_lead.id)).all() == []


def test_a_redraw_still_refuses_another_team_and_audits_the_refusal(engine, staff):
    request = log(engine, staff.practitioner, staff)
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        requests.open_request(session, staff.other_team_lead, request.id, audited=False)
    with db.reading(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.user_id == staff.other_team_lead.id)).all()
    assert [(event.action, event.outcome) for event in events] == [("view_request", "denied")]


def test_the_timeline_shows_screenings_and_referrals(engine, staff):
    request = log(engine, staff.practitioner, staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    with db.writing(engine) as session:
        screening = Screening(team_id=staff.team.id, person_id=request.person_id, request_id=request.id,
                              practitioner_id=staff.practitioner.id, status="complete",
                              created_at=NOW - timedelta(minutes=4), completed_at=NOW - timedelta(minutes=2))
        session.add(screening)
        session.flush()
        session.add(OnwardReferral(team_id=staff.team.id, person_id=request.person_id, screening_id=screening.id,
                                   service="crisis_team", referred_on=TODAY, status="made",
                                   created_at=NOW - timedelta(minutes=1), updated_by_id=staff.practitioner.id))
    with db.writing(engine) as session:
        detail = requests.open_request(session, staff.practitioner, request.id)
    assert [(entry.what, entry.by, entry.detail) for entry in detail.timeline] == [
        ("Received", "Priya Practitioner", "logged by Priya Practitioner"),
        ("Screening started", "Priya Practitioner", ""),
        ("Screening completed", "Priya Practitioner", ""),
        ("Onward referral", "Priya Practitioner", "Crisis team, referred 10/03/2026"),
    ]


# --- The triage queue -----------------------------------------------------------------------


def queue(engine, user, filters=None, **kwargs):
    with db.reading(engine) as session:
        return requests.triage_page(session, user, filters or RequestFilters(), **kwargs)


def test_the_queue_is_sorted_by_time_left_and_shows_open_requests_only(engine, staff):
    routine = log(engine, staff.practitioner, staff, urgency="routine")
    emergency = log(engine, staff.practitioner, staff, urgency="emergency")
    urgent = log(engine, staff.practitioner, staff, urgency="urgent")
    done = log(engine, staff.practitioner, staff, urgency="emergency")
    respond(engine, staff.practitioner, done)
    close(engine, staff.practitioner, done)
    page = queue(engine, staff.practitioner)
    assert [row.request_id for row in page.rows] == [emergency.id, urgent.id, routine.id]
    assert page.next_cursor is None
    first = page.rows[0]
    assert (first.reference, first.urgency, first.request_type, first.status, first.site, first.source_of_referral) == (
        emergency.reference, "Emergency", "Screening or assessment", "New", "Southend custody suite", "Police")


@pytest.mark.parametrize(("minutes_ago", "rag"), [(20, "green"), (44, "green"), (45, "amber"), (59, "amber"),
                                                  (60, "red"), (90, "red")])
def test_the_clock_is_red_amber_green(engine, staff, minutes_ago, rag):
    log(engine, staff.practitioner, staff, urgency="emergency", received=NOW - timedelta(minutes=minutes_ago))
    reading = queue(engine, staff.practitioner).rows[0].clock
    assert reading.rag == rag
    assert reading.time_left == timedelta(minutes=60 - minutes_ago)


def test_the_amber_threshold_is_a_setting_and_answered_requests_stop_the_clock(engine, staff):
    with db.writing(engine) as session:
        session.add(Setting(key="amber_percent", value="50"))
    request = log(engine, staff.practitioner, staff, urgency="emergency", received=NOW - timedelta(minutes=31))
    assert queue(engine, staff.practitioner).rows[0].clock.rag == "amber"
    respond(engine, staff.practitioner, request)
    assert queue(engine, staff.practitioner).rows[0].clock is None


def test_each_filter(engine, staff):
    southend, basildon = staff.sites[0].id, staff.sites[1].id
    a = log(engine, staff.practitioner, staff, site_id=southend, request_type="advice", urgency="routine",
            received=datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    b = log(engine, staff.practitioner, staff, site_id=basildon, request_type="screening", urgency="urgent",
            received=datetime(2026, 3, 8, 23, 59, tzinfo=UTC))
    c = log(engine, staff.practitioner, staff, site_id=basildon, request_type="mappa", urgency="emergency")
    allocate(engine, staff.team_lead, c, staff.second_practitioner)
    respond(engine, staff.second_practitioner, c)
    close(engine, staff.second_practitioner, c)
    d = log(engine, staff.practitioner, staff, site_id=southend, urgency="emergency")
    allocate(engine, staff.team_lead, d, staff.second_practitioner)

    def ids(**filters):
        chosen = RequestFilters(**filters)
        with db.reading(engine) as session:
            listed = [row.request_id for row in requests.triage_page(session, staff.team_lead, chosen).rows]
            assert requests.count_requests(session, staff.team_lead, chosen) == len(listed)
        return set(listed)

    assert ids() == {a.id, b.id, d.id}
    assert ids(statuses=()) == {a.id, b.id, c.id, d.id}
    assert ids(statuses=("closed",)) == {c.id}
    assert ids(site_ids=(basildon,), statuses=()) == {b.id, c.id}
    assert ids(request_types=("advice", "mappa"), statuses=()) == {a.id, c.id}
    assert ids(urgencies=("emergency",)) == {d.id}
    assert ids(allocated_to_id=staff.second_practitioner.id) == {d.id}
    assert ids(unallocated_only=True) == {a.id, b.id}
    assert ids(received_from=date(2026, 3, 1), received_to=date(2026, 3, 1)) == {a.id}
    assert ids(received_from=date(2026, 3, 2), received_to=date(2026, 3, 8)) == {b.id}
    assert ids(received_from=date(2026, 3, 9)) == {d.id}


def test_keyset_pages_cover_every_row_once_in_order(engine, staff):
    made = [log(engine, staff.practitioner, staff, received=NOW - timedelta(minutes=minute % 3), urgency="urgent")
            for minute in range(8)]  # three share each due time: ties are broken by id
    seen, cursor, pages = [], None, 0
    while True:
        page = queue(engine, staff.practitioner, after=cursor, size=3)
        seen += [row.request_id for row in page.rows]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = [request.id for request in sorted(made, key=lambda request: (request.due_at, request.id))]
    assert seen == expected and pages == 3


def test_a_practitioners_own_unanswered_work_comes_first_then_unallocated_then_the_rest(engine, staff):
    """New urgent work is never buried under answered requests that were due earlier."""
    answered = [log(engine, staff.practitioner, staff, urgency="emergency", received=NOW - timedelta(hours=5 - hour))
                for hour in range(3)]
    for request in answered:
        respond(engine, staff.practitioner, request)  # answered: in progress, still open, due long ago
    colleagues = log(engine, staff.practitioner, staff, urgency="emergency")
    allocate(engine, staff.team_lead, colleagues, staff.second_practitioner)
    unallocated = log(engine, staff.practitioner, staff, urgency="routine")
    mine_later = log(engine, staff.practitioner, staff, urgency="routine", received=NOW - timedelta(minutes=5))
    allocate(engine, staff.team_lead, mine_later, staff.practitioner)
    mine_sooner = log(engine, staff.practitioner, staff, urgency="urgent")
    allocate(engine, staff.team_lead, mine_sooner, staff.practitioner)

    expected = [mine_sooner.id, mine_later.id, unallocated.id, colleagues.id] + [request.id for request in answered]
    assert [row.request_id for row in queue(engine, staff.practitioner).rows] == expected
    # Keyset pages of two cross every group boundary without losing or repeating a row.
    seen, cursor = [], None
    while True:
        page = queue(engine, staff.practitioner, after=cursor, size=2)
        seen += [row.request_id for row in page.rows]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == expected
    # The export streams the same order for the same person.
    with db.reading(engine) as session:
        exported = session.execute(requests.request_list_query(staff.practitioner, RequestFilters()).statement).all()
    assert [row.request_id for row in exported] == expected
    # For the colleague, their own request leads instead.
    assert queue(engine, staff.second_practitioner).rows[0].request_id == colleagues.id
    # With every status, the closed come after all of these, and keyset pages still cross the boundary.
    close(engine, staff.practitioner, answered[0])
    every = RequestFilters(statuses=())
    closed_last = [*expected[:4], *(request.id for request in answered[1:]), answered[0].id]
    assert [row.request_id for row in queue(engine, staff.practitioner, every).rows] == closed_last
    seen, cursor = [], None
    while True:
        page = queue(engine, staff.practitioner, every, after=cursor, size=3)
        seen += [row.request_id for row in page.rows]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == closed_last


def test_the_list_query_is_what_export_streams(engine, staff):
    log(engine, staff.practitioner, staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    request_list = requests.request_list_query(staff.team_lead, RequestFilters())
    with db.reading(engine) as session:
        rows = session.execute(request_list.statement).mappings().all()
    assert len(rows) == 1
    # The response clock's columns are worked out per row (requests.clock_columns), not selected.
    assert {column.key for column in request_list.columns} - requests.CLOCK_COLUMNS <= set(rows[0].keys())
    assert (rows[0]["given_name"], rows[0]["status"], rows[0]["urgency"]) == ("Kim", "New", "Urgent")


def test_who_may_list_requests(engine, staff):
    with db.writing(engine) as session:
        admin = session.get(User, staff.administrator.id)
        admin.can_export = False
        session.add(admin)
    staff.administrator.can_export = True  # granted export (off for administrators by default)
    requests.request_list_query(staff.administrator, RequestFilters())  # export needs the same rows
    with pytest.raises(PermissionDenied):
        requests.request_list_query(admin, RequestFilters())
