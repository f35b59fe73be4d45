"""Times typed on a London clock: the spring hour that never happened is refused with its reason, the
autumn hour that happened twice asks which, and every other reading round-trips exactly.

A property test walks every minute of every clock-change day from 2024 to 2030 and samples the rest;
then each form that takes a time (request received, arrest, next hearing, first response, closure,
screening, information shared) is driven through its service on both databases.
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from models import Request, RequestEvent
from services import clock, db, requests, screening
from services.errors import InputErrors
from services.requests import FirstResponse, TypedMoment
from tests.test_requests import allocate, close, log, new_request, respond
from tests.test_screening import context, save, start

SPRING_2026, AUTUMN_2026 = date(2026, 3, 29), date(2026, 10, 25)
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def change_days() -> list[date]:
    """The last Sunday of March and of October, 2024 to 2030."""
    days = []
    for year in range(2024, 2031):
        for month in (3, 10):
            last = date(year, month, 31)
            days.append(last - timedelta(days=(last.weekday() + 1) % 7))
    return days


def check_reading(day: date, clock_time: time) -> str:
    """'exact', 'refused' or 'asked' — and never a silently moved time."""
    try:
        instant = clock.typed_in_london(day, clock_time)
    except clock.NotALondonTime as problem:
        if problem.twice:
            readings = {clock.typed_in_london(day, clock_time, fold) for fold in (0, 1)}
            assert len(readings) == 2 and max(readings) - min(readings) == timedelta(hours=1)
            for fold, instant in zip((0, 1), sorted(readings), strict=True):
                back = clock.to_london(instant)
                assert (back.date(), back.time().replace(tzinfo=None), back.fold) == (day, clock_time, fold)
            return "asked"
        assert "did not happen in the UK: clocks went forward at 01:00" in str(problem)
        return "refused"
    back = clock.to_london(instant)
    assert (back.date(), back.time().replace(tzinfo=None)) == (day, clock_time)
    return "exact"


def test_every_minute_of_every_clock_change_day_2024_to_2030():
    for day in change_days():
        outcomes = [check_reading(day, time(minute // 60, minute % 60)) for minute in range(24 * 60)]
        kind = "refused" if day.month == 3 else "asked"
        assert outcomes.count(kind) == 60 and outcomes.count("exact") == 24 * 60 - 60, day
        assert [outcomes[60 + minute] for minute in range(60)] == [kind] * 60  # exactly 01:00–01:59


@settings(max_examples=2000, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31, 23, 59)))
def test_any_london_reading_of_2024_to_2030_round_trips_or_is_refused_or_asked(reading):
    outcome = check_reading(reading.date(), reading.time().replace(second=0, microsecond=0))
    if outcome != "exact":
        assert reading.date() in change_days() and reading.hour == 1


def test_the_messages_say_why():
    with pytest.raises(clock.NotALondonTime) as skipped:
        clock.typed_in_london(SPRING_2026, time(1, 30))
    assert str(skipped.value).startswith("01:30 on 29/03/2026 did not happen in the UK: clocks went forward at 01:00")
    with pytest.raises(clock.NotALondonTime) as twice:
        clock.typed_in_london(AUTUMN_2026, time(1, 30))
    assert "01:30 on 25/10/2026 happened twice in the UK" in str(twice.value) and "(BST)" in str(twice.value)


# --- every form that takes a time, through its service --------------------------------------------


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def received(staff, day, clock_time, fold=None, **changes):
    values = new_request(staff, **changes)
    values.received_on, values.received_time, values.received_fold = day, clock_time, fold
    return values


def refusal(engine, user, new) -> dict[str, str]:
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.log_request(session, user, new)
    with db.reading(engine) as session:
        assert session.exec(select(Request)).all() == []
    return refused.value.errors


@pytest.mark.parametrize(("field", "names"), [
    ("received_at", ("received_on", "received_time", "received_fold")),
    ("arrested_at", ("arrested_on", "arrested_time", "arrested_fold")),
    ("next_hearing_at", ("next_hearing_on", "next_hearing_time", "next_hearing_fold")),
])
def test_a_request_refuses_the_spring_hour_and_asks_in_the_autumn_hour(engine, staff, field, names):
    on, at, fold = names

    def new(day, clock_time, which=None):
        values = new_request(staff)
        setattr(values, on, day)
        setattr(values, at, clock_time)
        setattr(values, fold, which)
        return values

    assert "did not happen in the UK" in refusal(engine, staff.practitioner, new(SPRING_2026, time(1, 30)))[field]
    assert "happened twice" in refusal(engine, staff.practitioner, new(AUTUMN_2026, time(1, 30)))[field]
    for which, expected in ((0, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)), (1, datetime(2026, 10, 25, 1, 30,
                                                                                             tzinfo=UTC))):
        with db.writing(engine) as session:
            stored = requests.log_request(session, staff.practitioner, new(AUTUMN_2026, time(1, 30), which))
        assert getattr(stored, field) == expected


def test_the_first_response_and_the_closure_take_the_autumn_choice(engine, staff):
    request = log(engine, staff.practitioner, staff, received_on=AUTUMN_2026, received_time=time(0, 45))
    allocate(engine, staff.team_lead, request, staff.practitioner)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.record_first_response(session, staff.practitioner, request.id, None,
                                       FirstResponse(AUTUMN_2026, time(1, 15), "02", "Advised custody."))
    assert "happened twice" in refused.value.errors["responded_at"]
    with db.writing(engine) as session:
        answered = requests.record_first_response(session, staff.practitioner, request.id, None,
                                                  FirstResponse(AUTUMN_2026, time(1, 15), "02", "Advised.", 1))
    assert answered.first_response_at == datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # the second 01:15: GMT
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        requests.close_request(session, staff.practitioner, request.id, None, "advice_given",
                               TypedMoment(SPRING_2026, time(1, 5)))
    assert "did not happen" in refused.value.errors["closed_at"]


def test_a_screening_refuses_the_spring_hour_and_takes_the_autumn_choice(engine, staff):
    draft = start(engine, staff, received_at=datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        screening.save_person_and_context(session, staff.practitioner, draft.id, 1,
                                          context(staff, screened_on=SPRING_2026, screened_time=time(1, 30)))
    assert "did not happen in the UK" in refused.value.errors["screened_at"]
    saved = save(engine, staff, draft.id, screening.save_person_and_context,
                 context(staff, screened_on=AUTUMN_2026, screened_time=time(1, 40), screened_fold=0))
    assert saved.screened_at == datetime(2026, 10, 25, 0, 40, tzinfo=UTC)
    with db.reading(engine) as session:
        values = screening.form_values(screening.get_screening(session, staff.practitioner, draft.id))
    assert (values["screened_on"], values["screened_time"], values["screened_fold"]) == (AUTUMN_2026, time(1, 40), 0)


# --- clinical time, not typing time ----------------------------------------------------------------


def test_a_back_dated_answer_allocates_from_when_it_was_given_and_closure_takes_its_own_time(engine, staff):
    """Entered weeks later, the request was never 'waiting for allocation' in between."""
    received_at = NOW - timedelta(days=60)
    request = log(engine, staff.practitioner, staff, received_on=clock.to_london(received_at).date(),
                  received_time=clock.to_london(received_at).time().replace(second=0, microsecond=0))
    answered_at = received_at + timedelta(hours=2)
    respond(engine, staff.practitioner, request, at=answered_at)
    closed_at = received_at + timedelta(days=1)
    on, at = clock.to_london(closed_at).date(), clock.to_london(closed_at).time().replace(second=0, microsecond=0)
    with db.writing(engine) as session:
        requests.close_request(session, staff.practitioner, request.id, None, "advice_given", TypedMoment(on, at))
    with db.reading(engine) as session:
        stored = session.get(Request, request.id)
        timeline = session.exec(select(RequestEvent.kind, RequestEvent.at).where(RequestEvent.request_id == request.id)
                                .order_by(RequestEvent.id)).all()
    assert (stored.allocated_at, stored.first_response_at, stored.closed_at) == (answered_at, answered_at, closed_at)
    assert [kind for kind, _ in timeline] == ["received", "allocated", "first_response", "in_progress", "closed"]
    assert all(moment <= closed_at for _, moment in timeline)  # the timeline tells when things happened
    assert stored.updated_at == NOW  # when it was typed stays with the row and its audit entry


def test_a_closure_cannot_be_in_the_future_or_before_the_request(engine, staff):
    request = log(engine, staff.practitioner, staff)
    respond(engine, staff.practitioner, request)
    for moment, words in ((NOW + timedelta(minutes=5), "cannot be in the future"),
                          (request.received_at - timedelta(hours=1), "cannot be closed before it was received")):
        london = clock.to_london(moment)
        with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
            requests.close_request(session, staff.practitioner, request.id, None, "advice_given",
                                   TypedMoment(london.date(), london.time().replace(second=0, microsecond=0)))
        assert words in refused.value.errors["closed_at"]
    close(engine, staff.practitioner, request)  # with no time given: now
