"""'My work': the user's own open requests and drafts; counts for those who allocate."""

from datetime import UTC, datetime, timedelta

import pytest

from services import clock, db, home, requests
from services.requests import FirstResponse
from tests.test_requests import NOW, TODAY, log

pytestmark = pytest.mark.usefixtures("fixed_clock")


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _allocate(engine, lead, request, to_user):
    with db.writing(engine) as session:
        return requests.allocate(session, lead, request.id, request.version, to_user.id)


def test_my_open_requests_are_mine_and_in_my_team(engine, staff):
    mine = _allocate(engine, staff.team_lead, log(engine, staff.practitioner, staff), staff.practitioner)
    _allocate(engine, staff.team_lead, log(engine, staff.practitioner, staff), staff.second_practitioner)
    with db.reading(engine) as session:
        rows = home.my_open_requests(session, staff.practitioner)
        others = home.my_open_requests(session, staff.other_team_practitioner)
    assert [row.request_id for row in rows] == [mine.id]
    assert others == []


def test_counts_for_a_team_lead_stop_the_clock_at_the_first_response(engine, staff):
    received = NOW - timedelta(hours=5)  # urgent: 4 hours, so overdue
    answered = log(engine, staff.practitioner, staff, received=received)
    log(engine, staff.practitioner, staff, received=received)
    with db.writing(engine) as session:
        requests.record_first_response(session, staff.practitioner, answered.id, answered.version, FirstResponse(
            TODAY, (NOW - timedelta(hours=4, minutes=30)).astimezone(UTC).time(), "02", "Advice given."))
    with db.reading(engine) as session:
        counts = home.team_counts(session, staff.team_lead)
        practitioner_counts = home.team_counts(session, staff.practitioner)
        rows = home.my_open_requests(session, staff.practitioner)
    # Answering takes the request (it is then allocated to whoever answered); the other waits, overdue.
    assert (counts.unallocated, counts.overdue) == (1, 1)
    assert practitioner_counts is None  # only those who allocate see team counts
    assert [row.request_id for row in rows] == [answered.id] and rows[0].clock is None


def test_first_response_stops_the_home_clock(engine, staff):
    request = _allocate(engine, staff.team_lead, log(engine, staff.practitioner, staff), staff.practitioner)
    with db.writing(engine) as session:
        requests.record_first_response(session, staff.practitioner, request.id, request.version, FirstResponse(
            TODAY, datetime(2026, 3, 10, 11, 55).time(), "01", "Seen in custody."))
    with db.reading(engine) as session:
        [row] = home.my_open_requests(session, staff.practitioner)
    assert row.clock is None
