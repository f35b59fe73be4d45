"""Caseload measures for team leads and commissioners, counted by the database.

Each measure is one plain function `(session, user, filters) -> pandas.DataFrame` returning a small
result (a row per week, site, bin, practitioner…): every count, median and percentile is done in
SQL (`GROUP BY`, window functions, PostgreSQL's `percentile_cont` and an equivalent ranked
fallback on SQLite), never by loading rows as objects. Each function carries `.title` and
`.definition` (the words the page shows under its chart); `MEASURES` lists them all.

Rules common to every measure unless its definition says otherwise:
- **Who sees what.** Team leads and administrators (Permission.VIEW_CASELOAD), their own team only:
  an administrator sees the team their account belongs to (kept simple on purpose).
- **The cohort.** The team's requests *received* in the date range (London dates, both days
  included), narrowed by the filters. Screenings, onward referrals and outcomes are counted
  through the request they answer, whenever they happened; a screening saved without a request
  is not counted here.
- Screenings and onward referrals are reached through the team's requests (`request_id`), which
  scopes them to the team; they are deliberately not filtered on their own `team_id` as well,
  which would steer SQLite onto the (team, time) indexes and turn each look-up into a scan.
- **Screened** means the request has a *complete* screening (a draft is work in progress); its
  first screening is the earliest `screened_at` among them.
- **London time.** Weeks run Monday 00:00 to Sunday 24:00 London time; hours, days of the week and
  ages (at the London date the request was received) are London time too. PostgreSQL converts with
  its time-zone database; SQLite, which stores naive UTC, adds the offset from a small calendar of
  London's clock changes built from Python's zoneinfo for the years asked about.
- **Charts carry no client's name or identifier.** Only the drill-down list does, and opening it is
  audited (`view_caseload_list`).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from models import (
    Activity,
    AuditEvent,
    CodeItem,
    OnwardReferral,
    Person,
    Request,
    Screening,
    ScreeningVulnerability,
    Site,
    User,
)
from models.codes import (
    OPEN_REQUEST_STATUSES,
    ActivityKind,
    CodeList,
    EthnicCategory,
    GenderIdentity,
    ReferralStatus,
    RequestStatus,
    Role,
    ScreeningOutcome,
    ScreeningStatus,
    Urgency,
)
from services import audit, clock, code_lists, settings
from services.permissions import Permission, require
from services.requests import overdue_at

DEFAULT_WEEKS = 12
DRILLDOWN_ACTION = "view_caseload_list"

AGE_BANDS: dict[str, str] = {"10-17": "10–17", "18-25": "18–25", "26-64": "26–64", "65+": "65+"}
AGE_BAND_LABELS: dict[str, str] = {**AGE_BANDS, "under-10": "Under 10 (check the record)", "unknown": "Not known"}

RAG_LABELS = {"green": "Green: early in the target", "amber": "Amber: late in the target", "red": "Red: over target"}
OUT_OF_HOURS_LABELS = {
    "weekday_day": "Weekday 08:00–18:00",
    "weekday_evening_night": "Weekday evening or night (18:00–08:00)",
    "weekend": "Weekend (Saturday or Sunday)",
}
FUNNEL_STAGES = {
    "received": "Requests received",
    "screened": "Screened",
    "further_assessment": "Further assessment",
    "referred_on": "Referred on",
    "attended": "Attended onward",
}
ATTENDED_CODES = ("5", "6")  # attended on time; arrived late and was seen
NOT_ATTENDED_CODES = ("3", "7")  # did not attend; arrived late and was not seen
FURTHER_ASSESSMENT_OUTCOMES = (
    ScreeningOutcome.FURTHER_ASSESSMENT.value,
    ScreeningOutcome.MENTAL_HEALTH_ACT_ASSESSMENT.value,
)
DISTRIBUTION_BINS = 9  # eight of a quarter of the target each, then "more than twice the target"
NOT_ALLOCATED = 0  # the practitioner key of requests nobody holds yet
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_OPEN = tuple(status.value for status in OPEN_REQUEST_STATUSES)
_COMPLETE = ScreeningStatus.COMPLETE.value


# --------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class CaseloadFilters:
    """What the team lead asked to see. Dates are London calendar days, both included.

    `practitioner_id` selects the requests allocated to that member of staff (and, for the
    activities chart, the activities they logged). `age_band` is the person's age on the London
    date the request was received: one of AGE_BANDS.
    """

    start: date
    end: date
    site_id: int | None = None
    source_of_referral: str | None = None
    request_type: str | None = None
    urgency: str | None = None
    practitioner_id: int | None = None
    age_band: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the date range ends before it starts")
        if self.age_band is not None and self.age_band not in AGE_BANDS:
            raise ValueError(f"unknown age band {self.age_band!r}")

    @classmethod
    def default(cls, today: date | None = None) -> "CaseloadFilters":
        """The current London week and the eleven before it (twelve Monday-based weeks)."""
        today = today or clock.today_in_london()
        this_monday = today - timedelta(days=today.weekday())
        return cls(start=this_monday - timedelta(weeks=DEFAULT_WEEKS - 1), end=today)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "CaseloadFilters":
        """The period of the same length just before this one, with the same other filters."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def utc_range(self) -> tuple[datetime, datetime]:
        """[first London midnight, London midnight after the last day) as UTC instants."""
        return clock.from_london(self.start, time()), clock.from_london(self.end + timedelta(days=1), time())

    # The URL query: short names, only what differs from "everything".
    QUERY_NAMES = {
        "start": "from",
        "end": "to",
        "site_id": "site",
        "source_of_referral": "source",
        "request_type": "type",
        "urgency": "urgency",
        "practitioner_id": "practitioner",
        "age_band": "age",
    }

    def to_query(self) -> dict[str, str]:
        query = {}
        for name, key in self.QUERY_NAMES.items():
            value = getattr(self, name)
            if value is not None:
                query[key] = value.isoformat() if isinstance(value, date) else str(value)
        return query

    @classmethod
    def from_query(cls, query: Mapping[str, Any], today: date | None = None) -> tuple["CaseloadFilters", list[str]]:
        """Filters from a URL query, and a message for each value that could not be used."""
        default = cls.default(today)
        values: dict[str, Any] = {"start": default.start, "end": default.end}
        problems: list[str] = []
        for name, key in cls.QUERY_NAMES.items():
            raw = query.get(key)
            if isinstance(raw, list):
                raw = raw[-1] if raw else None
            if raw in (None, ""):
                continue
            raw = str(raw)
            try:
                if name in ("start", "end"):
                    values[name] = date.fromisoformat(raw)
                elif name in ("site_id", "practitioner_id"):
                    values[name] = int(raw)
                elif name == "urgency":
                    values[name] = Urgency(raw).value
                elif name == "age_band":
                    if raw not in AGE_BANDS:
                        raise ValueError(raw)
                    values[name] = raw
                else:
                    values[name] = raw[:40]
            except ValueError:
                problems.append(f"Ignored the link's {key}={raw[:40]!r}: not a value this page knows.")
        if values["end"] < values["start"]:
            problems.append("Ignored the link's dates: the range ended before it started.")
            values["start"], values["end"] = default.start, default.end
        return cls(**values), problems

    def describe(self, choices: "FilterChoices | None" = None) -> str:
        """The filters in words (for the audit trail, an export's About sheet, a caption)."""
        parts = [f"received {clock.format_date(self.start)} to {clock.format_date(self.end)}"]
        names = {
            "site_id": "site",
            "source_of_referral": "source",
            "request_type": "type",
            "urgency": "urgency",
            "practitioner_id": "practitioner",
            "age_band": "age band",
        }
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in names and value is not None:
                label = choices.label(field.name, value) if choices else str(value)
                parts.append(f"{names[field.name]} {label}")
        return "; ".join(parts)


@dataclass(frozen=True)
class FilterChoices:
    """The values the filter bar offers, each with the label shown."""

    sites: dict[int, str]
    sources: dict[str, str]
    request_types: dict[str, str]
    urgencies: dict[str, str]
    practitioners: dict[int, str]
    age_bands: dict[str, str]

    def label(self, field_name: str, value: Any) -> str:
        table = {
            "site_id": self.sites,
            "source_of_referral": self.sources,
            "request_type": self.request_types,
            "urgency": self.urgencies,
            "practitioner_id": self.practitioners,
            "age_band": self.age_bands,
        }[field_name]
        return table.get(value, str(value))


def filter_choices(session: Session, user: User) -> FilterChoices:
    """Sites, code lists and staff of the user's own team (staff names only, never clients')."""
    require(user, Permission.VIEW_CASELOAD)
    sites = session.connection().execute(
        select(Site.id, Site.name).where(Site.team_id == user.team_id).order_by(Site.name)
    ).all()
    staff = session.connection().execute(
        select(User.id, User.full_name, User.active)
        .where(User.team_id == user.team_id, User.role.in_([Role.PRACTITIONER.value, Role.TEAM_LEAD.value]))
        .order_by(User.full_name)
    ).all()
    return FilterChoices(
        sites=dict(sites),
        sources=_ordered_labels(session, CodeList.SOURCE_OF_REFERRAL),
        request_types=_ordered_labels(session, CodeList.REQUEST_TYPE),
        urgencies={urgency.value: urgency.label for urgency in Urgency},
        practitioners={row.id: row.full_name + ("" if row.active else " (inactive)") for row in staff},
        age_bands=dict(AGE_BANDS),
    )


def _ordered_labels(session: Session, code_list: CodeList) -> dict[str, str]:
    rows = session.connection().execute(
        select(CodeItem.code, CodeItem.label)
        .where(CodeItem.list_name == code_list.value)
        .order_by(CodeItem.sort_order, CodeItem.label)
    ).all()
    return dict(rows)


# --------------------------------------------------------------------------------------------
# London time in SQL


def _offset_minutes(moment: datetime) -> int:
    return int(moment.astimezone(clock.LONDON).utcoffset().total_seconds() // 60)


@lru_cache(maxsize=128)
def _clock_changes(year: int) -> tuple[datetime, ...]:
    """The UTC instants in `year` at which London's offset from UTC changes (to the minute)."""
    changes = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        if _offset_minutes(day) != _offset_minutes(following):
            moment = day
            for step in (timedelta(hours=1), timedelta(minutes=1)):
                while _offset_minutes(moment + step) == _offset_minutes(day):
                    moment += step
            changes.append(moment + timedelta(minutes=1))
        day = following
    return tuple(changes)


@lru_cache(maxsize=64)
def london_offsets(first_year: int, last_year: int) -> tuple[tuple[datetime, datetime, int], ...]:
    """[(from, until, minutes ahead of UTC)] for every stretch of those years not on UTC."""
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    stop = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    changes = (moment for year in range(first_year, last_year + 1) for moment in _clock_changes(year))
    boundaries = [start, *changes, stop]
    return tuple(
        (begin, until, _offset_minutes(begin))
        for begin, until in zip(boundaries, boundaries[1:], strict=False)
        if _offset_minutes(begin)
    )


def _number(value: int) -> ColumnElement:
    """A fixed integer written inline, for the same reason as `_constant`."""
    return literal_column(str(int(value)), Integer)


def _constant(text: str) -> ColumnElement:
    """A fixed SQL string written inline: PostgreSQL only sees a GROUP BY expression as the
    selected one when both are spelt the same, and two bound parameters are not."""
    assert "'" not in text
    return literal_column(f"'{text}'")


SHARED_FACTS = "caseload_shared_tables"  # session.info key of the tables all_measures shares
FACTS_TABLES = {False: "caseload_facts", True: "caseload_previous_facts"}  # by `previous`
SCREENINGS_TABLE = "caseload_screenings"
# Each shared table and the column its readers join on (PostgreSQL gathers statistics on it alone).
SHARED_TABLES = {FACTS_TABLES[False]: "request_id", FACTS_TABLES[True]: "request_id", SCREENINGS_TABLE: "screening_id"}
SHARED_SQL = "caseload_sql"


class _Sql:
    """The SQL the measures share: London time, the period's request facts, ranks and percentiles.

    Every measure of the period reads the *facts*: one row per request of the period, with what
    is costly worked out once — its first complete screening (a correlated look-up), its London
    week, weekday, hour and age band, the seconds to its first screening, whether it is the
    person's first request of the period. The headline also reads the facts of the period before
    (only what it compares). Standing alone a measure stores the facts in a materialised CTE;
    `all_measures` stores them once in temporary tables every measure then reads (dropped at the
    end, and in any case gone with the transaction, which a reading session never commits).
    """

    def __init__(self, session: Session, user: User, filters: CaseloadFilters):
        self.session = session
        self.filters = filters
        self.team_id = user.team_id
        self.postgres = session.get_bind().dialect.name == "postgresql"
        first = filters.previous().start.year - 1
        last = max(filters.end.year, clock.today_in_london().year) + 1
        self.offsets = () if self.postgres else london_offsets(first, last)
        self.target_seconds = settings.get_int(session, "screening_target_minutes") * 60
        self.amber_percent = settings.get_int(session, "amber_percent")
        self.now = clock.now()
        self.ctes: dict[str, Any] = {}

    def rows(self, statement) -> list:
        return self.session.connection().execute(statement).all()

    def counts_by(self, *columns) -> list:
        """(…columns, count) for each combination of the columns' values, in their order."""
        return self.rows(select(*columns, func.count()).group_by(*columns).order_by(*columns))

    # London time ----------------------------------------------------------------------------
    # A moment is turned once into whole "London seconds" (seconds since 1970-01-01 00:00 as read
    # on a London clock); days, weekdays, hours and weeks are then integer arithmetic, the same
    # on both databases, and a London date is a yyyymmdd number for working out ages.
    def local_seconds(self, moment) -> ColumnElement:
        if self.postgres:
            return cast(func.floor(extract("epoch", func.timezone(_constant("Europe/London"), moment))), BigInteger)
        shift = case(
            *((and_(moment >= begin, moment < until), minutes * 60) for begin, until, minutes in self.offsets),
            else_=0,
        ) if self.offsets else literal_column("0")
        return cast(func.strftime("%s", moment), Integer) + shift

    def local_ymd(self, moment) -> ColumnElement:
        """The London date of a moment as a yyyymmdd number."""
        if self.postgres:
            return cast(func.to_char(func.timezone(_constant("Europe/London"), moment), _constant("YYYYMMDD")),
                        Integer)
        return cast(func.strftime("%Y%m%d", self.local_seconds(moment), "unixepoch"), Integer)

    def ymd(self, day) -> ColumnElement:
        """A date column as a yyyymmdd number."""
        if self.postgres:
            return cast(func.to_char(day, _constant("YYYYMMDD")), Integer)
        return cast(func.replace(day, "-", ""), Integer)

    @staticmethod
    def day_of(local_seconds) -> ColumnElement:
        return local_seconds // _number(86400)

    def week_of(self, local_seconds) -> ColumnElement:
        """The Monday of the London week, as days since 1970-01-01 (a Thursday)."""
        day = self.day_of(local_seconds)
        return day - (day + _number(3)) % _number(7)

    def weekday_of(self, local_seconds) -> ColumnElement:
        """ISO day of the week: 1 Monday … 7 Sunday."""
        return (self.day_of(local_seconds) + _number(3)) % _number(7) + _number(1)

    @staticmethod
    def hour_of(local_seconds) -> ColumnElement:
        return (local_seconds % _number(86400)) // _number(3600)

    def month(self, day) -> ColumnElement:
        return func.to_char(day, _constant("YYYY-MM")) if self.postgres else func.strftime("%Y-%m", day)

    # Arithmetic -----------------------------------------------------------------------------
    def seconds_between(self, later, earlier) -> ColumnElement:
        """Whole seconds from `earlier` to `later` (rounded, so float noise never moves a boundary)."""
        if self.postgres:
            return cast(func.round(extract("epoch", later - earlier)), BigInteger)
        return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86400), Integer)

    @staticmethod
    def age_band_of(on_ymd, born_ymd) -> ColumnElement:
        """The age band in full years: (yyyymmdd on − yyyymmdd born) ÷ 10000, rounded down.

        Born on 29 February, a person comes of age on 1 March in a year without one.
        """
        age = (on_ymd - born_ymd) // _number(10000)
        return case(
            (born_ymd.is_(None), "unknown"),
            (on_ymd < born_ymd, "under-10"),
            (age < _number(10), "under-10"),
            (age < _number(18), "10-17"),
            (age < _number(26), "18-25"),
            (age < _number(65), "26-64"),
            else_="65+",
        )

    def rag(self, seconds) -> ColumnElement:
        """green: within the amber share of the target; amber: within the target; red: over it."""
        return case(
            (seconds * 100 <= self.target_seconds * self.amber_percent, "green"),
            (seconds <= self.target_seconds, "amber"),
            else_="red",
        )

    def distribution_bin(self, seconds) -> ColumnElement:
        """Bin k holds (k·T/4, (k+1)·T/4]; the first also holds 0; the last everything over 2T."""
        quarters = (seconds * 4 - 1) // self.target_seconds
        return case(
            (seconds <= 0, 0),
            (quarters >= DISTRIBUTION_BINS - 1, DISTRIBUTION_BINS - 1),
            else_=quarters,
        )

    @staticmethod
    def out_of_hours_category(weekday, hour) -> ColumnElement:
        return case(
            (weekday >= 6, "weekend"),
            (or_(hour < 8, hour >= 18), "weekday_evening_night"),
            else_="weekday_day",
        )

    # The requests -------------------------------------------------------------------------
    def requests_and_people(self):
        return Request.__table__.outerjoin(Person.__table__, Person.id == Request.person_id)

    def conditions(self, *, with_age_band: bool = True) -> list[ColumnElement]:
        """The team and every filter but the dates, on Request (joined to Person)."""
        filters = self.filters
        conditions = [Request.team_id == self.team_id]
        for column, value in (
            (Request.site_id, filters.site_id),
            (Request.source_of_referral, filters.source_of_referral),
            (Request.request_type, filters.request_type),
            (Request.urgency, filters.urgency),
            (Request.allocated_to_id, filters.practitioner_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if with_age_band and filters.age_band is not None:
            band = self.age_band_of(self.local_ymd(Request.received_at), self.ymd(Person.date_of_birth))
            conditions.append(band == filters.age_band)
        return conditions

    def first_screened(self) -> ColumnElement:
        """When the request was first screened: its earliest complete screening."""
        return (
            select(func.min(Screening.screened_at))
            .where(
                Screening.request_id == Request.id,
                Screening.status == _COMPLETE,
                Screening.screened_at.is_not(None),
            )
            .correlate(Request.__table__)
            .scalar_subquery()
        )

    def facts_select(self, *, previous: bool = False) -> Select:
        """The facts of each request of the period, read and worked out once.

        With `previous`, those of the period of the same length just before, and only what the
        headline compares (its counts and times to screening): half the rows of a table holding
        both periods, and none of the London time, people or numbering the charts need.
        """
        start, end = (self.filters.previous() if previous else self.filters).utc_range()
        local_ymd = self.local_ymd(Request.received_at)
        born_ymd = self.ymd(Person.date_of_birth)
        chosen = [*self.conditions(with_age_band=False), Request.received_at >= start, Request.received_at < end]
        if self.filters.age_band is not None:
            chosen.append(self.age_band_of(local_ymd, born_ymd) == self.filters.age_band)
        columns = [
            Request.id.label("request_id"),
            Request.received_at,
            Request.due_at,
            Request.first_response_at,
            self.first_screened().label("first_screened_at"),
        ]
        if not previous:
            # 1 on each person's first request of the period (ties broken by id), so that people
            # are counted once without a sort per measure. Numbered in this same read: numbering
            # ids alone and joining them back made no measurable difference on SQLite, but made
            # PostgreSQL read the whole request table a second time (1.5 s against 1.0 s at 1M).
            first_for_person = case(
                (func.row_number().over(partition_by=Request.person_id,
                                        order_by=(Request.received_at, Request.id)) == 1, 1),
                else_=0,
            )
            columns += [
                Request.site_id,
                Request.source_of_referral,
                Request.request_type,
                Request.urgency,
                Request.allocated_to_id,
                Request.person_id,
                first_for_person.label("first_for_person"),
                self.local_seconds(Request.received_at).label("local_seconds"),
                local_ymd.label("local_ymd"),
                born_ymd.label("born_ymd"),
                func.coalesce(Person.gender_identity, "X").label("gender"),
                func.coalesce(Person.ethnic_category, "99").label("ethnic_category"),
            ]
        read = select(*columns).select_from(self.requests_and_people()).where(*chosen)
        # Materialised, so the figures below are derived from the values read rather than each
        # repeating the look-up of the first screening and the time-zone arithmetic.
        r = read.cte(f"read_{FACTS_TABLES[previous]}").prefix_with("MATERIALIZED").c
        derived = [self.seconds_between(r.first_screened_at, r.received_at).label("screen_seconds")]
        if not previous:
            derived += [
                self.week_of(r.local_seconds).label("week"),
                self.weekday_of(r.local_seconds).label("weekday"),
                self.hour_of(r.local_seconds).label("hour"),
                self.age_band_of(r.local_ymd, r.born_ymd).label("age_band"),
            ]
        kept = [column for column in r if column.name not in ("local_seconds", "local_ymd", "born_ymd")]
        return select(*kept, *derived)

    def screenings_select(self) -> Select:
        """The complete screenings answering the period's requests, read once: four measures join
        them to vulnerabilities and referrals (on PostgreSQL each join read the whole screening
        table)."""
        facts = self.facts()
        return select(
            facts.c.request_id, facts.c.received_at, Screening.id.label("screening_id"), Screening.person_id,
            Screening.outcome,
        ).select_from(facts.join(Screening.__table__, and_(Screening.request_id == facts.c.request_id,
                                                           Screening.status == _COMPLETE)))

    def facts(self, *, previous: bool = False):
        """The facts as a FROM clause: the table all_measures shared, or else a materialised CTE."""
        return self.shared(FACTS_TABLES[previous])

    def screenings(self):
        """The period's complete screenings as a FROM clause (as `facts`)."""
        return self.shared(SCREENINGS_TABLE)

    def builder(self, name: str) -> Callable[[], Select]:
        return {FACTS_TABLES[False]: self.facts_select, FACTS_TABLES[True]: partial(self.facts_select, previous=True),
                SCREENINGS_TABLE: self.screenings_select}[name]

    def shared(self, name: str):
        """The table all_measures shared under `name`, or else a materialised CTE of the same rows,
        one per name for this helper (a measure referring to it twice names one CTE)."""
        shared = self.session.info.get(SHARED_FACTS)
        if shared is not None and shared[0] == (self.team_id, self.filters) and name in shared[1]:
            return shared[1][name]
        if name not in self.ctes:
            self.ctes[name] = self.builder(name)().cte(name).prefix_with("MATERIALIZED")
        return self.ctes[name]

    def percentiles(self, grouped: Select, ps: Sequence[float]) -> dict[Any, list[float | None]]:
        """Continuous percentiles (as PostgreSQL's percentile_cont) of `value` per `grouping`.

        `grouped` is a select of two columns labelled `grouping` and `value`. On SQLite the rank of
        each value is numbered with ROW_NUMBER/COUNT windows and the two neighbouring values are
        interpolated in SQL, which gives exactly percentile_cont's answer.
        """
        source = grouped.where(grouped.selected_columns.value.is_not(None)).subquery()
        if self.postgres:
            statement = select(
                source.c.grouping,
                *(func.percentile_cont(p).within_group(source.c.value) for p in ps),
            ).group_by(source.c.grouping)
        else:
            ranked = select(
                source.c.grouping,
                source.c.value,
                (func.row_number().over(partition_by=source.c.grouping, order_by=source.c.value) - 1).label("rank"),
                func.count().over(partition_by=source.c.grouping).label("n"),
            ).subquery()
            picked = []
            for p in ps:
                position = literal(float(p)) * (ranked.c.n - 1)
                lower = cast(position, Integer)  # positions are never negative: truncation is floor
                low_value = func.max(case((ranked.c.rank == lower, ranked.c.value)))
                high_value = func.max(case((ranked.c.rank == lower + 1, ranked.c.value)))
                fraction = func.max(position - lower)
                picked.append(low_value + fraction * (func.coalesce(high_value, low_value) - low_value))
            statement = select(ranked.c.grouping, *picked).group_by(ranked.c.grouping)
        return {row[0]: [None if value is None else float(value) for value in row[1:]] for row in self.rows(statement)}


def _sql_for(session: Session, user: User, filters: CaseloadFilters) -> _Sql:
    """The measures' SQL helper; all_measures shares one (settings read once, one "now")."""
    shared = session.info.get(SHARED_SQL)
    if shared is not None and shared[0] == (user.id, user.team_id, filters):
        return shared[1]
    return _Sql(session, user, filters)


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


EPOCH = date(1970, 1, 1)


def _day_number_date(days) -> date:
    return EPOCH + timedelta(days=int(days))


def _frame(rows: Sequence, columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(row) for row in rows], columns=list(columns))


def _share(part: int | None, whole: int | None) -> float | None:
    return None if not whole else (part or 0) / whole


def week_starts(filters: CaseloadFilters) -> list[date]:
    """Every London Monday whose week overlaps the period (for a chart axis with empty weeks)."""
    monday = filters.start - timedelta(days=filters.start.weekday())
    weeks = []
    while monday <= filters.end:
        weeks.append(monday)
        monday += timedelta(weeks=1)
    return weeks


def _screened(facts) -> ColumnElement:
    return facts.c.first_screened_at.is_not(None)


def _answerable(sql: _Sql, facts) -> ColumnElement:
    """Answered, or already past its due time."""
    return or_(facts.c.first_response_at.is_not(None), facts.c.due_at < sql.now)


def _answered_in_time(facts) -> ColumnElement:
    return and_(facts.c.first_response_at.is_not(None), facts.c.first_response_at <= facts.c.due_at)


def _first_requests(sql: _Sql, facts) -> Select:
    """Each person's first request of the period (so people are counted once), with its facts."""
    return (
        select(facts.c.request_id, facts.c.age_band, facts.c.gender, facts.c.ethnic_category)
        .where(facts.c.person_id.is_not(None), facts.c.first_for_person == 1)
        .subquery()
    )


def _with_vulnerabilities(screenings):
    return screenings.join(ScreeningVulnerability.__table__,
                           ScreeningVulnerability.screening_id == screenings.c.screening_id)


def _people_with_vulnerability(screenings, code=None) -> Select:
    """(person, their first request of the period whose screening recorded the vulnerability, code)."""
    rank = func.row_number().over(
        partition_by=(screenings.c.person_id, ScreeningVulnerability.code),
        order_by=(screenings.c.received_at, screenings.c.request_id),
    )
    found = (
        select(screenings.c.person_id, screenings.c.request_id, ScreeningVulnerability.code, rank.label("rank"))
        .select_from(_with_vulnerabilities(screenings))
    )
    if code is not None:
        found = found.where(ScreeningVulnerability.code == code)
    found = found.subquery()
    return select(found).where(found.c.rank == 1).subquery()


def _referral_outcome() -> ColumnElement:
    """The referral's outcome: attendance when recorded, otherwise its status."""
    return case(
        (OnwardReferral.attendance.in_(ATTENDED_CODES), ReferralStatus.ATTENDED.value),
        (OnwardReferral.attendance.in_(NOT_ATTENDED_CODES), ReferralStatus.DID_NOT_ATTEND.value),
        else_=OnwardReferral.status,
    )


def _referrals_of(request_id) -> Select:
    """Onward referrals made at a complete screening answering the given request."""
    return (
        select(OnwardReferral.id)
        .select_from(OnwardReferral.__table__.join(Screening.__table__, Screening.id == OnwardReferral.screening_id))
        .where(Screening.request_id == request_id, Screening.status == _COMPLETE)
    )


def _stage_conditions(facts) -> dict[str, ColumnElement]:
    further = select(Screening.id).where(
        Screening.request_id == facts.c.request_id,
        Screening.status == _COMPLETE,
        Screening.outcome.in_(FURTHER_ASSESSMENT_OUTCOMES),
    )
    attended = _referrals_of(facts.c.request_id).where(_referral_outcome() == ReferralStatus.ATTENDED.value)
    return {
        "received": literal(True),
        "screened": _screened(facts),
        "further_assessment": exists(further),
        "referred_on": exists(_referrals_of(facts.c.request_id)),
        "attended": exists(attended),
    }


# --------------------------------------------------------------------------------------------
# The measures


@dataclass(frozen=True)
class MeasureInfo:
    key: str
    title: str
    definition: str
    function: Callable[[Session, User, CaseloadFilters], pd.DataFrame]
    drilldown: bool


MEASURES: dict[str, MeasureInfo] = {}


def measure(key: str, title: str, definition: str, *, drilldown: bool = True):
    """Register a measure; its title and definition are shown with its chart."""

    def register(function):
        function.key, function.title, function.definition = key, title, " ".join(definition.split())
        MEASURES[key] = MeasureInfo(key, title, function.definition, function, drilldown)
        return function

    return register


HEADLINE_COLUMNS = ["key", "label", "value", "previous", "unit", "better"]


@measure(
    "headline",
    "Headline figures",
    """Requests received in the period; the share of them screened; the median and 90th-percentile
    time from receipt to first screening of those screened; the share screened within the team's
    screening target; the share answered by their due time (set from the urgency's response
    target) of those answered or already overdue. Each is compared with the period of the same
    length just before. Open, waiting-for-allocation and overdue counts (past the due time with no
    first response yet, as on the triage queue) are as of now, compared
    with the same moment one period-length ago (rebuilt from received, allocated and closed times;
    a reopened request counts as open from its receipt).""",
    drilldown=False,
)
def headline(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    compared = {"current": sql.facts(), "previous": sql.facts(previous=True)}
    facts = union_all(*(
        select(_constant(period).label("period"), *(period_facts.c[name] for name in (
            "first_screened_at", "screen_seconds", "first_response_at", "due_at")))
        for period, period_facts in compared.items()
    )).subquery("facts")
    seconds = facts.c.screen_seconds
    counts = {
        row.period: row
        for row in sql.rows(
            select(
                facts.c.period,
                func.count().label("received"),
                func.count(facts.c.first_screened_at).label("screened"),
                func.sum(case((seconds <= sql.target_seconds, 1), else_=0)).label("within"),
                func.sum(case((_answerable(sql, facts), 1), else_=0)).label("answerable"),
                func.sum(case((_answered_in_time(facts), 1), else_=0)).label("answered_in_time"),
            ).group_by(facts.c.period)
        )
    }
    times = sql.percentiles(select(facts.c.period.label("grouping"), seconds.label("value")), (0.5, 0.9))
    snapshot = _snapshot(sql)

    def count(period: str, name: str) -> int:
        row = counts.get(period)
        return int(getattr(row, name) or 0) if row else 0

    def minutes(period: str, index: int) -> float | None:
        value = times.get(period, [None, None])[index]
        return None if value is None else value / 60

    rows = []
    for key, label, unit, better, value in (
        ("received", "Requests received", "count", None, lambda p: count(p, "received")),
        ("share_screened", "Share screened", "share", "higher",
         lambda p: _share(count(p, "screened"), count(p, "received"))),
        ("median_minutes", "Median time to first screening", "minutes", "lower", lambda p: minutes(p, 0)),
        ("p90_minutes", "90th percentile time to first screening", "minutes", "lower", lambda p: minutes(p, 1)),
        ("share_within_target", "Screened within target", "share", "higher",
         lambda p: _share(count(p, "within"), count(p, "screened"))),
        ("share_answered_in_time", "Answered by due time (by urgency)", "share", "higher",
         lambda p: _share(count(p, "answered_in_time"), count(p, "answerable"))),
    ):
        rows.append((key, label, value("current"), value("previous"), unit, better))
    rows += [
        ("open_now", "Open caseload now", snapshot["open_now"], snapshot["open_then"], "count", None),
        ("waiting_now", "Waiting for allocation now", snapshot["waiting_now"], snapshot["waiting_then"], "count",
         "lower"),
        ("overdue_now", "Overdue now", snapshot["overdue_now"], snapshot["overdue_then"], "count", "lower"),
    ]
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS, dtype=object)


def _snapshot(sql: _Sql) -> dict[str, int]:
    """Open, waiting and overdue now (by status) and one period-length ago (by timestamps).

    Only requests open now or closed since then can count, so the two halves read the open ones
    by (team, status) and those closed since then by (team, closed time): neither reads history.
    """
    now = sql.now
    then = now - timedelta(days=sql.filters.days)
    is_open = Request.status.in_(_OPEN)
    open_then = Request.received_at <= then  # within each half, the rest of "open then" holds
    waiting_then = and_(open_then, or_(Request.allocated_at.is_(None), Request.allocated_at > then))
    overdue_then = and_(open_then, overdue_at(then))

    def half(*where, now_too: bool):
        zero = literal_column("0")
        return (
            select(
                (literal_column("1") if now_too else zero).label("open_now"),
                (case((Request.allocated_to_id.is_(None), 1), else_=0) if now_too else zero).label("waiting_now"),
                (case((overdue_at(now), 1), else_=0) if now_too else zero).label("overdue_now"),
                case((open_then, 1), else_=0).label("open_then"),
                case((waiting_then, 1), else_=0).label("waiting_then"),
                case((overdue_then, 1), else_=0).label("overdue_then"),
            )
            .select_from(sql.requests_and_people())
            .where(*sql.conditions(), *where)
        )

    both = union_all(
        half(is_open, now_too=True),
        half(~is_open, Request.closed_at > then, now_too=False),
    ).subquery()
    totals = sql.rows(select(*(func.coalesce(func.sum(column), 0) for column in both.c)))[0]
    names = ("open_now", "waiting_now", "overdue_now", "open_then", "waiting_then", "overdue_then")
    return dict(zip(names, (int(value) for value in totals), strict=True))


@measure(
    "requests_by_week_and_site",
    "Requests per week by site",
    """Requests received each London week (Monday to Sunday), stacked by the site they came from.""",
)
def requests_by_week_and_site(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    counted = (
        select(facts.c.week, facts.c.site_id, func.count().label("requests"))
        .group_by(facts.c.week, facts.c.site_id)
        .subquery()
    )
    rows = sql.rows(
        select(counted.c.week, counted.c.site_id, Site.name, counted.c.requests)
        .select_from(counted.join(Site.__table__, Site.id == counted.c.site_id))
        .order_by(counted.c.week, Site.name)
    )
    frame = _frame(rows, ["week", "site_id", "site", "requests"])
    frame["week"] = frame["week"].map(_day_number_date)
    return frame


@measure(
    "requests_by_week_and_source",
    "Requests per week by source",
    """Requests received each London week (Monday to Sunday), by the agency that made them
    (source of referral).""",
)
def requests_by_week_and_source(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    rows = sql.counts_by(facts.c.week, facts.c.source_of_referral)
    frame = _frame(rows, ["week", "source", "requests"])
    frame["week"] = frame["week"].map(_day_number_date)
    labels = code_lists.labels(session, CodeList.SOURCE_OF_REFERRAL)
    frame.insert(2, "source_label", frame["source"].map(lambda code: labels.get(code, code)))
    return frame


def _bin_label(index: int, target_seconds: int) -> str:
    def show(seconds: float) -> str:
        minutes = seconds / 60
        return f"{minutes:g} min" if minutes < 60 else f"{minutes / 60:g} h"

    quarter = target_seconds / 4
    if index >= DISTRIBUTION_BINS - 1:
        return f"over {show(2 * target_seconds)}"
    return f"{show(index * quarter) if index else '0'} – {show((index + 1) * quarter)}"


@measure(
    "time_to_first_screening",
    "Time to first screening",
    """Screened requests received in the period, by the time from receipt to their first complete
    screening, in bins of a quarter of the team's screening target (a setting; 4 hours unless
    changed). A screening exactly at the target counts as within it. Requests not yet screened are
    not in this chart.""",
)
def time_to_first_screening(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    binned = (
        select(sql.distribution_bin(facts.c.screen_seconds).label("bin"))
        .where(_screened(facts))
        .subquery()
    )
    counts = dict(sql.rows(select(binned.c.bin, func.count()).group_by(binned.c.bin)))
    target = sql.target_seconds
    rows = [
        (
            index,
            _bin_label(index, target),
            index * target / 4 / 3600,
            int(counts.get(index, 0)),
            index < DISTRIBUTION_BINS // 2,
            target / 60,
        )
        for index in range(DISTRIBUTION_BINS)
    ]
    return pd.DataFrame(rows, columns=["bin", "label", "from_hours", "requests", "within_target", "target_minutes"])


@measure(
    "screening_within_target_by_week",
    "Screened within target, per week",
    """Screened requests received each London week, by how soon they were first screened: green
    within the amber share of the screening target (a setting, 75% unless changed), amber later but
    within the target, red over it. The share within target is green plus amber.""",
)
def screening_within_target_by_week(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    rated = (
        select(facts.c.week, sql.rag(facts.c.screen_seconds).label("rag"))
        .where(_screened(facts))
        .subquery()
    )
    count = func.count()
    weekly_total = func.sum(count).over(partition_by=rated.c.week)
    weekly_within = func.sum(func.sum(case((rated.c.rag != "red", 1), else_=0))).over(partition_by=rated.c.week)
    rows = sql.rows(
        select(rated.c.week, rated.c.rag, count, weekly_total, weekly_within)
        .group_by(rated.c.week, rated.c.rag)
        .order_by(rated.c.week, rated.c.rag)
    )
    frame = _frame(rows, ["week", "rag", "requests", "screened_that_week", "within_target_that_week"])
    frame["week"] = frame["week"].map(_day_number_date)
    for column in ("requests", "screened_that_week", "within_target_that_week"):
        frame[column] = frame[column].astype(int)
    frame["share_within_target"] = frame["within_target_that_week"] / frame["screened_that_week"]
    frame.insert(2, "rag_label", frame["rag"].map(RAG_LABELS))
    return frame


@measure(
    "answered_in_time_by_urgency",
    "Answered by due time, by urgency",
    """For each urgency, of the requests received in the period that have been answered or are
    already past their due time, the share whose first response was recorded by the due time. The
    due time is set from the urgency's response target (settings: 1 hour, 4 hours, 3 days unless
    changed).""",
)
def answered_in_time_by_urgency(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    rows = sql.rows(
        select(facts.c.urgency, func.count(), func.sum(case((_answered_in_time(facts), 1), else_=0)))
        .where(_answerable(sql, facts))
        .group_by(facts.c.urgency)
    )
    found = {row[0]: (int(row[1]), int(row[2] or 0)) for row in rows}
    data = []
    for urgency in Urgency:
        answerable, answered = found.pop(urgency.value, (0, 0))
        data.append((urgency.value, urgency.label, answerable, answered, _share(answered, answerable)))
    for code, (answerable, answered) in found.items():  # an urgency no longer in the list
        data.append((code, code, answerable, answered, _share(answered, answerable)))
    return pd.DataFrame(data, columns=["urgency", "urgency_label", "answerable", "answered_in_time", "share"])


@measure(
    "open_caseload_by_practitioner",
    "Open caseload per practitioner",
    """Open requests now (new, allocated, in progress or reopened), by the member of staff they are
    allocated to, split into overdue (past their due time with no first response yet) and the
    rest. Filters other than the dates apply; "Not allocated" is the queue waiting for allocation.""",
)
def open_caseload_by_practitioner(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    overdue = case((overdue_at(sql.now), 1), else_=0)
    practitioner = func.coalesce(Request.allocated_to_id, literal_column(str(NOT_ALLOCATED)))
    rows = sql.rows(
        select(practitioner, User.full_name, func.count(), func.sum(overdue))
        .select_from(sql.requests_and_people().outerjoin(User.__table__, User.id == Request.allocated_to_id))
        .where(*sql.conditions(), Request.status.in_(_OPEN))
        .group_by(practitioner, User.full_name)
    )
    frame = _frame(rows, ["practitioner_id", "practitioner", "open", "overdue"])
    frame["practitioner"] = frame["practitioner"].fillna("Not allocated")
    frame["open"] = frame["open"].astype(int)
    frame["overdue"] = frame["overdue"].fillna(0).astype(int)
    frame["not_overdue"] = frame["open"] - frame["overdue"]
    return frame.sort_values(["open", "practitioner"], ascending=[False, True], ignore_index=True)


@measure(
    "vulnerabilities",
    "Vulnerabilities found",
    """Of the people screened (a complete screening answering a request received in the period),
    the share with each vulnerability recorded at one of those screenings. A person counts once per
    vulnerability however often they were screened; a person can have several.""",
)
def vulnerabilities(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    screenings = sql.screenings()
    people = sql.rows(select(func.count(func.distinct(screenings.c.person_id))))[0][0] or 0
    rows = sql.rows(
        select(ScreeningVulnerability.code, func.count(func.distinct(screenings.c.person_id)))
        .select_from(_with_vulnerabilities(screenings))
        .group_by(ScreeningVulnerability.code)
    )
    labels = _ordered_labels(session, CodeList.VULNERABILITY)
    frame = _frame(rows, ["code", "people"])
    frame["people"] = frame["people"].astype(int)
    frame.insert(1, "label", frame["code"].map(lambda code: labels.get(code, code)))
    frame["screened_people"] = int(people)
    frame["share"] = frame["people"] / people if people else 0.0
    return frame.sort_values(["people", "label"], ascending=[False, True], ignore_index=True)


@measure(
    "age_band_and_gender",
    "People by age band and gender identity",
    """People the period's requests were about, counted once each: age band on the London date of
    their first request in the period (10–17, 18–25, 26–64, 65+), and recorded gender identity.
    General advice requests about no one are not counted.""",
)
def age_band_and_gender(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    people = _first_requests(sql, sql.facts())
    rows = sql.counts_by(people.c.age_band, people.c.gender)
    frame = _frame(rows, ["age_band", "gender", "people"])
    frame["people"] = frame["people"].astype(int)
    frame.insert(1, "age_band_label", frame["age_band"].map(lambda code: AGE_BAND_LABELS.get(code, code)))
    frame["gender_label"] = frame["gender"].map(GenderIdentity.label_of)
    return frame


@measure(
    "ethnic_category",
    "People by ethnic category",
    """People the period's requests were about, counted once each, by recorded ethnic category
    (NHS Data Dictionary codes); "Not known" includes people with none recorded.""",
)
def ethnic_category(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    people = _first_requests(sql, sql.facts())
    rows = sql.rows(
        select(people.c.ethnic_category, func.count())
        .group_by(people.c.ethnic_category)
        .order_by(func.count().desc(), people.c.ethnic_category)
    )
    frame = _frame(rows, ["ethnic_category", "people"])
    frame["people"] = frame["people"].astype(int)
    frame.insert(1, "label", frame["ethnic_category"].map(EthnicCategory.label_of))
    return frame


@measure(
    "pathway_funnel",
    "Pathway: from request to attended appointment",
    """Requests received in the period, and how many of them reached each stage: screened (a
    complete screening); further assessment (a screening outcome of further assessment or a Mental
    Health Act assessment); referred on (at least one onward referral from such a screening);
    attended (at least one of those referrals attended, on time or late and seen). Stages are
    counted separately, so a request can be referred on without a further assessment.""",
)
def pathway_funnel(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts, screenings = sql.facts(), sql.screenings()
    # One pass over the period's complete screenings and their referrals; each stage counts the
    # distinct requests that reached it (the list behind a bar asks the same of each request with
    # _stage_conditions).
    request_id = screenings.c.request_id
    joined = (
        select(
            case((screenings.c.outcome.in_(FURTHER_ASSESSMENT_OUTCOMES), request_id)).label("further"),
            case((OnwardReferral.id.is_not(None), request_id)).label("referred"),
            case((_referral_outcome() == ReferralStatus.ATTENDED.value, request_id)).label("attended"),
        )
        .select_from(screenings.outerjoin(OnwardReferral.__table__,
                                          OnwardReferral.screening_id == screenings.c.screening_id))
        .subquery()
    )
    totals = sql.rows(select(func.count(), func.count(facts.c.first_screened_at)))[0]
    stages = sql.rows(select(*(func.count(func.distinct(column)) for column in
                               (joined.c.further, joined.c.referred, joined.c.attended))))[0]
    row = (*totals, *stages)
    counts = [int(value or 0) for value in row]
    received = counts[0]
    data = [
        (order, stage, label, count, _share(count, received))
        for order, ((stage, label), count) in enumerate(zip(FUNNEL_STAGES.items(), counts, strict=True))
    ]
    return pd.DataFrame(data, columns=["order", "stage", "label", "requests", "share_of_received"])


@measure(
    "onward_referrals",
    "Onward referrals by service and outcome",
    """Onward referrals made at complete screenings answering the period's requests, by service and
    outcome: attended or did not attend when attendance is recorded, otherwise the referral's
    status (made, accepted, declined). The list behind a bar shows the requests they came from.""",
)
def onward_referrals(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    screenings = sql.screenings()
    referrals = (
        select(OnwardReferral.service, _referral_outcome().label("outcome"))
        .select_from(screenings.join(OnwardReferral.__table__,
                                     OnwardReferral.screening_id == screenings.c.screening_id))
        .subquery()
    )
    rows = sql.counts_by(referrals.c.service, referrals.c.outcome)
    frame = _frame(rows, ["service", "outcome", "referrals"])
    frame["referrals"] = frame["referrals"].astype(int)
    labels = _ordered_labels(session, CodeList.ONWARD_SERVICE)
    frame.insert(1, "service_label", frame["service"].map(lambda code: labels.get(code, code)))
    frame["outcome_label"] = frame["outcome"].map(ReferralStatus.label_of)
    return frame


@measure(
    "cover_by_hour_and_day",
    "24/7 cover: requests by hour and day",
    """Requests received in the period by London hour of the day and day of the week, as evidence
    of round-the-clock demand.""",
)
def cover_by_hour_and_day(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    rows = sql.counts_by(facts.c.weekday, facts.c.hour)
    frame = _frame(rows, ["weekday", "hour", "requests"])
    for column in frame.columns:
        frame[column] = frame[column].astype(int)
    frame.insert(1, "day", frame["weekday"].map(lambda number: DAYS[number - 1]))
    return frame


@measure(
    "out_of_hours",
    "Out-of-hours share",
    """Requests received in the period by when they arrived, London time: out of hours means
    Saturday or Sunday at any hour, or a weekday before 08:00 or from 18:00. Bank holidays are
    not treated as out of hours (no list of them is kept).""",
)
def out_of_hours(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    facts = sql.facts()
    categorised = (
        select(sql.out_of_hours_category(facts.c.weekday, facts.c.hour).label("category"))
        .subquery()
    )
    rows = dict(sql.rows(select(categorised.c.category, func.count()).group_by(categorised.c.category)))
    total = sum(int(value) for value in rows.values())
    data = [
        (code, label, int(rows.get(code, 0)), _share(int(rows.get(code, 0)), total), code != "weekday_day")
        for code, label in OUT_OF_HOURS_LABELS.items()
    ]
    return pd.DataFrame(data, columns=["category", "label", "requests", "share", "out_of_hours"])


@measure(
    "activities_by_month",
    "MAPPA meetings and training per month",
    """MAPPA meetings attended and training sessions delivered by the team each calendar month of
    the period (by the activity's date), with the number of people trained. Only the practitioner
    filter applies (activities they logged); activities are not requests, so there is no list
    behind the bars here (see the Activities page).""",
    drilldown=False,
)
def activities_by_month(session: Session, user: User, filters: CaseloadFilters) -> pd.DataFrame:
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    kinds = (ActivityKind.MAPPA_MEETING.value, ActivityKind.TRAINING.value)
    month = sql.month(Activity.activity_on).label("month")
    conditions = [
        Activity.team_id == sql.team_id,
        Activity.kind.in_(kinds),
        Activity.activity_on >= filters.start,
        Activity.activity_on <= filters.end,
    ]
    if filters.practitioner_id is not None:
        conditions.append(Activity.practitioner_id == filters.practitioner_id)
    rows = sql.rows(
        select(month, Activity.kind, func.count(), func.coalesce(func.sum(Activity.number_trained), 0))
        .where(*conditions)
        .group_by(month, Activity.kind)
        .order_by(month, Activity.kind)
    )
    frame = _frame(rows, ["month", "kind", "sessions", "people_trained"])
    frame["sessions"] = frame["sessions"].astype(int)
    frame["people_trained"] = frame["people_trained"].astype(int)
    frame.insert(2, "kind_label", frame["kind"].map(ActivityKind.label_of))
    return frame


CHART_MEASURES = [key for key in MEASURES if key != "headline"]
_SHARED_TABLE_OBJECTS: dict[tuple[str, str], Any] = {}  # by (dialect, table name)


def all_measures(session: Session, user: User, filters: CaseloadFilters) -> dict[str, pd.DataFrame]:
    """Every measure for the page (and the KPI workbook) in one session, sharing one pass over the
    period's requests: the facts of the period, the headline's of the period before and the
    period's complete screenings are worked out once into temporary tables that each measure
    reads, then dropped (and a reading session's rollback would drop them anyway)."""
    require(user, Permission.VIEW_CASELOAD)
    sql = _Sql(session, user, filters)
    connection = session.connection()
    tables: dict[str, Any] = {}
    session.info[SHARED_FACTS] = ((user.team_id, filters), tables)
    session.info[SHARED_SQL] = ((user.id, user.team_id, filters), sql)
    try:
        for name, joined_on in SHARED_TABLES.items():  # in order: the screenings read the facts table
            # A fixed name, so SQLAlchemy's compiled-statement cache serves every later run; the
            # table lives only in this connection and this transaction.
            created = sql.builder(name)().into(name, temporary=True)
            connection.execute(created)
            # Statistics for the new table, so the planner drives joins from these few rows rather
            # than scanning every screening or referral (SQLite keeps them in the temp schema).
            connection.exec_driver_sql(f"ANALYZE {name} ({joined_on})" if sql.postgres else f"ANALYZE temp.{name}")
            # The same Table object every time, so the statements that read it are compiled once
            # per process rather than once per page (a new Table would be a new compiled-cache key).
            tables[name] = _SHARED_TABLE_OBJECTS.setdefault((session.get_bind().dialect.name, name), created.table)
        results = {key: info.function(session, user, filters) for key, info in MEASURES.items()}
    finally:
        session.info.pop(SHARED_FACTS, None)
        session.info.pop(SHARED_SQL, None)
    # On an error the transaction's rollback takes the tables away; on success they go now.
    for name in SHARED_TABLES:
        connection.exec_driver_sql(f"DROP TABLE {name}")
    return results


# --------------------------------------------------------------------------------------------
# The drill-down list: the requests behind a bar, cell or segment


@dataclass(frozen=True)
class Selection:
    """A chart's selected mark: the measure and the key fields of the point clicked."""

    measure: str
    values: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, measure: str, values: Mapping[str, Any]) -> "Selection":
        return cls(measure, tuple(sorted((str(key), value) for key, value in values.items())))

    def get(self, key: str) -> Any:
        return dict(self.values).get(key)

    def describe(self) -> str:
        title = MEASURES[self.measure].title if self.measure in MEASURES else self.measure
        return f"{title}: " + ", ".join(f"{key}={value}" for key, value in self.values)


@dataclass(frozen=True)
class ListColumn:
    """A column of the drill-down list; `kind` uses the export's column kinds (text, identifier…)."""

    key: str
    heading: str
    kind: str


DRILLDOWN_COLUMNS = (
    ListColumn("reference", "Reference", "identifier"),
    ListColumn("received_at", "Received", "datetime"),
    ListColumn("person", "Person", "text"),
    ListColumn("site", "Site", "text"),
    ListColumn("source", "Source", "text"),
    ListColumn("request_type", "Type", "text"),
    ListColumn("urgency", "Urgency", "text"),
    ListColumn("status", "Status", "text"),
    ListColumn("allocated_to", "Allocated to", "text"),
    ListColumn("due_at", "Due", "datetime"),
    ListColumn("first_screened_at", "First screened", "datetime"),
)
DRILLDOWN_LIMIT = 500


class UnknownSelection(ValueError):
    """The selection names a measure without a list, or lacks a key field."""


def _selected(selection: Selection, key: str, convert: Callable[[Any], Any] = lambda value: value):
    value = selection.get(key)
    if value is None:
        raise UnknownSelection(f"the selection has no {key}")
    try:
        return convert(value)
    except (TypeError, ValueError) as error:
        raise UnknownSelection(f"the selection's {key} is not understood") from error


def _selected_requests(sql: _Sql, selection: Selection) -> ColumnElement:
    """A condition on Request picking exactly the requests the selected mark counts.

    The marks of the period's measures are conditions on the same facts the measures count, so
    the list and the bar cannot disagree; the open caseload is a snapshot of now, on Request.
    """
    name = selection.measure
    if name == "open_caseload_by_practitioner":
        practitioner = _selected(selection, "practitioner_id", int)
        conditions = [Request.status.in_(_OPEN),
                      Request.allocated_to_id.is_(None) if practitioner == NOT_ALLOCATED
                      else Request.allocated_to_id == practitioner]
        state = selection.get("state")
        if state == "overdue":
            conditions.append(overdue_at(sql.now))
        elif state == "not_overdue":
            conditions.append(~overdue_at(sql.now))
        return and_(*conditions)

    facts = sql.facts()
    f = facts.c
    if name == "requests_by_week_and_site":
        where = [f.week == _week(sql, selection), f.site_id == _selected(selection, "site_id", int)]
    elif name == "requests_by_week_and_source":
        where = [f.week == _week(sql, selection), f.source_of_referral == _selected(selection, "source", str)]
    elif name == "time_to_first_screening":
        where = [_screened(facts), sql.distribution_bin(f.screen_seconds) == _selected(selection, "bin", int)]
    elif name == "screening_within_target_by_week":
        where = [f.week == _week(sql, selection), _screened(facts),
                 sql.rag(f.screen_seconds) == _selected(selection, "rag", str)]
    elif name == "answered_in_time_by_urgency":
        where = [f.urgency == _selected(selection, "urgency", str), _answerable(sql, facts)]
    elif name == "vulnerabilities":
        found = _people_with_vulnerability(sql.screenings(), _selected(selection, "code", str))
        return Request.id.in_(select(found.c.request_id))
    elif name in ("age_band_and_gender", "ethnic_category"):
        people = _first_requests(sql, facts)
        if name == "age_band_and_gender":
            chosen = [people.c.age_band == _selected(selection, "age_band", str),
                      people.c.gender == _selected(selection, "gender", str)]
        else:
            chosen = [people.c.ethnic_category == _selected(selection, "ethnic_category", str)]
        return Request.id.in_(select(people.c.request_id).where(*chosen))
    elif name == "pathway_funnel":
        stages = _stage_conditions(facts)
        stage = _selected(selection, "stage", str)
        if stage not in stages:
            raise UnknownSelection(f"no stage {stage!r}")
        where = [stages[stage]]
    elif name == "onward_referrals":
        referral = _referrals_of(f.request_id).where(
            OnwardReferral.service == _selected(selection, "service", str),
            _referral_outcome() == _selected(selection, "outcome", str),
        )
        where = [exists(referral)]
    elif name == "cover_by_hour_and_day":
        where = [f.weekday == _selected(selection, "weekday", int), f.hour == _selected(selection, "hour", int)]
    elif name == "out_of_hours":
        where = [sql.out_of_hours_category(f.weekday, f.hour) == _selected(selection, "category", str)]
    else:
        raise UnknownSelection(f"the chart {name!r} has no list behind it")
    return Request.id.in_(select(f.request_id).where(*where))


def _week(sql: _Sql, selection: Selection) -> ColumnElement:
    return _number((_selected(selection, "week", _as_date) - EPOCH).days)


def drilldown_query(
    session: Session, user: User, filters: CaseloadFilters, selection: Selection
) -> tuple[Select, tuple[ListColumn, ...]]:
    """The requests behind a selected mark, as a Core select with DRILLDOWN_COLUMNS, newest first.

    The export streams this same select (`session.connection().execute(query)` with `yield_per`),
    so the file holds exactly the rows and columns on screen. It contains clients' names: callers
    showing it use `drilldown_rows`, which audits the viewing.
    """
    require(user, Permission.VIEW_CASELOAD)
    sql = _sql_for(session, user, filters)
    allocated = aliased(User)
    source = aliased(CodeItem)
    request_type = aliased(CodeItem)
    person = func.coalesce(Person.given_name + " " + Person.family_name, "No person (general advice)")
    query = (
        select(
            Request.reference.label("reference"),
            Request.received_at.label("received_at"),
            person.label("person"),
            Site.name.label("site"),
            func.coalesce(source.label, Request.source_of_referral).label("source"),
            func.coalesce(request_type.label, Request.request_type).label("request_type"),
            case(*((Request.urgency == item.value, item.label) for item in Urgency),
                 else_=Request.urgency).label("urgency"),
            case(*((Request.status == item.value, item.label) for item in RequestStatus),
                 else_=Request.status).label("status"),
            allocated.full_name.label("allocated_to"),
            Request.due_at.label("due_at"),
            sql.first_screened().label("first_screened_at"),
        )
        .select_from(
            sql.requests_and_people()
            .join(Site.__table__, Site.id == Request.site_id)
            .outerjoin(allocated, allocated.id == Request.allocated_to_id)
            .outerjoin(source, and_(source.list_name == CodeList.SOURCE_OF_REFERRAL.value,
                                    source.code == Request.source_of_referral))
            .outerjoin(request_type, and_(request_type.list_name == CodeList.REQUEST_TYPE.value,
                                          request_type.code == Request.request_type))
        )
        .where(*sql.conditions(), _selected_requests(sql, selection))
        .order_by(Request.received_at.desc(), Request.id.desc())
    )
    return query, DRILLDOWN_COLUMNS


def drilldown_rows(
    session: Session, user: User, filters: CaseloadFilters, selection: Selection, limit: int = DRILLDOWN_LIMIT
) -> tuple[pd.DataFrame, int]:
    """The first `limit` rows of the list behind a selection, and how many there are in all.

    Audited as `view_caseload_list` (the chart, the selected mark, the filters, the row count):
    it shows clients' names, so it needs a writing session.
    """
    query, columns = drilldown_query(session, user, filters, selection)
    total = session.connection().execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar()
    rows = session.connection().execute(query.limit(limit)).all()
    audit.record(
        session,
        user,
        DRILLDOWN_ACTION,
        entity="caseload",
        detail=f"{selection.describe()}; {filters.describe()}; {total} rows",
    )
    return _frame(rows, [column.key for column in columns]), int(total or 0)


def drilldown_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The list as the screen shows it: DRILLDOWN_COLUMNS' headings, times as London
    dd/mm/yyyy HH:MM, and a blank where a request has no such time or value.

    Many requests have no first screening (advice, not yet seen) and some no due time; pandas holds
    a column of datetimes with gaps as datetime64 with NaT, which is not None and cannot be turned
    into London time, so every missing value is caught by `pd.isna`, whatever its type.
    """
    shown = pd.DataFrame(index=frame.index)
    for column in DRILLDOWN_COLUMNS:
        values = frame[column.key]
        if column.kind == "datetime":
            shown[column.heading] = [_london_text(value) for value in values]
        else:
            shown[column.heading] = ["" if _missing(value) else str(value) for value in values]
    return shown


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, bytes)) and bool(pd.isna(value)))


def _london_text(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:  # a naive time from the database is UTC, as everything stored
        value = value.replace(tzinfo=UTC)
    return clock.format_datetime(value)


STAMP_WINDOW = 1_000  # audit ids behind the newest in which a late commit is still noticed


def data_stamp(session: Session, user: User) -> int:
    """A number that changes whenever records change, for keying a short-lived cache.

    Every create, update and delete writes an audit row in its own transaction, so the newest
    audit id moves with the data. Rows that change nothing (views, sign-ins, exports, refusals)
    are left out, so someone opening a request does not throw the cached charts away.

    On PostgreSQL ids are handed out when rows are written, not when they commit: a save that
    took id 100 can commit after one that took 101, and the newest id alone would then not move
    (with several app processes writing, that is a matter of timing, not luck). So the stamp also
    counts the changes among the newest STAMP_WINDOW ids, which such a late commit raises.
    """
    require(user, Permission.VIEW_CASELOAD)
    changes = (
        AuditEvent.outcome == "success",
        ~AuditEvent.action.like("view%"),
        AuditEvent.action.not_in([DRILLDOWN_ACTION, "sign_in", "lockout", "export", "open_page"]),
    )
    connection = session.connection()
    newest = connection.execute(
        select(AuditEvent.id).where(*changes).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar()
    if newest is None:
        return 0
    recent = connection.execute(
        select(func.count()).where(*changes, AuditEvent.id > newest - STAMP_WINDOW)
    ).scalar()
    return int(newest) * (STAMP_WINDOW + 1) + int(recent)
