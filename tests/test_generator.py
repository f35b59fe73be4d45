"""The demo-data generator: realistic, valid, repeatable and bulk-written, on SQLite and PostgreSQL."""

import hashlib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from models import (
    Activity,
    CodeItem,
    InstrumentResult,
    OnwardReferral,
    Person,
    Request,
    RequestEvent,
    Screening,
    ScreeningVulnerability,
    Site,
    Team,
    User,
)
from models.codes import ActivityKind, AttendanceCode, CodeList, Role, ScreeningStatus
from models.validators import age_on, is_valid_nhs_number
from sample_data.generator import BULK_TABLES, DatabaseNotEmpty, generate
from services import accounts, clock, db, schema, settings
from services import screening as screening_form
from services.instruments import score
from tests.conftest import postgres_url

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
YEARS = 2.0
PASSWORD = "demo password for the tests"
REQUESTS = 600
EVENT_KINDS = {"received", "allocated", "first_response", "screening_started", "closed"}


def _migrated_sqlite(directory) -> Engine:
    engine = db.create_database_engine(f"sqlite:///{directory}/t.db")
    schema.upgrade(engine)
    return engine


def _private_postgres_schema(name: str) -> Engine:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL half skipped: no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is unset")
    base = db.create_database_engine(url)
    try:
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL half skipped: {url} refused: {str(error.orig).splitlines()[0]}")
    finally:
        base.dispose()
    engine = db.create_database_engine(url, search_path=name)
    schema.upgrade(engine)
    return engine


def _drop_postgres_schema(engine: Engine, name: str) -> None:
    engine.dispose()
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def generated(request, tmp_path_factory, worker_id):
    """One generated history per database, shared by the module's read-only checks."""
    if request.param == "sqlite":
        engine = _migrated_sqlite(tmp_path_factory.mktemp("generated"))
    else:
        engine = _private_postgres_schema(f"ldhub_generator_{worker_id}")
    progress = []
    summary = generate(engine, requests=REQUESTS, demo_password=PASSWORD, years=YEARS, now=NOW,
                       progress=lambda stage, done, total: progress.append((stage, done, total)))
    yield engine, summary, progress
    if request.param == "sqlite":
        engine.dispose()
    else:
        _drop_postgres_schema(engine, f"ldhub_generator_{worker_id}")


def _rows(engine: Engine, query):
    with db.reading(engine) as session:
        return session.execute(query).all()


def _count(engine: Engine, model) -> int:
    return _rows(engine, select(func.count()).select_from(model))[0][0]


def _london_day(moment: datetime):
    return clock.to_london(moment).date()


def test_counts_match_the_summary_and_the_brief(generated):
    engine, summary, progress = generated
    assert summary.requests == _count(engine, Request) == REQUESTS
    for table, name in BULK_TABLES:
        assert getattr(summary, name) == _rows(engine, select(func.count()).select_from(table))[0][0], name
    assert summary.rows > 8 * REQUESTS
    assert progress[-1] == ("requests", REQUESTS, REQUESTS)
    assert [name for (name,) in _rows(engine, select(Team.name))] == ["Mid and South Essex Liaison and Diversion"]
    sites = dict(_rows(engine, select(Site.name, Site.kind)))
    assert sites == {
        "Southend custody suite": "custody_suite",
        "Basildon custody suite": "custody_suite",
        "Grays custody suite": "custody_suite",
        "Southend Magistrates' Court": "magistrates_court",
        "Basildon Magistrates' Court": "magistrates_court",
    }
    roles = Counter(role for (role,) in _rows(engine, select(User.role)))
    assert roles == {Role.ADMINISTRATOR: 1, Role.TEAM_LEAD: 1, Role.PRACTITIONER: 6}
    assert REQUESTS * 0.6 < summary.people < REQUESTS  # some people come back
    assert REQUESTS * 0.5 < summary.screenings < REQUESTS
    kinds = {kind for (kind,) in _rows(engine, select(Activity.kind))}
    assert kinds == {kind.value for kind in ActivityKind}


def test_the_demo_accounts_sign_in_with_the_one_demo_password(generated):
    engine, _, _ = generated
    users = _rows(engine, select(User.username, User.password_hash, User.must_change_password))
    assert len({password_hash for _, password_hash, _ in users}) == 1  # hashed once, reused
    assert not any(must_change for _, _, must_change in users)
    for username in ("admin", "lead", "practitioner"):
        with db.writing(engine) as session:
            signed_in = accounts.sign_in(session, username, PASSWORD)
        assert signed_in.user_id


def test_nhs_numbers_are_synthetic_valid_and_unique(generated):
    engine, summary, _ = generated
    people = _rows(engine, select(Person.nhs_number, Person.nhs_number_status))
    numbers = [number for number, _ in people if number]
    assert numbers and all(is_valid_nhs_number(number) and number.startswith("999") for number in numbers)
    assert len(numbers) == len(set(numbers))
    assert 0.5 < len(numbers) / summary.people < 0.7
    assert all((status == "present") == bool(number) for number, status in people)
    assert {status for _, status in people} == {"present", "not_known", "declined", "not_traced"}


def test_every_time_is_in_the_past_and_in_order(generated):
    engine, _, _ = generated
    targets = {"emergency": timedelta(hours=1), "urgent": timedelta(hours=4), "routine": timedelta(days=3)}
    assert targets == {urgency: settings.DEFINITIONS[f"target_minutes.{urgency}"].default * timedelta(minutes=1)
                       for urgency in targets}  # fmt: skip
    requests = _rows(engine, select(Request.received_at, Request.due_at, Request.urgency, Request.allocated_at,
                                    Request.first_response_at, Request.closed_at, Request.status))  # fmt: skip
    for received_at, due_at, urgency, allocated_at, first_response_at, closed_at, status in requests:
        assert received_at.tzinfo is not None
        assert NOW - timedelta(days=YEARS * 366) < received_at <= NOW
        assert due_at == received_at + targets[urgency]
        later = [moment for moment in (allocated_at, first_response_at, closed_at) if moment]
        assert later == sorted(later) and all(received_at <= moment <= NOW for moment in later)
        assert (status == "closed") == (closed_at is not None)
    screenings = _rows(engine, select(Screening.screened_at, Request.received_at, Screening.completed_at)
                       .join(Request, Request.id == Screening.request_id))  # fmt: skip
    for screened_at, received_at, completed_at in screenings:
        assert received_at <= screened_at <= NOW
        assert completed_at is None or screened_at <= completed_at <= NOW
    referrals = _rows(engine, select(OnwardReferral.referred_on, OnwardReferral.outcome_on, Screening.screened_at)
                      .join(Screening, Screening.id == OnwardReferral.screening_id))  # fmt: skip
    assert referrals
    for referred_on, outcome_on, screened_at in referrals:
        assert _london_day(screened_at) <= referred_on <= _london_day(NOW)
        assert outcome_on is None or referred_on <= outcome_on <= _london_day(NOW)
    reports = _rows(engine, select(Activity.requested_on, Activity.provided_on)
                    .where(Activity.kind == ActivityKind.PRE_SENTENCE_REPORT))  # fmt: skip
    assert reports and all(requested_on <= provided_on for requested_on, provided_on in reports)


def test_values_are_stored_as_the_app_stores_them(generated):
    """Rows written straight through the driver must read back, sort and compare like the app's own."""
    engine, _, _ = generated
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT received_at, prison_release_on FROM request "
                                         "WHERE prison_release_on IS NOT NULL")).first()  # fmt: skip
    if engine.dialect.name == "sqlite":  # SQLAlchemy's own text forms for the UTC time and the date
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored.received_at)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", stored.prison_release_on)
    else:
        assert stored.received_at.utcoffset() is not None
    with db.reading(engine) as session:
        request = session.get(Request, 1)
        assert request.received_at.tzinfo is not None and request.version == 1
        assert session.get(InstrumentResult, 1).answers  # JSON reads back as a mapping


def test_references_are_unique_and_built_from_the_real_id(generated):
    engine, _, _ = generated
    rows = _rows(engine, select(Request.id, Request.reference, Request.received_at))
    assert len({reference for _, reference, _ in rows}) == len(rows)
    for request_id, reference, received_at in rows:
        assert re.fullmatch(r"R-\d{4}-\d{6}", reference)
        assert reference == f"R-{_london_day(received_at).year}-{request_id:06d}"


def test_children_are_screened_with_an_appropriate_adult(generated):
    engine, _, _ = generated
    people = _rows(engine, select(Person.date_of_birth, Request.received_at)
                   .join(Request, Request.person_id == Person.id))  # fmt: skip
    ages = [age_on(date_of_birth, _london_day(received_at)) for date_of_birth, received_at in people]
    assert min(ages) >= 10
    assert any(age < 18 for age in ages) and any(age >= 65 for age in ages)
    screenings = _rows(engine, select(Person.date_of_birth, Screening.screened_at, Screening.appropriate_adult_required)
                       .join(Person, Person.id == Screening.person_id))  # fmt: skip
    children = [required for born, screened_at, required in screenings if age_on(born, _london_day(screened_at)) < 18]
    assert children and all(children)


def test_stored_instrument_results_recompute_exactly(generated):
    engine, _, _ = generated
    results = _rows(engine, select(InstrumentResult))
    assert {result.instrument for (result,) in results} == {"phq9", "gad7", "auditc", "audit", "bjmhs"}
    for (result,) in results:
        again = score(result.instrument, result.answers)
        assert (result.total, result.band, result.flags, result.scoring_version, result.complete) == (
            again.total, again.band, list(again.flags), again.version, again.complete,
        )  # fmt: skip


def test_codes_come_from_their_lists(generated):
    engine, _, _ = generated

    def codes(code_list: CodeList) -> set[str]:
        return {code for (code,) in _rows(engine, select(CodeItem.code).where(CodeItem.list_name == code_list))}

    assert {code for (code,) in _rows(engine, select(ScreeningVulnerability.code))} <= codes(CodeList.VULNERABILITY)
    assert {code for (code,) in _rows(engine, select(OnwardReferral.service))} <= codes(CodeList.ONWARD_SERVICE)
    assert {code for (code,) in _rows(engine, select(Request.source_of_referral))} <= codes(CodeList.SOURCE_OF_REFERRAL)
    closures = {code for (code,) in _rows(engine, select(Request.closure_reason)) if code}
    assert closures <= codes(CodeList.CLOSURE_REASON)
    assert {code for (code,) in _rows(engine, select(Request.request_type))} <= codes(CodeList.REQUEST_TYPE)
    assert {kind for (kind,) in _rows(engine, select(RequestEvent.kind))} == EVENT_KINDS
    attendance = {code for (code,) in _rows(engine, select(OnwardReferral.attendance)) if code}
    assert attendance <= set(AttendanceCode.choices())


def test_last_contact_is_the_latest_request(generated):
    engine, _, _ = generated
    latest = {}
    for person_id, received_at in _rows(engine, select(Request.person_id, Request.received_at)):
        if person_id:
            latest[person_id] = max(latest.get(person_id, received_at), received_at)
    stored = dict(_rows(engine, select(Person.id, Person.last_contact_on)))
    assert stored == {person_id: _london_day(moment) for person_id, moment in latest.items()}


def test_drafts_belong_to_the_demo_practitioner_and_complete_ones_saved_every_section(generated):
    engine, _, _ = generated
    rows = _rows(engine, select(Screening.status, Screening.sections_saved, User.username, Request.status)
                 .join(User, User.id == Screening.practitioner_id).join(Request, Request.id == Screening.request_id))
    every_section = [section for section in screening_form.SECTIONS if section != screening_form.REFERRALS]
    assert {tuple(sections) for status, sections, _, _ in rows if status == ScreeningStatus.COMPLETE} == {
        tuple(every_section)
    }
    for status, sections, username, request_status in rows:
        if status == ScreeningStatus.DRAFT:
            assert username == "practitioner" and request_status != "closed"
            assert sections == every_section[: len(sections)] and 0 < len(sections) < len(every_section)


def test_new_rows_after_generation_take_fresh_ids(generated):
    """Explicit ids must not leave PostgreSQL's sequences behind: a normal insert would collide."""
    engine, _, _ = generated
    team_id = _rows(engine, select(Team.id))[0][0]
    highest = _rows(engine, select(func.max(Person.id)))[0][0]
    with Session(engine) as session:
        person = Person(team_id=team_id, given_name="Nia", family_name="Okafor", given_name_key="nia",
                        family_name_key="okafor", nhs_number_status="not_known")  # fmt: skip
        session.add(person)
        session.flush()
        assert person.id > highest
        session.rollback()


def test_a_second_run_refuses_a_database_that_has_data(generated):
    engine, _, _ = generated
    with pytest.raises(DatabaseNotEmpty):
        generate(engine, requests=10, demo_password=PASSWORD, now=NOW)
    assert _count(engine, Request) == REQUESTS


def test_a_weak_password_or_an_empty_history_is_refused(generated):
    engine, _, _ = generated
    with pytest.raises(ValueError, match="Demo password refused"):
        generate(engine, requests=10, demo_password="short", now=NOW)
    with pytest.raises(ValueError, match="over 0 years"):
        generate(engine, requests=10, demo_password=PASSWORD, years=0, now=NOW)
    assert _count(engine, Request) == REQUESTS


def _fingerprint(engine: Engine) -> str:
    digest = hashlib.sha256()
    with db.reading(engine) as session:
        for table, _ in BULK_TABLES:
            for row in session.execute(select(table).order_by(table.c.id)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def test_the_same_seed_and_now_write_the_same_rows(tmp_path):
    fingerprints = []
    for run, seed in enumerate((7, 7, 8)):
        engine = _migrated_sqlite(tmp_path / str(run))
        generate(engine, requests=300, seed=seed, demo_password=PASSWORD, now=NOW)
        fingerprints.append(_fingerprint(engine))
        engine.dispose()
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_the_shape_follows_the_national_figures_and_the_working_week(tmp_path):
    engine = _migrated_sqlite(tmp_path)
    generate(engine, requests=2000, demo_password=PASSWORD, now=NOW)
    complete = {screening_id for (screening_id,) in _rows(
        engine, select(Screening.id).where(Screening.status == ScreeningStatus.COMPLETE))}  # fmt: skip
    found: dict[int, set[str]] = {}
    for screening_id, code in _rows(engine, select(ScreeningVulnerability.screening_id, ScreeningVulnerability.code)):
        found.setdefault(screening_id, set()).add(code)

    def share(test) -> float:
        return sum(1 for screening_id in complete if test(found.get(screening_id, set()))) / len(complete)

    assert share(bool) == pytest.approx(0.88, abs=0.04)
    assert share(lambda codes: "mental_health" in codes) == pytest.approx(0.71, abs=0.05)
    assert share(lambda codes: bool(codes & {"drugs", "alcohol"})) == pytest.approx(0.52, abs=0.05)

    arrivals = _rows(engine, select(Site.kind, Request.received_at, Request.source_of_referral)
                     .join(Site, Site.id == Request.site_id))  # fmt: skip
    police = [clock.to_london(moment) for kind, moment, source in arrivals if source == "police"]
    assert {kind for kind, _, source in arrivals if source == "police"} == {"custody_suite"}
    weekend = sum(moment.weekday() >= 5 for moment in police) / len(police)
    night = sum(moment.hour >= 20 or moment.hour < 8 for moment in police) / len(police)
    assert weekend > 2 / 7 and night > 12 / 24
    courts = [clock.to_london(moment) for kind, moment, source in arrivals if source == "courts"]
    assert courts and all(moment.weekday() < 5 and 9 <= moment.hour < 17 for moment in courts)
