"""Code that the reliability tests run in helper processes: concurrent savers and savers killed part-way.

Kept apart from the tests so that a spawned (or forked) child imports only this and the app, never
pytest's conftest. Every save here is a real business operation through `services/`, in its own
`db.writing` transaction, as a page would make it.

- `save_requests`: one of the concurrent writers of tests/test_concurrency.py.
- `run_until_killed`: a child of tests/test_crash_safety.py; it saves request-with-new-person or
  screening operations in a loop and, when asked, stops dead at a chosen point of one transaction
  (the n-th flush, or just before the commit) and tells the parent, which then SIGKILLs it.
- `half_records`: every way a save could be left half-written, as readable problems (empty is good).
"""

import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session as OrmSession

from models import AuditEvent, InstrumentResult, OnwardReferral, Person, Request, RequestEvent, Screening, User
from models.codes import ScreeningStatus
from models.validators import nhs_check_digit
from services import clock, db, people, referrals, requests, screening
from services.screening import Consent, InstrumentAnswers, Instruments, Outcome, PersonAndContext, Risk, Vulnerabilities

GIVEN_NAMES = ("Siôn", "Aoife", "Nguyễn", "Zofia", "Kwame", "Mei", "Tomasz", "Ewa", "Oluwaseun", "Rhiannon")


def engine_for(url: str, search_path: str | None) -> Engine:
    return db.create_database_engine(url, search_path=search_path)


def load_user(engine: Engine, user_id: int) -> User:
    with db.reading(engine) as session:
        return session.get(User, user_id)


def nhs_number(serial: int) -> str | None:
    """A valid NHS number made from `serial` (unique per serial), or None for the 1 in 11 with no check digit."""
    first_nine = f"{serial % 10**9:09d}"
    check = nhs_check_digit(first_nine)
    return None if check is None else f"{first_nine}{check}"


def new_request_with_person(site_id: int, family_name: str, serial: int, born_offset: int, *, minutes_ago: int = 5
                            ) -> requests.NewRequest:
    """A request as the Log request page sends it, about a new person.

    `serial` makes the NHS number and `born_offset` (days after 1 January 1950, under 20,000) the
    date of birth: give each person their own, and no likely duplicate needs confirming.
    """
    received = clock.to_london(clock.now() - timedelta(minutes=minutes_ago))
    number = nhs_number(serial)
    return requests.NewRequest(
        received_on=received.date(),
        received_time=received.time().replace(second=0, microsecond=0),
        source_of_referral="police",
        requester_name="PC Dawn Jones",
        requester_phone="01702 123456",
        site_id=site_id,
        request_type="screening",
        urgency="urgent",
        reason="Detained person appears distressed.",
        new_person=people.NewPerson(
            given_name=GIVEN_NAMES[serial % len(GIVEN_NAMES)],
            family_name=family_name,
            date_of_birth=date(1950, 1, 1) + timedelta(days=born_offset),
            nhs_number=number,
            nhs_number_status=None if number else "not_known",
        ),
    )


def count_begins(engine: Engine) -> Counter:
    """Counts the BEGIN statements sent (SQLite sends them itself; PostgreSQL's driver sends none)."""
    begins: Counter = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def count(_connection, _cursor, statement, *_args):
        if statement.startswith("BEGIN"):
            begins[statement] += 1

    return begins


# --- concurrency ------------------------------------------------------------------------------


def save_requests(url: str, search_path: str | None, worker: int, saves: int, user_id: int, site_id: int,
                  ready, results) -> None:
    """Log `saves` requests, each with a new person, one transaction each; report ids saved and errors.

    Waits at `ready` (a Barrier) so that every writer starts at once. Any exception from a save is
    an unhandled error for the test: it is reported, not retried.
    """
    engine = engine_for(url, search_path)
    begins = count_begins(engine)
    user = load_user(engine, user_id)
    saved: list[tuple[int, int]] = []
    errors: list[str] = []
    ready.wait()
    started = time.perf_counter()
    for number in range(saves):
        serial = 100_000_000 + worker * 10_000 + number
        new = new_request_with_person(site_id, f"Concurrent-{worker:02d}-{number:04d}", serial,
                                      born_offset=worker * saves + number)
        try:
            with db.writing(engine) as session:
                request = requests.log_request(session, user, new)
                ids = (request.id, request.person_id)
        except Exception as error:  # every failure is counted: the bar is zero of them
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        else:
            saved.append(ids)
    results.put({"worker": worker, "saved": saved, "errors": errors, "begins": dict(begins),
                 "seconds": time.perf_counter() - started})
    engine.dispose()


# --- crash safety -----------------------------------------------------------------------------

REQUEST_WITH_PERSON = "request_with_person"
SCREENING = "screening"
PHQ9_SEVERE = {f"item{number}": 3 for number in range(1, 10)}  # item 9 above 0: the self-harm flag
GAD7_MILD = {f"item{number}": 1 for number in range(1, 8)}


@dataclass(frozen=True)
class Pause:
    """Where to stop: the `nth` (1-based) `kind` event ("after_flush" or "before_commit") of operation `operation`.

    Operations are counted from 1 within the child's loop; `operation` 0 means no pause (the
    parent kills at a random moment instead).
    """

    operation: int = 0
    kind: str = "after_flush"
    nth: int = 1


def _pause_hook(pause: Pause, reached, state: dict) -> None:
    """Stop dead at the chosen point of the chosen operation: tell the parent, then wait to be killed."""

    def on(kind: str):
        def handler(*_args):
            if state["operation"] != pause.operation or pause.kind != kind:
                return
            state[kind] = state.get(kind, 0) + 1
            if state[kind] == pause.nth:
                reached.set()
                time.sleep(3600)

        return handler

    event.listen(OrmSession, "after_flush", on("after_flush"))
    event.listen(OrmSession, "before_commit", on("before_commit"))


def run_until_killed(url: str, search_path: str | None, scenario: str, child: int, user_id: int, site_id: int,
                     pause: Pause, started, reached) -> None:
    """Save operations of `scenario` in a loop until SIGKILLed (or until 10,000 operations).

    `child` (a different number for each child) keeps every person's name, date of birth and NHS
    number distinct from every other child's. `started` is set once the first operation has
    committed; `reached` when the pause point is reached.
    """
    engine = engine_for(url, search_path)
    user = load_user(engine, user_id)
    state = {"operation": 0}
    if pause.operation:
        _pause_hook(pause, reached, state)
    save = _save_request if scenario == REQUEST_WITH_PERSON else _screening_steps
    for serial, operation in enumerate(_operations(save, engine, user, site_id, child), start=1):
        state["operation"] = serial
        state.pop("after_flush", None)
        state.pop("before_commit", None)
        operation()
        if serial == 1:
            started.set()
        if serial >= 10_000:
            break


def _operations(save, engine: Engine, user: User, site_id: int, child: int):
    """Each item is one business operation (a callable making one db.writing transaction)."""
    number = 0
    while True:
        number += 1
        serial = 500_000_000 + child * 10_000 + number
        yield from save(engine, user, site_id, f"Crash-{child:03d}-{number:04d}", serial,
                        (child * 97 + number) % 20_000)


def _save_request(engine: Engine, user: User, site_id: int, family_name: str, serial: int, born_offset: int):
    def log():
        with db.writing(engine) as session:
            requests.log_request(session, user, new_request_with_person(site_id, family_name, serial, born_offset))

    yield log


SCREENING_STEPS = ("request with new person", "start draft", "person and context", "consent", "vulnerabilities",
                   "instruments", "risk", "outcome", "onward referral", "complete")


def operation_name(scenario: str, operation: int) -> str:
    """What the child's `operation`-th operation (from 1) saves."""
    if scenario == REQUEST_WITH_PERSON:
        return "request with new person"
    return SCREENING_STEPS[(operation - 1) % len(SCREENING_STEPS)]


def _screening_steps(engine: Engine, user: User, site_id: int, family_name: str, serial: int, born_offset: int):
    """A screening from its request to completion, one real operation (one transaction) at a time:
    the request with its new person, the draft, each section, the instrument answers, an onward
    referral, completion. A kill can land in any of them."""
    ids: dict[str, int] = {}
    two_hours_ago = clock.to_london(clock.now() - timedelta(hours=2))

    def log():
        with db.writing(engine) as session:
            new = new_request_with_person(site_id, family_name, serial, born_offset, minutes_ago=180)
            ids["request"] = requests.log_request(session, user, new).id

    def start():
        with db.writing(engine) as session:
            draft = screening.start_from_request(session, user, ids["request"])
            ids["screening"], ids["version"] = draft.id, draft.version

    def section(function, data):
        def save():
            with db.writing(engine) as session:
                ids["version"] = function(session, user, ids["screening"], ids["version"], data).version

        return save

    def refer():
        with db.writing(engine) as session:
            referrals.add_referral(session, user, ids["screening"], referrals.NewReferral(
                service="crisis_team", referred_on=clock.today_in_london()))

    def complete():
        with db.writing(engine) as session:
            screening.complete(session, user, ids["screening"], ids["version"])

    yield log
    yield start
    yield section(screening.save_person_and_context, PersonAndContext(
        site_id=site_id, screened_on=two_hours_ago.date(),
        screened_time=two_hours_ago.time().replace(second=0, microsecond=0), contact_mechanism="01"))
    yield section(screening.save_consent, Consent("given", "given"))
    yield section(screening.save_vulnerabilities, Vulnerabilities(["mental_health"], "5", "5"))
    yield section(screening.save_instruments, Instruments(scored={
        "phq9": InstrumentAnswers(dict(PHQ9_SEVERE)), "gad7": InstrumentAnswers(dict(GAD7_MILD))}))
    yield section(screening.save_risk, Risk("high", "Thoughts of self-harm; custody staff told.", "none", None,
                                            "low", None))
    yield section(screening.save_outcome, Outcome("onward_referral",
                                                  recommendation_fitness_for_interview="Fit with an appropriate adult"))
    yield refer
    yield complete


# --- half records -----------------------------------------------------------------------------


def half_records(engine: Engine) -> list[str]:
    """Every trace of a save that committed only in part, as one line each; [] when there is none.

    Each operation writes its record(s) and its audit row in one transaction, so after any crash:
    a request has its person, its "received" timeline row and its log_request audit row; a person
    has the request or screening it was recorded for and its create_person audit row; every audit
    row of a create points at its record; instrument results, vulnerabilities and referrals belong
    to a screening whose audit trail records them; a screening's version counts exactly its audited
    saves (1 + one per section saved + 1 for completion) and a complete screening has its audit row.
    """
    problems: list[str] = []
    with db.reading(engine) as session:

        def ids(query) -> set:
            return set(session.execute(query).scalars())

        def audited(action: str, entity: str, detail: str | None = None) -> Counter:
            query = select(AuditEvent.entity_id).where(AuditEvent.action == action, AuditEvent.entity == entity)
            if detail is not None:
                query = query.where(AuditEvent.detail == detail)
            return Counter(session.execute(query).scalars())

        request_ids = ids(select(Request.id))
        person_ids = ids(select(Person.id))
        screening_ids = ids(select(Screening.id))
        referral_ids = ids(select(OnwardReferral.id))

        logged = audited("log_request", "request")
        created_people = audited("create_person", "person")
        created_screenings = audited("create_screening", "screening")
        created_referrals = audited("create_onward_referral", "onward_referral")
        for name, records, audit_rows in (("request", request_ids, logged), ("person", person_ids, created_people),
                                          ("screening", screening_ids, created_screenings),
                                          ("onward referral", referral_ids, created_referrals)):
            for record_id in sorted(records - set(audit_rows)):
                problems.append(f"{name} {record_id} has no audit row of its creation")
            for record_id in sorted(set(audit_rows) - records):
                problems.append(f"an audit row records creating {name} {record_id}, which does not exist")
            for record_id, count in sorted(audit_rows.items()):
                if count != 1:
                    problems.append(f"{name} {record_id} has {count} audit rows of its creation")

        for request_id, person_id in session.execute(select(Request.id, Request.person_id)):
            if person_id is None or person_id not in person_ids:
                problems.append(f"request {request_id} has no person (person_id {person_id})")
        received = Counter(session.execute(
            select(RequestEvent.request_id).where(RequestEvent.kind == requests.EventKind.RECEIVED)).scalars())
        for request_id in sorted(request_ids):
            if received[request_id] != 1:
                problems.append(f"request {request_id} has {received[request_id]} 'received' timeline rows")
        with_a_record = ids(select(Request.person_id)) | ids(select(Screening.person_id))
        for person_id in sorted(person_ids - with_a_record):
            problems.append(f"person {person_id} has no request or screening: a request saved without its person?")

        section_saves = audited("save_screening_section", "screening")
        instrument_saves = audited("save_screening_section", "screening", detail=screening.INSTRUMENTS)
        completed = audited("complete_screening", "screening")
        with_results = ids(select(InstrumentResult.screening_id))
        for screening_id in sorted(with_results - screening_ids):
            problems.append(f"instrument results belong to screening {screening_id}, which does not exist")
        for screening_id in sorted(with_results - set(instrument_saves)):
            problems.append(f"screening {screening_id} has instrument results but no audited instruments save")
        for screening_id in sorted(set(instrument_saves) - with_results):
            problems.append(f"screening {screening_id} has an audited instruments save but no results")
        referral_rows = session.execute(select(OnwardReferral.id, OnwardReferral.screening_id)).all()
        for referral_id, screening_id in referral_rows:
            if screening_id not in screening_ids:
                problems.append(f"onward referral {referral_id} belongs to missing screening {screening_id}")
        rows = session.execute(select(Screening.id, Screening.version, Screening.status, Screening.completed_at,
                                      Screening.sections_saved, Screening.request_id))
        for screening_id, version, status, completed_at, sections_saved, request_id in rows:
            is_complete = status == ScreeningStatus.COMPLETE
            expected = 1 + section_saves[screening_id] + (1 if is_complete else 0)
            if version != expected:
                problems.append(f"screening {screening_id} is at version {version} but its audit trail records "
                                f"{expected - 1} saves")
            if is_complete != (completed[screening_id] == 1) or is_complete != (completed_at is not None):
                problems.append(f"screening {screening_id} is {status} with completed_at {completed_at} and "
                                f"{completed[screening_id]} completion audit rows")
            if screening.INSTRUMENTS in (sections_saved or []) and screening_id not in instrument_saves:
                problems.append(f"screening {screening_id} marks instruments saved without an audited save")
            if request_id is not None and request_id not in request_ids:
                problems.append(f"screening {screening_id} belongs to missing request {request_id}")
    return problems
