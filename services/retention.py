"""Retention: people whose records are past the organisation's retention period, and their deletion.

The rule is the NHS Records Management Code of Practice 2021, Appendix II (retention schedule), with
its periods as settings (services/settings.py shows each setting's source beside it):
- mental health records (an L&D team's records are): `retention_adult_years` (20) after the last
  contact;
- children's records (the person under 18 at the last contact): until their
  `retention_child_until_age`th birthday (25), or the birthday after it (26th) when they were 17
  at the last contact;
- a record that two rules cover is kept for the longer (the Code: the longest applicable period).
With the Code's own periods the mental-health rule is the longer for every child; the children's
rule decides only where an organisation shortens the other, and then it still protects children.
"Kept until" a date means kept through that day: the record is past retention from the next day.

The last contact is the latest date the record shows: the person's `last_contact_on`, their
requests (received, responded to, closed), screenings, onward referrals and activities. The latest
wins, so a `last_contact_on` left behind by some path never shortens what is kept; with no date
at all, the day the person was first recorded. With no date of birth the adult rule applies.

Nothing is deleted without an administrator's approval, and the approval re-checks every record
in the same transaction as the deletion, so a contact recorded since the review keeps the record.
A deletion removes the person, their requests with their timelines, their screenings with their
vulnerabilities, instrument results and amendments, and their onward referrals; activities stay
(they are the team's work) without the link to the person. The audit trail keeps one
"retention_delete" row per person: the id, the rule and counts, never what was deleted.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import Session

from models import (
    Activity,
    InstrumentResult,
    OnwardReferral,
    Person,
    Request,
    RequestEvent,
    Screening,
    ScreeningAmendment,
    ScreeningVulnerability,
    Team,
    User,
)
from services import audit, clock, db, settings
from services.errors import InputErrors
from services.permissions import Permission, require

ADULT = "adult"
CHILD = "child"
ADULTHOOD = 18
QUEUE_SHOWN_LIMIT = 500

# Every foreign key that points at a row this module deletes, and what happens to it. A test
# compares this with the models, so a new table that refers to a person cannot be forgotten.
DELETED_TABLES = frozenset({
    "person", "request", "requestevent", "screening", "screeningvulnerability", "instrumentresult",
    "screeningamendment", "onwardreferral",
})
HANDLED_REFERENCES = {
    ("request", "person_id"): "deleted with the person",
    ("requestevent", "request_id"): "deleted with the request",
    ("screening", "person_id"): "deleted with the person",
    ("screening", "request_id"): "deleted with the request's person, or unlinked if another person's",
    ("screeningvulnerability", "screening_id"): "deleted with the screening",
    ("instrumentresult", "screening_id"): "deleted with the screening",
    ("screeningamendment", "screening_id"): "deleted with the screening",
    ("onwardreferral", "person_id"): "deleted with the person",
    ("onwardreferral", "screening_id"): "deleted with the screening's person, or unlinked if another person's",
    ("activity", "person_id"): "unlinked: the activity stays as the team's work",
}


@dataclass(frozen=True)
class RetentionRule:
    adult_years: int
    child_until_age: int

    def describe(self) -> str:
        return (f"mental health records {self.adult_years} years after the last contact; children's records "
                f"(under {ADULTHOOD} at the last contact) until age {self.child_until_age}, or "
                f"{self.child_until_age + 1} if 17 at the last contact, when that is later")


@dataclass(frozen=True)
class RetentionCase:
    """One person past retention. Deliberately no name, no date of birth: ids and dates of the rule."""

    person_id: int
    team_id: int
    kind: str  # ADULT or CHILD
    last_contact_on: date
    retain_until: date


@dataclass(frozen=True)
class RetentionQueue:
    today: date
    rule: RetentionRule
    cases: list[RetentionCase]  # the first QUEUE_SHOWN_LIMIT (or all), oldest retention first
    total: int
    adults: int
    children: int
    team_names: dict[int, str]


@dataclass(frozen=True)
class Deleted:
    person_id: int
    requests: int
    screenings: int
    referrals: int
    activities_unlinked: int


def current_rule(session: Session) -> RetentionRule:
    return RetentionRule(settings.get_int(session, "retention_adult_years"),
                         settings.get_int(session, "retention_child_until_age"))


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 1 March in a common year (the later day keeps longer)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def age_on(date_of_birth: date, day: date) -> int:
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def retained_until(date_of_birth: date | None, last_contact_on: date, rule: RetentionRule) -> tuple[str, date]:
    """(ADULT or CHILD, the last day the record is kept): the longer of every rule that covers it."""
    mental_health = add_years(last_contact_on, rule.adult_years)
    if date_of_birth is None:
        return ADULT, mental_health
    age = age_on(date_of_birth, last_contact_on)
    if age >= ADULTHOOD:
        return ADULT, mental_health
    birthday = add_years(date_of_birth, rule.child_until_age + (1 if age == ADULTHOOD - 1 else 0))
    return CHILD, max(mental_health, birthday)


def review_queue(session: Session, acting: User | None, *, today: date | None = None,
                 limit: int = QUEUE_SHOWN_LIMIT) -> RetentionQueue:
    """Everyone past retention on `today` (London). `acting` is None only for the command line."""
    if acting is not None:
        require(acting, Permission.REVIEW_RETENTION)
    today = today or clock.today_in_london()
    rule = current_rule(session)
    cases = sorted(_cases(session, rule, today), key=lambda case: (case.retain_until, case.person_id))
    team_names = dict(session.execute(select(Team.id, Team.name)).all())
    return RetentionQueue(
        today=today,
        rule=rule,
        cases=cases[:limit],
        total=len(cases),
        adults=sum(case.kind == ADULT for case in cases),
        children=sum(case.kind == CHILD for case in cases),
        team_names=team_names,
    )


def _latest(*columns):
    return func.max(func.coalesce(*columns)) if len(columns) > 1 else func.max(columns[0])


def _last_contacts(person_id_column):
    """Correlated sub-queries: the latest date each kind of record shows for the person."""
    return (
        select(_latest(Request.closed_at, Request.first_response_at, Request.received_at))
        .where(Request.person_id == person_id_column).scalar_subquery(),
        select(_latest(Screening.completed_at, Screening.screened_at, Screening.created_at))
        .where(Screening.person_id == person_id_column).scalar_subquery(),
        select(_latest(OnwardReferral.outcome_on, OnwardReferral.referred_on))
        .where(OnwardReferral.person_id == person_id_column).scalar_subquery(),
        select(_latest(Activity.activity_on)).where(Activity.person_id == person_id_column).scalar_subquery(),
    )


def _as_day(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return clock.to_london(value).date()
    return value


def _cases(session: Session, rule: RetentionRule, today: date,
           person_ids: Sequence[int] | None = None, *, lock: bool = False) -> Iterable[RetentionCase]:
    statement = select(Person.id, Person.team_id, Person.date_of_birth, Person.last_contact_on, Person.created_at,
                       *_last_contacts(Person.id))
    if person_ids is not None:
        statement = statement.where(Person.id.in_(person_ids))
    else:
        # Only people who could be past retention are looked at closely. The true last contact
        # is never earlier than last_contact_on, so these bounds never leave anyone out.
        adult_bound = add_years(today, -rule.adult_years)
        child_bound = add_years(today, -rule.child_until_age)
        # A child's record is past retention only after their child_until_age-th birthday, and
        # they were under 18 at the last contact, so that contact was at least
        # (child_until_age - 18) years before today. Bounding the date of birth alone let nearly
        # every adult through, each with four correlated look-ups (1.3 s at 100k requests); two
        # days' slack covers 29 February, and the exact rule is applied below in any case.
        child_contact_bound = add_years(today, ADULTHOOD - rule.child_until_age) + timedelta(days=2)
        statement = statement.where(or_(
            Person.last_contact_on.is_(None),
            Person.last_contact_on < adult_bound,
            and_(Person.date_of_birth < child_bound, Person.last_contact_on < child_contact_bound),
        ))
    if lock:
        # PostgreSQL: no one may add a request to, or change, these people until this commits.
        statement = statement.with_for_update(of=Person)
    for person_id, team_id, date_of_birth, last_contact_on, created_at, *latest in session.execute(statement):
        days = [day for day in (last_contact_on, *map(_as_day, latest)) if day is not None]
        last_contact = max(days) if days else _as_day(created_at)
        kind, until = retained_until(date_of_birth, last_contact, rule)
        if until < today:
            yield RetentionCase(person_id, team_id, kind, last_contact, until)


def delete_past_retention(session: Session, acting: User, person_ids: Sequence[int], *,
                          today: date | None = None) -> list[Deleted]:
    """Delete each chosen person's records, approved by `acting`; all or none, in this transaction.

    Every chosen person is checked again here: if any is no longer past retention (a contact was
    recorded since the review) or no longer exists, nothing at all is deleted.
    """
    db.require_writing(session)
    require(acting, Permission.REVIEW_RETENTION)
    chosen = sorted(set(person_ids))
    if not chosen:
        raise InputErrors({"person_ids": "Choose at least one record to delete."})
    today = today or clock.today_in_london()
    rule = current_rule(session)
    cases = {case.person_id: case for case in _cases(session, rule, today, chosen, lock=True)}
    not_due = [person_id for person_id in chosen if person_id not in cases]
    if not_due:
        listed = ", ".join(str(person_id) for person_id in not_due)
        raise InputErrors({"person_ids": f"Not past retention now, or already deleted: person {listed}. "
                                         "Nothing was deleted; review the queue again."})
    deleted = []
    for person_id in chosen:
        case = cases[person_id]
        removed = _delete_person(session, acting, person_id)
        audit.record(session, acting, "retention_delete", entity="person", entity_id=person_id,
                     detail=(f"{case.kind} rule, kept until {clock.format_date(case.retain_until)}; "
                             f"deleted {removed.requests} requests, {removed.screenings} screenings, "
                             f"{removed.referrals} onward referrals; "
                             f"{removed.activities_unlinked} activities unlinked"))
        deleted.append(removed)
    return deleted


# Bulk statements: the session holds none of these rows, so there is nothing to keep in step.
BULK = {"synchronize_session": False}


def _delete_person(session: Session, acting: User, person_id: int) -> Deleted:
    screening_ids = list(session.scalars(select(Screening.id).where(Screening.person_id == person_id)))
    request_ids = list(session.scalars(select(Request.id).where(Request.person_id == person_id)))
    # Another person's rows that point at these: keep them, without the pointer.
    session.execute(update(Screening).where(Screening.request_id.in_(request_ids), Screening.person_id != person_id)
                    .values(request_id=None), execution_options=BULK)
    session.execute(update(OnwardReferral)
                    .where(OnwardReferral.screening_id.in_(screening_ids), OnwardReferral.person_id != person_id)
                    .values(screening_id=None), execution_options=BULK)
    for child in (ScreeningVulnerability, InstrumentResult, ScreeningAmendment):
        session.execute(delete(child).where(child.screening_id.in_(screening_ids)), execution_options=BULK)
    referrals = session.execute(delete(OnwardReferral).where(OnwardReferral.person_id == person_id),
                                execution_options=BULK).rowcount
    session.execute(delete(Screening).where(Screening.id.in_(screening_ids)), execution_options=BULK)
    session.execute(delete(RequestEvent).where(RequestEvent.request_id.in_(request_ids)), execution_options=BULK)
    session.execute(delete(Request).where(Request.id.in_(request_ids)), execution_options=BULK)
    activities = session.execute(
        update(Activity).where(Activity.person_id == person_id)
        .values(person_id=None, version=Activity.version + 1, updated_at=clock.now(), updated_by_id=acting.id),
        execution_options=BULK,
    ).rowcount
    session.execute(delete(Person).where(Person.id == person_id), execution_options=BULK)
    return Deleted(person_id, len(request_ids), len(screening_ids), referrals, activities)
