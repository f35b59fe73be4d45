"""A save killed part-way (SIGKILL in the middle of its transaction) leaves no half record.

A child process saves real business operations in a loop (tests/reliability_workers.py):
either requests each with a new person, or screenings from request to completion (the request
with its person, the draft, every section, the instrument answers, an onward referral and
completion, each its own transaction). It is SIGKILLed 30 times per scenario, in two ways:

- 20 times stopped dead at a chosen point inside a chosen operation's transaction (after one of
  its flushes, or just before its commit), then killed: nothing of that operation may be stored
  (every table's row count is what it was when the child stopped);
- 10 times killed after a random delay (seeded), wherever it happens to be (mid-statement,
  mid-commit, between operations).

After every kill: `half_records` finds nothing (a request without its person, a person without
the request or screening it was recorded for, instrument results or referrals without their
screening's audited save, a screening whose version disagrees with its audit trail, an audit row
without its record or a record without its audit row), and on SQLite `PRAGMA integrity_check` is
`ok`. Children are forked from a forkserver that has already imported the app, so each costs
milliseconds rather than an interpreter start.
"""

import multiprocessing
import signal
import sqlite3
from random import Random

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import SQLModel

from models import AuditEvent, Request
from services import db, requests
from tests import reliability_workers as workers

KILLS = 30
SEED = 20261129
WAIT = 120  # seconds for a child to reach its pause point on a busy machine
# Operations per cycle of each scenario: a request is one; a screening is ten (workers.SCREENING_STEPS).
OPERATIONS = {workers.REQUEST_WITH_PERSON: 1, workers.SCREENING: len(workers.SCREENING_STEPS)}


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.reliability_workers"])
    return context


def _address(engine: Engine) -> tuple[str, str | None]:
    """The URL and search path a child needs to open the same database as `engine`."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, None
    with engine.connect() as connection:
        return url, connection.execute(text("SHOW search_path")).scalar_one()


def _counts(engine: Engine) -> dict[str, int]:
    with db.reading(engine) as session:
        return {table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
                for table in SQLModel.metadata.sorted_tables}


def _integrity(engine: Engine) -> str:
    if engine.dialect.name != "sqlite":
        return "ok"  # PostgreSQL has no such pragma; the half-record checks are the test there
    connection = sqlite3.connect(engine.url.database)  # a new connection: recovers the WAL as a restart would
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


# Where the chosen-point kills stop. A request with its person is flushed four times in its
# transaction (the person, the request, its timeline row, then the audit row at commit); every
# screening operation at least twice. For screenings, saving the instrument answers, adding the
# onward referral and completing come first, each stopped at each kind of point; then every
# other step, then steps of the next screening.
REQUEST_POINTS = [("after_flush", 1), ("after_flush", 2), ("after_flush", 3), ("before_commit", 1)]
SCREENING_POINTS = [("after_flush", 1), ("before_commit", 1), ("after_flush", 2)]
SCREENING_OPERATIONS = [6, 9, 10] * 3 + [1, 2, 3, 4, 5, 7, 8] + [11, 12, 16, 20]


def _pause(number: int, scenario: str) -> workers.Pause:
    """The `number`-th (from 0) chosen-point kill's pause."""
    if scenario == workers.REQUEST_WITH_PERSON:
        kind, nth = REQUEST_POINTS[(number // 4) % len(REQUEST_POINTS)]
        return workers.Pause(operation=1 + number % 4, kind=kind, nth=nth)
    kind, nth = SCREENING_POINTS[(number // 3 if number < 9 else number) % len(SCREENING_POINTS)]
    return workers.Pause(operation=SCREENING_OPERATIONS[number % len(SCREENING_OPERATIONS)], kind=kind, nth=nth)


def _kill_repeatedly(engine: Engine, staff, scenario: str) -> list[str]:
    context = _context()
    url, search_path = _address(engine)
    rng = Random(f"{SEED}-{scenario}-{engine.dialect.name}")
    survived: list[str] = []
    for kill in range(KILLS):
        # Two kills in three at a chosen point, the third at a random moment.
        pause = _pause(kill - kill // 3, scenario) if kill % 3 != 2 else workers.Pause()
        started, reached = context.Event(), context.Event()
        child = context.Process(target=workers.run_until_killed, name=f"crash-{kill}", args=(
            url, search_path, scenario, kill, staff.practitioner.id, staff.sites[0].id, pause, started, reached))
        child.start()
        try:
            if pause.operation:
                assert reached.wait(WAIT), f"kill {kill}: the child never reached {pause} (exit code {child.exitcode})"
                before = _counts(engine)  # committed so far; the paused transaction is not visible
                how = (f"stopped at {pause.kind} #{pause.nth} of operation {pause.operation} "
                       f"({workers.operation_name(scenario, pause.operation)})")
            else:
                assert started.wait(WAIT), f"kill {kill}: the child never saved once (exit code {child.exitcode})"
                delay = rng.uniform(0, 0.3)
                reached.wait(delay)  # just a sleep: nothing sets `reached` without a pause point
                before = None
                how = f"killed {delay * 1000:.0f} ms after its first save"
            assert child.exitcode is None, f"kill {kill}: the child ended by itself with {child.exitcode}"
            child.kill()
            child.join(30)
        finally:
            if child.is_alive():
                child.kill()
                child.join()
        assert child.exitcode == -signal.SIGKILL
        if before is not None:
            assert _counts(engine) == before, f"kill {kill} ({how}): part of the killed transaction was stored"
        problems = workers.half_records(engine)
        assert problems == [], f"kill {kill} ({how}): {problems[:10]}"
        assert _integrity(engine) == "ok", f"kill {kill} ({how})"
        survived.append(how)
    return survived


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [workers.REQUEST_WITH_PERSON, workers.SCREENING])
def test_thirty_kills_part_way_through_a_save_leave_no_half_record(engine, staff, scenario):
    survived = _kill_repeatedly(engine, staff, scenario)
    counts = _counts(engine)
    print(f"\n{engine.dialect.name} {scenario}: {len(survived)} kills survived "
          f"({sum('stopped' in how for how in survived)} at chosen points, "
          f"{sum('killed' in how for how in survived)} at random moments); stored afterwards: "
          f"{counts['request']} requests, {counts['person']} people, {counts['screening']} screenings, "
          f"{counts['instrumentresult']} instrument results, {counts['onwardreferral']} referrals, "
          f"{counts['auditevent']} audit rows")
    for how in survived:
        print(f"  {how}")
    assert len(survived) == KILLS
    assert counts["request"] > 0  # the children did save between kills: the checks looked at real rows
    if scenario == workers.SCREENING:
        assert counts["instrumentresult"] > 0


def test_half_records_are_found(engine, staff):
    """The checker itself: a request left without its person, and an audit row without its record, are reported."""
    user = workers.load_user(engine, staff.practitioner.id)
    with db.writing(engine) as session:
        request = requests.log_request(session, user, workers.new_request_with_person(
            staff.sites[0].id, "Halfway", 1, 1))
    assert workers.half_records(engine) == []
    with engine.begin() as connection:  # what a crash between statements could leave, were it not one transaction
        connection.execute(AuditEvent.__table__.insert().values(
            at=request.created_at, action="log_request", entity="request", entity_id=request.id + 1000,
            outcome="success"))
        connection.execute(Request.__table__.update().where(Request.__table__.c.id == request.id)
                           .values(person_id=None))
    problems = workers.half_records(engine)
    assert f"request {request.id} has no person (person_id None)" in problems
    assert f"an audit row records creating request {request.id + 1000}, which does not exist" in problems
    assert f"person {request.person_id} has no request or screening: a request saved without its person?" in problems
