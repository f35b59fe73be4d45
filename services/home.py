"""'My work': what the signed-in user has to do next. No other team's records; no names for counts."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, func, select

from models import Person, Request, Screening, User
from models.codes import OPEN_REQUEST_STATUSES, RequestType, ScreeningStatus
from services import clock, settings
from services.permissions import Permission, has_permission, require
from services.requests import overdue_at, response_clock
from services.response_clock import ClockReading

MY_WORK_LIMIT = 50


@dataclass(frozen=True)
class OpenRequestRow:
    request_id: int
    reference: str
    request_type: str
    person: str
    received_at: datetime
    due_at: datetime
    clock: ClockReading | None  # None once a first response stopped the clock


@dataclass(frozen=True)
class DraftRow:
    screening_id: int
    person: str
    started_at: datetime
    sections_saved: int


@dataclass(frozen=True)
class TeamCounts:
    unallocated: int
    overdue: int


def my_open_requests(session: Session, user: User) -> list[OpenRequestRow]:
    require(user, Permission.VIEW_REQUESTS)
    query = (
        select(Request, Person.given_name, Person.family_name)
        .join(Person, Person.id == Request.person_id, isouter=True)
        .where(
            Request.team_id == user.team_id,
            Request.allocated_to_id == user.id,
            Request.status.in_(OPEN_REQUEST_STATUSES),
        )
        .order_by(Request.due_at)
        .limit(MY_WORK_LIMIT)
    )
    now = clock.now()
    amber = settings.get_int(session, "amber_percent")
    return [
        OpenRequestRow(
            request_id=request.id,
            reference=request.reference or "",
            request_type=RequestType.label_of(request.request_type),
            person=f"{given} {family}" if given else "General advice (no person)",
            received_at=request.received_at,
            due_at=request.due_at,
            clock=response_clock(request.received_at, request.due_at, request.first_response_at,
                                 request.status, now, amber),
        )
        for request, given, family in session.exec(query).all()
    ]


def my_draft_screenings(session: Session, user: User) -> list[DraftRow]:
    require(user, Permission.SCREEN)
    query = (
        select(Screening, Person.given_name, Person.family_name)
        .join(Person, Person.id == Screening.person_id)
        .where(
            Screening.team_id == user.team_id,
            Screening.practitioner_id == user.id,
            Screening.status == ScreeningStatus.DRAFT,
        )
        .order_by(Screening.updated_at.desc())
        .limit(MY_WORK_LIMIT)
    )
    return [
        DraftRow(
            screening_id=screening.id,
            person=f"{given} {family}",
            started_at=screening.created_at,
            sections_saved=len(screening.sections_saved or []),
        )
        for screening, given, family in session.exec(query).all()
    ]


def team_counts(session: Session, user: User) -> TeamCounts | None:
    """Unallocated and overdue requests in the team, for those who allocate; else None."""
    if not has_permission(user, Permission.ALLOCATE_REQUESTS):
        return None
    open_in_team = (Request.team_id == user.team_id) & Request.status.in_(OPEN_REQUEST_STATUSES)
    unallocated = session.exec(
        select(func.count()).select_from(Request).where(open_in_team, Request.allocated_to_id.is_(None))
    ).one()
    overdue = session.exec(select(func.count()).select_from(Request).where(open_in_team, overdue_at(clock.now()))).one()
    return TeamCounts(unallocated=unallocated, overdue=overdue)
