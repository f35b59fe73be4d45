"""Two people editing one record: the second save on a stale version is refused, never silently applied.

Randomised interleavings (seeded): two editors (two browser sessions, two different people) each
load the record — in a reading session, keeping the version shown, as a page does — and save
changes with random fields, in a random order: load, save, sometimes save again or reload and save
again, the two editors' steps merged at random. The model follows the stored row: a save made on
the version now stored must succeed and store exactly its own values; a save made on any older
version must be refused with `Conflict` saying "changed by <full name of whoever saved last> at
HH:MM" (London time of that save), and the stored row (every column, and a screening's
vulnerability rows) must be exactly as before — the first save's values. A stale save that
succeeds is a silent overwrite; the bar is none.

Records edited: a request (allocate or reallocate to a random colleague, start work, close with a
random closure reason, reopen with a random reason: whatever the editor's screen offers for the
status it shows) and a draft screening (a random section of consent, vulnerabilities, risk or
outcome, with random answers and notes).

Interleavings: 1,000 for the request and 1,000 for the screening on SQLite; 300 of each on
PostgreSQL, where every save costs a network round trip or more and the machine is shared.

A last test races the two saves truly at once (two threads released together) on the same
version: exactly one is stored, the other is refused naming the first — on PostgreSQL this goes
through the row lock (requests) or the version counter at flush (screenings).
"""

import re
import threading
from dataclasses import dataclass, field
from datetime import date
from random import Random

import pytest
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import select

from models import Person, Request, Screening, ScreeningVulnerability, User
from models.codes import CodeList, ConsentStatus, DiagnosisStatus, RequestStatus, RiskLevel, Role, ScreeningOutcome
from services import clock, code_lists, db, requests, screening
from services.errors import Conflict
from services.matching import name_key

SEED = 20261129
INTERLEAVINGS = {"sqlite": 1000, "postgresql": 300}
RACES = {"sqlite": 40, "postgresql": 40}
S = RequestStatus
WORDS = ("custody", "sergeant", "asked", "again", "court", "list", "moved", "advice", "family", "called",
         "Siôn", "O'Brien", "=SUM(1)", "<b>bold</b>", "Nguyễn")


def _text(rng: Random, words: int = 4) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" {rng.randint(1, 10**6)}"


def _dialect(engine) -> str:
    return engine.dialect.name


@pytest.fixture
def second_lead(engine, staff) -> User:
    """Another team lead of the same team, so that both editors may make every change."""
    with db.writing(engine) as session:
        lead = User(username="lead2", full_name="Kemi Secondlead", role=Role.TEAM_LEAD, team_id=staff.team.id)
        session.add(lead)
    return lead


# --- the records and their snapshots -----------------------------------------------------------


def _row(session, model, row_id) -> dict:
    found = session.get(model, row_id, populate_existing=True)
    return {column.key: getattr(found, column.key) for column in model.__table__.columns}


def request_state(engine, request_id: int) -> dict:
    with db.reading(engine) as session:
        return _row(session, Request, request_id)


def screening_state(engine, screening_id: int) -> dict:
    with db.reading(engine) as session:
        state = _row(session, Screening, screening_id)
        state["vulnerabilities"] = sorted(session.exec(
            select(ScreeningVulnerability.code).where(ScreeningVulnerability.screening_id == screening_id)).all())
        return state


def a_request(engine, staff) -> int:
    with db.writing(engine) as session:
        person = Person(team_id=staff.team.id, given_name="Siôn", family_name="O'Brien",
                        date_of_birth=date(1990, 5, 11), nhs_number_status="not_known",
                        given_name_key=name_key("Siôn"), family_name_key=name_key("O'Brien"))
        session.add(person)
        session.flush()
        received = clock.to_london(clock.now()).replace(second=0, microsecond=0)
        return requests.log_request(session, staff.practitioner, requests.NewRequest(
            received_on=received.date(), received_time=received.time(), source_of_referral="police",
            requester_name="PC Dawn Jones", requester_phone="01702 123456", site_id=staff.sites[0].id,
            request_type="screening", urgency="urgent", reason="Seems confused", person_id=person.id)).id


def a_draft_screening(engine, staff) -> int:
    request_id = a_request(engine, staff)
    with db.writing(engine) as session:
        return screening.start_from_request(session, staff.practitioner, request_id).id


# --- edits: what an editor's screen offers, and what a successful save must store ----------------


@dataclass
class Edit:
    describe: str
    save: object  # (session, user, record_id, version) -> saved row
    expected: dict  # columns (and "vulnerabilities") the save must store


def request_edit(rng: Random, shown: dict, colleagues: list[int], closure_reasons: list[str]) -> Edit:
    """A random change the request page offers for the request as this editor last saw it."""
    status = shown["status"]
    offered = []
    if status != S.CLOSED:
        offered.append("allocate")
    if status in (S.ALLOCATED, S.REOPENED):
        offered.append("start")
    if status in (S.IN_PROGRESS, S.REOPENED):
        offered.append("close")
    if status == S.CLOSED:
        offered.append("reopen")
    action = rng.choice(offered)
    if action == "allocate":
        return allocation_edit(rng, shown, colleagues)
    if action == "start":
        return Edit("start work", requests.start_work, {"status": S.IN_PROGRESS})
    if action == "close":
        reason = rng.choice(closure_reasons)
        return Edit(f"close ({reason})",
                    lambda session, user, request_id, version: requests.close_request(
                        session, user, request_id, version, reason),
                    {"status": S.CLOSED, "closure_reason": reason})
    why = _text(rng, 3)
    return Edit("reopen", lambda session, user, request_id, version: requests.reopen_request(
        session, user, request_id, version, why), {"status": S.REOPENED, "closure_reason": None, "closed_at": None})


def allocation_edit(rng: Random, shown: dict, colleagues: list[int]) -> Edit:
    """Reallocate the (open) request to a random colleague other than the one it is with."""
    target = rng.choice([colleague for colleague in colleagues if colleague != shown["allocated_to_id"]])
    new_status = S.ALLOCATED if shown["status"] in (S.NEW, S.REOPENED) else shown["status"]
    return Edit(f"allocate to user {target}", lambda session, user, request_id, version: requests.allocate(
        session, user, request_id, version, target), {"allocated_to_id": target, "status": new_status})


def screening_edit(rng: Random, vulnerability_codes: list[str]) -> Edit:
    """A random section of the draft saved with random answers."""
    section = rng.choice(["consent", "vulnerabilities", "risk", "outcome"])
    if section == "consent":
        to_screening, to_share = rng.choice(ConsentStatus.choices()), rng.choice(ConsentStatus.choices())
        lacks = ConsentStatus.LACKS_CAPACITY in (to_screening, to_share)
        decided_by = rng.choice(["Dr Amara Okafor", "Custody nurse", "Forensic medical examiner"]) if lacks else None
        capacity_reason = _text(rng) if lacks else None
        data = screening.Consent(to_screening, to_share, decided_by, capacity_reason)
        return Edit(f"consent {to_screening}/{to_share}", _section(screening.save_consent, data), {
            "consent_to_screening": to_screening, "consent_to_share": to_share,
            "capacity_decided_by": decided_by, "capacity_reason": capacity_reason})
    if section == "vulnerabilities":
        chosen = sorted(rng.sample(vulnerability_codes, rng.randint(0, 3)))
        learning, autism = rng.choice(DiagnosisStatus.choices()), rng.choice(DiagnosisStatus.choices())
        data = screening.Vulnerabilities(list(chosen), learning, autism)
        return Edit(f"vulnerabilities {chosen}", _section(screening.save_vulnerabilities, data), {
            "vulnerabilities": chosen, "learning_disability_status": learning, "autism_status": autism})
    if section == "risk":
        values: dict = {}
        for name in screening.RISK_FIELDS:
            level = rng.choice(RiskLevel.choices())
            needs_note = level in (RiskLevel.MEDIUM, RiskLevel.HIGH)
            values[name] = level
            values[f"{name}_note"] = _text(rng) if needs_note or rng.random() < 0.3 else None
        return Edit(f"risk {[values[name] for name in screening.RISK_FIELDS]}",
                    _section(screening.save_risk, screening.Risk(**values)), values)
    outcome = rng.choice(ScreeningOutcome.choices())
    fitness = _text(rng) if rng.random() < 0.7 else None
    adjustments = _text(rng) if rng.random() < 0.5 else None
    data = screening.Outcome(outcome, recommendation_fitness_for_interview=fitness,
                             recommendation_adjustments=adjustments)
    return Edit(f"outcome {outcome}", _section(screening.save_outcome, data), {
        "outcome": outcome, "recommendation_fitness_for_interview": fitness,
        "recommendation_adjustments": adjustments})


def _section(function, data):
    return lambda session, user, screening_id, version: function(session, user, screening_id, version, data)


# --- the interleavings ---------------------------------------------------------------------------


@dataclass
class Editor:
    name: str
    user: User
    shown: dict | None = None  # the record as this editor's screen shows it (None: not loaded yet)


@dataclass
class Tally:
    interleavings: int = 0
    orders: set = field(default_factory=set)
    saves: int = 0
    stored: int = 0
    refused: int = 0
    silent_overwrites: list = field(default_factory=list)
    wrong: list = field(default_factory=list)


def editor_steps(rng: Random) -> list[str]:
    return ["load", "save"] + rng.choice([[], [], ["save"], ["load", "save"]])


def merged(rng: Random, first: list[str], second: list[str]) -> list[tuple[int, str]]:
    """A random interleaving of two editors' steps, each editor's own order kept."""
    steps = [(0, step) for step in first], [(1, step) for step in second]
    positions = [0, 0]
    order = []
    while positions[0] < len(steps[0]) or positions[1] < len(steps[1]):
        left = [len(steps[index]) - positions[index] for index in (0, 1)]
        index = 0 if rng.random() < left[0] / (left[0] + left[1]) else 1
        order.append(steps[index][positions[index]])
        positions[index] += 1
    return order


CHANGED_BY = "changed by {name} at {time}"


def conflict_says(error: Conflict, name: str, when) -> bool:
    expected = CHANGED_BY.format(name=re.escape(name), time=re.escape(clock.format_time(when)))
    return re.search(expected, str(error), re.IGNORECASE) is not None


def run_interleavings(engine, editors: list[Editor], record_id: int, state, make_edit, count: int,
                      seed: str) -> Tally:
    rng = Random(seed)
    names = {editor.user.id: editor.user.full_name for editor in editors}
    tally = Tally()
    for trial in range(count):
        for editor in editors:
            editor.shown = None
        order = merged(rng, editor_steps(rng), editor_steps(rng))
        tally.interleavings += 1
        tally.orders.add(tuple(order))
        for index, step in order:
            editor = editors[index]
            if step == "load":
                editor.shown = state(engine, record_id)
                continue
            edit = make_edit(rng, editor.shown)
            before = state(engine, record_id)
            stale = editor.shown["version"] != before["version"]
            tally.saves += 1
            try:
                with db.writing(engine) as session:
                    edit.save(session, editor.user, record_id, editor.shown["version"])
            except Conflict as error:
                after = state(engine, record_id)
                tally.refused += 1
                if not stale:
                    tally.wrong.append(f"trial {trial}: a save on the current version was refused: {error}")
                if after != before:
                    tally.wrong.append(f"trial {trial}: a refused save changed the record: {edit.describe}")
                if not conflict_says(error, names.get(before["updated_by_id"], "?"), before["updated_at"]):
                    tally.wrong.append(f"trial {trial}: the refusal does not say who and when: {error}")
                continue
            after = state(engine, record_id)
            tally.stored += 1
            if stale:
                tally.silent_overwrites.append(
                    f"trial {trial}: {editor.name} saved '{edit.describe}' on version {editor.shown['version']} "
                    f"over version {before['version']}")
            differs = {key: (after.get(key), value) for key, value in edit.expected.items() if after.get(key) != value}
            if differs or after["version"] != before["version"] + 1 or after["updated_by_id"] != editor.user.id:
                tally.wrong.append(f"trial {trial}: '{edit.describe}' stored {differs}, version "
                                   f"{before['version']}→{after['version']}, by {after['updated_by_id']}")
            editor.shown = after  # the page shows what it saved, with the new version
    return tally


def _report(what: str, engine, tally: Tally) -> None:
    print(f"\n{_dialect(engine)} {what}: {tally.interleavings} interleavings ({len(tally.orders)} distinct orders), "
          f"{tally.saves} saves: {tally.stored} stored, {tally.refused} refused as stale, "
          f"{len(tally.silent_overwrites)} silent overwrites")


def test_two_people_editing_one_request_never_overwrite_each_other(engine, staff, second_lead):
    request_id = a_request(engine, staff)
    with db.reading(engine) as session:
        closure_reasons = [item.code for item in code_lists.active_items(session, CodeList.CLOSURE_REASON)]
    colleagues = [staff.practitioner.id, staff.second_practitioner.id, staff.team_lead.id, second_lead.id]
    editors = [Editor("Lee", staff.team_lead), Editor("Kemi", second_lead)]
    count = INTERLEAVINGS[_dialect(engine)]
    tally = run_interleavings(engine, editors, request_id, request_state,
                              lambda rng, shown: request_edit(rng, shown, colleagues, closure_reasons),
                              count, f"{SEED}-request")
    _report("request", engine, tally)
    assert tally.interleavings == count
    assert tally.silent_overwrites == []
    assert tally.wrong == []
    assert tally.refused > count / 4 and tally.stored >= count  # both outcomes were exercised, often


def test_two_people_editing_one_screening_never_overwrite_each_other(engine, staff):
    screening_id = a_draft_screening(engine, staff)
    with db.reading(engine) as session:
        vulnerability_codes = [item.code for item in code_lists.active_items(session, CodeList.VULNERABILITY)]
    editors = [Editor("Priya", staff.practitioner), Editor("Sam", staff.second_practitioner)]
    count = INTERLEAVINGS[_dialect(engine)]
    tally = run_interleavings(engine, editors, screening_id, screening_state,
                              lambda rng, _shown: screening_edit(rng, vulnerability_codes),
                              count, f"{SEED}-screening")
    _report("screening", engine, tally)
    assert tally.interleavings == count
    assert tally.silent_overwrites == []
    assert tally.wrong == []
    assert tally.refused > count / 4 and tally.stored >= count


def _race(engine, record_id: int, saves: list[tuple[User, Edit]], version: int) -> list:
    """Both saves at the same moment, each in its own thread and transaction; returns each outcome."""
    start = threading.Barrier(len(saves))
    outcomes: list = [None] * len(saves)

    def run(index: int, user: User, edit: Edit) -> None:
        start.wait()
        try:
            with db.writing(engine) as session:
                edit.save(session, user, record_id, version)
            outcomes[index] = "stored"
        except Exception as error:  # a Conflict is the expected refusal; anything else fails the test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index, user, edit)) for index, (user, edit) in enumerate(saves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_two_saves_at_the_same_moment_store_one_and_refuse_the_other(engine, staff, second_lead):
    request_id = a_request(engine, staff)
    screening_id = a_draft_screening(engine, staff)
    with db.reading(engine) as session:
        vulnerability_codes = [item.code for item in code_lists.active_items(session, CodeList.VULNERABILITY)]
    colleagues = [staff.practitioner.id, staff.second_practitioner.id, staff.team_lead.id, second_lead.id]
    rng = Random(f"{SEED}-race")
    races = RACES[_dialect(engine)]
    at_flush = 0  # refusals that came from the version counter at flush (both had passed the first check)
    for race in range(races):
        for record_id, state, people, edit_for in (
            (request_id, request_state, (staff.team_lead, second_lead),
             lambda shown: allocation_edit(rng, shown, colleagues)),
            (screening_id, screening_state, (staff.practitioner, staff.second_practitioner),
             lambda _shown: screening_edit(rng, vulnerability_codes)),
        ):
            shown = state(engine, record_id)
            edits = [(user, edit_for(shown)) for user in people]
            outcomes = _race(engine, record_id, edits, shown["version"])
            after = state(engine, record_id)
            assert outcomes.count("stored") == 1, f"race {race}: {outcomes}"
            winner = outcomes.index("stored")
            loser = 1 - winner
            assert isinstance(outcomes[loser], Conflict), f"race {race}: {outcomes[loser]!r}"
            winner_user, winning_edit = edits[winner]
            assert after["updated_by_id"] == winner_user.id
            assert after["version"] == shown["version"] + 1
            assert {key: after.get(key) for key in winning_edit.expected} == winning_edit.expected
            assert conflict_says(outcomes[loser], winner_user.full_name, after["updated_at"]), str(outcomes[loser])
            at_flush += isinstance(outcomes[loser].__context__, StaleDataError)
    print(f"\n{_dialect(engine)}: {races} races on a request and {races} on a screening: one save stored and "
          f"the other refused naming it, every time ({at_flush} refused by the version counter at flush)")
