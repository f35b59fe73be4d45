"""Deterministic demo data: a realistic history for one Liaison and Diversion team.

`generate` writes, into a migrated and empty database, the team and its five sites, the demo
accounts, and `years` of requests ending at `now`, with the people they are about, screenings
(vulnerabilities, scored instruments, risk, outcome), onward referrals and the team's other work
(MAPPA meetings, pre-sentence report information, prison release liaison, training). The shape
follows domain.md: custody requests peak at night and at weekends, courts sit on weekday
daytimes, and screenings find vulnerabilities at the national evaluation's rates.

Built for volume: rows are plain dicts, written in chunks of requests (with everything hanging off
them), one transaction each, by the driver's executemany on a second thread while the next chunk
is built; memory stays flat at a million requests. Ids are assigned here, counting on from each
table's current maximum, so that child rows can point at their parents without a round trip;
PostgreSQL's sequences are then moved past them. Only `random.Random(seed)` draws anything and
"now" is a parameter, so the same seed and now give the same rows.
"""

import bisect
import csv
import itertools
import json
import operator
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import cache, lru_cache
from pathlib import Path
from random import Random
from typing import Generic, TypeVar

from sqlalchemy import JSON, Date, Engine, Table, bindparam, func, select, update
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from models import (
    Activity,
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
from models.base import UTCDateTime
from models.codes import (
    EDITABLE_CODE_LISTS,
    ActivityKind,
    AttendanceCode,
    CodeList,
    ConsentStatus,
    ContactMechanism,
    ReferralStatus,
    ReportType,
    RequestStatus,
    RequestType,
    Role,
    ScreeningOutcome,
    ScreeningStatus,
    SiteKind,
    Urgency,
)
from models.validators import age_on, nhs_check_digit
from services import audit, clock, db, passwords, schema, settings
from services import screening as screening_form
from services.instruments import INSTRUMENTS, Score, needs_full_audit, score
from services.matching import name_key
from services.requests import EventKind, reference_for

HERE = Path(__file__).resolve().parent
TEAM_NAME = "Mid and South Essex Liaison and Diversion"
# (name, kind, share of that kind's requests)
SITES = (
    ("Southend custody suite", SiteKind.CUSTODY_SUITE, 40),
    ("Basildon custody suite", SiteKind.CUSTODY_SUITE, 35),
    ("Grays custody suite", SiteKind.CUSTODY_SUITE, 25),
    ("Southend Magistrates' Court", SiteKind.MAGISTRATES_COURT, 55),
    ("Basildon Magistrates' Court", SiteKind.MAGISTRATES_COURT, 45),
)
DEMO_PRACTITIONER = "practitioner"
STAFF = (
    ("admin", "Joanne Fletcher", Role.ADMINISTRATOR),
    ("lead", "Marcus Adeyemi", Role.TEAM_LEAD),
    (DEMO_PRACTITIONER, "Siobhán O'Brien", Role.PRACTITIONER),
    ("aisha.rahman", "Aisha Rahman", Role.PRACTITIONER),
    ("tomasz.nowak", "Tomasz Nowak", Role.PRACTITIONER),
    ("grace.mensah", "Grace Mensah", Role.PRACTITIONER),
    ("daniel.hughes", "Daniel Hughes", Role.PRACTITIONER),
    ("rhiannon.price", "Rhiannon Price", Role.PRACTITIONER),
)
# The screening form's sections, in order; a complete screening has saved them all. Onward
# referrals are rows of their own, not a section saved into the screening.
SCREENING_SECTIONS = tuple(section for section in screening_form.SECTIONS if section != screening_form.REFERRALS)
# Not an event the requests service writes itself: the timeline's "screening started" line.
SCREENING_STARTED = "screening_started"

REQUESTS_PER_CHUNK = 5_000
DAYS_IN_A_YEAR = 365.25
REPEAT_PERSON_SHARE = 0.15
# Repeat requests are about someone from the most recent people: large enough to span months at
# the default volume, small enough to keep memory flat at a million requests.
RECENT_PEOPLE_KEPT = 5_000
NHS_NUMBER_PRESENT_SHARE = 0.6
ADVICE_WITHOUT_PERSON_SHARE = 0.4
SCREENED_SHARE = 0.88  # the rest are released, decline or are not for the service before being seen
DRAFT_WINDOW = timedelta(days=3)
DRAFT_SHARE = 0.3  # of recent screenings, left as drafts of the demo practitioner's
DEMAND_GROWTH_PER_YEAR = 0.1
# First response as a share of the urgency's target: median a third, about 1 in 10 late.
RESPONSE_MEDIAN_SHARE_OF_TARGET = 0.35
RESPONSE_SPREAD = 0.8
MINIMUM_RESPONSE = timedelta(minutes=3)
SCREENING_MEDIAN_HOURS = 2.5  # from request to screening; a lognormal tail runs to a day or more
SCREENING_SPREAD = 0.9
# RAND's national evaluation (2021): 88% had at least one vulnerability, 71% mental health,
# 52% drugs or alcohol. With mental health and substance misuse drawn independently, 13.9% have
# neither; giving 13.8% of those another vulnerability leaves 12% with none.
MENTAL_HEALTH_SHARE = 0.71
SUBSTANCE_MISUSE_SHARE = 0.52
OTHER_VULNERABILITY_ONLY_SHARE = 0.138


class DatabaseNotEmpty(RuntimeError):
    """Demo data goes only into an empty database: it must never mix with real records."""


@dataclass(frozen=True)
class GenerationSummary:
    """Rows written per table, and the seconds it took."""

    teams: int
    sites: int
    users: int
    people: int
    requests: int
    request_events: int
    screenings: int
    screening_vulnerabilities: int
    instrument_results: int
    onward_referrals: int
    activities: int
    seconds: float

    @property
    def rows(self) -> int:
        return sum(getattr(self, column.name) for column in fields(self) if column.name != "seconds")

    def __str__(self) -> str:
        return (
            f"{self.requests:,} requests, {self.people:,} people, {self.screenings:,} screenings, "
            f"{self.onward_referrals:,} onward referrals, {self.activities:,} activities; "
            f"{self.rows:,} rows in {self.seconds:.1f} s"
        )


T = TypeVar("T")


class _Weights(Generic[T]):
    """A fixed weighted choice; its cumulative weights are summed once, as it is drawn per row."""

    def __init__(self, weights: dict[T, float]):
        self.values = list(weights)
        self.cumulative = list(itertools.accumulate(weights.values()))
        self.total = self.cumulative[-1]

    def pick(self, rng: Random) -> T:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.total)]


def _lognormal(rng: Random, median: float, spread: float) -> float:
    return median * rng.lognormvariate(0, spread)


# --- When requests arrive, and from where ----------------------------------------------------


@dataclass(frozen=True)
class _Channel:
    """A route requests come by: its share, when they arrive, and what they ask for."""

    share: float
    site_kinds: tuple[SiteKind, ...]
    weekday_factors: tuple[float, ...]  # Monday first
    hours: _Weights[int]  # London clock hour
    request_types: _Weights[str]
    sources: _Weights[str]
    urgencies: _Weights[str]
    child_share: float  # of new people; youth courts are not among this team's sites
    detail_key: str | None  # phrases.toml key for where a screening took place


def _hours(weights: list[float]) -> _Weights[int]:
    return _Weights(dict(enumerate(weights)))


CUSTODY = _Channel(
    share=0.68,
    site_kinds=(SiteKind.CUSTODY_SUITE,),
    # Arrests, and so custody requests, rise in the evening and through the night, and at weekends.
    weekday_factors=(1.0, 0.95, 0.95, 1.0, 1.15, 1.4, 1.3),
    hours=_hours([8, 7, 6, 5, 4, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 6, 7, 8, 9, 10, 10, 10, 9]),
    request_types=_Weights({RequestType.SCREENING: 88, RequestType.ADVICE: 12}),
    sources=_Weights({"police": 92, "solicitor": 4, "self": 2, "carer_relative": 2}),
    urgencies=_Weights({Urgency.EMERGENCY: 8, Urgency.URGENT: 64, Urgency.ROUTINE: 28}),
    child_share=0.044,
    detail_key="custody_details",
)
COURT = _Channel(
    share=0.22,
    site_kinds=(SiteKind.MAGISTRATES_COURT,),
    weekday_factors=(1, 1, 1, 1, 1, 0, 0),
    hours=_hours([0] * 9 + [8, 10, 10, 6, 6, 8, 6, 3] + [0] * 7),
    request_types=_Weights(
        {RequestType.SCREENING: 72, RequestType.PRE_SENTENCE_REPORT: 16, RequestType.ADVICE: 12}
    ),
    sources=_Weights({"courts": 75, "solicitor": 15, "probation": 10}),
    urgencies=_Weights({Urgency.EMERGENCY: 3, Urgency.URGENT: 57, Urgency.ROUTINE: 40}),
    child_share=0.0,
    detail_key="court_details",
)
COMMUNITY = _Channel(
    share=0.10,
    # Logged against a custody suite, which is staffed round the clock; courts sit only by day.
    site_kinds=(SiteKind.CUSTODY_SUITE,),
    weekday_factors=(1.2, 1.2, 1.2, 1.2, 1.2, 0.5, 0.5),
    hours=_hours([1, 1, 1, 1, 1, 1, 1, 2, 6, 10, 10, 10, 8, 9, 10, 10, 9, 6, 3, 2, 2, 1, 1, 1]),
    request_types=_Weights(
        {
            RequestType.ADVICE: 55,
            RequestType.PRISON_RELEASE: 18,
            RequestType.PRE_SENTENCE_REPORT: 10,
            RequestType.MAPPA: 9,  # about two MAPPA meetings a month at the default volume
            RequestType.SCREENING: 8,
        }
    ),
    sources=_Weights(
        {
            "probation": 30, "youth_offending_team": 8, "gp": 8, "social_services": 8, "housing": 5,
            "self": 6, "carer_relative": 6, "voluntary_sector": 5, "drug_action_team": 4,
            "emergency_department": 3, "court_liaison": 2, "single_point_of_access": 3, "other": 2,
        }
    ),  # fmt: skip
    urgencies=_Weights({Urgency.EMERGENCY: 2, Urgency.URGENT: 18, Urgency.ROUTINE: 80}),
    child_share=0.03,
    detail_key=None,
)
CHANNELS = (CUSTODY, COURT, COMMUNITY)
# Some request types come from one agency whatever the route.
SOURCE_FOR_REQUEST_TYPE = {
    RequestType.PRISON_RELEASE: "prison",
    RequestType.MAPPA: "probation",
    RequestType.PRE_SENTENCE_REPORT: "probation",
}
# Planned work: always routine, and each leaves an activity on the team's record once done.
PLANNED_WORK = (RequestType.PRISON_RELEASE, RequestType.MAPPA, RequestType.PRE_SENTENCE_REPORT)


@dataclass(frozen=True)
class _Arrival:
    received_at: datetime
    day: date  # in London
    channel: _Channel


def _day_weights(rng: Random, days: list[date], elapsed_today: float) -> list[list[float]]:
    """Each day's expected share of requests per channel: weekday pattern, slow growth, noise."""
    weights = []
    for number, day in enumerate(days):
        growth = 1 + DEMAND_GROWTH_PER_YEAR * number / DAYS_IN_A_YEAR
        noise = rng.uniform(0.85, 1.15)
        weights.append(
            [
                channel.share * 7 * channel.weekday_factors[day.weekday()] / sum(channel.weekday_factors)
                * growth * noise
                for channel in CHANNELS
            ]
        )
    weights[-1] = [weight * elapsed_today for weight in weights[-1]]
    return weights


def _arrivals(rng: Random, requests: int, start: datetime, now: datetime) -> Iterator[_Arrival]:
    """Exactly `requests` arrivals, in order of receipt, all after `start` and none after `now`."""
    first_day = clock.to_london(start).date() + timedelta(days=1)
    today = clock.to_london(now).date()
    days = [first_day + timedelta(days=offset) for offset in range((today - first_day).days + 1)]
    midnight_today = clock.from_london(today, clock_time())
    elapsed_today = (now - midnight_today) / timedelta(days=1)
    weights = _day_weights(rng, days, elapsed_today)
    total = sum(map(sum, weights))
    running = 0.0
    for day, channel_weights in zip(days, weights, strict=True):
        # Rounding the running total, not each day, makes the days add up to exactly `requests`.
        before = round(running)
        running += requests * sum(channel_weights) / total
        channels = _Weights(dict(zip(CHANNELS, channel_weights, strict=True)))
        arrivals = [_arrival(rng, day, channels.pick(rng), now) for _ in range(round(running) - before)]
        yield from sorted(arrivals, key=lambda arrival: arrival.received_at)


def _arrival(rng: Random, day: date, channel: _Channel, now: datetime) -> _Arrival:
    moment = clock_time(channel.hours.pick(rng), rng.randrange(60), rng.randrange(60))
    received_at = clock.from_london(day, moment)
    if received_at > now:  # today's hours not yet reached: anywhere in the part of today gone by
        midnight = clock.from_london(day, clock_time())
        received_at = midnight + (now - midnight) * rng.random()
    return _Arrival(received_at, day, channel)


# --- Reference text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vocabulary:
    names: dict[tuple[str, str], tuple[str, ...]]  # (group, "male" | "female" | "family") → names
    phrases: dict


@cache
def _vocabulary() -> _Vocabulary:
    names: dict[tuple[str, str], list[str]] = {}
    with (HERE / "names.csv").open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            names.setdefault((row["group"], row["kind"]), []).append(row["name"])
    phrases = tomllib.loads((HERE / "phrases.toml").read_text(encoding="utf-8"))
    return _Vocabulary({key: tuple(value) for key, value in names.items()}, phrases)


# Which name groups (names.csv) fit each ethnic category; mixed categories draw given and family
# names independently, so they mix too.
ETHNIC_CATEGORIES = _Weights(
    {
        "A": 70, "B": 1, "C": 8, "D": 1.5, "E": 0.8, "F": 0.7, "G": 1, "H": 1.3, "J": 1, "K": 0.8,
        "L": 0.9, "M": 1.8, "N": 2.6, "P": 0.6, "R": 0.4, "S": 1.6, "Z": 4, "99": 2,
    }
)  # fmt: skip
_BRITISH = {"english": 85, "irish": 6, "scottish": 5, "welsh": 4}
NAME_GROUPS = {
    code: _Weights(groups)
    for code, groups in {
        "A": _BRITISH,
        "B": {"irish": 1},
        "C": {"eastern_european": 65, "southern_european": 25, "turkish_kurdish": 10},
        "D": {"english": 1, "black_caribbean": 1},
        "E": {"english": 1, "black_african": 1},
        "F": {"english": 2, "indian": 1, "pakistani": 1},
        "G": {"english": 2, "black_caribbean": 1, "arabic": 1, "chinese": 1},
        "H": {"indian": 1},
        "J": {"pakistani": 1},
        "K": {"bangladeshi": 1},
        "L": {"vietnamese": 45, "indian": 30, "pakistani": 10, "chinese": 15},
        "M": {"black_caribbean": 1},
        "N": {"black_african": 1},
        "P": {"black_african": 1, "black_caribbean": 1},
        "R": {"chinese": 1},
        "S": {"arabic": 5, "turkish_kurdish": 4, "southern_european": 1},
        "Z": {**_BRITISH, "eastern_european": 10, "black_african": 5, "pakistani": 5},
        "99": {**_BRITISH, "eastern_european": 10, "black_african": 5, "pakistani": 5},
    }.items()
}
GENDER_IDENTITIES = _Weights({"1": 82.5, "2": 15.5, "3": 0.6, "4": 0.2, "X": 0.8, "Z": 0.4})
ADULT_AGE_BANDS = _Weights({(18, 25): 24, (26, 35): 31, (36, 45): 22, (46, 55): 13, (56, 64): 6, (65, 89): 4})
CHILD_AGES = _Weights({10: 1, 11: 1, 12: 2, 13: 3, 14: 5, 15: 7, 16: 9, 17: 10})
NHS_NUMBER_ABSENT = _Weights({"not_known": 70, "declined": 12, "not_traced": 18})
INTERPRETER_SHARE = 0.3  # of people whose names suggest a language other than English
BSL_SHARE = 0.005


# --- People ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """What a later request needs to know about someone already on record."""

    person_id: int
    date_of_birth: date
    gender: str


class _NhsNumbers:
    """Unique synthetic NHS numbers in the never-issued 999 range, without remembering any.

    k → (step·k + offset) mod 10⁶, with the step coprime to 10, visits every six-digit suffix
    once in a scrambled order; suffixes whose check digit would be 10 are skipped.
    """

    SUFFIXES = 10**6

    def __init__(self, rng: Random):
        self._step = rng.randrange(1, self.SUFFIXES)
        while self._step % 2 == 0 or self._step % 5 == 0:
            self._step = rng.randrange(1, self.SUFFIXES)
        self._offset = rng.randrange(self.SUFFIXES)
        self._index = 0

    def next(self) -> str | None:
        """The next number, or None once the range is used up (later people then have none)."""
        while self._index < self.SUFFIXES:
            first_nine = f"999{(self._step * self._index + self._offset) % self.SUFFIXES:06d}"
            self._index += 1
            check = nhs_check_digit(first_nine)
            if check is not None:
                return f"{first_nine}{check}"
        return None


@lru_cache(maxsize=8192)
def _scored(code: str, answers: tuple[tuple[str, int], ...]) -> Score:
    # Many people give the same answers (all "not at all", say), so each pattern is scored once.
    return score(code, dict(answers))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return date(day.year - years, 2, 28)


_name_key = cache(name_key)  # the names come from a fixed list, so the cache stays small


# --- The team ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Team:
    team_id: int
    sites: dict[tuple[SiteKind, ...], _Weights[int]]  # by a channel's site kinds
    site_kinds: dict[int, SiteKind]
    practitioners: list[int]
    demo_practitioner: int
    lead: int
    full_names: dict[int, str]


def _found_team(session: Session, start: datetime, password_hash: str) -> _Team:
    schema.seed_code_lists(session)
    team = Team(name=TEAM_NAME, created_at=start, updated_at=start)
    session.add(team)
    session.flush()
    sites = [Site(team_id=team.id, name=name, kind=kind, created_at=start, updated_at=start) for name, kind, _ in SITES]
    users = [
        User(username=username, full_name=full_name, role=role, team_id=team.id, password_hash=password_hash,
             must_change_password=False, created_at=start, updated_at=start)
        for username, full_name, role in STAFF
    ]  # fmt: skip
    session.add_all(sites + users)
    session.flush()
    for user in users:
        audit.record(session, None, "create_user", entity="user", entity_id=user.id,
                     detail=f"role {user.role} (demo data)", username="seed-demo")  # fmt: skip
    site_weights = {site.id: weight for site, (_, _, weight) in zip(sites, SITES, strict=True)}
    by_user = {user.username: user for user in users}
    return _Team(
        team_id=team.id,
        sites={
            kinds: _Weights({site.id: site_weights[site.id] for site in sites if site.kind in kinds})
            for kinds in (channel.site_kinds for channel in CHANNELS)
        },
        site_kinds={site.id: SiteKind(site.kind) for site in sites},
        practitioners=[user.id for user in users if user.role == Role.PRACTITIONER],
        demo_practitioner=by_user[DEMO_PRACTITIONER].id,
        lead=by_user["lead"].id,
        full_names={user.id: user.full_name for user in users},
    )


# --- Rows, chunk by chunk ----------------------------------------------------------------------

# In foreign-key order: each chunk is written table by table in this order.
BULK_TABLES: tuple[tuple[Table, str], ...] = (
    (Person.__table__, "people"),
    (Request.__table__, "requests"),
    (RequestEvent.__table__, "request_events"),
    (Screening.__table__, "screenings"),
    (ScreeningVulnerability.__table__, "screening_vulnerabilities"),
    (InstrumentResult.__table__, "instrument_results"),
    (OnwardReferral.__table__, "onward_referrals"),
    (Activity.__table__, "activities"),
)
PERSON = Person.__table__


@dataclass
class _Chunk:
    rows: dict[str, list[dict]] = field(default_factory=lambda: {table.name: [] for table, _ in BULK_TABLES})
    # Repeat contacts with people written in earlier chunks: person id → their latest date.
    last_contact: dict[int, date] = field(default_factory=dict)


class _BulkInsert:
    """An INSERT of many rows run straight on the database driver.

    SQLAlchemy's per-value type processing took longer than the database's own work (at 100k
    requests there are 3.6 million timestamps), so each value is put into the driver's form here,
    once, as the app's column types would store it: on SQLite, UTC times as naive
    "YYYY-MM-DD HH:MM:SS.ffffff" text, dates as ISO text and JSON as text; PostgreSQL's driver
    takes times and dates as they are and JSON wrapped.
    """

    def __init__(self, table: Table, dialect: Dialect):
        quote = dialect.identifier_preparer.quote
        columns = list(table.columns)
        placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        # Names come from the table's own metadata, quoted; every value is a bound parameter.
        self.sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(column.name) for column in columns)}) "  # noqa: S608
            f"VALUES ({', '.join([placeholder] * len(columns))})"
        )
        # Columns a row leaves out take their scalar default (version = 1) or NULL.
        self.defaults = {column.name: _scalar_default(column) for column in columns}
        self.values_of = operator.itemgetter(*self.defaults)
        adapters = _ADAPTERS[dialect.name]
        self.adapted = [
            (index, adapter)
            for index, column in enumerate(columns)
            for column_type, adapter in adapters
            if isinstance(column.type, column_type)
        ]

    def parameters(self, rows: list[dict]) -> list[tuple]:
        parameters = []
        for row in rows:
            values = list(self.values_of({**self.defaults, **row}))
            for index, adapter in self.adapted:
                if values[index] is not None:
                    values[index] = adapter(values[index])
            parameters.append(tuple(values))
        return parameters


def _scalar_default(column):
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


def _postgresql_json(value):
    from psycopg.types.json import Json  # the PostgreSQL driver, needed only when writing there

    return Json(value)


# A row often repeats a time (an event's time is also its created_at), so the last few are kept.
@lru_cache(maxsize=64)
def _sqlite_utc_text(moment: datetime) -> str:
    # "+00:00" cut off the end: replace(tzinfo=None) costs more than the formatting itself.
    return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]


_ADAPTERS: dict[str, list[tuple[type, Callable]]] = {
    "sqlite": [
        (UTCDateTime, _sqlite_utc_text),
        (Date, date.isoformat),
        (JSON, json.dumps),
    ],
    "postgresql": [(JSON, _postgresql_json)],
}


def _write(engine: Engine, inserts: dict[str, _BulkInsert], chunk: _Chunk) -> None:
    with db.writing(engine) as session:
        connection = session.connection()
        for table, _ in BULK_TABLES:
            if chunk.rows[table.name]:
                bulk = inserts[table.name]
                connection.exec_driver_sql(bulk.sql, bulk.parameters(chunk.rows[table.name]))
        if chunk.last_contact:
            session.execute(
                update(PERSON).where(PERSON.c.id == bindparam("person_id")).values(last_contact_on=bindparam("day")),
                [{"person_id": person_id, "day": day} for person_id, day in chunk.last_contact.items()],
            )


class _ChunkWriter:
    """Writes each chunk on a second thread while the next one is built.

    Both drivers let go of Python's interpreter lock while the database works, so on two cores
    building and writing overlap. Only one chunk is ever waiting, so memory stays bounded; a
    failed write is raised at the next chunk or at the end.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.inserts = {table.name: _BulkInsert(table, engine.dialect) for table, _ in BULK_TABLES}
        self.counts = dict.fromkeys((name for _, name in BULK_TABLES), 0)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-data-writer")
        self._pending: Future | None = None

    def write(self, chunk: _Chunk) -> None:
        self._wait()
        self._pending = self._thread.submit(_write, self.engine, self.inserts, chunk)
        for table, name in BULK_TABLES:
            self.counts[name] += len(chunk.rows[table.name])

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> "_ChunkWriter":
        return self

    def __exit__(self, *_exception) -> None:
        try:
            self._wait()
        finally:
            self._thread.shutdown()


def _advance_sequences(engine: Engine) -> None:
    """PostgreSQL hands out ids from sequences that explicit ids do not move; move them past.

    SQLite needs nothing: a new row takes max(id) + 1, and AUTOINCREMENT's own counter follows
    explicit ids.
    """
    if engine.dialect.name != "postgresql":
        return
    with db.writing(engine) as session:
        for table, _ in BULK_TABLES:
            sequence = func.pg_get_serial_sequence(f'"{table.name}"', "id")
            session.execute(select(func.setval(sequence, func.max(table.c.id))))  # NULL max: unchanged


# --- Screening content -------------------------------------------------------------------------

# Given some vulnerability beyond mental health and substance misuse, how likely each is.
OTHER_VULNERABILITIES = {
    "suicide_self_harm": 0.22, "learning_disability": 0.05, "learning_difficulty": 0.08, "autism": 0.05,
    "adhd": 0.08, "brain_injury": 0.04, "communication_needs": 0.05, "physical_health": 0.15,
    "housing": 0.25, "debt": 0.12, "abuse_trauma": 0.14, "safeguarding": 0.06, "veteran": 0.03,
    "pregnancy": 0.0, "charge_related": 0.05,
}  # fmt: skip
CHILDREN_OTHER_VULNERABILITIES = {
    **OTHER_VULNERABILITIES,
    "learning_difficulty": 0.2, "adhd": 0.25, "communication_needs": 0.2, "safeguarding": 0.4,
    "housing": 0.05, "debt": 0.0, "veteran": 0.0,
}  # fmt: skip
PREGNANCY_SHARE = 0.03  # of women screened
SUBSTANCES = _Weights({("drugs",): 45, ("alcohol",): 30, ("drugs", "alcohol"): 25})
NEEDS_SUPPORT_TO_COMMUNICATE = ("learning_disability", "autism", "communication_needs", "brain_injury")
SERVICES_FOR_VULNERABILITY = {
    "mental_health": ("community_mental_health", "talking_therapies"),
    "suicide_self_harm": ("crisis_team",),
    "drugs": ("drug_alcohol_service",),
    "alcohol": ("drug_alcohol_service",),
    "learning_disability": ("learning_disability_team",),
    "learning_difficulty": ("education_employment",),
    "autism": ("autism_service",),
    "communication_needs": ("speech_language_therapy",),
    "housing": ("housing",),
    "debt": ("benefits_advice",),
    "abuse_trauma": ("domestic_abuse_service",),
    "safeguarding": ("social_care",),
    "veteran": ("veterans_service",),
    "physical_health": ("gp_registration",),
}
REFERRALS_PER_SCREENING = _Weights({1: 55, 2: 30, 3: 15})
REFERRAL_DELAY_DAYS = _Weights({0: 70, 1: 20, 2: 10})  # from the screening to sending the referral
OUTCOMES_WITH_NEEDS = _Weights(
    {
        ScreeningOutcome.NO_FURTHER_ACTION: 14,
        ScreeningOutcome.FURTHER_ASSESSMENT: 22,
        ScreeningOutcome.ONWARD_REFERRAL: 46,
        ScreeningOutcome.DIVERSION_RECOMMENDED: 12,
        ScreeningOutcome.MENTAL_HEALTH_ACT_ASSESSMENT: 6,
    }
)
OUTCOMES_WITHOUT_NEEDS = _Weights(
    {
        ScreeningOutcome.NO_FURTHER_ACTION: 75,
        ScreeningOutcome.FURTHER_ASSESSMENT: 8,
        ScreeningOutcome.ONWARD_REFERRAL: 12,
        ScreeningOutcome.DIVERSION_RECOMMENDED: 5,
    }
)
CONSENT_TO_SCREENING = _Weights({ConsentStatus.GIVEN: 94, ConsentStatus.DECLINED: 3, ConsentStatus.LACKS_CAPACITY: 3})
CONSENT_TO_SHARE = _Weights({ConsentStatus.GIVEN: 82, ConsentStatus.DECLINED: 18})
CONTACT_MECHANISMS = _Weights({"01": 85, "02": 9, "11": 5, "98": 1})
DIAGNOSIS_SUSPECTED = _Weights({"1": 40, "2": 20, "3": 25, "4": 15})
DIAGNOSIS_NOT_SUSPECTED = _Weights({"5": 70, "U": 15, "X": 15})
RISK_WHEN_RAISED = _Weights({"low": 20, "medium": 55, "high": 25})
RISK_USUAL = _Weights({"none": 60, "low": 28, "medium": 10, "high": 2})
RISK_NOTE_LEVELS = ("medium", "high")
FINAL_REFERRAL_STATUS = _Weights(
    {
        ReferralStatus.ATTENDED: 45,
        ReferralStatus.DID_NOT_ATTEND: 15,
        ReferralStatus.ACCEPTED: 22,
        ReferralStatus.DECLINED: 12,
        ReferralStatus.MADE: 6,  # sent, and never heard of again
    }
)
ATTENDANCE = {  # national attended-or-did-not-attend codes fitting each final status
    ReferralStatus.ATTENDED: _Weights({"5": 85, "6": 15}),
    ReferralStatus.DID_NOT_ATTEND: _Weights({"3": 70, "7": 10, "2": 20}),
    ReferralStatus.ACCEPTED: _Weights({"0": 70, "4": 30}),
}
REFERRAL_OUTCOME_MEDIAN_DAYS = 10
UNSEEN_CLOSURE = _Weights({"released_before_seen": 70, "declined": 18, "not_appropriate": 8, "duplicate": 4})
REPORT_TYPES = _Weights({ReportType.ORAL: 30, ReportType.FAST_DELIVERY: 45, ReportType.STANDARD_DELIVERY: 25})
# Median hours from the last piece of work on a request to its closure.
CLOSING_MEDIAN_HOURS = {
    RequestType.ADVICE: 0.3,
    RequestType.PRISON_RELEASE: 120,
    RequestType.MAPPA: 240,  # the meeting
    ReportType.ORAL: 3,
    ReportType.FAST_DELIVERY: 30,
    ReportType.STANDARD_DELIVERY: 240,
    ScreeningOutcome.NO_FURTHER_ACTION: 1,
    "unseen": 4,
    "referral_work": 48,
}
MAPPA_CATEGORIES = _Weights({1: 45, 2: 45, 3: 10})
MAPPA_LEVELS = _Weights({1: 10, 2: 60, 3: 30})
TRAINING_AUDIENCES = _Weights({"police": 50, "court": 20, "probation": 20, "youth_offending_team": 10})
TRAINING_SESSIONS_IN_A_MONTH = _Weights({0: 15, 1: 70, 2: 15})


def _labels(code_list: CodeList) -> dict[str, str]:
    return {code: label for code, label, _ in EDITABLE_CODE_LISTS[code_list]}


SERVICE_LABELS = _labels(CodeList.ONWARD_SERVICE)
CLOSURE_LABELS = _labels(CodeList.CLOSURE_REASON)


# The screening fields each section saves (the rest belong to "person and context").
DRAFT_FIELDS = {
    screening_form.CONSENT: ("consent_to_screening", "consent_to_share", "capacity_decided_by", "capacity_reason"),
    screening_form.VULNERABILITIES: ("learning_disability_status", "autism_status"),
    screening_form.RISK: tuple(f"{kind}{suffix}" for kind in screening_form.RISK_FIELDS for suffix in ("", "_note")),
    screening_form.OUTCOME: ("outcome", *screening_form.RECOMMENDATION_FIELDS, "shared_with", "shared_what"),
}


@dataclass(frozen=True)
class _Ask:
    """What a request asks for, drawn before anything else about it."""

    request_type: str
    source: str
    urgency: str
    site_id: int
    report_type: str | None  # pre-sentence reports only
    prison: str | None  # prison release only
    release_on: date | None  # prison release only


@dataclass(frozen=True)
class _Findings:
    """What a screening found and decided; ids and times are added when it is written."""

    columns: dict  # the screening's own columns
    vulnerabilities: list[str]
    scores: list[Score]
    child: bool

    @property
    def outcome(self) -> str:
        return self.columns["outcome"]


@dataclass(frozen=True)
class _Timeline:
    """When each step of a request happened, or will happen (masked against now when written)."""

    received_at: datetime
    allocated_at: datetime
    first_response_at: datetime
    screened_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None


# --- The history -------------------------------------------------------------------------------


class _History:
    """Builds the rows of each request, and of everything that hangs off it, into chunks."""

    def __init__(
        self, rng: Random, team: _Team, targets: dict[str, timedelta], now: datetime, next_ids: dict[str, int]
    ):
        self.rng = rng
        self.team = team
        self.targets = targets
        self.now = now
        self.today = clock.to_london(now).date()
        self.vocabulary = _vocabulary()
        self.phrases = self.vocabulary.phrases
        self.ids = {name: itertools.count(start) for name, start in next_ids.items()}
        self.nhs_numbers = _NhsNumbers(rng)
        self.recent_people: list[_Known] = []
        self.people_seen = 0
        self.chunk = _Chunk()
        self.new_people: dict[int, dict] = {}  # this chunk's people, not yet written

    def take_chunk(self) -> _Chunk:
        chunk, self.chunk, self.new_people = self.chunk, _Chunk(), {}
        return chunk

    def _next_id(self, table: Table) -> int:
        return next(self.ids[table.name])

    def _add(self, table: Table, row: dict) -> dict:
        self.chunk.rows[table.name].append(row)
        return row

    def _phrase(self, key: str) -> str:
        return self.rng.choice(self.phrases[key])

    # People

    def _person_for(self, arrival: _Arrival, request_type: str) -> _Known | None:
        rng = self.rng
        if request_type == RequestType.ADVICE and rng.random() < ADVICE_WITHOUT_PERSON_SHARE:
            return None
        if self.recent_people and rng.random() < REPEAT_PERSON_SHARE:
            known = rng.choice(self.recent_people)
            self._record_contact(known.person_id, arrival.day)
            return known
        return self._new_person(arrival, child=rng.random() < arrival.channel.child_share)

    def _record_contact(self, person_id: int, day: date) -> None:
        # Requests come in order of receipt, so each contact is the latest so far.
        if person_id in self.new_people:
            self.new_people[person_id]["last_contact_on"] = day
        else:
            self.chunk.last_contact[person_id] = day

    def _name(self, group: str, gender: str, kind: str | None = None) -> str:
        kind = kind or {"1": "male", "2": "female"}.get(gender) or self.rng.choice(("male", "female"))
        return self.rng.choice(self.vocabulary.names[group, kind])

    def _names(self, gender: str) -> tuple[str, str, str, str]:
        """An ethnic category, given and family names that fit it, and the family name's group."""
        ethnic_category = ETHNIC_CATEGORIES.pick(self.rng)
        groups = NAME_GROUPS[ethnic_category]
        family_group = groups.pick(self.rng)
        given_name = self._name(groups.pick(self.rng), gender)
        return ethnic_category, given_name, self._name(family_group, gender, "family"), family_group

    def _new_person(self, arrival: _Arrival, child: bool) -> _Known:
        rng = self.rng
        gender = GENDER_IDENTITIES.pick(rng)
        ethnic_category, given_name, family_name, family_group = self._names(gender)
        age = CHILD_AGES.pick(rng) if child else rng.randint(*ADULT_AGE_BANDS.pick(rng))
        # Any day up to a year before the birthday `age` years ago: exactly `age` on the day.
        date_of_birth = _years_before(arrival.day, age) - timedelta(days=rng.randrange(365))
        nhs_number = self.nhs_numbers.next() if rng.random() < NHS_NUMBER_PRESENT_SHARE else None
        language, needs = self._language(family_group)
        person_id = self._next_id(PERSON)
        self.new_people[person_id] = self._add(PERSON, {
            "id": person_id, "team_id": self.team.team_id,
            "given_name": given_name, "family_name": family_name,
            "given_name_key": _name_key(given_name), "family_name_key": _name_key(family_name),
            "date_of_birth": date_of_birth, "nhs_number": nhs_number,
            "nhs_number_status": "present" if nhs_number else NHS_NUMBER_ABSENT.pick(rng),
            "gender_identity": gender, "ethnic_category": ethnic_category,
            "preferred_language": language, "communication_needs": needs,
            "last_contact_on": arrival.day, "created_at": arrival.received_at, "updated_at": arrival.received_at,
        })  # fmt: skip
        known = _Known(person_id, date_of_birth, gender)
        self._remember(known)
        return known

    def _remember(self, known: _Known) -> None:
        if len(self.recent_people) < RECENT_PEOPLE_KEPT:
            self.recent_people.append(known)
        else:  # overwrite the oldest, as in a ring
            self.recent_people[self.people_seen % RECENT_PEOPLE_KEPT] = known
        self.people_seen += 1

    def _language(self, name_group: str) -> tuple[str | None, str | None]:
        rng = self.rng
        languages = self.phrases["languages"].get(name_group)
        if languages and rng.random() < INTERPRETER_SHARE:
            language = rng.choice(languages)
            return language, f"Needs an interpreter ({language})."
        if rng.random() < BSL_SHARE:
            return "British Sign Language", "Deaf: needs a British Sign Language interpreter."
        return None, None

    def _requester(self, source: str) -> dict:
        rng = self.rng
        _, given, family, _ = self._names(GENDER_IDENTITIES.pick(rng))
        personal = source in ("self", "carer_relative")
        email = None
        if not personal and source != "police" and rng.random() < 0.5:
            mailbox = f"{_name_key(given)[:1]}.{_name_key(family)}".replace(" ", "").encode("ascii", "ignore").decode()
            email = f"{mailbox}@{source.replace('_', '-')}.example"
        # Ofcom's drama ranges: numbers that reach nobody.
        phone = f"07700 900{rng.randrange(1000):03d}" if personal else f"01632 960{rng.randrange(1000):03d}"
        return {
            "requester_name": f"{given} {family}",
            "requester_role": rng.choice(self.phrases["requester_roles"][source]),
            "requester_phone": phone,
            "requester_email": email,
        }

    # Requests

    def add_request(self, arrival: _Arrival) -> None:
        rng = self.rng
        ask = self._ask(arrival)
        known = self._person_for(arrival, ask.request_type)
        screened = ask.request_type == RequestType.SCREENING and rng.random() < SCREENED_SHARE
        draft = screened and self.now - arrival.received_at < DRAFT_WINDOW and rng.random() < DRAFT_SHARE
        practitioner = self.team.demo_practitioner if draft else rng.choice(self.team.practitioners)
        findings = self._findings(known, arrival, ask.site_id, practitioner) if screened else None
        timeline = self._timeline(arrival.received_at, ask, findings, draft)
        request = self._request_row(arrival, ask, known, timeline, practitioner, self._closure_reason(ask, findings))
        self._add_events(request, timeline, practitioner)
        if findings and timeline.screened_at <= self.now:
            self._add_screening(request, findings, timeline, draft)
        if request["status"] == RequestStatus.CLOSED and ask.request_type in PLANNED_WORK:
            self._add_activity(request, ask)

    def _ask(self, arrival: _Arrival) -> _Ask:
        rng = self.rng
        channel = arrival.channel
        request_type = channel.request_types.pick(rng)
        prison_release = request_type == RequestType.PRISON_RELEASE
        report = request_type == RequestType.PRE_SENTENCE_REPORT  # for a court, wherever it came from
        return _Ask(
            request_type=request_type,
            source=SOURCE_FOR_REQUEST_TYPE.get(request_type) or channel.sources.pick(rng),
            urgency=Urgency.ROUTINE if request_type in PLANNED_WORK else channel.urgencies.pick(rng),
            site_id=self.team.sites[COURT.site_kinds if report else channel.site_kinds].pick(rng),
            report_type=REPORT_TYPES.pick(rng) if report else None,
            prison=self._phrase("prisons") if prison_release else None,
            release_on=arrival.day + timedelta(days=rng.randint(3, 45)) if prison_release else None,
        )

    def _timeline(self, received_at: datetime, ask: _Ask, findings: _Findings | None, draft: bool) -> _Timeline:
        rng = self.rng
        share_of_target = _lognormal(rng, RESPONSE_MEDIAN_SHARE_OF_TARGET, RESPONSE_SPREAD)
        first_response_at = received_at + max(MINIMUM_RESPONSE, self.targets[ask.urgency] * share_of_target)
        screened_at = completed_at = None
        if findings:
            screened_at = received_at + timedelta(hours=_lognormal(rng, SCREENING_MEDIAN_HOURS, SCREENING_SPREAD))
            first_response_at = min(first_response_at, screened_at)
            completed_at = screened_at + timedelta(minutes=rng.uniform(20, 75))
        allocated_at = received_at + (first_response_at - received_at) * rng.uniform(0.05, 0.6)
        if findings:
            no_further_action = findings.outcome == ScreeningOutcome.NO_FURTHER_ACTION
            stage = ScreeningOutcome.NO_FURTHER_ACTION if no_further_action else "referral_work"
        elif ask.request_type == RequestType.SCREENING:
            stage = "unseen"
        else:
            stage = ask.report_type or ask.request_type
        closing = timedelta(hours=_lognormal(rng, CLOSING_MEDIAN_HOURS[stage], 0.7))
        closed_at = (completed_at or first_response_at) + closing
        # A draft is a screening still being worked on: its request stays open.
        return _Timeline(received_at, allocated_at, first_response_at, screened_at, completed_at,
                         None if draft else closed_at)  # fmt: skip

    def _closure_reason(self, ask: _Ask, findings: _Findings | None) -> str:
        if findings:
            return "referred_on" if findings.outcome == ScreeningOutcome.ONWARD_REFERRAL else "screened"
        if ask.request_type == RequestType.SCREENING:
            return UNSEEN_CLOSURE.pick(self.rng)
        if ask.request_type == RequestType.PRISON_RELEASE:
            return "referred_on"
        return "advice_given"

    def _status(self, timeline: _Timeline) -> str:
        now = self.now
        if timeline.closed_at and timeline.closed_at <= now:
            return RequestStatus.CLOSED
        if timeline.first_response_at <= now:
            return RequestStatus.IN_PROGRESS
        return RequestStatus.ALLOCATED if timeline.allocated_at <= now else RequestStatus.NEW

    def _request_row(self, arrival: _Arrival, ask: _Ask, known: _Known | None, timeline: _Timeline,
                     practitioner: int, closure_reason: str) -> dict:  # fmt: skip
        rng = self.rng
        request_id = self._next_id(Request.__table__)
        status = self._status(timeline)
        allocated = status != RequestStatus.NEW
        responded = status in (RequestStatus.IN_PROGRESS, RequestStatus.CLOSED)
        closed = status == RequestStatus.CLOSED
        custody, court = arrival.channel is CUSTODY, arrival.channel is COURT
        custody_number = f"{ask.site_id:02d}/{rng.randrange(100_000):05d}/{arrival.day.year % 100:02d}"
        offence = self._phrase("offences") if arrival.channel is not COMMUNITY else None
        received_at = arrival.received_at
        return self._add(Request.__table__, {
            "id": request_id,
            "reference": reference_for(request_id, received_at),
            "team_id": self.team.team_id, "site_id": ask.site_id,
            "person_id": known.person_id if known else None,
            "received_at": received_at,
            "source_of_referral": ask.source, **self._requester(ask.source),
            "request_type": ask.request_type, "urgency": ask.urgency,
            "reason": self._reason(arrival.channel, ask, offence),
            "custody_number": custody_number if custody else None,
            "arrested_at": received_at - timedelta(hours=rng.uniform(0.5, 10)) if custody else None,
            "offence": offence,
            "next_hearing_at": received_at + timedelta(minutes=rng.randrange(30, 240)) if court else None,
            "prison_release_on": ask.release_on,
            "status": status,
            "due_at": received_at + self.targets[ask.urgency],
            "allocated_to_id": practitioner if allocated else None,
            "allocated_at": timeline.allocated_at if allocated else None,
            "first_response_at": timeline.first_response_at if responded else None,
            "first_response_mechanism": self._response_mechanism(arrival.channel, timeline) if responded else None,
            "first_response_summary": self._phrase("first_response") if responded else None,
            "closed_at": timeline.closed_at if closed else None,
            "closure_reason": closure_reason if closed else None,
            "created_by_id": rng.choice(self.team.practitioners),
            "created_at": received_at,
            "updated_at": self._last_step(timeline),
        })  # fmt: skip

    def _last_step(self, timeline: _Timeline) -> datetime:
        return max(moment for moment in vars(timeline).values() if moment and moment <= self.now)

    def _reason(self, channel: _Channel, ask: _Ask, offence: str | None) -> str:
        concern = self._phrase("concerns")
        if ask.request_type == RequestType.ADVICE:
            return f"Advice about {self._phrase('advice_topics')}."
        if ask.request_type == RequestType.PRISON_RELEASE:
            return (f"Release from {ask.prison} due on {clock.format_date(ask.release_on)}; "
                    "needs mental health follow-up in the community.")  # fmt: skip
        if ask.request_type == RequestType.MAPPA:
            return "Invitation to a MAPPA meeting about a person under probation supervision."
        if ask.request_type == RequestType.PRE_SENTENCE_REPORT:
            return f"Information for a pre-sentence report ({ReportType.label_of(ask.report_type).lower()})."
        if channel is CUSTODY:
            return f"Detained on suspicion of {offence}. {concern}"
        if channel is COURT:
            return f"Appearing on a charge of {offence}. {concern}"
        return concern

    def _response_mechanism(self, channel: _Channel, timeline: _Timeline) -> str:
        if timeline.first_response_at == timeline.screened_at or (channel is not COMMUNITY and self.rng.random() < 0.6):
            return "01"  # face to face
        return "02" if self.rng.random() < 0.85 else "05"  # telephone, else e-mail

    def _add_events(self, request: dict, timeline: _Timeline, practitioner: int) -> None:
        rng = self.rng
        allocator = practitioner if rng.random() < 0.3 else self.team.lead  # "allocate to me", or the lead
        names = self.team.full_names
        # Details worded as the requests service words them.
        steps = (
            (EventKind.RECEIVED, timeline.received_at, request["created_by_id"],
             f"logged by {names[request['created_by_id']]}"),
            (EventKind.ALLOCATED, timeline.allocated_at, allocator, f"to {names[practitioner]}"),
            (EventKind.FIRST_RESPONSE, timeline.first_response_at, practitioner,
             ContactMechanism.label_of(request["first_response_mechanism"])),
            (SCREENING_STARTED, timeline.screened_at, practitioner, None),
            (EventKind.CLOSED, timeline.closed_at, practitioner, CLOSURE_LABELS.get(request["closure_reason"])),
        )  # fmt: skip
        for kind, at, by_user_id, detail in steps:
            if at is not None and at <= self.now:
                self._add(RequestEvent.__table__, {
                    "id": self._next_id(RequestEvent.__table__), "request_id": request["id"], "at": at,
                    "by_user_id": by_user_id, "kind": kind, "detail": detail, "created_at": at, "updated_at": at,
                })  # fmt: skip

    # Screenings

    def _findings(self, known: _Known, arrival: _Arrival, site_id: int, practitioner: int) -> _Findings:
        rng = self.rng
        child = age_on(known.date_of_birth, arrival.day) < 18
        vulnerabilities = self._vulnerabilities(child, known.gender)
        scores = self._scores(vulnerabilities, child)
        phq9_self_harm = any(result.instrument == "phq9" and result.flags for result in scores)
        consent = CONSENT_TO_SCREENING.pick(rng)
        share = consent if consent != ConsentStatus.GIVEN else CONSENT_TO_SHARE.pick(rng)
        outcome = self._outcome(vulnerabilities)
        shared = share == ConsentStatus.GIVEN and outcome != ScreeningOutcome.NO_FURTHER_ACTION and rng.random() < 0.85
        appropriate_adult_reason = self._appropriate_adult_reason(child, vulnerabilities)
        custody = self.team.site_kinds[site_id] == SiteKind.CUSTODY_SUITE
        lacks_capacity = consent == ConsentStatus.LACKS_CAPACITY
        detail_key = arrival.channel.detail_key
        risks = {}
        for kind, raised in (
            ("risk_to_self", "suicide_self_harm" in vulnerabilities or phq9_self_harm),
            ("risk_to_others", False),
            ("risk_from_others", "abuse_trauma" in vulnerabilities or "safeguarding" in vulnerabilities),
        ):
            level = (RISK_WHEN_RAISED if raised else RISK_USUAL).pick(rng)
            risks[kind] = level
            risks[f"{kind}_note"] = self._phrase(kind) if level in RISK_NOTE_LEVELS else None
        columns = {
            "person_id": known.person_id,
            "site_id": site_id,
            "practitioner_id": practitioner,
            "contact_mechanism": CONTACT_MECHANISMS.pick(rng),
            "attendance": AttendanceCode.ATTENDED_ON_TIME,  # a screening with findings: the person was seen
            "custody_or_court_details": self._phrase(detail_key) if detail_key else None,
            "appropriate_adult_required": appropriate_adult_reason is not None,
            "appropriate_adult_reason": appropriate_adult_reason,
            "consent_to_screening": consent,
            "consent_to_share": share,
            "capacity_decided_by": self.team.full_names[practitioner] if lacks_capacity else None,
            "capacity_reason": self._phrase("capacity_reasons") if lacks_capacity else None,
            "learning_disability_status": self._diagnosis_status("learning_disability" in vulnerabilities),
            "autism_status": self._diagnosis_status("autism" in vulnerabilities),
            **risks,
            "outcome": outcome,
            "recommendation_fitness_for_interview": self._fitness(appropriate_adult_reason) if custody else None,
            "recommendation_appropriate_adult": appropriate_adult_reason,
            "recommendation_adjustments": self._phrase("adjustments") if appropriate_adult_reason else None,
            "shared_with": self._phrase("shared_with") if shared else None,
            "shared_what": self._phrase("shared_what") if shared else None,
        }  # fmt: skip
        return _Findings(columns, vulnerabilities, scores, child)

    def _vulnerabilities(self, child: bool, gender: str) -> list[str]:
        rng = self.rng
        found = ["mental_health"] if rng.random() < MENTAL_HEALTH_SHARE else []
        if rng.random() < SUBSTANCE_MISUSE_SHARE:
            found.extend(SUBSTANCES.pick(rng))
        if not found and rng.random() >= OTHER_VULNERABILITY_ONLY_SHARE:
            return found
        chances = CHILDREN_OTHER_VULNERABILITIES if child else OTHER_VULNERABILITIES
        others = [code for code, chance in chances.items() if rng.random() < chance]
        if gender == "2" and not child and rng.random() < PREGNANCY_SHARE:
            others.append("pregnancy")
        if not found and not others:  # this person was drawn to have some other vulnerability
            others.append(rng.choice([code for code, chance in chances.items() if chance]))
        return found + others

    def _answers(self, code: str, severity: float, skip: int = 0) -> dict[str, int]:
        """Item answers around a severity from 0 (none) to 1 (the top answer is common)."""
        rng = self.rng
        answers = {}
        for item in INSTRUMENTS[code].items[skip:]:
            position = min(0.999, severity * 2 * rng.random())
            answers[item.key] = item.options[int(position * len(item.options))].score
        return answers

    def _scores(self, vulnerabilities: list[str], child: bool) -> list[Score]:
        rng = self.rng
        mental = "mental_health" in vulnerabilities
        mood = rng.uniform(0.25, 0.75) if mental else rng.uniform(0.0, 0.3)
        drinking = rng.uniform(0.35, 0.85) if "alcohol" in vulnerabilities else rng.uniform(0.0, 0.3)
        scores = []
        if rng.random() < 0.85:
            answers = self._answers("phq9", mood)
            self_harm = 1.2 if "suicide_self_harm" in vulnerabilities else 0.5
            answers["item9"] = self._answers("phq9", mood * self_harm, skip=8)["item9"]
            scores.append(_scored("phq9", tuple(answers.items())))
        if rng.random() < 0.6:
            scores.append(_scored("gad7", tuple(self._answers("gad7", mood).items())))
        if rng.random() < (0.9 if "alcohol" in vulnerabilities else 0.45):
            audit_c = _scored("auditc", tuple(self._answers("auditc", drinking).items()))
            scores.append(audit_c)
            if needs_full_audit(audit_c):  # the full AUDIT carries the first three answers over
                rest = self._answers("audit", drinking * 0.75, skip=3)  # harm and dependence are rarer than drinking
                scores.append(_scored("audit", (*audit_c.answers.items(), *rest.items())))
        if not child and rng.random() < 0.25:
            scores.append(_scored("bjmhs", tuple(self._answers("bjmhs", mood * 0.9).items())))
        return scores

    def _outcome(self, vulnerabilities: list[str]) -> str:
        outcome = (OUTCOMES_WITH_NEEDS if vulnerabilities else OUTCOMES_WITHOUT_NEEDS).pick(self.rng)
        if outcome == ScreeningOutcome.MENTAL_HEALTH_ACT_ASSESSMENT and "mental_health" not in vulnerabilities:
            return ScreeningOutcome.FURTHER_ASSESSMENT
        return outcome

    def _appropriate_adult_reason(self, child: bool, vulnerabilities: list[str]) -> str | None:
        """Why an appropriate adult is needed (always for a child, PACE Code C), or None."""
        rng = self.rng
        if child:
            return self.phrases["appropriate_adult_for_children"]
        communication = any(code in vulnerabilities for code in NEEDS_SUPPORT_TO_COMMUNICATE)
        if (communication and rng.random() < 0.7) or ("mental_health" in vulnerabilities and rng.random() < 0.08):
            return self._phrase("appropriate_adult_for_adults")
        return None

    def _diagnosis_status(self, suspected: bool) -> str:
        return (DIAGNOSIS_SUSPECTED if suspected else DIAGNOSIS_NOT_SUSPECTED).pick(self.rng)

    def _fitness(self, appropriate_adult_reason: str | None) -> str:
        fit, with_adult, not_fit = self.phrases["fitness_for_interview"]
        if self.rng.random() < 0.05:
            return not_fit
        return with_adult if appropriate_adult_reason else fit

    def _add_screening(self, request: dict, findings: _Findings, timeline: _Timeline, draft: bool) -> None:
        rng = self.rng
        complete = not draft and timeline.completed_at <= self.now
        saved = SCREENING_SECTIONS if complete else SCREENING_SECTIONS[: rng.randint(1, 4)]
        # A draft's sections were saved a few minutes apart.
        last_saved = timeline.completed_at if complete else timeline.screened_at + timedelta(minutes=8 * len(saved))
        last_saved = min(self.now, last_saved)
        screening_id = self._next_id(Screening.__table__)
        row = dict(findings.columns)
        if not complete:  # a draft holds only what its saved sections hold
            for section, fields in DRAFT_FIELDS.items():
                if section not in saved:
                    row.update(dict.fromkeys(fields))
        self._add(Screening.__table__, {
            **row,
            "id": screening_id, "team_id": self.team.team_id, "request_id": request["id"],
            "screened_at": timeline.screened_at,
            "shared_at": last_saved if row["shared_with"] else None,
            "status": ScreeningStatus.COMPLETE if complete else ScreeningStatus.DRAFT,
            "sections_saved": list(saved),
            "completed_at": timeline.completed_at if complete else None,
            "created_at": timeline.screened_at, "updated_at": last_saved,
        })  # fmt: skip
        if "vulnerabilities" in saved:
            for code in findings.vulnerabilities:
                self._add(ScreeningVulnerability.__table__, {
                    "id": self._next_id(ScreeningVulnerability.__table__), "screening_id": screening_id, "code": code,
                    "created_at": last_saved, "updated_at": last_saved,
                })  # fmt: skip
        if "instruments" in saved:
            for result in findings.scores:
                self._add(InstrumentResult.__table__, {
                    "id": self._next_id(InstrumentResult.__table__), "screening_id": screening_id,
                    "instrument": result.instrument, "scoring_version": result.version, "answers": result.answers,
                    "total": result.total, "band": result.band, "flags": list(result.flags), "complete": True,
                    "answered": len(result.answers),
                    "created_at": last_saved, "updated_at": last_saved,
                })  # fmt: skip
        if complete and findings.outcome == ScreeningOutcome.ONWARD_REFERRAL:
            self._add_referrals(screening_id, findings, timeline.completed_at)

    def _add_referrals(self, screening_id: int, findings: _Findings, completed_at: datetime) -> None:
        rng = self.rng
        candidates = []
        for code in findings.vulnerabilities:
            candidates.extend(SERVICES_FOR_VULNERABILITY.get(code, ()))
        if findings.child:
            candidates.append("youth_offending_team")
        candidates = list(dict.fromkeys(candidates)) or ["gp_registration"]
        screening_day = clock.to_london(completed_at).date()
        count = min(len(candidates), REFERRALS_PER_SCREENING.pick(rng))
        for service in rng.sample(candidates, count):
            referred_on = min(self.today, screening_day + timedelta(days=REFERRAL_DELAY_DAYS.pick(rng)))
            status = FINAL_REFERRAL_STATUS.pick(rng)
            outcome_on = referred_on + timedelta(days=round(_lognormal(rng, REFERRAL_OUTCOME_MEDIAN_DAYS, 0.6)))
            if outcome_on > self.today or status == ReferralStatus.MADE:  # nothing heard back yet
                status, outcome_on = ReferralStatus.MADE, None
            attendance = ATTENDANCE[status].pick(rng) if status in ATTENDANCE else None
            updated_at = min(self.now, clock.from_london(outcome_on, clock_time(11))) if outcome_on else completed_at
            self._add(OnwardReferral.__table__, {
                "id": self._next_id(OnwardReferral.__table__), "team_id": self.team.team_id,
                "person_id": findings.columns["person_id"], "screening_id": screening_id, "service": service,
                "referred_on": referred_on, "status": status, "attendance": attendance, "outcome_on": outcome_on,
                "created_at": completed_at, "updated_at": max(completed_at, updated_at),
            })  # fmt: skip

    # The team's other work

    def _add_activity(self, request: dict, ask: _Ask) -> None:
        """A closed MAPPA, pre-sentence report or prison release request leaves its activity."""
        day = clock.to_london(request["closed_at"]).date()
        details = {
            RequestType.MAPPA: self._mappa_meeting,
            RequestType.PRE_SENTENCE_REPORT: self._pre_sentence_report,
            RequestType.PRISON_RELEASE: self._prison_release,
        }[ask.request_type](request, ask, day)
        minutes = self.rng.randrange(30, 181)
        self._add_activity_row(day, request["allocated_to_id"], request["person_id"], minutes, details)

    def _mappa_meeting(self, _request: dict, _ask: _Ask, _day: date) -> dict:
        rng = self.rng
        return {
            "kind": ActivityKind.MAPPA_MEETING,
            "mappa_category": MAPPA_CATEGORIES.pick(rng),
            "mappa_level": MAPPA_LEVELS.pick(rng),
            "agencies_present": ", ".join(rng.sample(self.phrases["mappa_agencies"], rng.randint(3, 6))),
            "contribution": self._phrase("mappa_contributions"),
        }

    def _pre_sentence_report(self, request: dict, ask: _Ask, day: date) -> dict:
        return {
            "kind": ActivityKind.PRE_SENTENCE_REPORT,
            "offender_manager": request["requester_name"],
            "report_type": ask.report_type,
            "requested_on": clock.to_london(request["received_at"]).date(),
            "provided_on": day,
            "shared_what": self._phrase("pre_sentence_report_shared"),
            "consent": ConsentStatus.GIVEN if self.rng.random() < 0.85 else ConsentStatus.DECLINED,
        }

    def _prison_release(self, _request: dict, ask: _Ask, _day: date) -> dict:
        services = self.rng.sample(list(SERVICE_LABELS), 2)
        return {
            "kind": ActivityKind.PRISON_RELEASE,
            "prison": ask.prison,
            "release_on": ask.release_on,
            "services_referred": ", ".join(SERVICE_LABELS[code] for code in services),
        }

    def _add_activity_row(
        self, day: date, practitioner: int, person_id: int | None, minutes: int, details: dict
    ) -> None:
        at = min(self.now, clock.from_london(day, clock_time(16)))
        self._add(Activity.__table__, {
            "id": self._next_id(Activity.__table__), "team_id": self.team.team_id, "practitioner_id": practitioner,
            "activity_on": day, "minutes_spent": minutes, "person_id": person_id,
            "created_at": at, "updated_at": at, **details,
        })  # fmt: skip

    def add_training(self, start: datetime) -> None:
        """About one session a month, on a weekday, to the agencies the team works with."""
        rng = self.rng
        first = clock.to_london(start).date()
        month = first.replace(day=1)
        while month <= self.today:
            next_month = (month + timedelta(days=32)).replace(day=1)
            weekdays = [
                day
                for day in (month + timedelta(days=offset) for offset in range((next_month - month).days))
                if day.weekday() < 5 and first < day <= self.today
            ]
            sessions = min(len(weekdays), TRAINING_SESSIONS_IN_A_MONTH.pick(rng))
            for day in sorted(rng.sample(weekdays, sessions)):
                self._add_activity_row(day, rng.choice(self.team.practitioners), None, rng.randrange(60, 241), {
                    "kind": ActivityKind.TRAINING, "audience_agency": TRAINING_AUDIENCES.pick(rng),
                    "topic": self._phrase("training_topics"), "number_trained": rng.randint(5, 40),
                })  # fmt: skip
            month = next_month


# --- Entry point -------------------------------------------------------------------------------


def generate(
    engine: Engine,
    *,
    requests: int = 6000,
    seed: int = 20261129,
    demo_password: str,
    years: float = 2.0,
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GenerationSummary:
    """Write the demo team, its accounts and `years` of history ending at `now` into an empty database.

    Every demo account signs in with `demo_password`. The same `seed` and `now` write the same
    rows. `progress(stage, done, total)` is called as each chunk of requests is handed to the
    writer. The team and accounts commit first, then each chunk in its own transaction: a failure
    part-way leaves what was written, so start again from an empty database.

    Raises DatabaseNotEmpty when the database already has a team, and ValueError for a password the
    policy refuses or a history of no length.
    """
    if requests < 0 or years <= 0:
        raise ValueError(f"Cannot write {requests} requests over {years} years.")
    started = time.perf_counter()
    now = (now or clock.now()).astimezone(UTC)
    start = now - timedelta(days=years * DAYS_IN_A_YEAR)
    for username, _, _ in STAFF:
        problem = passwords.policy_problem(demo_password, username)
        if problem:
            raise ValueError(f"Demo password refused: {problem}")
    password_hash = passwords.hash_password(demo_password)  # once: Argon2 is slow on purpose
    with db.writing(engine) as session:
        if session.execute(select(func.count()).select_from(Team.__table__)).scalar_one():
            raise DatabaseNotEmpty("The database already has a team; demo data goes only into an empty database.")
        team = _found_team(session, start, password_hash)
        targets = settings.response_targets(session)
        next_ids = {table.name: _max_id(session, table) + 1 for table, _ in BULK_TABLES}
    rng = Random(seed)
    history = _History(rng, team, targets, now, next_ids)
    with _ChunkWriter(engine) as writer:
        for number, arrival in enumerate(_arrivals(rng, requests, start, now), start=1):
            history.add_request(arrival)
            if number % REQUESTS_PER_CHUNK == 0 or number == requests:
                writer.write(history.take_chunk())
                if progress:
                    progress("requests", number, requests)
        history.add_training(start)
        writer.write(history.take_chunk())
    _advance_sequences(engine)
    seconds = time.perf_counter() - started
    return GenerationSummary(teams=1, sites=len(SITES), users=len(STAFF), **writer.counts, seconds=seconds)


def _max_id(session: Session, table: Table) -> int:
    return session.execute(select(func.max(table.c.id))).scalar_one() or 0
