"""Onward referrals: made at a screening, then followed up (accepted, attended…) from the person's record.

A referral belongs to its screening's team and person. It cannot be dated before the screening
nor in the future. Attendance uses the national attended-or-did-not-attend codes; a status of
"attended" or "did not attend" needs the matching code. A referral on a draft screening may be
removed (a mistake); once the screening is complete it is only ever updated, with its version
checked so that two people updating it at once cannot overwrite each other.
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from models import OnwardReferral, Person, Screening, User
from models import validators as check
from models.codes import AttendanceCode, CodeList, ReferralStatus, ScreeningStatus
from models.screening import NOTE_LIMIT
from services import audit, clock, code_lists, submissions
from services.errors import InputErrors, NotFound
from services.permissions import Permission, require, require_team
from services.screening import check_version, flush_or_conflict

ATTENDED_CODES = (AttendanceCode.ATTENDED_ON_TIME, AttendanceCode.ARRIVED_LATE_SEEN)
DID_NOT_ATTEND_CODES = (
    AttendanceCode.ARRIVED_LATE_NOT_SEEN,
    AttendanceCode.CANCELLED_BY_PERSON,
    AttendanceCode.DID_NOT_ATTEND,
)
FIELD_LABELS = {
    "service": "Service",
    "referred_on": "Date referred",
    "status": "Status",
    "attendance": "Attendance",
    "outcome_on": "Date of outcome",
    "note": "Note",
}


@dataclass
class NewReferral:
    service: str | None = None
    referred_on: date | None = None
    status: str | None = ReferralStatus.MADE
    attendance: str | None = None
    outcome_on: date | None = None
    note: str | None = None


@dataclass
class ReferralUpdate:
    status: str | None = None
    attendance: str | None = None
    outcome_on: date | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReferralRow:
    referral_id: int
    version: int
    screening_id: int | None
    service: str
    referred_on: date
    status: str
    attendance: str
    outcome_on: date | None
    note: str
    status_code: str = ""
    attendance_code: str | None = None


def _screening(session: Session, user: User, screening_id: int) -> Screening:
    screening = session.get(Screening, screening_id)
    if screening is None:
        raise NotFound("No such screening.")
    require_team(user, screening.team_id, entity="screening", entity_id=screening.id)
    return screening


def _referral(session: Session, user: User, referral_id: int) -> OnwardReferral:
    referral = session.get(OnwardReferral, referral_id)
    if referral is None:
        raise NotFound("No such onward referral.")
    require_team(user, referral.team_id, entity="onward_referral", entity_id=referral.id)
    return referral


def _checked_outcome(
    errors: dict[str, str], status: str | None, attendance: str | None,
    outcome_on: date | None, referred_on: date | None,
) -> None:
    if status not in ReferralStatus.choices():
        errors["status"] = "Choose the referral's status."
    if attendance not in (None, "") and attendance not in AttendanceCode.choices():
        errors["attendance"] = "Choose attendance from the list."
    elif status == ReferralStatus.ATTENDED and attendance not in ATTENDED_CODES:
        errors["attendance"] = "The status is attended: choose \"attended on time\" or \"arrived late and was seen\"."
    elif status == ReferralStatus.DID_NOT_ATTEND and attendance not in DID_NOT_ATTEND_CODES:
        errors["attendance"] = ("The status is did not attend: choose \"did not attend without warning\", "
                                "\"cancelled by the person\" or \"arrived late and was not seen\".")
    elif status in (ReferralStatus.MADE, ReferralStatus.ACCEPTED, ReferralStatus.DECLINED) \
            and attendance in ATTENDED_CODES + DID_NOT_ATTEND_CODES:
        errors["attendance"] = (f"Attendance says the appointment happened or was missed: set the status to "
                                f"attended or did not attend, not {ReferralStatus.label_of(status).lower()}.")
    if outcome_on is not None:
        if outcome_on > clock.today_in_london():
            errors["outcome_on"] = "The date of the outcome cannot be in the future."
        elif referred_on is not None and outcome_on < referred_on:
            errors["outcome_on"] = (f"The date of the outcome cannot be before the referral was made "
                                    f"({clock.format_date(referred_on)}).")


def _note(errors: dict[str, str], note: str | None) -> str | None:
    try:
        return check.free_text(note, "note", NOTE_LIMIT) or None
    except check.FieldError as error:
        errors["note"] = error.message
        return None


def add_referral(session: Session, user: User, screening_id: int, data: NewReferral, *,
                 submission: str | None = None) -> OnwardReferral:
    """Record an onward referral made at (or after) a screening.

    A second call with the same `submission` token returns the referral the first one recorded.
    """
    require(user, Permission.REFER)
    screening = _screening(session, user, screening_id)
    if (earlier := submissions.claim(session, user, submission, "onward_referral")) is not None:
        return session.get(OnwardReferral, earlier)
    errors: dict[str, str] = {}
    if not data.service:
        errors["service"] = "Choose the service referred to."
    else:
        try:
            code_lists.check_active(session, CodeList.ONWARD_SERVICE, {"service": data.service})
        except InputErrors as refused:
            errors.update(refused.errors)
    if data.referred_on is None:
        errors["referred_on"] = "Date referred is required; enter it as dd/mm/yyyy."
    elif data.referred_on > clock.today_in_london():
        errors["referred_on"] = "The referral cannot be dated in the future."
    elif screening.screened_at is not None and data.referred_on < clock.to_london(screening.screened_at).date():
        errors["referred_on"] = (f"The referral cannot be dated before the screening "
                                 f"({clock.format_date(screening.screened_at)}).")
    _checked_outcome(errors, data.status, data.attendance, data.outcome_on, data.referred_on)
    note = _note(errors, data.note)
    if errors:
        raise InputErrors(errors)
    referral = OnwardReferral(
        team_id=screening.team_id, person_id=screening.person_id, screening_id=screening.id, service=data.service,
        referred_on=data.referred_on, status=data.status, attendance=data.attendance or None,
        outcome_on=data.outcome_on, note=note, updated_by_id=user.id,
    )
    session.add(referral)
    session.flush()
    submissions.fulfil(session, submission, referral.id)
    audit.record(session, user, "create_onward_referral", entity="onward_referral", entity_id=referral.id,
                 detail=f"screening {screening.id}")
    return referral


def update_referral(
    session: Session, user: User, referral_id: int, version: int, data: ReferralUpdate,
) -> OnwardReferral:
    """Follow a referral up: status, attendance, date of outcome, note. Refused if someone saved it first."""
    require(user, Permission.REFER)
    referral = _referral(session, user, referral_id)
    check_version(session, referral, version)
    errors: dict[str, str] = {}
    _checked_outcome(errors, data.status, data.attendance, data.outcome_on, referral.referred_on)
    note = _note(errors, data.note)
    if errors:
        raise InputErrors(errors)
    changed = [name for name, value in (("status", data.status), ("attendance", data.attendance or None),
                                        ("outcome_on", data.outcome_on), ("note", note))
               if getattr(referral, name) != value]
    if not changed:
        return referral
    referral.status, referral.attendance = data.status, data.attendance or None
    referral.outcome_on, referral.note = data.outcome_on, note
    referral.updated_at, referral.updated_by_id = clock.now(), user.id
    session.add(referral)
    flush_or_conflict(session, referral)
    audit.record(session, user, "update_onward_referral", entity="onward_referral", entity_id=referral.id,
                 detail=", ".join(changed))
    return referral


def remove_referral(session: Session, user: User, referral_id: int, version: int) -> None:
    """Remove a referral added by mistake to a draft; a completed screening's referrals stay."""
    require(user, Permission.REFER)
    referral = _referral(session, user, referral_id)
    check_version(session, referral, version)
    screening = session.get(Screening, referral.screening_id) if referral.screening_id else None
    if screening is None or screening.status != ScreeningStatus.DRAFT:
        raise InputErrors({"referral": "Only a referral on a draft screening can be removed; update its status "
                                       "instead (for example to declined)."})
    session.delete(referral)
    session.flush()
    audit.record(session, user, "delete_onward_referral", entity="onward_referral", entity_id=referral_id,
                 detail=f"screening {screening.id}")


def _rows(session: Session, query) -> list[ReferralRow]:
    services = code_lists.labels(session, CodeList.ONWARD_SERVICE)
    return [
        ReferralRow(
            referral_id=referral.id, version=referral.version, screening_id=referral.screening_id,
            service=services.get(referral.service, referral.service), referred_on=referral.referred_on,
            status=ReferralStatus.label_of(referral.status), attendance=AttendanceCode.label_of(referral.attendance),
            outcome_on=referral.outcome_on, note=referral.note or "", status_code=referral.status,
            attendance_code=referral.attendance,
        )
        for referral in session.scalars(query).all()
    ]


def referrals_for_screening(session: Session, user: User, screening_id: int) -> list[ReferralRow]:
    require(user, Permission.SCREEN)
    screening = _screening(session, user, screening_id)
    query = (select(OnwardReferral).where(OnwardReferral.screening_id == screening.id)
             .order_by(OnwardReferral.referred_on, OnwardReferral.id))
    return _rows(session, query)


def referrals_for_person(session: Session, user: User, person_id: int) -> list[ReferralRow]:
    """Every onward referral for the person, newest first."""
    require(user, Permission.VIEW_PEOPLE)
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("No such person.")
    require_team(user, person.team_id, entity="person", entity_id=person.id)
    query = (select(OnwardReferral).where(OnwardReferral.person_id == person.id,
                                          OnwardReferral.team_id == user.team_id)
             .order_by(OnwardReferral.referred_on.desc(), OnwardReferral.id.desc()))
    return _rows(session, query)
