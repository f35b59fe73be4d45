"""Retention: who is past it (at the day boundaries), and a deletion that removes a person's whole
record in one transaction, leaves one contentless audit row, and is refused to anyone but an
administrator. On SQLite and PostgreSQL."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import SQLModel, func, select

import manage
from models import (
    Activity,
    AuditEvent,
    InstrumentResult,
    OnwardReferral,
    Person,
    Request,
    RequestEvent,
    Screening,
    ScreeningAmendment,
    ScreeningVulnerability,
    Setting,
)
from services import audit, db, retention
from services.errors import InputErrors, PermissionDenied
from services.retention import ADULT, CHILD, RetentionRule

TODAY = date(2025, 6, 15)
DEFAULT_RULE = RetentionRule(20, 25)
SHORTER_MENTAL_HEALTH_RULE = RetentionRule(8, 25)


def _shorter_mental_health_period(engine):
    with db.writing(engine) as session:
        session.add(Setting(key="retention_adult_years", value="8"))


def _person(engine, staff, given="Siân", *, date_of_birth=None, last_contact_on=None, team=None) -> int:
    with db.writing(engine) as session:
        person = Person(given_name=given, family_name="O'Brien", given_name_key=given.lower(),
                        family_name_key="obrien", nhs_number_status="not_known", date_of_birth=date_of_birth,
                        last_contact_on=last_contact_on, team_id=(team or staff.team).id,
                        created_at=datetime(2000, 1, 1, tzinfo=UTC))
        session.add(person)
        session.flush()
        return person.id


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def _request(session, staff, person_id, received_on: date) -> Request:
    request = Request(received_at=_at(received_on), source_of_referral="E1", requester_name="PC Jones",
                      request_type="screening", urgency="routine", reason="Seemed confused in custody",
                      team_id=staff.team.id, site_id=staff.sites[0].id, person_id=person_id, status="closed",
                      due_at=_at(received_on) + timedelta(days=3), created_by_id=staff.practitioner.id)
    session.add(request)
    session.flush()
    return request


def _full_record(engine, staff, person_id, day: date) -> None:
    """A request with its timeline, a screening with everything hanging off it, a referral, an activity."""
    with db.writing(engine) as session:
        request = _request(session, staff, person_id, day)
        session.add(RequestEvent(request_id=request.id, at=_at(day), kind="received", detail="logged"))
        screening = Screening(team_id=staff.team.id, person_id=person_id, request_id=request.id,
                              practitioner_id=staff.practitioner.id, status="complete", screened_at=_at(day),
                              created_at=_at(day))
        session.add(screening)
        session.flush()
        session.add_all([
            ScreeningVulnerability(screening_id=screening.id, code="mental_health"),
            InstrumentResult(screening_id=screening.id, instrument="phq9", scoring_version="1",
                             answers={"1": 2}, total=2),
            ScreeningAmendment(screening_id=screening.id, amended_at=_at(day), amended_by_id=staff.practitioner.id,
                               reason="typo", changes={"outcome": ["a", "b"]}),
            OnwardReferral(team_id=staff.team.id, person_id=person_id, screening_id=screening.id,
                           service="housing", referred_on=day, status="made"),
            Activity(kind="mappa_meeting", activity_on=day, team_id=staff.team.id,
                     practitioner_id=staff.practitioner.id, person_id=person_id),
        ])


def _queue(engine, user, today=TODAY):
    with db.reading(engine) as session:
        return retention.review_queue(session, user, today=today)


def _due(engine, staff, today=TODAY) -> dict[int, str]:
    return {case.person_id: case.kind for case in _queue(engine, staff.administrator, today).cases}


# --- The rule, without a database -------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_of_birth", "last_contact", "expected"),
    [
        (date(1970, 1, 1), date(2005, 6, 14), (ADULT, date(2025, 6, 14))),
        (None, date(2005, 6, 14), (ADULT, date(2025, 6, 14))),  # no date of birth: the adult rule
        (date(1990, 1, 1), date(2008, 1, 1), (ADULT, date(2028, 1, 1))),  # 18 that day
        # A child's mental health record: the Code's 20 years after the last contact is the longer.
        (date(1990, 1, 1), date(2007, 12, 31), (CHILD, date(2027, 12, 31))),
        (date(2000, 2, 29), date(2015, 5, 1), (CHILD, date(2035, 5, 1))),
    ],
)
def test_the_rule_with_the_codes_periods(date_of_birth, last_contact, expected):
    assert retention.retained_until(date_of_birth, last_contact, DEFAULT_RULE) == expected


@pytest.mark.parametrize(
    ("date_of_birth", "last_contact", "expected"),
    [
        (date(1990, 1, 1), date(2006, 12, 31), date(2015, 1, 1)),  # 16 at the last contact: the 25th birthday
        (date(1990, 1, 1), date(2007, 1, 1), date(2016, 1, 1)),  # 17 that day: the 26th birthday
        (date(1990, 1, 1), date(2007, 12, 31), date(2016, 1, 1)),  # 17 on the eve of 18: still the 26th
        (date(2000, 2, 29), date(2015, 5, 1), date(2025, 3, 1)),  # 15; no 29 February in 2025
        (date(2004, 2, 29), date(2021, 3, 1), date(2030, 3, 1)),  # 17 (born on 29 February); 2030 is common
        (date(2004, 2, 29), date(2022, 2, 28), date(2030, 3, 1)),  # the day before an 18th on 1 March
        (date(2010, 7, 1), date(2020, 7, 1), date(2035, 7, 1)),  # 10 at the last contact
    ],
)
def test_where_the_childrens_rule_is_the_longer_it_keeps_to_the_25th_or_the_26th_birthday(
        date_of_birth, last_contact, expected):
    """An organisation that keeps mental health records 8 years: children's records still follow the Code."""
    assert retention.retained_until(date_of_birth, last_contact, SHORTER_MENTAL_HEALTH_RULE) == (CHILD, expected)


# --- The queue at its boundaries ---------------------------------------------------------------


def test_adult_twenty_years_after_last_contact_yesterday_is_due_today_is_not(engine, staff):
    due = _person(engine, staff, "Due", date_of_birth=date(1970, 1, 1), last_contact_on=date(2005, 6, 14))
    kept = _person(engine, staff, "Kept", date_of_birth=date(1970, 1, 1), last_contact_on=date(2005, 6, 15))
    assert _due(engine, staff) == {due: ADULT}
    assert kept not in _due(engine, staff)
    assert set(_due(engine, staff, TODAY + timedelta(days=1))) == {due, kept}


def test_child_who_turned_25_yesterday_is_due_one_turning_25_tomorrow_is_not(engine, staff):
    _shorter_mental_health_period(engine)  # so that the children's rule is the longer one
    due = _person(engine, staff, "Due", date_of_birth=date(2000, 6, 14), last_contact_on=date(2015, 6, 1))
    kept = _person(engine, staff, "Kept", date_of_birth=date(2000, 6, 16), last_contact_on=date(2015, 6, 1))
    birthday_today = _person(engine, staff, "Today", date_of_birth=date(2000, 6, 15), last_contact_on=date(2015, 6, 1))
    assert _due(engine, staff) == {due: CHILD}
    assert set(_due(engine, staff, date(2025, 6, 17))) == {due, kept, birthday_today}


def test_the_latest_contact_anywhere_in_the_record_counts(engine, staff):
    """A stale last_contact_on must never shorten what is kept."""
    stale = _person(engine, staff, "Stale", date_of_birth=date(1970, 1, 1), last_contact_on=date(2001, 1, 1))
    no_date = _person(engine, staff, "Undated", date_of_birth=date(1970, 1, 1))
    old_only = _person(engine, staff, "Old", date_of_birth=date(1970, 1, 1))
    with db.writing(engine) as session:
        _request(session, staff, stale, date(2010, 3, 1))  # a later request than last_contact_on says
        session.add(OnwardReferral(team_id=staff.team.id, person_id=old_only, service="housing",
                                   referred_on=date(2003, 1, 1), status="made"))
    queue = _queue(engine, staff.administrator)
    by_id = {case.person_id: case for case in queue.cases}
    assert stale not in by_id
    assert no_date in by_id and by_id[no_date].last_contact_on == date(2000, 1, 1)  # when first recorded
    assert by_id[old_only].last_contact_on == date(2003, 1, 1)


def test_the_settings_decide(engine, staff):
    person = _person(engine, staff, date_of_birth=date(1970, 1, 1), last_contact_on=date(2015, 1, 1))
    assert person not in _due(engine, staff)
    with db.writing(engine) as session:
        session.add(Setting(key="retention_adult_years", value="8"))
    queue = _queue(engine, staff.administrator)
    assert queue.rule == RetentionRule(8, 25) and [case.person_id for case in queue.cases] == [person]


def test_a_child_under_the_codes_periods_is_kept_twenty_years_after_the_last_contact(engine, staff):
    turned_25 = _person(engine, staff, "Young", date_of_birth=date(2000, 6, 14), last_contact_on=date(2015, 6, 1))
    assert turned_25 not in _due(engine, staff)
    assert _due(engine, staff, date(2035, 6, 2)) == {turned_25: CHILD}


def test_a_young_person_seventeen_at_the_last_contact_is_kept_to_the_26th_birthday(engine, staff):
    _shorter_mental_health_period(engine)
    seventeen = _person(engine, staff, "Seventeen", date_of_birth=date(1999, 6, 14), last_contact_on=date(2017, 1, 1))
    assert seventeen not in _due(engine, staff, date(2024, 6, 15))  # the day after the 25th birthday: kept
    assert seventeen not in _due(engine, staff, date(2025, 6, 14))  # the 26th birthday: kept through it
    assert _due(engine, staff, date(2025, 6, 15)) == {seventeen: CHILD}


def test_the_queue_counts_adults_and_children_and_names_no_one(engine, staff):
    _shorter_mental_health_period(engine)
    _person(engine, staff, "Ann", date_of_birth=date(1970, 1, 1), last_contact_on=date(2001, 1, 1))
    _person(engine, staff, "Bea", date_of_birth=date(1990, 1, 1), last_contact_on=date(2006, 1, 1),
            team=staff.other_team)
    queue = _queue(engine, staff.administrator)
    assert (queue.total, queue.adults, queue.children) == (2, 1, 1)
    assert {queue.team_names[case.team_id] for case in queue.cases} == {staff.team.name, staff.other_team.name}
    assert not any(hasattr(case, "given_name") or hasattr(case, "date_of_birth") for case in queue.cases)


@pytest.mark.parametrize("role", ["practitioner", "team_lead"])
def test_only_an_administrator_may_review(engine, staff, role):
    with pytest.raises(PermissionDenied):
        _queue(engine, getattr(staff, role))


# --- Deletion ---------------------------------------------------------------------------------


def _counts(engine) -> dict[str, int]:
    with db.reading(engine) as session:
        return {
            model.__name__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Person, Request, RequestEvent, Screening, ScreeningVulnerability, InstrumentResult,
                          ScreeningAmendment, OnwardReferral, Activity)
        }


def _delete(engine, user, person_ids, today=TODAY):
    with db.writing(engine) as session:
        return retention.delete_past_retention(session, user, person_ids, today=today)


def test_deletion_removes_the_whole_record_and_leaves_only_a_contentless_audit_row(engine, staff):
    gone = _person(engine, staff, "Zoë", date_of_birth=date(1970, 1, 1))
    _full_record(engine, staff, gone, date(2004, 5, 1))
    kept = _person(engine, staff, "Kept", date_of_birth=date(1970, 1, 1))
    _full_record(engine, staff, kept, date(2024, 5, 1))
    before = _counts(engine)

    [deleted] = _delete(engine, staff.administrator, [gone])
    assert (deleted.requests, deleted.screenings, deleted.referrals, deleted.activities_unlinked) == (1, 1, 1, 1)
    after = _counts(engine)
    assert after == {name: count - (0 if name == "Activity" else 1) for name, count in before.items()}
    with db.reading(engine) as session:
        assert session.get(Person, gone) is None
        activities = session.exec(select(Activity.person_id).order_by(Activity.id)).all()
        assert activities == [None, kept]  # the team's MAPPA meeting stays, without the person
        [row] = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_delete")).all()
    assert (row.user_id, row.entity, row.entity_id, row.outcome) == (staff.administrator.id, "person", gone,
                                                                     audit.SUCCESS)
    for content in ("Zoë", "O'Brien", "PC Jones", "confused", "1970", "housing", "mental"):
        assert content not in row.detail
    assert row.detail == ("adult rule, kept until 01/05/2024; deleted 1 requests, 1 screenings, "
                          "1 onward referrals; 1 activities unlinked")


def test_all_or_nothing_when_one_chosen_record_is_no_longer_due(engine, staff):
    due = _person(engine, staff, "Due", date_of_birth=date(1970, 1, 1))
    _full_record(engine, staff, due, date(2004, 5, 1))
    recontacted = _person(engine, staff, "Back", date_of_birth=date(1970, 1, 1), last_contact_on=date(2003, 1, 1))
    with db.writing(engine) as session:
        _request(session, staff, recontacted, date(2025, 6, 1))  # came back since the review
    before = _counts(engine)
    with pytest.raises(InputErrors, match=f"person {recontacted}"):
        _delete(engine, staff.administrator, [due, recontacted])
    assert _counts(engine) == before


def test_a_failure_part_way_deletes_nothing(engine, staff, monkeypatch):
    first = _person(engine, staff, "First", date_of_birth=date(1970, 1, 1))
    _full_record(engine, staff, first, date(2003, 5, 1))
    second = _person(engine, staff, "Second", date_of_birth=date(1970, 1, 1))
    _full_record(engine, staff, second, date(2003, 5, 1))
    before = _counts(engine)
    deleted_people = []
    real_record = audit.record

    def fail_on_the_second(session, user, action, **kwargs):
        deleted_people.append(kwargs.get("entity_id"))
        if len(deleted_people) == 2:
            raise RuntimeError("the server went away")
        return real_record(session, user, action, **kwargs)

    monkeypatch.setattr(audit, "record", fail_on_the_second)
    with pytest.raises(RuntimeError):
        _delete(engine, staff.administrator, [first, second])
    monkeypatch.undo()
    assert _counts(engine) == before
    with db.reading(engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "retention_delete")).all() == []


@pytest.mark.parametrize("role", ["practitioner", "team_lead"])
def test_practitioners_and_team_leads_may_not_delete(engine, staff, role):
    person = _person(engine, staff, date_of_birth=date(1970, 1, 1), last_contact_on=date(2001, 1, 1))
    user = getattr(staff, role)
    with pytest.raises(PermissionDenied):
        _delete(engine, user, [person])
    with db.reading(engine) as session:
        assert session.get(Person, person) is not None
        denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == audit.DENIED)).one()
    assert (denial.user_id, denial.action) == (user.id, "review_retention")


def test_nothing_chosen_is_refused(engine, staff):
    with pytest.raises(InputErrors):
        _delete(engine, staff.administrator, [])


def test_every_reference_to_a_deleted_row_is_handled():
    """A new table pointing at a person, request or screening must be added to retention first."""
    references = {
        (table.name, key.parent.name)
        for table in SQLModel.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table.name in retention.DELETED_TABLES
    }
    assert references == set(retention.HANDLED_REFERENCES)


# --- The command line -------------------------------------------------------------------------


def test_manage_retention_review_prints_counts_and_ids_but_no_names(sqlite_engine, sqlite_staff, capsys):
    today = date.today()  # the command has no --today; dates are far from any boundary
    adult = _person(sqlite_engine, sqlite_staff, "Hywel", date_of_birth=date(1950, 1, 1),
                    last_contact_on=retention.add_years(today, -30))
    child = _person(sqlite_engine, sqlite_staff, "Ffion", date_of_birth=retention.add_years(today, -40),
                    last_contact_on=retention.add_years(today, -25))
    _person(sqlite_engine, sqlite_staff, "Recent", date_of_birth=date(1980, 1, 1), last_contact_on=today)
    manage.main(["retention-review"])
    printed = capsys.readouterr().out
    assert "Past retention: 2 (adults 1, children 1)" in printed
    assert f"\n{adult:>8} " in printed and f"\n{child:>8} " in printed
    for name in ("Hywel", "Ffion", "Recent", "O'Brien"):
        assert name not in printed
