"""The single point of access: requests logged, triaged, allocated, answered and closed.

Status changes allowed (anything else is refused here, whatever a page offers)::

    new ──► allocated ──► in progress ──► closed ──► reopened (team lead)
                                                      │
                                                      └─► allocated / in progress / closed

Recording the first response moves a request to *in progress*; on an unallocated request it
first allocates it to the person responding, so both steps are on the timeline. Reallocating a
request keeps its status.

Every change is one transaction with its timeline row (``RequestEvent``) and its audit row, and
is refused with who and when (``Conflict``) when the request changed since the page showed it.
``Request.reference`` (``R-2026-000123``) comes from the database id, which is never reused.

The triage list is a SQLAlchemy Core ``select`` with column definitions
(``request_list_query``), so the on-screen queue, its count and the Excel export read exactly the
same rows in the same order.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import IntEnum, StrEnum

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, true, tuple_, union_all
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from models import CodeItem, OnwardReferral, Person, Request, RequestEvent, Screening, Site, User
from models.codes import OPEN_REQUEST_STATUSES, CodeList, ContactMechanism, RequestStatus, RequestType, Urgency
from models.organisation import NAME_LIMIT
from models.requests import DETAIL_LIMIT, REASON_LIMIT, SUMMARY_LIMIT
from models.validators import AGE_OF_CRIMINAL_RESPONSIBILITY, FieldError, age_on, email, free_text, person_name, phone
from services import audit, clock, code_lists, db, people, settings, submissions
from services.errors import Conflict, InputErrors
from services.permissions import Permission, has_permission, require, require_team_record
from services.response_clock import ClockReading, read_clock
from services.workbook import ColumnKind, ExportColumn

PAGE_SIZE = 50
CUSTODY_NUMBER_LIMIT = 40
REOPEN_REASON_LIMIT = 200
REFERENCE_PREFIX = "R"
ADVICE_GIVEN_LABEL = "Advice given or action agreed"


class EventKind(StrEnum):
    RECEIVED = "received"
    ALLOCATED = "allocated"
    REALLOCATED = "reallocated"
    FIRST_RESPONSE = "first_response"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    REOPENED = "reopened"


EVENT_LABELS = {
    EventKind.RECEIVED: "Received",
    EventKind.ALLOCATED: "Allocated",
    EventKind.REALLOCATED: "Reallocated",
    EventKind.FIRST_RESPONSE: "First response",
    EventKind.IN_PROGRESS: "In progress",
    EventKind.CLOSED: "Closed",
    EventKind.REOPENED: "Reopened",
}

S = RequestStatus
ALLOWED_CHANGES: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.ALLOCATED}),
    S.ALLOCATED: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.CLOSED}),
    S.CLOSED: frozenset({S.REOPENED}),
    S.REOPENED: frozenset({S.ALLOCATED, S.IN_PROGRESS, S.CLOSED}),
}
OPEN_STATUSES = tuple(status.value for status in OPEN_REQUEST_STATUSES)


def can_change_status(current: str, new: str) -> bool:
    return new in ALLOWED_CHANGES.get(current, frozenset())


def reference_for(request_id: int, received_at: datetime) -> str:
    """``R-2026-000123``: the year received (London time) and the database id, never reused."""
    return f"{REFERENCE_PREFIX}-{clock.to_london(received_at).year}-{request_id:06d}"


# --- Logging a request ------------------------------------------------------------------------


@dataclass
class NewRequest:
    """A request as typed into the form. Times are London dates and clock times."""

    received_on: date | None
    received_time: time | None
    source_of_referral: str | None
    requester_name: str
    site_id: int | None
    request_type: str | None
    urgency: str | None
    reason: str
    requester_role: str | None = None
    requester_phone: str | None = None
    requester_email: str | None = None
    person_id: int | None = None  # an existing person of the team
    new_person: people.NewPerson | None = None  # or a new one, created in the same transaction
    confirm_new_person: bool = False  # "not one of the likely duplicates shown"
    about_nobody: bool = True  # a general advice request; False: a person must be chosen or recorded
    custody_number: str | None = None
    arrested_on: date | None = None
    arrested_time: time | None = None
    offence: str | None = None
    next_hearing_on: date | None = None
    next_hearing_time: time | None = None
    prison_release_on: date | None = None
    # Which of the autumn hour's two readings each time is (0: BST, the first; 1: GMT): asked only then.
    received_fold: int | None = None
    arrested_fold: int | None = None
    next_hearing_fold: int | None = None


def _check(errors: dict[str, str], check, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except FieldError as problem:
        errors.setdefault(problem.field, problem.message)
        return None


def _check_codes(errors: dict[str, str], session: Session, code_list: CodeList, field_name: str, code, what: str):
    if not code:
        errors[field_name] = f"Choose {what}."
        return None
    try:
        code_lists.check_active(session, code_list, {field_name: code})
    except InputErrors as refused:
        errors.update(refused.errors)
        return None
    return code


def _london_moment(
    errors: dict[str, str], day: date | None, clock_time: time | None, field_name: str, what: str, *, required: bool,
    fold: int | None = None,
) -> datetime | None:
    """A date and a time read on a London clock, as UTC; both are needed, never a silent 00:00.

    A reading that did not happen (spring) is refused; one that happened twice (autumn) needs `fold`.
    """
    if day is None and clock_time is None:
        if required:
            errors[field_name] = f"Enter the date and the time {what}."
        return None
    if day is None or clock_time is None:
        errors[field_name] = f"Enter both the date and the time {what}; one of them is missing."
        return None
    try:
        return clock.typed_in_london(day, clock_time, fold)
    except clock.NotALondonTime as problem:
        errors[field_name] = str(problem)
        return None


def _refuse_future(errors: dict[str, str], moment: datetime | None, now: datetime, field_name: str, what: str):
    # Times are typed to the minute: the current minute is not in the future.
    if moment is not None and moment >= now.replace(second=0, microsecond=0) + timedelta(minutes=1):
        errors[field_name] = (
            f"The time {what} cannot be in the future: you entered {clock.format_datetime(moment)}, "
            f"and it is now {clock.format_datetime(now)}. Check the date and the time."
        )
        return None
    return moment


def _check_site(errors: dict[str, str], session: Session, user: User, site_id: int | None) -> int | None:
    site = session.get(Site, site_id) if site_id is not None else None
    if site is None or site.team_id != user.team_id or not site.active:
        errors["site_id"] = "Choose one of your team's sites."
        return None
    return site.id


def _check_existing_person(errors: dict[str, str], person: Person, received_at: datetime | None) -> None:
    if person.date_of_birth is None or received_at is None:
        return
    received_on = clock.to_london(received_at).date()
    # Messages are shown in markdown-rendering alerts, so they carry no typed names.
    if received_on < person.date_of_birth:
        errors["received_at"] = (
            f"The person chosen was born on {clock.format_date(person.date_of_birth)}, after the date received "
            f"({clock.format_date(received_on)}). Check the date received."
        )
    elif age_on(person.date_of_birth, received_on) < AGE_OF_CRIMINAL_RESPONSIBILITY:
        errors["received_at"] = (
            f"The person chosen was {age_on(person.date_of_birth, received_on)} on {clock.format_date(received_on)}; "
            f"the age of criminal responsibility is {AGE_OF_CRIMINAL_RESPONSIBILITY}. Check the date received, "
            "or whether this is the right person."
        )


def _validated_request(session: Session, user: User, new: NewRequest, now: datetime, errors: dict[str, str]) -> dict:
    received_at = _london_moment(errors, new.received_on, new.received_time, "received_at", "the request was received",
                                 required=True, fold=new.received_fold)
    received_at = _refuse_future(errors, received_at, now, "received_at", "received")
    arrested_at = _london_moment(errors, new.arrested_on, new.arrested_time, "arrested_at", "of arrest",
                                 required=False, fold=new.arrested_fold)
    values = {
        "received_at": received_at,
        "source_of_referral": _check_codes(errors, session, CodeList.SOURCE_OF_REFERRAL, "source_of_referral",
                                           new.source_of_referral, "who the request is from"),
        "request_type": _check_codes(errors, session, CodeList.REQUEST_TYPE, "request_type", new.request_type,
                                     "the type of request"),
        "site_id": _check_site(errors, session, user, new.site_id),
        "requester_name": _check(errors, person_name, new.requester_name, "requester_name", NAME_LIMIT),
        "requester_role": _check(errors, free_text, new.requester_role, "requester_role", NAME_LIMIT) or None,
        "requester_phone": _check(errors, phone, new.requester_phone, "requester_phone"),
        "requester_email": _check(errors, email, new.requester_email, "requester_email"),
        "reason": _check(errors, free_text, new.reason, "reason", REASON_LIMIT, required=True),
        "custody_number": _check(errors, free_text, new.custody_number, "custody_number",
                                 CUSTODY_NUMBER_LIMIT) or None,
        "offence": _check(errors, free_text, new.offence, "offence", DETAIL_LIMIT) or None,
        "arrested_at": _refuse_future(errors, arrested_at, now, "arrested_at", "of arrest"),
        "next_hearing_at": _london_moment(errors, new.next_hearing_on, new.next_hearing_time, "next_hearing_at",
                                          "of the next hearing", required=False, fold=new.next_hearing_fold),
        "prison_release_on": new.prison_release_on,
    }
    if new.urgency not in Urgency.choices():
        errors["urgency"] = "Choose how urgent the request is: emergency, urgent or routine."
    values["urgency"] = new.urgency
    if not (new.requester_phone or "").strip() and not (new.requester_email or "").strip():
        errors.setdefault(
            "requester_phone", "Give a phone number or an e-mail address (or both) so the team can reply."
        )
    if new.request_type == RequestType.PRISON_RELEASE and new.prison_release_on is None:
        errors["prison_release_on"] = "Enter the release date for a prison release request."
    if new.request_type != RequestType.PRISON_RELEASE:
        values["prison_release_on"] = None
    if new.person_id is not None and new.new_person is not None:
        errors["person"] = "Choose an existing person or enter a new one, not both."
    elif not new.about_nobody and new.person_id is None and new.new_person is None:
        errors["person"] = ("Choose a person from the search results (Use this person) or record a new person, "
                            "or choose 'No one' for a general advice request.")
    return values


def log_request(session: Session, user: User, new: NewRequest, *, submission: str | None = None) -> Request:
    """Log a request (with its new person, if any): one transaction with its timeline and audit rows.

    Every problem is reported at once as InputErrors, keyed by form field; nothing is written.
    A second call with the same `submission` token returns the request the first one logged.
    """
    db.require_writing(session)
    require(user, Permission.LOG_REQUEST)
    if (earlier := submissions.claim(session, user, submission, "request")) is not None:
        return session.get(Request, earlier)
    now = clock.now()
    errors: dict[str, str] = {}
    values = _validated_request(session, user, new, now, errors)
    received_at = values["received_at"]
    contact_date = clock.to_london(received_at).date() if received_at else clock.today_in_london()
    person = None
    if new.person_id is not None and "person" not in errors:
        person = people.person_in_team(session, user, new.person_id)  # refused alike if missing or another team's
        _check_existing_person(errors, person, received_at)
    if new.new_person is not None and "person" not in errors:
        # Raises InputErrors with this form's problems and the person's together.
        person = people.create_person(session, user, new.new_person, on=contact_date,
                                      confirm_not_duplicate=new.confirm_new_person, errors=errors)
    if errors:
        raise InputErrors(errors)
    target = settings.response_target(session, values["urgency"])
    request = Request(
        **values,
        team_id=user.team_id,
        person_id=person.id if person else None,
        status=RequestStatus.NEW,
        due_at=received_at + target,
        created_by_id=user.id,
        updated_by_id=user.id,
    )
    session.add(request)
    session.flush()
    request.reference = reference_for(request.id, received_at)
    submissions.fulfil(session, submission, request.id)
    if person is not None and (person.last_contact_on is None or person.last_contact_on < contact_date):
        person.last_contact_on = contact_date
        session.add(person)
    _event(session, request, EventKind.RECEIVED, user, received_at, f"logged by {user.full_name}")
    session.flush()
    audit.record(session, user, "log_request", entity="request", entity_id=request.id,
                 detail=f"{request.reference}; {values['urgency']}; person {request.person_id or 'none'}")
    return request


# --- Changing a request -----------------------------------------------------------------------


def _event(session: Session, request: Request, kind: EventKind, user: User, at: datetime, detail: str | None = None):
    session.add(RequestEvent(request_id=request.id, at=at, by_user_id=user.id, kind=kind,
                             detail=detail[:SUMMARY_LIMIT] if detail else None))


def _full_name(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return ""
    found = session.get(User, user_id)
    return found.full_name if found else f"user {user_id}"


def _request_for_change(session: Session, user: User, request_id: int, version: int | None) -> Request:
    """The request, locked for this transaction, after the team and version checks."""
    request = require_team_record(user, session.get(Request, request_id, with_for_update=True, populate_existing=True),
                                  entity="request", entity_id=request_id)
    if version is not None and request.version != version:
        raise Conflict(_full_name(session, request.updated_by_id) or "another user", request.updated_at)
    return request


def _touch(request: Request, user: User, now: datetime) -> None:
    request.updated_at = now
    request.updated_by_id = user.id


def _move(request: Request, new_status: str) -> None:
    if not can_change_status(request.status, new_status):
        raise InputErrors({"status": (
            f"A request that is {RequestStatus.label_of(request.status).lower()} cannot become "
            f"{RequestStatus.label_of(new_status).lower()}."
        )})
    request.status = new_status


def _refuse_closed(request: Request, field_name: str, doing: str) -> None:
    if request.status == RequestStatus.CLOSED:
        raise InputErrors({field_name: f"This request is closed, so it cannot be {doing}. Reopen it first."})


def _allocatable(session: Session, user: User, user_id: int | None) -> User:
    target = session.get(User, user_id) if user_id is not None else None
    if (target is None or target.team_id != user.team_id or not target.active
            or not has_permission(target, Permission.RESPOND_TO_REQUEST)):
        raise InputErrors({"allocated_to": "Choose an active practitioner or team lead of your team."})
    return target


def _give_to(session: Session, acting: User, request: Request, target: User, at: datetime, action: str) -> None:
    """Allocate from `at`: when the allocation happened (now, or the time of a back-dated first response)."""
    previous = request.allocated_to_id
    request.allocated_to_id = target.id
    request.allocated_at = at
    if request.status in (RequestStatus.NEW, RequestStatus.REOPENED):
        _move(request, RequestStatus.ALLOCATED)
    _touch(request, acting, clock.now())
    if previous is None:
        _event(session, request, EventKind.ALLOCATED, acting, at, f"to {target.full_name}")
    else:
        _event(session, request, EventKind.REALLOCATED, acting, at,
               f"from {_full_name(session, previous)} to {target.full_name}")
    audit.record(session, acting, action, entity="request", entity_id=request.id,
                 detail=f"to {target.username}" + (f" from user {previous}" if previous else ""))


def allocate(session: Session, user: User, request_id: int, version: int | None, to_user_id: int) -> Request:
    """A team lead allocates (or reallocates) an open request to a member of the team."""
    db.require_writing(session)
    require(user, Permission.ALLOCATE_REQUESTS)
    request = _request_for_change(session, user, request_id, version)
    _refuse_closed(request, "allocated_to", "allocated")
    target = _allocatable(session, user, to_user_id)
    if request.allocated_to_id == target.id:
        raise InputErrors({"allocated_to": f"This request is already allocated to {target.full_name}."})
    _give_to(session, user, request, target, clock.now(), "allocate_request")
    session.flush()
    return request


def allocate_to_me(session: Session, user: User, request_id: int, version: int | None) -> Request:
    """A practitioner takes an open request that nobody has been allocated."""
    db.require_writing(session)
    require(user, Permission.ALLOCATE_TO_SELF)
    request = _request_for_change(session, user, request_id, version)
    _refuse_closed(request, "allocated_to", "allocated")
    if request.allocated_to_id is not None:
        raise InputErrors({"allocated_to": (
            f"This request is already allocated to {_full_name(session, request.allocated_to_id)}; "
            "ask a team lead to reallocate it."
        )})
    _give_to(session, user, request, _allocatable(session, user, user.id), clock.now(), "allocate_request_to_self")
    session.flush()
    return request


@dataclass(frozen=True)
class ReallocationPlan:
    """What moving one person's open requests would do: how many go, and how many to whom."""

    from_name: str
    count: int
    shares: tuple[tuple[str, int], ...]  # (recipient's full name, requests they receive), in turn order

    def words(self) -> str:
        """What the confirmation names, e.g. 5 open requests from Lee Lead to Sam Second (3), Priya Practitioner (2)."""
        plural = "request" if self.count == 1 else "requests"
        to = ", ".join(f"{name} ({received})" for name, received in self.shares)
        return f"{self.count} open {plural} from {self.from_name} to {to}"


def plan_reallocation(session: Session, user: User, from_user_id: int, to_user_ids: list[int]) -> ReallocationPlan:
    """What `reallocate_open_requests` would move now, for the confirmation; nothing is written."""
    require(user, Permission.ALLOCATE_REQUESTS)
    source, targets = _reallocation_parties(session, user, from_user_id, to_user_ids)
    count = len(_open_requests_of(session, user, from_user_id, lock=False))
    shares = tuple((target.full_name, len(range(turn, count, len(targets)))) for turn, target in enumerate(targets))
    return ReallocationPlan(source.full_name, count, shares)


def _reallocation_parties(session: Session, user: User, from_user_id: int | None,
                          to_user_ids: list[int]) -> tuple[User, list[User]]:
    source = session.get(User, from_user_id) if from_user_id is not None else None
    if source is None or source.team_id != user.team_id:
        raise InputErrors({"from_user": "Choose a member of your team whose requests should move."})
    recipients = list(dict.fromkeys(to_user_ids))
    if not recipients:
        raise InputErrors({"to_users": "Choose at least one person to receive the requests."})
    if from_user_id in recipients:
        raise InputErrors({"to_users": f"{source.full_name} cannot receive their own requests; choose others."})
    try:
        targets = [_allocatable(session, user, recipient) for recipient in recipients]
    except InputErrors as refused:
        raise InputErrors({"to_users": refused.errors["allocated_to"]}) from None
    return source, targets


def _open_requests_of(session: Session, user: User, user_id: int, *, lock: bool) -> list[Request]:
    query = (
        select(Request)
        .where(Request.team_id == user.team_id, Request.allocated_to_id == user_id, Request.status.in_(OPEN_STATUSES))
        .order_by(Request.due_at, Request.id)
    )
    return list(session.exec(query.with_for_update() if lock else query).all())


def reallocate_open_requests(session: Session, user: User, from_user_id: int, to_user_ids: list[int],
                             *, expected_count: int | None = None) -> int:
    """Move all of one person's open requests to others (leave, leavers), shared in turn by due time.

    Returns how many requests moved. Each one gets its timeline and audit row; pages holding an
    old version of any of them will have their next save refused. With `expected_count` (the
    number the person confirmed, from `plan_reallocation`) a different number now is refused, so
    a confirmation never moves more or fewer requests than it named.
    """
    db.require_writing(session)
    require(user, Permission.ALLOCATE_REQUESTS)
    source, targets = _reallocation_parties(session, user, from_user_id, to_user_ids)
    moving = _open_requests_of(session, user, source.id, lock=True)
    if expected_count is not None and len(moving) != expected_count:
        raise InputErrors({"from_user": (
            f"{source.full_name} has {len(moving)} open requests now, not the {expected_count} you confirmed: "
            "someone changed them meanwhile. Check the new numbers and confirm again.")})
    now = clock.now()
    for number, request in enumerate(moving):
        _give_to(session, user, request, targets[number % len(targets)], now, "reallocate_request")
    audit.record(session, user, "reallocate_open_requests", entity="user", entity_id=source.id,
                 detail=f"{len(moving)} open requests to users {', '.join(str(target.id) for target in targets)}")
    session.flush()
    return len(moving)


@dataclass
class FirstResponse:
    responded_on: date | None
    responded_time: time | None
    contact_mechanism: str | None
    summary: str
    responded_fold: int | None = None  # the autumn hour only: 0 the first (BST), 1 the second (GMT)


def record_first_response(
    session: Session, user: User, request_id: int, version: int | None, response: FirstResponse
) -> Request:
    """The first response and the advice given; the request is then in progress."""
    db.require_writing(session)
    require(user, Permission.RESPOND_TO_REQUEST)
    request = _request_for_change(session, user, request_id, version)
    _refuse_closed(request, "first_response", "answered")
    if request.first_response_at is not None:
        raise InputErrors({"first_response": (
            f"A first response was already recorded at {clock.format_datetime(request.first_response_at)}."
        )})
    now = clock.now()
    errors: dict[str, str] = {}
    responded_at = _london_moment(errors, response.responded_on, response.responded_time, "responded_at",
                                  "of the response", required=True, fold=response.responded_fold)
    responded_at = _refuse_future(errors, responded_at, now, "responded_at", "of the response")
    if responded_at is not None and responded_at < request.received_at.replace(second=0, microsecond=0):
        errors["responded_at"] = (
            f"The response cannot be before the request was received ({clock.format_datetime(request.received_at)})."
        )
    if response.contact_mechanism not in ContactMechanism.choices():
        errors["contact_mechanism"] = "Choose how the response was given (telephone, e-mail, face to face…)."
    summary = _check(errors, free_text, response.summary, "summary", SUMMARY_LIMIT, required=True,
                     label=ADVICE_GIVEN_LABEL)
    if errors:
        raise InputErrors(errors)
    if request.status == RequestStatus.NEW:  # answered by whoever answered it, from the moment they did
        _give_to(session, user, request, _allocatable(session, user, user.id), responded_at, "allocate_request_to_self")
    request.first_response_at = responded_at
    request.first_response_mechanism = response.contact_mechanism
    request.first_response_summary = summary
    _event(session, request, EventKind.FIRST_RESPONSE, user, responded_at,
           ContactMechanism.label_of(response.contact_mechanism))
    if request.status != RequestStatus.IN_PROGRESS:
        _move(request, RequestStatus.IN_PROGRESS)
        _event(session, request, EventKind.IN_PROGRESS, user, responded_at)
    _touch(request, user, now)
    audit.record(session, user, "record_first_response", entity="request", entity_id=request.id,
                 detail=f"mechanism {response.contact_mechanism}; "
                        f"responded at {responded_at.isoformat(timespec='minutes')}")
    session.flush()
    return request


def start_work(session: Session, user: User, request_id: int, version: int | None) -> Request:
    """Mark an allocated or reopened request as in progress (for example when screening starts)."""
    db.require_writing(session)
    require(user, Permission.RESPOND_TO_REQUEST)
    request = _request_for_change(session, user, request_id, version)
    now = clock.now()
    _move(request, RequestStatus.IN_PROGRESS)
    _touch(request, user, now)
    _event(session, request, EventKind.IN_PROGRESS, user, now)
    audit.record(session, user, "start_request_work", entity="request", entity_id=request.id)
    session.flush()
    return request


@dataclass(frozen=True)
class TypedMoment:
    """When something happened, as typed on a London clock (fold: which autumn reading, when asked)."""

    on: date | None
    at: time | None
    fold: int | None = None


def close_request(session: Session, user: User, request_id: int, version: int | None, closure_reason: str | None,
                  closed: TypedMoment | None = None) -> Request:
    """Close a request at the time it was closed (`closed`, typed; now when not given).

    The closure may be back-dated (entered after a night's work), never into the future, and never
    before the request was received or first answered; the entry time stays on the audit row.
    """
    db.require_writing(session)
    require(user, Permission.RESPOND_TO_REQUEST)
    request = _request_for_change(session, user, request_id, version)
    if not can_change_status(request.status, RequestStatus.CLOSED):
        raise InputErrors({"status": (
            f"Only a request in progress (or reopened) can be closed; this one is "
            f"{RequestStatus.label_of(request.status).lower()}."
        )})
    now = clock.now()
    errors: dict[str, str] = {}
    reason = _check_codes(errors, session, CodeList.CLOSURE_REASON, "closure_reason", closure_reason,
                          "a closure reason")
    closed_at = now if closed is None else _refuse_future(
        errors, _london_moment(errors, closed.on, closed.at, "closed_at", "the request was closed", required=True,
                               fold=closed.fold), now, "closed_at", "of closure")
    earliest = max(filter(None, (request.received_at, request.first_response_at)))
    if closed_at is not None and closed_at < earliest.replace(second=0, microsecond=0):
        errors["closed_at"] = (f"A request cannot be closed before it was received or first answered "
                               f"({clock.format_datetime(earliest)}).")
    if errors:
        raise InputErrors(errors)
    _move(request, RequestStatus.CLOSED)
    request.closed_at = closed_at
    request.closure_reason = reason
    _touch(request, user, now)
    _event(session, request, EventKind.CLOSED, user, closed_at,
           code_lists.labels(session, CodeList.CLOSURE_REASON).get(reason, reason))
    audit.record(session, user, "close_request", entity="request", entity_id=request.id,
                 detail=f"reason {reason}; closed at {closed_at.isoformat(timespec='minutes')}")
    session.flush()
    return request


def reopen_request(session: Session, user: User, request_id: int, version: int | None, reason: str) -> Request:
    """A team lead reopens a closed request, saying why (no clinical details: it shows on the timeline)."""
    db.require_writing(session)
    require(user, Permission.REOPEN_REQUEST)
    request = _request_for_change(session, user, request_id, version)
    if request.status != RequestStatus.CLOSED:
        raise InputErrors({"status": "Only a closed request can be reopened."})
    errors: dict[str, str] = {}
    why = _check(errors, free_text, reason, "reopen_reason", REOPEN_REASON_LIMIT, required=True)
    if errors:
        raise InputErrors(errors)
    now = clock.now()
    _move(request, RequestStatus.REOPENED)
    request.closed_at = None
    request.closure_reason = None
    _touch(request, user, now)
    _event(session, request, EventKind.REOPENED, user, now, why)
    audit.record(session, user, "reopen_request", entity="request", entity_id=request.id)
    session.flush()
    return request


# --- The triage list --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilters:
    """What the triage queue (and its export) shows. Empty tuples mean "any"."""

    site_ids: tuple[int, ...] = ()
    request_types: tuple[str, ...] = ()
    urgencies: tuple[str, ...] = ()
    statuses: tuple[str, ...] = OPEN_STATUSES
    allocated_to_id: int | None = None
    unallocated_only: bool = False
    received_from: date | None = None  # London dates, inclusive
    received_to: date | None = None


@dataclass(frozen=True)
class RequestList:
    """A list's query and its columns: ``statement`` yields rows whose keys include every column's key.

    ``statement`` is ordered by (due_at, id) and not limited; it also selects ``request_id``,
    ``person_id``, ``allocated_to_id`` and ``urgency_code`` for links and the response clock.
    """

    statement: Select
    columns: tuple[ExportColumn, ...]


# The triage list's columns: the queue on screen shows TRIAGE_VIEW, in its order, and so does its
# "Export this view"; the Export page may choose any of them. "clock" and "time_left_minutes" are
# worked out per row from now and the amber setting (`clock_columns`), the same for both.
REQUEST_LIST_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("reference", "Reference", ColumnKind.identifier),
    ExportColumn("received_at", "Received", ColumnKind.datetime),
    ExportColumn("due_at", "Due", ColumnKind.datetime),
    ExportColumn("urgency", "Urgency", ColumnKind.text),
    ExportColumn("request_type", "Request type", ColumnKind.text),
    ExportColumn("status", "Status", ColumnKind.text),
    ExportColumn("site", "Site", ColumnKind.text),
    ExportColumn("source_of_referral", "Source of referral", ColumnKind.text),
    ExportColumn("given_name", "Given name", ColumnKind.text),
    ExportColumn("family_name", "Family name", ColumnKind.text),
    ExportColumn("allocated_to", "Allocated to", ColumnKind.text),
    ExportColumn("first_response_at", "First response", ColumnKind.datetime),
    ExportColumn("closed_at", "Closed", ColumnKind.datetime),
    ExportColumn("person", "Person", ColumnKind.text),
    ExportColumn("clock", "Clock", ColumnKind.text),
    ExportColumn("time_left_minutes", "Time left (minutes)", ColumnKind.number),
)
TRIAGE_VIEW: tuple[str, ...] = ("clock", "time_left_minutes", "reference", "received_at", "due_at", "urgency",
                                "request_type", "status", "site", "person", "allocated_to")
CLOCK_COLUMNS = frozenset({"clock", "time_left_minutes"})
CLOCK_WORDS = {"red": "🔴 Overdue", "amber": "🟠 Due soon", "green": "🟢 On time"}
ANSWERED = "Answered"
NO_CLOCK = "—"  # closed before any response: no clock, nothing answered


def whole_minutes(span: timedelta) -> int:
    """Whole minutes towards zero, as the clock's words count them ("-0 h 30 min" is -30)."""
    minutes = int(abs(span).total_seconds() // 60)
    return -minutes if span < timedelta(0) else minutes


def clock_columns(now: datetime, amber_percent: int):
    """A function of a list row (a mapping with received_at, due_at, first_response_at and
    status_code) to its "clock" and "time_left_minutes": one reading of `response_clock` per row,
    for the queue on screen and its export alike."""

    def values(row) -> dict[str, object]:
        reading = response_clock(row["received_at"], row["due_at"], row["first_response_at"], row["status_code"],
                                 now, amber_percent)
        if reading is None:
            return {"clock": ANSWERED if row["first_response_at"] else NO_CLOCK, "time_left_minutes": None}
        return {"clock": CLOCK_WORDS[reading.rag], "time_left_minutes": whole_minutes(reading.time_left)}

    return values


def list_clock(session: Session, now: datetime | None = None):
    """`clock_columns` at `now` (default: the clock's now) with the team's amber setting."""
    return clock_columns(now or clock.now(), settings.get_int(session, "amber_percent"))


def _labels_case(column, enum):
    return case({member.value: member.label for member in enum}, value=column, else_=column)


def _filter_conditions(user: User, filters: RequestFilters) -> list:
    conditions = [Request.team_id == user.team_id]
    if filters.statuses:
        conditions.append(Request.status.in_(filters.statuses))
    if filters.site_ids:
        conditions.append(Request.site_id.in_(filters.site_ids))
    if filters.request_types:
        conditions.append(Request.request_type.in_(filters.request_types))
    if filters.urgencies:
        conditions.append(Request.urgency.in_(filters.urgencies))
    if filters.unallocated_only:
        conditions.append(Request.allocated_to_id.is_(None))
    elif filters.allocated_to_id is not None:
        conditions.append(Request.allocated_to_id == filters.allocated_to_id)
    if filters.received_from is not None:
        start = clock.from_london(filters.received_from, time(0, 0))
        # Due is always after received (every target is at least a minute), so the same bound on
        # due_at is true too, and lets the (team, status, due) index start at the date.
        conditions += [Request.received_at >= start, Request.due_at >= start]
    if filters.received_to is not None:
        conditions.append(Request.received_at < clock.from_london(filters.received_to + timedelta(days=1), time(0, 0)))
    return conditions


def _require_list(user: User) -> None:
    if not has_permission(user, Permission.VIEW_REQUESTS):
        require(user, Permission.EXPORT)  # administrators export without working the queue


class QueueGroup(IntEnum):
    """Where a request sits in the queue of the person looking at it; soonest due first within each.

    New work must never be buried under answered requests: a practitioner sees their own
    unanswered requests first, then the team's unallocated ones, then the rest, answered last.
    """

    MINE_UNANSWERED = 0
    UNALLOCATED = 1
    OTHERS_UNANSWERED = 2
    ANSWERED = 3
    CLOSED = 4


def _group_conditions(user: User) -> dict[QueueGroup, ColumnElement[bool]]:
    """Each open request's group. Closed requests are all CLOSED: split by group, the team's whole
    history would be walked for the few closed without an answer (4.8 → 127 ms a page at 100k)."""
    unanswered = Request.first_response_at.is_(None)
    return {
        QueueGroup.MINE_UNANSWERED: and_(Request.allocated_to_id == user.id, unanswered),
        QueueGroup.UNALLOCATED: and_(Request.allocated_to_id.is_(None), unanswered),
        QueueGroup.OTHERS_UNANSWERED: and_(Request.allocated_to_id.is_not(None), Request.allocated_to_id != user.id,
                                           unanswered),
        QueueGroup.ANSWERED: Request.first_response_at.is_not(None),
    }


def _groups_of(user: User, status: str) -> dict[QueueGroup, ColumnElement[bool]]:
    return {QueueGroup.CLOSED: true()} if status == RequestStatus.CLOSED else _group_conditions(user)


def _queue_group(user: User) -> ColumnElement[int]:
    """The `QueueGroup` of each request for `user`, as SQL (the list's first sort key)."""
    return case((Request.status == RequestStatus.CLOSED, QueueGroup.CLOSED.value),
                *((condition, group.value) for group, condition in _group_conditions(user).items()),
                else_=QueueGroup.ANSWERED.value)


def request_list_query(user: User, filters: RequestFilters) -> RequestList:
    """The team's requests matching ``filters`` in queue order: the triage queue and its export."""
    _require_list(user)
    return RequestList(statement=_list_statement(_filter_conditions(user, filters), user),
                       columns=REQUEST_LIST_COLUMNS)


def _list_statement(conditions: list, user: User) -> Select:
    source_item = aliased(CodeItem)
    type_item = aliased(CodeItem)
    allocated = aliased(User)
    statement = (
        select(
            Request.id.label("request_id"),
            Request.reference.label("reference"),
            Request.received_at.label("received_at"),
            Request.due_at.label("due_at"),
            _labels_case(Request.urgency, Urgency).label("urgency"),
            Request.urgency.label("urgency_code"),
            func.coalesce(type_item.label, Request.request_type).label("request_type"),
            _labels_case(Request.status, RequestStatus).label("status"),
            Request.status.label("status_code"),
            Site.name.label("site"),
            func.coalesce(source_item.label, Request.source_of_referral).label("source_of_referral"),
            Person.given_name.label("given_name"),
            Person.family_name.label("family_name"),
            (Person.given_name + literal(" ") + Person.family_name).label("person"),
            Request.person_id.label("person_id"),
            allocated.full_name.label("allocated_to"),
            Request.allocated_to_id.label("allocated_to_id"),
            Request.first_response_at.label("first_response_at"),
            Request.closed_at.label("closed_at"),
            Request.version.label("version"),
        )
        .select_from(Request)
        .join(Site, Site.id == Request.site_id)
        .outerjoin(Person, Person.id == Request.person_id)
        .outerjoin(allocated, allocated.id == Request.allocated_to_id)
        .outerjoin(source_item, and_(source_item.list_name == CodeList.SOURCE_OF_REFERRAL.value,
                                     source_item.code == Request.source_of_referral))
        .outerjoin(type_item, and_(type_item.list_name == CodeList.REQUEST_TYPE.value,
                                   type_item.code == Request.request_type))
        .where(*conditions)
        .order_by(_queue_group(user), Request.due_at, Request.id)
    )
    return statement


@dataclass(frozen=True)
class PageCursor:
    """Where the next page starts: after this (queue group, due_at, id)."""

    group: QueueGroup
    due_at: datetime
    request_id: int


@dataclass(frozen=True)
class TriageRow:
    request_id: int
    reference: str
    received_at: datetime
    due_at: datetime
    urgency: str
    request_type: str
    status: str
    status_code: str
    site: str
    source_of_referral: str
    person: str
    allocated_to: str
    allocated_to_id: int | None
    first_response_at: datetime | None
    version: int
    clock: ClockReading | None  # None once answered or closed: the target was for the first response
    values: Mapping[str, object] = field(default_factory=dict)  # every REQUEST_LIST_COLUMNS key's value


@dataclass(frozen=True)
class TriagePage:
    rows: list[TriageRow]
    next_cursor: PageCursor | None  # None on the last page


def overdue_at(moment: datetime) -> ColumnElement[bool]:
    """Overdue at `moment`: its target passed with no first response yet (the clock stops there).

    The one definition shared by the queue's clock, "My work" and the caseload page.
    """
    return and_(
        Request.due_at < moment,
        or_(Request.first_response_at.is_(None), Request.first_response_at > moment),
    )


def response_clock(received_at: datetime, due_at: datetime, first_response_at: datetime | None,
                   status: str, now: datetime, amber_percent: int) -> ClockReading | None:
    """Red / amber / green until the first response; None once answered or closed."""
    if first_response_at is not None or status == RequestStatus.CLOSED:
        return None
    return read_clock(received_at, due_at, now, amber_percent)


def triage_page(session: Session, user: User, filters: RequestFilters, after: PageCursor | None = None,
                size: int = PAGE_SIZE) -> TriagePage:
    """One page of the queue: the rows of ``request_list_query`` after ``after``, ``size`` at most.

    Keyset paging on (queue group, due_at, id), so page 500 costs what page 1 does. Each status
    and queue group is read as its own branch in due order from the (team, status, due) index and
    the branches merged (ids only; the page's rows are then read with the list query itself): a
    single query over several statuses would sort every matching row first (all of them, when the
    closed requests are included), and the cost would grow with the history.
    """
    _require_list(user)
    statuses = filters.statuses or tuple(RequestStatus.choices())
    due_type = Request.__table__.c.due_at.type
    branches = []
    for status in statuses:
        one_status = _filter_conditions(user, replace(filters, statuses=(status,)))
        for group, in_group in _groups_of(user, status).items():
            if after is not None and group < after.group:
                continue  # every row of this group came on earlier pages
            branch = select(literal(group.value).label("queue_group"), Request.id, Request.due_at).where(
                *one_status, in_group)
            if after is not None and group == after.group:
                branch = branch.where(tuple_(Request.due_at, Request.id)
                                      > tuple_(literal(after.due_at, due_type), literal(after.request_id)))
            branches.append(select(branch.order_by(Request.due_at, Request.id).limit(size + 1).subquery()))
    merged = union_all(*branches).subquery()
    page = session.execute(select(merged.c.queue_group, merged.c.id)
                           .order_by(merged.c.queue_group, merged.c.due_at, merged.c.id).limit(size + 1)).all()
    groups = {request_id: QueueGroup(group) for group, request_id in page}
    # The page's rows: the list's own columns and order, read by primary key (the ids were
    # chosen above under the team and the filters; repeating those here would make SQLite walk
    # the status index instead of fetching 51 rows).
    found = session.execute(_list_statement([Request.id.in_(list(groups))], user)).all()
    now = clock.now()
    amber = settings.get_int(session, "amber_percent")
    clock_values = clock_columns(now, amber)
    rows = [
        TriageRow(
            request_id=row.request_id,
            reference=row.reference or "",
            received_at=row.received_at,
            due_at=row.due_at,
            urgency=row.urgency,
            request_type=row.request_type,
            status=row.status,
            status_code=row.status_code,
            site=row.site,
            source_of_referral=row.source_of_referral,
            person=f"{row.given_name} {row.family_name}" if row.person_id else "",
            allocated_to=row.allocated_to or "",
            allocated_to_id=row.allocated_to_id,
            first_response_at=row.first_response_at,
            version=row.version,
            clock=response_clock(row.received_at, row.due_at, row.first_response_at, row.status_code, now, amber),
            values={**row._mapping, **clock_values(row._mapping)},
        )
        for row in found[:size]
    ]
    more = len(found) > size
    last = rows[-1] if rows else None
    return TriagePage(rows=rows, next_cursor=PageCursor(groups[last.request_id], last.due_at, last.request_id)
                      if more else None)


def count_requests(session: Session, user: User, filters: RequestFilters) -> int:
    """How many requests match the filters (from the indexes; no rows are loaded)."""
    _require_list(user)
    statement = select(func.count()).select_from(Request).where(*_filter_conditions(user, filters))
    return session.exec(statement).one()


def allocatable_staff(session: Session, user: User) -> list[User]:
    """Active practitioners and team leads of the user's team, by name (for allocation lists)."""
    require(user, Permission.VIEW_REQUESTS)
    query = select(User).where(User.team_id == user.team_id, User.active).order_by(User.full_name)
    return [member for member in session.exec(query).all() if has_permission(member, Permission.RESPOND_TO_REQUEST)]


# --- One request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    what: str
    by: str
    detail: str


@dataclass(frozen=True)
class RequestDetail:
    request: Request
    person: Person | None
    site: str
    source_of_referral: str
    request_type: str
    closure_reason: str
    allocated_to: str
    created_by: str
    clock: ClockReading | None
    timeline: list[TimelineEntry] = field(default_factory=list)


def _timeline(session: Session, request: Request) -> list[TimelineEntry]:
    names: dict[int | None, str] = {}

    def name(user_id: int | None) -> str:
        if user_id not in names:
            names[user_id] = _full_name(session, user_id)
        return names[user_id]

    events = session.exec(
        select(RequestEvent).where(RequestEvent.request_id == request.id).order_by(RequestEvent.at, RequestEvent.id)
    ).all()
    entries = [TimelineEntry(event.at, EVENT_LABELS.get(event.kind, event.kind), name(event.by_user_id),
                             event.detail or "") for event in events]
    screenings = session.exec(select(Screening).where(Screening.request_id == request.id)).all()
    for screening in screenings:
        entries.append(TimelineEntry(screening.created_at, "Screening started", name(screening.practitioner_id), ""))
        if screening.completed_at is not None:
            entries.append(TimelineEntry(screening.completed_at, "Screening completed",
                                         name(screening.practitioner_id), ""))
    if screenings:
        services = code_lists.labels(session, CodeList.ONWARD_SERVICE)
        referrals = session.exec(
            select(OnwardReferral).where(OnwardReferral.screening_id.in_([screening.id for screening in screenings]))
        ).all()
        for referral in referrals:
            entries.append(TimelineEntry(referral.created_at, "Onward referral", name(referral.updated_by_id),
                                         f"{services.get(referral.service, referral.service)}, referred "
                                         f"{clock.format_date(referral.referred_on)}"))
    return sorted(entries, key=lambda entry: entry.at)


def open_request(session: Session, user: User, request_id: int, *, audited: bool = True) -> RequestDetail:
    """A request with its person and timeline, for the request page. Opening it is audited as a
    view of both (in a writing session); a page redrawing a request it has already audited in the
    same browser session passes `audited=False` and may read in a reading session."""
    if audited:
        db.require_writing(session)
    require(user, Permission.VIEW_REQUESTS)
    # A missing id and another team's read the same and are audited the same (services/permissions.py).
    request = require_team_record(user, session.get(Request, request_id), entity="request", entity_id=request_id)
    person = None
    if request.person_id is not None:
        person = (people.view_person(session, user, request.person_id) if audited
                  else people.person_in_team(session, user, request.person_id))
    if audited:
        audit.record(session, user, "view_request", entity="request", entity_id=request.id)
    site = session.get(Site, request.site_id)
    amber = settings.get_int(session, "amber_percent")
    return RequestDetail(
        request=request,
        person=person,
        site=site.name if site else "",
        source_of_referral=code_lists.labels(session, CodeList.SOURCE_OF_REFERRAL).get(
            request.source_of_referral, request.source_of_referral),
        request_type=code_lists.labels(session, CodeList.REQUEST_TYPE).get(request.request_type, request.request_type),
        closure_reason=code_lists.labels(session, CodeList.CLOSURE_REASON).get(
            request.closure_reason, request.closure_reason or ""),
        allocated_to=_full_name(session, request.allocated_to_id),
        created_by=_full_name(session, request.created_by_id),
        clock=response_clock(request.received_at, request.due_at, request.first_response_at, request.status,
                             clock.now(), amber),
        timeline=_timeline(session, request),
    )
