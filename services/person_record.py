"""A person's record: details and history — requests, screenings with scores over time, onward referrals.

Opening a record writes a `view_person` audit row in the same transaction as the read (through
`services.people.view_person`), so call it in a writing session. Everything is confined to the
acting user's team.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from models import InstrumentResult, Person, Request, Screening, Site, User
from models import validators as check
from models.codes import (
    CodeList,
    EthnicCategory,
    GenderIdentity,
    NhsNumberStatus,
    RequestStatus,
    ScreeningStatus,
    Urgency,
)
from services import clock, code_lists, instruments, people, referrals, screening
from services.permissions import Permission, require

HISTORY_LIMIT = 200


@dataclass(frozen=True)
class RequestRow:
    request_id: int
    reference: str
    received_at: datetime
    request_type: str
    urgency: str
    status: str
    site: str


@dataclass(frozen=True)
class ScorePoint:
    """One instrument total at one completed screening, for the scores-over-time chart."""

    screening_id: int
    screened_at: datetime
    instrument: str
    total: int
    band: str


@dataclass(frozen=True)
class PersonRecord:
    person: Person
    age_today: int | None
    requests: list[RequestRow]
    screenings: list[dict[str, Any]]  # rows of screening.screenings_query, keyed by its column keys
    screening_columns: tuple[screening.ListColumn, ...]
    scores: list[ScorePoint]
    referrals: list[referrals.ReferralRow]


def open_record(session: Session, user: User, person_id: int, *, audited: bool = True) -> PersonRecord:
    """The person's record for the screen. Opening it is audited (action "view_person", in a writing
    session); a page redrawing a record it has already audited in the same browser session passes
    `audited=False` and may read in a reading session."""
    require(user, Permission.VIEW_PEOPLE)
    person = people.view_person(session, user, person_id) if audited else people.person_in_team(session, user,
                                                                                                   person_id)
    return PersonRecord(
        person=person,
        age_today=age_today(person.date_of_birth),
        requests=_requests(session, user, person.id),
        screenings=screening.list_screenings(session, user, screening.ScreeningFilters(person_id=person.id),
                                             limit=HISTORY_LIMIT),
        screening_columns=screening.SCREENING_COLUMNS,
        scores=score_history(session, user, person.id),
        referrals=referrals.referrals_for_person(session, user, person.id),
    )


def _requests(session: Session, user: User, person_id: int) -> list[RequestRow]:
    types = code_lists.labels(session, CodeList.REQUEST_TYPE)
    query = (
        select(Request.id, Request.reference, Request.received_at, Request.request_type, Request.urgency,
               Request.status, Site.name)
        .join(Site, Site.id == Request.site_id)
        .where(Request.person_id == person_id, Request.team_id == user.team_id)
        .order_by(Request.received_at.desc(), Request.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return [
        RequestRow(row.id, row.reference or f"#{row.id}", row.received_at,
                   types.get(row.request_type, row.request_type), Urgency.label_of(row.urgency),
                   RequestStatus.label_of(row.status), row.name)
        for row in session.execute(query)
    ]


def score_history(session: Session, user: User, person_id: int) -> list[ScorePoint]:
    """Totals of fully answered instruments at the person's completed screenings, oldest first."""
    require(user, Permission.VIEW_PEOPLE)
    people.person_in_team(session, user, person_id)  # another team's person is refused, and the refusal audited
    query = (
        select(Screening.id, Screening.screened_at, InstrumentResult.instrument, InstrumentResult.total,
               InstrumentResult.band)
        .join(InstrumentResult, InstrumentResult.screening_id == Screening.id)
        .where(Screening.person_id == person_id, Screening.team_id == user.team_id,
               Screening.status == ScreeningStatus.COMPLETE, InstrumentResult.complete,
               InstrumentResult.total.is_not(None))
        .order_by(Screening.screened_at, Screening.id, InstrumentResult.instrument)
    )
    return [
        ScorePoint(row.id, row.screened_at, instruments.INSTRUMENTS[row.instrument].name, row.total, row.band or "")
        for row in session.execute(query)
        if row.instrument in instruments.INSTRUMENTS
    ]


def details(record: PersonRecord) -> list[tuple[str, str]]:
    """The person's details as (label, value) lines for the screen; values exactly as recorded."""
    person = record.person
    nhs = check.format_nhs_number(person.nhs_number) if person.nhs_number else (
        NhsNumberStatus.label_of(person.nhs_number_status))
    age = "" if record.age_today is None else f" (age {record.age_today})"
    lines = [
        ("Name", f"{person.given_name} {person.family_name}"),
        ("Date of birth", (clock.format_date(person.date_of_birth) or "not recorded") + age),
        ("NHS number", nhs),
        ("PNC reference", person.pnc_reference or ""),
        ("Custody reference", person.custody_reference or ""),
        ("Gender identity", GenderIdentity.label_of(person.gender_identity)),
        ("Ethnic category", EthnicCategory.label_of(person.ethnic_category)),
        ("Preferred language", person.preferred_language or ""),
        ("Communication needs", person.communication_needs or ""),
        ("Last contact", clock.format_date(person.last_contact_on)),
    ]
    return [(name, value) for name, value in lines if value]


def age_today(date_of_birth: date | None) -> int | None:
    today = clock.today_in_london()
    return check.age_on(date_of_birth, today) if date_of_birth and date_of_birth <= today else None
