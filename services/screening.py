"""Screening: a draft saved section by section, completed when every check passes, amended with a reason.

Sections (each saved on its own into the draft, so nothing already saved is lost):
person and context, consent, vulnerabilities, instruments, risk, outcome and recommendations, and
onward referrals (`services/referrals.py`). Every save checks its own fields and refuses the whole
section with one message per field; `complete` checks everything and lists every problem at once,
by section. A completed screening changes only through an amendment with a reason, which keeps the
values before and after.

Locking: a caller passes the screening `version` it showed; a different stored version raises
`Conflict` naming who saved first. Every write records an audit row in the same transaction; audit
details name sections and fields, never clinical text.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, case, cast, exists, func, select, type_coerce
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import Select
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from models import (
    CodeItem,
    InstrumentResult,
    OnwardReferral,
    Person,
    Request,
    Screening,
    ScreeningAmendment,
    ScreeningVulnerability,
    Site,
    User,
)
from models import validators as check
from models.codes import (
    OPEN_REQUEST_STATUSES,
    AttendanceCode,
    CodeList,
    ConsentStatus,
    ContactMechanism,
    DiagnosisStatus,
    ReferralStatus,
    RiskLevel,
    ScreeningOutcome,
    ScreeningStatus,
)
from models.screening import NOTE_LIMIT, RECOMMENDATION_LIMIT
from services import audit, clock, code_lists, instruments, people, submissions
from services.errors import Conflict, InputErrors
from services.permissions import Permission, has_permission, require, require_team_record

ADULT_AGE = 18
SHARED_WITH_LIMIT = 200
CAPACITY_DECIDED_BY_LIMIT = 100
PROPRIETARY_VERSION = "result-only"
LIST_LIMIT = 200

# Sections, in the order of the form.
PERSON_AND_CONTEXT = "person_and_context"
CONSENT = "consent"
VULNERABILITIES = "vulnerabilities"
INSTRUMENTS = "instruments"
RISK = "risk"
OUTCOME = "outcome"
REFERRALS = "referrals"
SECTIONS: dict[str, str] = {
    PERSON_AND_CONTEXT: "Person and context",
    CONSENT: "Consent",
    VULNERABILITIES: "Vulnerabilities",
    INSTRUMENTS: "Instruments",
    RISK: "Risk",
    OUTCOME: "Outcome and recommendations",
    REFERRALS: "Onward referrals",
}
REQUIRED_SECTIONS = (PERSON_AND_CONTEXT, CONSENT, VULNERABILITIES, RISK, OUTCOME)

# The words a person sees for each field: used in messages and in the amendment history.
FIELD_LABELS: dict[str, str] = {
    "site_id": "Site",
    "screened_at": "Date and time of screening",
    "contact_mechanism": "Contact mechanism",
    "attendance": "Attended or did not attend",
    "custody_or_court_details": "Custody or court details",
    "appropriate_adult_required": "Appropriate adult required",
    "appropriate_adult_reason": "Reason an appropriate adult is required",
    "consent_to_screening": "Consent to screening",
    "consent_to_share": "Consent to share information with police, court and probation",
    "capacity_decided_by": "Capacity decided by",
    "capacity_reason": "Why the person lacks capacity",
    "vulnerabilities": "Vulnerabilities",
    "learning_disability_status": "Learning disability status",
    "autism_status": "Autism status",
    "risk_to_self": "Risk to self",
    "risk_to_self_note": "Risk to self: note",
    "risk_to_others": "Risk to others",
    "risk_to_others_note": "Risk to others: note",
    "risk_from_others": "Risk from others",
    "risk_from_others_note": "Risk from others: note",
    "outcome": "Outcome",
    "recommendation_fitness_for_interview": "Recommendation: fitness for interview",
    "recommendation_appropriate_adult": "Recommendation: appropriate adult",
    "recommendation_adjustments": "Recommendation: adjustments",
    "shared_with": "Shared with",
    "shared_at": "Shared on (date and time)",
    "shared_what": "What was shared",
    "referrals": "Onward referrals",
    "amendment_reason": "Reason for amendment",
}
RISK_FIELDS = ("risk_to_self", "risk_to_others", "risk_from_others")
SHARING_FIELDS = ("shared_with", "shared_at", "shared_what")
PROPRIETARY_NAMES = {"hasi": "HASI", "ldsq": "LDSQ", "chat": "CHAT"}


def label(field_name: str) -> str:
    if field_name in FIELD_LABELS:
        return FIELD_LABELS[field_name]
    if field_name in instruments.INSTRUMENTS:
        return instruments.INSTRUMENTS[field_name].name
    return PROPRIETARY_NAMES.get(field_name, field_name.replace("_", " ").capitalize())


# --- what the page sends ----------------------------------------------------------------------


@dataclass
class PersonAndContext:
    site_id: int | None = None
    screened_on: date | None = None  # London date and time, as read on the clock
    screened_time: time | None = None
    screened_fold: int | None = None  # in the autumn hour that happens twice: 0 the first (BST), 1 the second
    contact_mechanism: str | None = None
    attendance: str | None = None
    custody_or_court_details: str | None = None
    appropriate_adult_required: bool = False
    appropriate_adult_reason: str | None = None


@dataclass
class Consent:
    consent_to_screening: str | None = None
    consent_to_share: str | None = None
    capacity_decided_by: str | None = None
    capacity_reason: str | None = None


@dataclass
class Vulnerabilities:
    vulnerabilities: list[str] = field(default_factory=list)  # codes of the editable vulnerability list
    learning_disability_status: str | None = None
    autism_status: str | None = None


@dataclass
class InstrumentAnswers:
    """One instrument as answered so far. None is an unanswered item (a draft may have some)."""

    answers: dict[str, int | None] = field(default_factory=dict)
    not_completed: bool = False
    not_completed_reason: str | None = None
    screener_refers: bool = False  # the BJMHS's fourth rule: refer on the screener's judgement


@dataclass
class Instruments:
    scored: dict[str, InstrumentAnswers] = field(default_factory=dict)
    # Proprietary tools (HASI, LDSQ, CHAT): the result only, never their items.
    proprietary: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Risk:
    risk_to_self: str | None = None
    risk_to_self_note: str | None = None
    risk_to_others: str | None = None
    risk_to_others_note: str | None = None
    risk_from_others: str | None = None
    risk_from_others_note: str | None = None


@dataclass
class Outcome:
    outcome: str | None = None
    recommendation_fitness_for_interview: str | None = None
    recommendation_appropriate_adult: str | None = None
    recommendation_adjustments: str | None = None
    shared_with: str | None = None
    shared_on: date | None = None
    shared_time: time | None = None
    shared_fold: int | None = None  # as screened_fold
    shared_what: str | None = None


# --- what the page shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class AmendmentRow:
    amended_at: datetime
    amended_by: str
    reason: str
    changes: list[tuple[str, str, str]]  # (what, before, after) as text to show


@dataclass(frozen=True)
class ScreeningView:
    screening: Screening
    person: Person
    request: Request | None
    site_name: str
    practitioner_name: str
    vulnerability_codes: list[str]
    results: dict[str, InstrumentResult]
    referrals: list[OnwardReferral]
    amendments: list[AmendmentRow]
    age: int | None
    risk_flags: list[str]

    @property
    def complete(self) -> bool:
        return self.screening.status == ScreeningStatus.COMPLETE

    @property
    def person_line(self) -> str:
        born = clock.format_date(self.person.date_of_birth) or "not recorded"
        age = "not known" if self.age is None else str(self.age)
        return f"{self.person.given_name} {self.person.family_name} · born {born} · age at screening {age}"

    @property
    def context_line(self) -> str:
        status = ScreeningStatus.label_of(self.screening.status)
        line = f"{status} · practitioner {self.practitioner_name}"
        if self.request is not None:
            reference = self.request.reference or f"#{self.request.id}"
            line += f" · request {reference}, received {clock.format_datetime(self.request.received_at)}"
        return line

    def section_saved(self, section: str) -> bool:
        if section == REFERRALS:
            return bool(self.referrals)
        return section in (self.screening.sections_saved or [])


class CompletionRefused(InputErrors):
    """Completion refused: `errors` by field (for messages under fields), `by_section` for the list."""

    def __init__(self, by_section: dict[str, dict[str, str]]):
        super().__init__({name: message for problems in by_section.values() for name, message in problems.items()})
        self.by_section = by_section


# --- starting a draft -------------------------------------------------------------------------


def start_from_request(session: Session, user: User, request_id: int) -> Screening:
    """A draft for the request's person; the request's existing draft when there is one."""
    require(user, Permission.SCREEN)
    request = require_team_record(user, session.get(Request, request_id), entity="request", entity_id=request_id)
    if request.person_id is None:
        raise InputErrors({"person": "This request has no person recorded. Add the person to the request "
                                     "before screening them."})
    existing = session.exec(
        sqlmodel_select(Screening).where(Screening.request_id == request.id,
                                         Screening.status == ScreeningStatus.DRAFT).order_by(Screening.id)
    ).first()
    if existing is not None:
        return existing
    return _new_draft(session, user, request.person_id, request.id, request.site_id)


def start_for_person(session: Session, user: User, person_id: int) -> Screening:
    """A draft for a person found by search; the user's own draft for them when there is one."""
    require(user, Permission.SCREEN)
    person = require_team_record(user, session.get(Person, person_id), entity="person", entity_id=person_id)
    existing = session.exec(
        sqlmodel_select(Screening).where(
            Screening.person_id == person.id, Screening.practitioner_id == user.id,
            Screening.request_id.is_(None), Screening.status == ScreeningStatus.DRAFT,
        ).order_by(Screening.id)
    ).first()
    if existing is not None:
        return existing
    return _new_draft(session, user, person.id, None, None)


def start_for_new_person(
    session: Session, user: User, new: people.NewPerson, *, confirm_not_duplicate: bool = False,
    submission: str | None = None,
) -> Screening:
    """Record a new person (refusing bad values and unconfirmed likely duplicates) and start their draft,
    in one transaction: either both exist afterwards or neither does. A second call with the same
    `submission` token opens the draft the first one started, recording nobody again."""
    require(user, Permission.SCREEN)
    if (earlier := submissions.claim(session, user, submission, "screening")) is not None:
        return session.get(Screening, earlier)
    person = people.create_person(session, user, new, confirm_not_duplicate=confirm_not_duplicate)
    draft = _new_draft(session, user, person.id, None, None)
    submissions.fulfil(session, submission, draft.id)
    return draft


def _new_draft(session: Session, user: User, person_id: int, request_id: int | None, site_id: int | None) -> Screening:
    screening = Screening(
        team_id=user.team_id, person_id=person_id, request_id=request_id, practitioner_id=user.id,
        site_id=site_id, status=ScreeningStatus.DRAFT, sections_saved=[], updated_by_id=user.id,
    )
    session.add(screening)
    session.flush()
    audit.record(session, user, "create_screening", entity="screening", entity_id=screening.id,
                 detail=f"from request {request_id}" if request_id else "from person")
    return screening


# --- reading ----------------------------------------------------------------------------------


def _load(session: Session, user: User, screening_id: int) -> Screening:
    # A missing id and another team's read the same and are audited the same (services/permissions.py).
    return require_team_record(user, session.get(Screening, screening_id), entity="screening",
                               entity_id=screening_id)


def get_screening(session: Session, user: User, screening_id: int) -> ScreeningView:
    require(user, Permission.SCREEN)
    return _view(session, _load(session, user, screening_id))


def record_view(session: Session, user: User, screening_id: int, *, action: str = "view_screening") -> None:
    """Audit that the user opened this screening (the page calls it once per browser session)."""
    require(user, Permission.SCREEN)
    screening = _load(session, user, screening_id)
    audit.record(session, user, action, entity="screening", entity_id=screening.id)


def _view(session: Session, screening: Screening) -> ScreeningView:
    person = session.get(Person, screening.person_id)
    request = session.get(Request, screening.request_id) if screening.request_id else None
    site = session.get(Site, screening.site_id) if screening.site_id else None
    practitioner = session.get(User, screening.practitioner_id)
    results = _results(session, screening.id)
    referrals = list(session.exec(
        sqlmodel_select(OnwardReferral).where(OnwardReferral.screening_id == screening.id)
        .order_by(OnwardReferral.referred_on, OnwardReferral.id)
    ).all())
    return ScreeningView(
        screening=screening,
        person=person,
        request=request,
        site_name=site.name if site else "",
        practitioner_name=practitioner.full_name if practitioner else "",
        vulnerability_codes=_vulnerability_codes(session, screening.id),
        results=results,
        referrals=referrals,
        amendments=_amendments(session, screening.id),
        age=age_at_screening(person, screening.screened_at or clock.now()),  # undated: the form starts at now
        risk_flags=risk_flags(results),
    )


def _results(session: Session, screening_id: int) -> dict[str, InstrumentResult]:
    rows = session.exec(sqlmodel_select(InstrumentResult).where(InstrumentResult.screening_id == screening_id))
    return {row.instrument: row for row in rows.all()}


def _vulnerability_codes(session: Session, screening_id: int) -> list[str]:
    query = (sqlmodel_select(ScreeningVulnerability.code)
             .where(ScreeningVulnerability.screening_id == screening_id).order_by(ScreeningVulnerability.id))
    return list(session.exec(query).all())


def _amendments(session: Session, screening_id: int) -> list[AmendmentRow]:
    query = (
        sqlmodel_select(ScreeningAmendment, User.full_name)
        .join(User, User.id == ScreeningAmendment.amended_by_id)
        .where(ScreeningAmendment.screening_id == screening_id)
        .order_by(ScreeningAmendment.amended_at, ScreeningAmendment.id)
    )
    rows = session.exec(query).all()
    if not rows:
        return []
    names = {
        "site_id": {str(site_id): name for site_id, name in session.exec(sqlmodel_select(Site.id, Site.name))},
        "vulnerabilities": code_lists.labels(session, CodeList.VULNERABILITY),
    }
    return [
        AmendmentRow(amendment.amended_at, name, amendment.reason, _describe_changes(amendment.changes, names))
        for amendment, name in rows
    ]


# Stored codes shown by their labels in the amendment history.
FIELD_CODES: dict[str, type] = {
    "contact_mechanism": ContactMechanism, "attendance": AttendanceCode, "consent_to_screening": ConsentStatus,
    "consent_to_share": ConsentStatus,
    "learning_disability_status": DiagnosisStatus, "autism_status": DiagnosisStatus, "risk_to_self": RiskLevel,
    "risk_to_others": RiskLevel, "risk_from_others": RiskLevel, "outcome": ScreeningOutcome,
}


def _describe_changes(changes: dict, names: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    def shown(name: str, value: Any) -> str:
        if name in FIELD_CODES and isinstance(value, str):
            return FIELD_CODES[name].label_of(value)
        if name in names and value is not None:
            values = value if isinstance(value, list) else [value]
            return ", ".join(names[name].get(str(item), str(item)) for item in values) or "—"
        return _as_text(value)

    return [(label(name), shown(name, change.get("before")), shown(name, change.get("after")))
            for name, change in changes.items()]


def _as_text(value: Any) -> str:
    """A stored before-or-after value in words: ISO times as London dd/mm/yyyy HH:MM, dates as dd/mm/yyyy."""
    if value is None or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if len(value) >= 10 and value[4] == "-" else None
        except ValueError:
            parsed = None
        if parsed is not None and len(value) == 10:
            return clock.format_date(parsed.date())
        if parsed is not None and parsed.tzinfo is not None:
            return clock.format_datetime(parsed)
        return value
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_as_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def age_at_screening(person: Person | None, screened_at: datetime | None) -> int | None:
    if person is None or person.date_of_birth is None or screened_at is None:
        return None
    on = clock.to_london(screened_at).date()
    if on < person.date_of_birth:
        return None
    return check.age_on(person.date_of_birth, on)


def risk_flags(results: Mapping[str, InstrumentResult]) -> list[str]:
    """Flags raised on the screening whatever the totals: PHQ-9 item 9 above 0."""
    phq9 = results.get(instruments.PHQ9.code)
    return [instruments.FLAG_SELF_HARM] if phq9 and instruments.FLAG_SELF_HARM in (phq9.flags or []) else []


def form_values(view: ScreeningView) -> dict[str, Any]:
    """The values each field of the form starts with, from the saved draft (London date and time).

    A screening not yet dated starts at the current London minute, which is never in the future.
    """
    screening = view.screening
    screened = clock.to_london(screening.screened_at or clock.now())
    shared = clock.to_london(screening.shared_at) if screening.shared_at else None
    values: dict[str, Any] = {name: getattr(screening, name) for name in FIELD_LABELS if hasattr(screening, name)}
    values.pop("screened_at")
    values.pop("shared_at")
    values.update(
        screened_on=screened.date(),
        screened_time=screened.time().replace(second=0, microsecond=0),
        screened_fold=_fold(screened),
        shared_on=shared.date() if shared else None,
        shared_time=shared.time().replace(second=0, microsecond=0) if shared else None,
        shared_fold=_fold(shared),
        vulnerabilities=list(view.vulnerability_codes),
    )
    return values


def _fold(london: datetime | None) -> int | None:
    """Which reading of a twice-happening autumn hour a stored time is (None for every other time)."""
    if london is None or not clock.happens_twice(london.date(), london.time().replace(tzinfo=None)):
        return None
    return london.fold


# --- saving sections --------------------------------------------------------------------------


def _editable(session: Session, user: User, screening_id: int, version: int) -> Screening:
    screening = _load(session, user, screening_id)
    check_version(session, screening, version)
    return screening


def check_version(session: Session, screening: Screening | OnwardReferral, version: int) -> None:
    if screening.version != version:
        raise _conflict(session, screening)


def _conflict(session: Session, row) -> Conflict:
    changed_by = session.get(User, row.updated_by_id) if row.updated_by_id else None
    return Conflict(changed_by.full_name if changed_by else "another user", row.updated_at)


def flush_or_conflict(session: Session, row) -> None:
    """Flush now, so that a save racing another one is refused here as a Conflict."""
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        session.refresh(row)
        raise _conflict(session, row) from None


def _amendment_reason(screening: Screening, reason: str | None, errors: dict[str, str]) -> str | None:
    if screening.status != ScreeningStatus.COMPLETE:
        return None
    try:
        value = check.free_text(reason, "amendment_reason", NOTE_LIMIT)
    except check.FieldError as error:
        errors["amendment_reason"] = error.message
        return None
    if not value:
        errors["amendment_reason"] = ("This screening is complete: give a reason for the change. "
                                      "The previous values are kept in its amendment history.")
    return value or None


def _text(errors: dict[str, str], value: str | None, name: str, limit: int, required: bool = False) -> str | None:
    try:
        return check.free_text(value, name, limit, required=required) or None
    except check.FieldError as error:
        errors[name] = error.message.replace(_default_label(name), label(name), 1)
        return None


def _default_label(name: str) -> str:
    """How models.validators names a field in its messages ("risk_to_self_note" → "Risk to self note")."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _code(errors: dict[str, str], value: str | None, name: str, codes: type) -> str | None:
    if value in (None, ""):
        return None
    if value not in codes.choices():
        errors[name] = f"{label(name)}: choose one of the listed answers."
        return None
    return value


def _london(on: date | None, at: time | None, name: str, errors: dict[str, str], fold: int | None = None
            ) -> datetime | None:
    """A typed London date and time as UTC: refused when it did not happen; `fold` says which autumn reading."""
    if on is None and at is None:
        return None
    if on is None or at is None:
        errors[name] = f"{label(name)}: enter both the date (dd/mm/yyyy) and the 24-hour time."
        return None
    try:
        return clock.typed_in_london(on, at, fold)
    except clock.NotALondonTime as problem:
        errors[name] = f"{label(name)}: {problem}"
        return None


def _snapshot(screening: Screening, names: list[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(screening, name)) for name in names}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _write_section(
    session: Session, user: User, screening: Screening, section: str, values: dict[str, Any], reason: str | None,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
) -> Screening:
    """Apply a checked section; on a completed screening, record the amendment (or refuse it)."""
    before = dict(before or {}) | _snapshot(screening, list(values))
    for name, value in values.items():
        setattr(screening, name, value)
    after = dict(after or {}) | _snapshot(screening, list(values))
    changes = {name: {"before": before.get(name), "after": after[name]}
               for name in after if before.get(name) != after[name]}
    now = clock.now()
    screening.updated_at = now
    screening.updated_by_id = user.id
    saved = set(screening.sections_saved or []) | {section}
    screening.sections_saved = [name for name in SECTIONS if name in saved]
    session.add(screening)
    if screening.status == ScreeningStatus.COMPLETE:
        if not changes:
            raise InputErrors({"amendment_reason": "Nothing in this section has changed, so there is nothing to "
                                                   "amend."})
        flush_or_conflict(session, screening)
        problems = completion_problems(session, screening)
        if problems:
            raise CompletionRefused(problems)
        session.add(ScreeningAmendment(screening_id=screening.id, amended_at=now, amended_by_id=user.id,
                                       reason=reason, changes=changes))
        action, detail = "amend_screening", f"{section}: {', '.join(changes)}"
    else:
        action, detail = "save_screening_section", section
    flush_or_conflict(session, screening)
    audit.record(session, user, action, entity="screening", entity_id=screening.id, detail=detail)
    return screening


def save_person_and_context(
    session: Session, user: User, screening_id: int, version: int, data: PersonAndContext,
    amendment_reason: str | None = None,
) -> Screening:
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    values: dict[str, Any] = {}
    if data.site_id is not None:
        site = session.get(Site, data.site_id)
        if site is None or site.team_id != screening.team_id or (not site.active and data.site_id != screening.site_id):
            errors["site_id"] = "Choose one of your team's sites."
    values["site_id"] = data.site_id
    screened_at = _london(data.screened_on, data.screened_time, "screened_at", errors, data.screened_fold)
    if screened_at is not None:
        _check_screened_at(session, screening, screened_at, errors)
    values["screened_at"] = screened_at
    values["contact_mechanism"] = _code(errors, data.contact_mechanism, "contact_mechanism", ContactMechanism)
    values["attendance"] = _code(errors, data.attendance, "attendance", AttendanceCode)
    values["custody_or_court_details"] = _text(errors, data.custody_or_court_details, "custody_or_court_details",
                                               NOTE_LIMIT)
    aa_reason = _text(errors, data.appropriate_adult_reason, "appropriate_adult_reason", NOTE_LIMIT)
    person = session.get(Person, screening.person_id)
    age = age_at_screening(person, screened_at) if "screened_at" not in errors else None
    required = bool(data.appropriate_adult_required)
    if age is not None and age < ADULT_AGE:
        required = True  # PACE Code C: always for under-18s; it cannot be unset
    elif required and not aa_reason and "appropriate_adult_reason" not in errors:
        errors["appropriate_adult_reason"] = ("For an adult, say why an appropriate adult is required "
                                              "(for example a learning disability or mental disorder).")
    values["appropriate_adult_required"] = required
    values["appropriate_adult_reason"] = aa_reason
    if errors:
        raise InputErrors(errors)
    return _write_section(session, user, screening, PERSON_AND_CONTEXT, values, reason)


def _check_screened_at(
    session: Session, screening: Screening, screened_at: datetime, errors: dict[str, str], with_referrals: bool = True,
) -> None:
    now = clock.now()
    if screened_at > now:
        errors["screened_at"] = (f"The screening cannot be in the future: it is now {clock.format_datetime(now)} "
                                 f"and you entered {clock.format_datetime(screened_at)}.")
        return
    request = session.get(Request, screening.request_id) if screening.request_id else None
    if request is not None and screened_at < request.received_at:
        errors["screened_at"] = (f"The screening cannot be before the request was received "
                                 f"({clock.format_datetime(request.received_at)}); check the date and time.")
        return
    person = session.get(Person, screening.person_id)
    on = clock.to_london(screened_at).date()
    if person is not None and person.date_of_birth is not None:
        if on < person.date_of_birth:
            errors["screened_at"] = (f"The screening date {clock.format_date(on)} is before the person's date "
                                     f"of birth ({clock.format_date(person.date_of_birth)}); check the date.")
            return
        try:
            check.require_minimum_age(person.date_of_birth, on, field="screened_at")
        except check.FieldError as error:
            errors["screened_at"] = (f"{error.message} If the date of birth is wrong, correct it on the "
                                     "person's record first.")
            return
    if not with_referrals:
        return
    earliest_referral = min((referral.referred_on for referral in _referrals(session, screening.id)), default=None)
    if earliest_referral is not None and earliest_referral < on:
        errors["screened_at"] = (f"An onward referral is dated {clock.format_date(earliest_referral)}, before "
                                 "this screening date; a referral cannot be made before the screening.")


def _referrals(session: Session, screening_id: int) -> list[OnwardReferral]:
    return list(session.exec(sqlmodel_select(OnwardReferral).where(OnwardReferral.screening_id == screening_id)))


def save_consent(
    session: Session, user: User, screening_id: int, version: int, data: Consent,
    amendment_reason: str | None = None,
) -> Screening:
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    values = {
        "consent_to_screening": _code(errors, data.consent_to_screening, "consent_to_screening", ConsentStatus),
        "consent_to_share": _code(errors, data.consent_to_share, "consent_to_share", ConsentStatus),
        "capacity_decided_by": _text(errors, data.capacity_decided_by, "capacity_decided_by",
                                     CAPACITY_DECIDED_BY_LIMIT),
        "capacity_reason": _text(errors, data.capacity_reason, "capacity_reason", NOTE_LIMIT),
    }
    if ConsentStatus.LACKS_CAPACITY in (values["consent_to_screening"], values["consent_to_share"]):
        for name, message in (("capacity_decided_by", "Say who decided the person lacks capacity."),
                              ("capacity_reason", "Say why the person lacks capacity for this decision.")):
            if not values[name] and name not in errors:
                errors[name] = message
    if values["consent_to_share"] != ConsentStatus.GIVEN and _sharing_recorded(screening) \
            and "consent_to_share" not in errors:
        errors["consent_to_share"] = ("Information is recorded as shared in the outcome section. Without consent to "
                                      "share nothing may be marked as shared: remove the sharing record first.")
    if errors:
        raise InputErrors(errors)
    return _write_section(session, user, screening, CONSENT, values, reason)


def _sharing_recorded(screening: Screening) -> bool:
    return any(getattr(screening, name) for name in SHARING_FIELDS)


def save_vulnerabilities(
    session: Session, user: User, screening_id: int, version: int, data: Vulnerabilities,
    amendment_reason: str | None = None,
) -> Screening:
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    current = _vulnerability_codes(session, screening.id)
    chosen = list(dict.fromkeys(data.vulnerabilities or []))
    added = [code for code in chosen if code not in current]
    try:
        # A code withdrawn since it was recorded stays on this screening; new choices must be active.
        code_lists.check_active(session, CodeList.VULNERABILITY, {"vulnerabilities": added})
    except InputErrors as refused:
        errors.update(refused.errors)
    values = {
        "learning_disability_status": _code(errors, data.learning_disability_status, "learning_disability_status",
                                            DiagnosisStatus),
        "autism_status": _code(errors, data.autism_status, "autism_status", DiagnosisStatus),
    }
    if errors:
        raise InputErrors(errors)
    for row in session.exec(sqlmodel_select(ScreeningVulnerability)
                            .where(ScreeningVulnerability.screening_id == screening.id)).all():
        if row.code not in chosen:
            session.delete(row)
    for code in added:
        session.add(ScreeningVulnerability(screening_id=screening.id, code=code))
    return _write_section(session, user, screening, VULNERABILITIES, values, reason,
                          before={"vulnerabilities": sorted(current)}, after={"vulnerabilities": sorted(chosen)})


# --- instruments ------------------------------------------------------------------------------


def merged_audit_answers(data: Instruments) -> dict[str, int | None] | None:
    """The full AUDIT's answers, questions 1 to 3 taken from AUDIT-C; None when AUDIT was not started.

    AUDIT-C is AUDIT questions 1 to 3, so they are asked once (in AUDIT-C) and carried over.
    """
    audit_answers = data.scored.get(instruments.AUDIT.code)
    if audit_answers is None:
        return None
    own = {key: value for key, value in audit_answers.answers.items() if value is not None}
    auditc = data.scored.get(instruments.AUDIT_C.code)
    if not own and not audit_answers.not_completed:
        return None
    merged: dict[str, int | None] = dict(audit_answers.answers)
    if auditc is not None:
        for key, value in auditc.answers.items():
            if merged.get(key) is None:
                merged[key] = value
    return merged


def preview_scores(data: Instruments) -> dict[str, instruments.Score]:
    """Scores of what has been answered so far (for live display); instruments not started are left out."""
    scores, _errors = _score_all(data)
    return scores


def _score_all(data: Instruments) -> tuple[dict[str, instruments.Score], dict[str, str]]:
    scores: dict[str, instruments.Score] = {}
    errors: dict[str, str] = {}
    for code, given in data.scored.items():
        if code not in instruments.INSTRUMENTS:
            errors[code] = f"{code} is not an instrument this form scores."
            continue
        answers = merged_audit_answers(data) if code == instruments.AUDIT.code else given.answers
        if answers is None or (not any(value is not None for value in answers.values()) and not given.not_completed):
            continue
        try:
            scores[code] = instruments.score(code, answers, screener_refers=given.screener_refers)
        except ValueError as error:
            errors[code] = str(error)
    auditc, full = data.scored.get(instruments.AUDIT_C.code), data.scored.get(instruments.AUDIT.code)
    if auditc and full:
        for key, value in full.answers.items():
            if value is not None and auditc.answers.get(key) is not None and auditc.answers[key] != value:
                errors[instruments.AUDIT.code] = ("AUDIT questions 1 to 3 are the AUDIT-C questions and were "
                                                  "answered differently; answer them once, in AUDIT-C.")
    return scores, errors


def save_instruments(
    session: Session, user: User, screening_id: int, version: int, data: Instruments,
    amendment_reason: str | None = None,
) -> Screening:
    """Store every item answer, the total, the band, the flags and the scoring version of each instrument.

    An instrument partly answered is kept as it is in a draft; completion refuses it unless it is
    marked "not completed" with a reason. An instrument with no answers and no such mark is removed.
    """
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    scores, score_errors = _score_all(data)
    errors.update(score_errors)
    reasons: dict[str, str | None] = {}
    for code, given in data.scored.items():
        if code not in scores:
            continue
        reason_field = f"{code}_not_completed_reason"
        reasons[code] = _text(errors, given.not_completed_reason, reason_field, NOTE_LIMIT) if given.not_completed \
            else None
        if given.not_completed and reason_field not in errors:
            if scores[code].complete:
                errors[reason_field] = (f"{label(code)} has every question answered; untick "
                                        "\"not completed\" or clear the answers.")
            elif not reasons[code]:
                errors[reason_field] = f"Say why {label(code)} was not completed."
    results: dict[str, str] = {}
    for code, result in data.proprietary.items():
        if code not in instruments.PROPRIETARY_RESULTS:
            errors[code] = f"{code} is not a tool this form records."
        elif result not in (None, ""):
            if result not in instruments.PROPRIETARY_RESULTS[code]:
                errors[code] = f"{label(code)}: choose one of the listed results."
            else:
                results[code] = result
    if errors:
        raise InputErrors(errors)
    existing = _results(session, screening.id)
    before = {code: _result_summary(row) for code, row in existing.items()}
    now = clock.now()
    for code, row in existing.items():
        if code not in scores and code not in results:
            session.delete(row)
    for code, score in scores.items():
        row = existing.get(code) or InstrumentResult(screening_id=screening.id, instrument=code, scoring_version="")
        row.scoring_version = score.version
        row.answers = dict(score.answers)
        row.total = score.total
        row.band = score.band
        row.flags = list(score.flags)
        row.complete = score.complete
        row.answered = score.answered
        row.result = None
        row.not_completed_reason = reasons.get(code)
        row.updated_at, row.updated_by_id = now, user.id
        session.add(row)
    for code, result in results.items():
        row = existing.get(code) or InstrumentResult(screening_id=screening.id, instrument=code, scoring_version="")
        row.scoring_version, row.result, row.complete = PROPRIETARY_VERSION, result, True
        row.answers, row.total, row.band, row.flags, row.not_completed_reason = {}, None, None, [], None
        row.answered = None
        row.updated_at, row.updated_by_id = now, user.id
        session.add(row)
    session.flush()
    after = {code: _result_summary(row) for code, row in _results(session, screening.id).items()}
    names = sorted(set(before) | set(after))
    return _write_section(session, user, screening, INSTRUMENTS, {}, reason,
                          before={code: before.get(code) for code in names},
                          after={code: after.get(code) for code in names})


def _result_summary(row: InstrumentResult) -> dict[str, Any]:
    if row.result is not None:
        return {"result": row.result}
    summary: dict[str, Any] = {"answers": dict(row.answers or {}), "total": row.total, "band": row.band}
    if row.not_completed_reason:
        summary["not completed"] = row.not_completed_reason
    return summary


# --- risk and outcome -------------------------------------------------------------------------


def save_risk(
    session: Session, user: User, screening_id: int, version: int, data: Risk, amendment_reason: str | None = None,
) -> Screening:
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    values: dict[str, Any] = {}
    for name in RISK_FIELDS:
        values[name] = _code(errors, getattr(data, name), name, RiskLevel)
        note = f"{name}_note"
        values[note] = _text(errors, getattr(data, note), note, NOTE_LIMIT)
        if values[name] in (RiskLevel.MEDIUM, RiskLevel.HIGH) and not values[note] and note not in errors:
            errors[note] = (f"{label(name)} is {RiskLevel.label_of(values[name]).lower()}: a note is required "
                            "saying what the risk is and what is being done about it.")
    if errors:
        raise InputErrors(errors)
    return _write_section(session, user, screening, RISK, values, reason)


def save_outcome(
    session: Session, user: User, screening_id: int, version: int, data: Outcome,
    amendment_reason: str | None = None,
) -> Screening:
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    errors: dict[str, str] = {}
    reason = _amendment_reason(screening, amendment_reason, errors)
    values: dict[str, Any] = {
        "outcome": _code(errors, data.outcome, "outcome", ScreeningOutcome),
        "recommendation_fitness_for_interview": _text(errors, data.recommendation_fitness_for_interview,
                                                      "recommendation_fitness_for_interview", RECOMMENDATION_LIMIT),
        "recommendation_appropriate_adult": _text(errors, data.recommendation_appropriate_adult,
                                                  "recommendation_appropriate_adult", RECOMMENDATION_LIMIT),
        "recommendation_adjustments": _text(errors, data.recommendation_adjustments, "recommendation_adjustments",
                                            RECOMMENDATION_LIMIT),
        "shared_with": _text(errors, data.shared_with, "shared_with", SHARED_WITH_LIMIT),
        "shared_what": _text(errors, data.shared_what, "shared_what", NOTE_LIMIT),
        "shared_at": _london(data.shared_on, data.shared_time, "shared_at", errors, data.shared_fold),
    }
    sharing = [name for name in SHARING_FIELDS if values[name] is not None]
    if sharing and screening.consent_to_share != ConsentStatus.GIVEN:
        errors["shared_with"] = ("Sharing cannot be recorded: the consent section does not record consent to "
                                 "share. Record consent first, or leave the sharing fields empty.")
    elif values["shared_at"] is not None:
        errors.update(_sharing_time_problems(screening, values["shared_at"]))
    if errors:
        raise InputErrors(errors)
    return _write_section(session, user, screening, OUTCOME, values, reason)


def _sharing_time_problems(screening: Screening, shared_at: datetime) -> dict[str, str]:
    if shared_at > clock.now():
        return {"shared_at": "Information cannot have been shared in the future; check the date and time."}
    if screening.screened_at is not None and shared_at < screening.screened_at:
        return {"shared_at": (f"Information cannot have been shared before the screening "
                              f"({clock.format_datetime(screening.screened_at)}).")}
    return {}


# The input each form section sends and the operation saving it; the fields are the form's keys.
SECTION_FORMS: dict[str, tuple[type, Any]] = {
    PERSON_AND_CONTEXT: (PersonAndContext, save_person_and_context),
    CONSENT: (Consent, save_consent),
    VULNERABILITIES: (Vulnerabilities, save_vulnerabilities),
    RISK: (Risk, save_risk),
    OUTCOME: (Outcome, save_outcome),
}


def section_input(section: str, values: Mapping[str, Any]):
    """The section's input built from form values keyed by its field names (missing ones left empty)."""
    kind = SECTION_FORMS[section][0]
    return kind(**{name: values[name] for name in kind.__dataclass_fields__ if name in values})


# --- completion -------------------------------------------------------------------------------


def completion_problems(session: Session, screening: Screening) -> dict[str, dict[str, str]]:
    """Every reason the screening cannot be complete, by section then field; empty when it can."""
    problems: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    saved = set(screening.sections_saved or [])
    for section in REQUIRED_SECTIONS:
        if section not in saved:
            problems[section]["section"] = f"{SECTIONS[section]} has not been saved yet."
    _context_problems(session, screening, problems[PERSON_AND_CONTEXT])
    _consent_problems(screening, problems[CONSENT])
    for name in ("learning_disability_status", "autism_status"):
        if VULNERABILITIES in saved and not getattr(screening, name):
            problems[VULNERABILITIES][name] = f"{label(name)} is required (choose \"Not recorded\" if not asked)."
    results = _results(session, screening.id)
    _instrument_problems(screening, results, problems[INSTRUMENTS])
    _risk_problems(screening, results, problems[RISK])
    _outcome_problems(screening, problems[OUTCOME])
    _referral_problems(session, screening, problems[REFERRALS])
    return {section: found for section, found in problems.items() if found}


def _context_problems(session: Session, screening: Screening, found: dict[str, str]) -> None:
    for name in ("screened_at", "site_id", "contact_mechanism"):
        if getattr(screening, name) is None:
            found[name] = f"{label(name)} is required."
    if screening.screened_at is not None:
        _check_screened_at(session, screening, screening.screened_at, found, with_referrals=False)
    age = age_at_screening(session.get(Person, screening.person_id), screening.screened_at)
    if age is not None and age < ADULT_AGE and not screening.appropriate_adult_required:
        found["appropriate_adult_required"] = (f"The person was {age} on the screening date: an appropriate adult is "
                                               "required. Save this section again.")
    if (age is None or age >= ADULT_AGE) and screening.appropriate_adult_required \
            and not screening.appropriate_adult_reason:
        found["appropriate_adult_reason"] = "Say why an appropriate adult is required for this adult."


def _consent_problems(screening: Screening, found: dict[str, str]) -> None:
    for name in ("consent_to_screening", "consent_to_share"):
        if getattr(screening, name) is None:
            found[name] = f"{label(name)} is required."
    if ConsentStatus.LACKS_CAPACITY in (screening.consent_to_screening, screening.consent_to_share):
        for name in ("capacity_decided_by", "capacity_reason"):
            if not getattr(screening, name):
                found[name] = f"{label(name)} is required when the person lacks capacity."


def _instrument_problems(screening: Screening, results: dict[str, InstrumentResult], found: dict[str, str]) -> None:
    for code, row in results.items():
        if row.result is None and not row.complete and not row.not_completed_reason:
            answered = len(row.answers or {})
            expected = len(instruments.INSTRUMENTS[code].items)
            found[code] = (f"{label(code)} is partly answered ({answered} of {expected}): answer every question, or "
                           "mark it \"not completed\" with a reason.")
    auditc = results.get(instruments.AUDIT_C.code)
    if auditc and instruments.FLAG_FULL_AUDIT in (auditc.flags or []) and instruments.AUDIT.code not in results:
        found[instruments.AUDIT.code] = ("AUDIT-C is 5 or more: ask the remaining seven AUDIT questions, or mark the "
                                         "full AUDIT \"not completed\" with a reason.")
    declined = screening.consent_to_screening == ConsentStatus.DECLINED
    if declined and any(row.answers for row in results.values()):
        found["instruments"] = ("The person declined screening, but instrument answers are recorded: remove them "
                                "or correct the consent.")


def _risk_problems(screening: Screening, results: dict[str, InstrumentResult], found: dict[str, str]) -> None:
    for name in RISK_FIELDS:
        level = getattr(screening, name)
        if level is None:
            found[name] = f"{label(name)} is required."
        elif level in (RiskLevel.MEDIUM, RiskLevel.HIGH) and not getattr(screening, f"{name}_note"):
            found[f"{name}_note"] = f"{label(name)} is {RiskLevel.label_of(level).lower()}: a note is required."
    if risk_flags(results) and not screening.risk_to_self_note:
        found["risk_to_self_note"] = ("PHQ-9 question 9 (thoughts of self-harm or being better off dead) was "
                                      "answered above \"not at all\": record your assessment of the risk to self.")


def _outcome_problems(screening: Screening, found: dict[str, str]) -> None:
    if screening.outcome is None:
        found["outcome"] = "Outcome is required."
    recorded = [name for name in SHARING_FIELDS if getattr(screening, name)]
    if recorded and screening.consent_to_share != ConsentStatus.GIVEN:
        found["shared_with"] = "Sharing is recorded without consent to share: remove it or correct the consent."
    elif recorded and len(recorded) < len(SHARING_FIELDS):
        missing = [label(name).lower() for name in SHARING_FIELDS if name not in recorded]
        found[next(name for name in SHARING_FIELDS if name not in recorded)] = (
            f"Sharing is partly recorded: also give {' and '.join(missing)}.")
    if screening.shared_at is not None:
        found.update(_sharing_time_problems(screening, screening.shared_at))


def _referral_problems(session: Session, screening: Screening, found: dict[str, str]) -> None:
    referrals = _referrals(session, screening.id)
    if screening.outcome == ScreeningOutcome.ONWARD_REFERRAL and not referrals:
        found["referrals"] = "The outcome is onward referral: add at least one referral."
    if screening.screened_at is not None:
        on = clock.to_london(screening.screened_at).date()
        early = [referral for referral in referrals if referral.referred_on < on]
        if early:
            found["referrals"] = (f"A referral is dated {clock.format_date(early[0].referred_on)}, before the "
                                  f"screening ({clock.format_date(on)}).")


def complete(session: Session, user: User, screening_id: int, version: int) -> Screening:
    """Complete a draft, or refuse with every problem at once (CompletionRefused); nothing is lost either way."""
    require(user, Permission.SCREEN)
    screening = _editable(session, user, screening_id, version)
    if screening.status == ScreeningStatus.COMPLETE:
        raise InputErrors({"screening": "This screening is already complete."})
    problems = completion_problems(session, screening)
    if problems:
        raise CompletionRefused(problems)
    now = clock.now()
    screening.status = ScreeningStatus.COMPLETE
    screening.completed_at = now
    screening.updated_at, screening.updated_by_id = now, user.id
    session.add(screening)
    person = session.get(Person, screening.person_id)
    contact_day = clock.to_london(screening.screened_at).date()
    if person.last_contact_on is None or person.last_contact_on < contact_day:
        person.last_contact_on = contact_day  # retention runs from the last contact
        session.add(person)
    flush_or_conflict(session, screening)
    audit.record(session, user, "complete_screening", entity="screening", entity_id=screening.id)
    return screening


# --- the summary for sharing -----------------------------------------------------------------


@dataclass(frozen=True)
class SharingSummary:
    """What may leave the team: recommendations always; health information only with consent to share."""

    screening_id: int
    complete: bool
    consent_to_share: bool
    person_name: str
    date_of_birth: date | None
    screened_at: datetime | None
    site_name: str
    practitioner_name: str
    appropriate_adult_required: bool
    recommendations: list[tuple[str, str]]
    # Only with consent to share; empty otherwise.
    outcome: str = ""
    vulnerabilities: list[str] = field(default_factory=list)
    risks: list[tuple[str, str]] = field(default_factory=list)
    instrument_results: list[tuple[str, str]] = field(default_factory=list)
    referrals: list[tuple[str, date, str]] = field(default_factory=list)
    shared: tuple[str, datetime | None, str] | None = None


RECOMMENDATION_FIELDS = ("recommendation_fitness_for_interview", "recommendation_appropriate_adult",
                         "recommendation_adjustments")


def sharing_summary(session: Session, user: User, screening_id: int) -> SharingSummary:
    """The printable summary; opening it is audited ("view_screening_summary").

    Risk notes, capacity reasons, instrument answers and custody details never appear: the
    summary carries the minimum a custody suite or court needs.
    """
    require(user, Permission.SCREEN)
    found = _view(session, _load(session, user, screening_id))
    screening = found.screening
    audit.record(session, user, "view_screening_summary", entity="screening", entity_id=screening.id)
    consent = screening.consent_to_share == ConsentStatus.GIVEN
    summary = SharingSummary(
        screening_id=screening.id,
        complete=found.complete,
        consent_to_share=consent,
        person_name=f"{found.person.given_name} {found.person.family_name}",
        date_of_birth=found.person.date_of_birth,
        screened_at=screening.screened_at,
        site_name=found.site_name,
        practitioner_name=found.practitioner_name,
        appropriate_adult_required=screening.appropriate_adult_required,
        recommendations=[(label(name), getattr(screening, name)) for name in RECOMMENDATION_FIELDS
                         if getattr(screening, name)],
    )
    if not consent:
        return summary
    vulnerability_labels = code_lists.labels(session, CodeList.VULNERABILITY)
    service_labels = code_lists.labels(session, CodeList.ONWARD_SERVICE)
    return SharingSummary(
        **{name: getattr(summary, name) for name in summary.__dataclass_fields__ if name not in (
            "outcome", "vulnerabilities", "risks", "instrument_results", "referrals", "shared")},
        outcome=ScreeningOutcome.label_of(screening.outcome),
        vulnerabilities=[vulnerability_labels.get(code, code) for code in found.vulnerability_codes],
        risks=[(label(name), RiskLevel.label_of(getattr(screening, name))) for name in RISK_FIELDS
               if getattr(screening, name)],
        instrument_results=[(label(code), row.result or row.band or "not completed")
                            for code, row in sorted(found.results.items())],
        referrals=[(service_labels.get(row.service, row.service), row.referred_on,
                    ReferralStatus.label_of(row.status)) for row in found.referrals],
        shared=(screening.shared_with, screening.shared_at, screening.shared_what or "")
        if screening.shared_with else None,
    )


# --- starting points and lists ----------------------------------------------------------------


@dataclass(frozen=True)
class WaitingRequest:
    request_id: int
    reference: str
    person: str
    received_at: datetime

    @property
    def label(self) -> str:
        return f"{self.reference} · {self.person} · received {clock.format_datetime(self.received_at)}"


def requests_awaiting_screening(session: Session, user: User, limit: int = 50) -> list[WaitingRequest]:
    """The team's open requests with a person and no screening yet, oldest first."""
    require(user, Permission.SCREEN)
    screened = exists().where(Screening.request_id == Request.id)
    query = (
        select(Request.id, Request.reference, Person.given_name, Person.family_name, Request.received_at)
        .join(Person, Person.id == Request.person_id)
        .where(Request.team_id == user.team_id, Request.status.in_(OPEN_REQUEST_STATUSES), ~screened)
        .order_by(Request.received_at, Request.id)
        .limit(limit)
    )
    return [WaitingRequest(row.id, row.reference or f"#{row.id}", f"{row.given_name} {row.family_name}",
                           row.received_at) for row in session.execute(query)]


@dataclass(frozen=True)
class ListColumn:
    """One column of a list: `kind` uses the export's column kinds (services.workbook.ColumnKind values)."""

    key: str
    heading: str
    kind: str


@dataclass(frozen=True)
class ListQuery:
    """A Core select whose result columns are labelled with the keys of `columns`, in that order."""

    statement: Select
    columns: tuple[ListColumn, ...]


@dataclass(frozen=True)
class ScreeningFilters:
    status: str | None = None
    site_id: int | None = None
    practitioner_id: int | None = None
    person_id: int | None = None
    outcome: str | None = None
    screened_from: date | None = None  # London dates, inclusive
    screened_to: date | None = None

    def described(self) -> dict[str, str]:
        """The filters in words, for an export's About sheet."""
        return {name: clock.format_date(value) if isinstance(value, date) else str(value)
                for name, value in self.__dict__.items() if value is not None}


SCREENING_COLUMNS: tuple[ListColumn, ...] = (
    ListColumn("screening_id", "Screening", "identifier"),
    ListColumn("request_reference", "Request", "identifier"),
    ListColumn("given_name", "Given name", "text"),
    ListColumn("family_name", "Family name", "text"),
    ListColumn("date_of_birth", "Date of birth", "date"),
    ListColumn("screened_at", "Screened at", "datetime"),
    ListColumn("site", "Site", "text"),
    ListColumn("practitioner", "Practitioner", "text"),
    ListColumn("status", "Status", "text"),
    ListColumn("appropriate_adult_required", "Appropriate adult required", "yes_no"),
    ListColumn("consent_to_share", "Consent to share", "text"),
    ListColumn("vulnerability_count", "Number of vulnerabilities", "number"),
    ListColumn("vulnerabilities", "Vulnerabilities", "text"),
    ListColumn("phq9_total", "PHQ-9 total", "score"),
    ListColumn("phq9_band", "PHQ-9 band", "text"),
    ListColumn("gad7_total", "GAD-7 total", "score"),
    ListColumn("gad7_band", "GAD-7 band", "text"),
    ListColumn("auditc_total", "AUDIT-C total", "score"),
    ListColumn("auditc_band", "AUDIT-C band", "text"),
    ListColumn("audit_total", "AUDIT total", "score"),
    ListColumn("audit_band", "AUDIT band", "text"),
    ListColumn("bjmhs_result", "BJMHS result", "text"),
    ListColumn("self_harm_flag", "PHQ-9 item 9 flag", "yes_no"),
    ListColumn("risk_to_self", "Risk to self", "text"),
    ListColumn("risk_to_others", "Risk to others", "text"),
    ListColumn("risk_from_others", "Risk from others", "text"),
    ListColumn("outcome", "Outcome", "text"),
    ListColumn("referral_count", "Onward referrals", "number"),
    ListColumn("completed_at", "Completed at", "datetime"),
)


def _labelled(column, codes: type):
    """A code column shown by its label (the stored code when it is not in the list)."""
    return case({member.value: member.label for member in codes}, value=column, else_=column)


def _instrument_value(column, code: str):
    return (select(column).where(InstrumentResult.screening_id == Screening.id, InstrumentResult.instrument == code)
            .scalar_subquery())


def score_text(code: str) -> ColumnElement:
    """An instrument's total as the list shows it: "18" when every item was answered, "18 (partial, 6 of 9)"
    when not. A partial sum never reads as a total; with `band_text` it carries no band either."""
    expected = len(instruments.INSTRUMENTS[code].items)
    total = cast(InstrumentResult.total, String)
    partial = total + " (partial, " + cast(func.coalesce(InstrumentResult.answered, 0), String) + f" of {expected})"
    return _instrument_value(case((InstrumentResult.complete, total), (InstrumentResult.total.is_not(None), partial)),
                             code)


def band_text(code: str) -> ColumnElement:
    """An instrument's band, only for a total of every item (a partial sum has none)."""
    return _instrument_value(case((InstrumentResult.complete, InstrumentResult.band)), code)


def screenings_query(user: User, filters: ScreeningFilters | None = None) -> ListQuery:
    """The team's screenings as one Core select, newest first: the on-screen list and the export share it.

    Labels for fixed code lists come from SQL CASE; instrument totals and counts are correlated
    subqueries on indexed columns, so no row is loaded as an object.
    """
    if not (has_permission(user, Permission.VIEW_PEOPLE) or has_permission(user, Permission.EXPORT)):
        require(user, Permission.VIEW_PEOPLE)
    filters = filters or ScreeningFilters()
    practitioner = User.__table__.alias("practitioner")
    self_harm = exists().where(
        InstrumentResult.screening_id == Screening.id,
        InstrumentResult.instrument == instruments.PHQ9.code,
        InstrumentResult.answers["item9"].as_integer() > 0,
    )
    statement = (
        select(
            Screening.id.label("screening_id"),
            Request.reference.label("request_reference"),
            Person.given_name.label("given_name"),
            Person.family_name.label("family_name"),
            Person.date_of_birth.label("date_of_birth"),
            Screening.screened_at.label("screened_at"),
            Site.name.label("site"),
            practitioner.c.full_name.label("practitioner"),
            _labelled(Screening.status, ScreeningStatus).label("status"),
            Screening.appropriate_adult_required.label("appropriate_adult_required"),
            _labelled(Screening.consent_to_share, ConsentStatus).label("consent_to_share"),
            select(func.count()).where(ScreeningVulnerability.screening_id == Screening.id)
            .scalar_subquery().label("vulnerability_count"),
            select(func.aggregate_strings(CodeItem.label, "; "))
            .select_from(ScreeningVulnerability)
            .join(CodeItem, (CodeItem.code == ScreeningVulnerability.code)
                  & (CodeItem.list_name == CodeList.VULNERABILITY.value))
            .where(ScreeningVulnerability.screening_id == Screening.id)
            .scalar_subquery().label("vulnerabilities"),
            score_text(instruments.PHQ9.code).label("phq9_total"),
            band_text(instruments.PHQ9.code).label("phq9_band"),
            score_text(instruments.GAD7.code).label("gad7_total"),
            band_text(instruments.GAD7.code).label("gad7_band"),
            score_text(instruments.AUDIT_C.code).label("auditc_total"),
            band_text(instruments.AUDIT_C.code).label("auditc_band"),
            score_text(instruments.AUDIT.code).label("audit_total"),
            band_text(instruments.AUDIT.code).label("audit_band"),
            _instrument_value(InstrumentResult.band, instruments.BJMHS.code).label("bjmhs_result"),
            type_coerce(self_harm, Boolean).label("self_harm_flag"),
            _labelled(Screening.risk_to_self, RiskLevel).label("risk_to_self"),
            _labelled(Screening.risk_to_others, RiskLevel).label("risk_to_others"),
            _labelled(Screening.risk_from_others, RiskLevel).label("risk_from_others"),
            _labelled(Screening.outcome, ScreeningOutcome).label("outcome"),
            select(func.count()).where(OnwardReferral.screening_id == Screening.id)
            .scalar_subquery().label("referral_count"),
            Screening.completed_at.label("completed_at"),
        )
        .select_from(Screening)
        .join(Person, Person.id == Screening.person_id)
        .join(practitioner, practitioner.c.id == Screening.practitioner_id)
        .outerjoin(Request, Request.id == Screening.request_id)
        .outerjoin(Site, Site.id == Screening.site_id)
        .where(Screening.team_id == user.team_id)
    )
    conditions = {
        "status": Screening.status, "site_id": Screening.site_id, "practitioner_id": Screening.practitioner_id,
        "person_id": Screening.person_id, "outcome": Screening.outcome,
    }
    for name, column in conditions.items():
        value = getattr(filters, name)
        if value is not None:
            statement = statement.where(column == value)
    if filters.screened_from is not None:
        statement = statement.where(Screening.screened_at >= clock.from_london(filters.screened_from, time(0)))
    if filters.screened_to is not None:
        day_after = date.fromordinal(filters.screened_to.toordinal() + 1)
        statement = statement.where(Screening.screened_at < clock.from_london(day_after, time(0)))
    statement = statement.order_by(Screening.screened_at.desc().nulls_last(), Screening.id.desc())
    return ListQuery(statement=statement, columns=SCREENING_COLUMNS)


def list_screenings(
    session: Session, user: User, filters: ScreeningFilters | None = None, limit: int = LIST_LIMIT,
) -> list[dict[str, Any]]:
    """The first `limit` rows of `screenings_query`, as dictionaries keyed by column key."""
    query = screenings_query(user, filters)
    return [dict(row) for row in session.execute(query.statement.limit(limit)).mappings()]

