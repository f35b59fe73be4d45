"""The monthly national return (Mental Health Services Data Set, MHSDS) and its data-quality report.

An L&D team run by an NHS mental health provider reports its activity through the MHSDS: the team
is service or team type D02 ("Criminal Justice Liaison and Diversion Service"), a request is a
referral, a screening is a care contact with the person. For a reporting month this builds the
tables the service's records feed, under their national names:

- MHS001MPI (patient index): everyone with a referral, contact or onward referral in the month;
- MHS101Referral and MHS102ServiceTypeReferredTo: every request open at some time in the month
  (received before its end, not closed before its start), the MHSDS's own rule for a month's
  referrals;
- MHS201CareContact: screenings dated in the month;
- MHS105OnwardReferral: onward referrals made in the month;
- MHS606CodedScoreAssessmentRefer: the complete, nationally coded questionnaires of those contacts.

Field names and codes: see the README's "National return" section (what was confirmed where, and
what was not). Nothing here invents a national code: a local code without one is reported blank and
counted as missing by the data-quality report, which points to the records (or the code list) to fix.

**One definition per check.** Each data-quality check is a SQL CASE over its table's select, giving
every record a category (valid, not stated or not known, invalid, missing). The same expression is
counted with GROUP BY for the report and filtered for the list of records to fix, so the two cannot
disagree. The month runs from London midnight to London midnight, through the caseload filters'
own `utc_range` (one definition of a period's boundaries for the caseload, the KPI workbook and
this return).
"""

import csv
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Select, and_, case, cast, func, literal, or_, select, union
from sqlalchemy import Integer as SqlInteger
from sqlmodel import Session

from models import CodeItem, InstrumentResult, OnwardReferral, Person, Request, Screening, Team, User
from models.codes import (
    NATIONAL_CODES,
    AttendanceCode,
    CodeList,
    ContactMechanism,
    DiagnosisStatus,
    EthnicCategory,
    GenderIdentity,
    LabelledCode,
    NhsNumberStatus,
    Urgency,
)
from services import caseload, clock, export
from services.errors import InputErrors, PermissionDenied
from services.permissions import Permission, require
from services.workbook import PROTECTIVE_MARKING, ColumnKind, DataSheet, ExportColumn, write_sheets

RETURN_NAME = "national_return"
TEAM_TYPE = "D02"  # Criminal Justice Liaison and Diversion Service (domain.md)
MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
EARLIEST_YEAR = 2000
ZIP_MIME = "application/zip"

# MHSDS CLINICAL RESPONSE PRIORITY TYPE: 1 emergency, 2 urgent/serious, 3 routine (4 very urgent is
# not a priority this service records).
PRIORITY_CODES = {Urgency.EMERGENCY: "1", Urgency.URGENT: "2", Urgency.ROUTINE: "3"}

# NHS NUMBER STATUS INDICATOR CODE. The hub checks an NHS number's check digit but does not trace it
# with the Personal Demographics Service, so a number held is "02 present but not traced"; a number
# not known or declined still needs a trace ("03"); "04" is a trace attempted with no match.
NHS_NUMBER_STATUS_CODES = {
    NhsNumberStatus.PRESENT: "02",
    NhsNumberStatus.NOT_KNOWN: "03",
    NhsNumberStatus.DECLINED: "03",
    NhsNumberStatus.NOT_TRACED: "04",
}

# SNOMED CT codes for CODED ASSESSMENT TOOL TYPE: the questionnaires' total scores. BJMHS and the
# proprietary tools (result only) have none confirmed, so they are not reported.
ASSESSMENT_TOOL_CODES = {
    "phq9": "720433000",  # Patient Health Questionnaire Nine Item score
    "gad7": "445455005",  # Generalized anxiety disorder 7 item score
    "auditc": "763256006",  # AUDIT-C (Alcohol Use Disorders Identification Test - Consumption) score
    "audit": "443280005",  # Alcohol use disorders identification test score
}

SOURCE_OF_REFERRAL_CODES = NATIONAL_CODES[CodeList.SOURCE_OF_REFERRAL]
REFERRAL_CLOSURE_REASON_CODES = NATIONAL_CODES[CodeList.CLOSURE_REASON]
NOT_STATED_OR_KNOWN = {
    "gender": (GenderIdentity.NOT_KNOWN, GenderIdentity.NOT_STATED),
    "ethnic": (EthnicCategory.NOT_STATED, EthnicCategory.NOT_KNOWN),
    "diagnosis": (DiagnosisStatus.NOT_KNOWN, DiagnosisStatus.NOT_RECORDED, DiagnosisStatus.DECLINED),
}
# A past contact is attended, late, cancelled or not attended; "0 not yet happened" is not an outcome.
ATTENDANCE_OUTCOMES = tuple(code for code in AttendanceCode if code != AttendanceCode.NOT_YET_HAPPENED)
YOUNGEST_AGE = 10  # the age of criminal responsibility (domain.md)
OLDEST_AGE = 120


# --- The month -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnMonth:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "ReturnMonth":
        """`2026-11` (the form `manage.py national-return --month` takes); refused with a reason otherwise."""
        matched = MONTH_PATTERN.fullmatch((text or "").strip())
        if matched is None or not 1 <= int(matched.group(2)) <= 12:
            raise InputErrors({"month": f"Give the month as year-month, for example 2026-11 (not {text!r})."})
        chosen = cls(int(matched.group(1)), int(matched.group(2)))
        if chosen.year < EARLIEST_YEAR:
            raise InputErrors({"month": f"Choose a month from {EARLIEST_YEAR} onwards."})
        if chosen.first_day > clock.today_in_london():
            raise InputErrors({"month": f"{chosen.label} has not started yet: choose a month up to this one."})
        return chosen

    @classmethod
    def recent(cls, months: int, today: date | None = None) -> list["ReturnMonth"]:
        """This month and the `months - 1` before it, newest first."""
        today = today or clock.today_in_london()
        return [cls((today.year * 12 + today.month - 1 - back) // 12, (today.month - 1 - back) % 12 + 1)
                for back in range(months)]

    @property
    def period(self) -> export.KpiPeriod:
        return export.month_period(self.year, self.month)

    @property
    def first_day(self) -> date:
        return self.period.start

    @property
    def last_day(self) -> date:
        return self.period.end

    @property
    def label(self) -> str:
        return self.period.label

    @property
    def code(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def utc_range(self) -> tuple[datetime, datetime]:
        """[London midnight starting the month, London midnight after it) as UTC instants."""
        return caseload.CaseloadFilters(start=self.first_day, end=self.last_day).utc_range()


# --- The tables' selects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    team_id: int
    month: ReturnMonth
    start: datetime  # UTC
    end: datetime

    @classmethod
    def of(cls, user: User, month: ReturnMonth) -> "Scope":
        start, end = month.utc_range()
        return cls(user.team_id, month, start, end)


def _code_item(code_list: CodeList):
    return (select(CodeItem.code, CodeItem.national_code).where(CodeItem.list_name == code_list.value)
            .subquery(f"{code_list.value}_codes"))


def _open_in_month(scope: Scope) -> Select:
    """Ids of the requests open at some time in the month, with those received after it (the caller
    leaves them out): received in the month, closed in it or later, or not closed. Each part has an
    index of its own, (team, received) or (team, closed); said as one condition, the databases read
    every request received before the month's end."""
    team = Request.team_id == scope.team_id
    return union(
        select(Request.id).where(team, Request.received_at >= scope.start, Request.received_at < scope.end),
        select(Request.id).where(team, Request.closed_at >= scope.start),
        select(Request.id).where(team, Request.closed_at.is_(None)),
    ).subquery("open_in_month").select()


def referrals_select(scope: Scope) -> Select:
    """Requests open at some time in the month: received before its end and not closed before its start."""
    source, closure = _code_item(CodeList.SOURCE_OF_REFERRAL), _code_item(CodeList.CLOSURE_REASON)
    return (
        select(Request.id.label("request_id"), Request.reference, Request.person_id, Request.received_at,
               Request.urgency, source.c.national_code.label("source_national_code"), Request.closed_at,
               Request.closure_reason, closure.c.national_code.label("closure_national_code"))
        .outerjoin(source, source.c.code == Request.source_of_referral)
        .outerjoin(closure, closure.c.code == Request.closure_reason)
        .where(Request.id.in_(_open_in_month(scope)), Request.received_at < scope.end)
    )


def contacts_select(scope: Scope) -> Select:
    """Screenings dated in the month: the service's care contacts with the person."""
    return (
        select(Screening.id.label("screening_id"), Request.reference, Screening.request_id, Screening.person_id,
               Screening.screened_at, Screening.contact_mechanism, Screening.attendance)
        .outerjoin(Request, Request.id == Screening.request_id)
        .where(Screening.team_id == scope.team_id, Screening.screened_at >= scope.start,
               Screening.screened_at < scope.end)
    )


def onward_referrals_select(scope: Scope) -> Select:
    """Onward referrals made in the month (a London date), with the request of their screening."""
    return (
        select(OnwardReferral.id.label("referral_id"), OnwardReferral.person_id, OnwardReferral.screening_id,
               Request.reference, Screening.request_id, OnwardReferral.referred_on, OnwardReferral.service)
        .outerjoin(Screening, Screening.id == OnwardReferral.screening_id)
        .outerjoin(Request, Request.id == Screening.request_id)
        .where(OnwardReferral.team_id == scope.team_id, OnwardReferral.referred_on >= scope.month.first_day,
               OnwardReferral.referred_on <= scope.month.last_day)
    )


def assessments_select(scope: Scope) -> Select:
    """The month's contacts' complete questionnaires that have a national code."""
    contacts = contacts_select(scope).subquery("contacts")
    return (
        select(InstrumentResult.id.label("result_id"), contacts.c.screening_id, contacts.c.reference,
               contacts.c.request_id, contacts.c.screened_at, InstrumentResult.instrument, InstrumentResult.total)
        .join(contacts, contacts.c.screening_id == InstrumentResult.screening_id)
        .where(InstrumentResult.instrument.in_(list(ASSESSMENT_TOOL_CODES)), InstrumentResult.complete.is_(True),
               InstrumentResult.total.is_not(None))
    )


def _latest_status(name: str, scope: Scope) -> ColumnElement:
    """The person's learning disability (or autism) status from their latest screening before the month's end."""
    column = getattr(Screening, name)
    return (
        select(column).where(Screening.person_id == Person.id, Screening.screened_at < scope.end,
                             column.is_not(None))
        .order_by(Screening.screened_at.desc(), Screening.id.desc()).limit(1).scalar_subquery()
    )


def _person_ids(scope: Scope) -> Select:
    referrals = referrals_select(scope).subquery("referral_people")
    contacts = contacts_select(scope).subquery("contact_people")
    onward = onward_referrals_select(scope).subquery("onward_people")
    return union(
        select(referrals.c.person_id).where(referrals.c.person_id.is_not(None)),
        select(contacts.c.person_id),
        select(onward.c.person_id),
    ).subquery("month_people").select()


def patients_select(scope: Scope) -> Select:
    """Everyone with a referral, contact or onward referral in the month."""
    return (
        select(Person.id.label("person_id"), Person.nhs_number, Person.nhs_number_status, Person.date_of_birth,
               Person.gender_identity, Person.ethnic_category,
               _latest_status("learning_disability_status", scope).label("learning_disability_status"),
               _latest_status("autism_status", scope).label("autism_status"))
        .where(Person.team_id == scope.team_id, Person.id.in_(_person_ids(scope)))
    )


# --- Data quality ------------------------------------------------------------------------------------


class Quality(LabelledCode):
    VALID = "valid", "Valid"
    # a national "not stated" or "not known" code: allowed, but worth asking again
    NOT_STATED = "not_stated", "Not stated or not known"
    INVALID = "invalid", "Invalid"
    MISSING = "missing", "Missing"


def _coded(column, valid: Sequence[str], not_stated: Sequence[str] = ()) -> ColumnElement:
    whens = [(or_(column.is_(None), func.trim(column) == ""), Quality.MISSING.value),
             (column.in_([str(code) for code in valid]), Quality.VALID.value)]
    if not_stated:
        whens.append((column.in_([str(code) for code in not_stated]), Quality.NOT_STATED.value))
    return case(*whens, else_=Quality.INVALID.value)


def _present(column) -> ColumnElement:
    return case((column.is_(None), Quality.MISSING.value), else_=Quality.VALID.value)


def _only_digits(column) -> ColumnElement:
    """True when the text is made of ASCII digits only (no regular expressions: the same SQL on both databases)."""
    stripped = column
    for digit in "0123456789":
        stripped = func.replace(stripped, digit, "")
    return func.length(stripped) == 0


def _nhs_number_quality(column) -> ColumnElement:
    """domain.md's modulus-11 rule in SQL: weights 10 to 2 on the first nine digits; a check of 10 is never valid."""
    digit = [cast(func.substr(column, position, 1), SqlInteger) for position in range(1, 11)]
    total = sum(digit[index] * (10 - index) for index in range(9))
    check = (11 - total % 11) % 11
    return case(
        (or_(column.is_(None), func.trim(column) == ""), Quality.MISSING.value),
        (or_(func.length(column) != 10, ~_only_digits(column)), Quality.INVALID.value),
        (and_(check != 10, check == digit[9]), Quality.VALID.value),
        else_=Quality.INVALID.value,
    )


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _birth_date_quality(column, scope: Scope) -> ColumnElement:
    """Missing, or an age outside 10 to 120 on the month's last day (under 10 is below criminal responsibility)."""
    latest = _years_before(scope.month.last_day, YOUNGEST_AGE)
    earliest = _years_before(scope.month.last_day, OLDEST_AGE + 1) + timedelta(days=1)
    return case((column.is_(None), Quality.MISSING.value),
                (or_(column > latest, column < earliest), Quality.INVALID.value),
                else_=Quality.VALID.value)


@dataclass(frozen=True)
class Check:
    """One field's data-quality rule: its category for each record of its table, and where to fix it."""

    key: str
    table: str  # the national table
    field: str  # the national field
    title: str
    rule: str  # what counts as valid, in words
    fix: str  # where a person puts it right
    rows: Callable[[Scope], Select]
    quality: Callable[[Any, Scope], ColumnElement]  # over the rows' subquery columns
    record: str  # "person", "request" or "screening": which page opens a record to fix
    record_id: str  # the rows' column holding that record's id
    applies: Callable[[Any, Scope], ColumnElement] | None = None  # which rows the rule is about (default: all)


def _closed_in_month(columns, scope: Scope) -> ColumnElement:
    return and_(columns.closed_at.is_not(None), columns.closed_at < scope.end)


CHECKS: tuple[Check, ...] = (
    Check("nhs_number", "MHS001MPI", "NHSNumber", "NHS number",
          "ten digits whose last is the modulus-11 check digit of the other nine",
          "Trace the NHS number and add it to the person's record.",
          patients_select, lambda c, s: _nhs_number_quality(c.nhs_number), "person", "person_id"),
    Check("birth_date", "MHS001MPI", "PersonBirthDate", "Date of birth",
          f"a date giving an age from {YOUNGEST_AGE} to {OLDEST_AGE} on the month's last day",
          "Correct or add the date of birth on the person's record.",
          patients_select, lambda c, s: _birth_date_quality(c.date_of_birth, s), "person", "person_id"),
    Check("gender_identity", "MHS001MPI", "GenderIDCode", "Gender identity",
          "1, 2, 3 or 4 (X not known and Z not stated counted apart)",
          "Ask the person and record their gender identity on their record.",
          patients_select,
          lambda c, s: _coded(c.gender_identity, ("1", "2", "3", "4"), NOT_STATED_OR_KNOWN["gender"]),
          "person", "person_id"),
    Check("ethnic_category", "MHS001MPI", "EthnicCategory", "Ethnic category",
          "A to S (Z not stated and 99 not known counted apart)",
          "Ask the person and record their ethnic category on their record.",
          patients_select,
          lambda c, s: _coded(c.ethnic_category,
                              [code for code in EthnicCategory if code not in NOT_STATED_OR_KNOWN["ethnic"]],
                              NOT_STATED_OR_KNOWN["ethnic"]),
          "person", "person_id"),
    Check("learning_disability_status", "MHS001MPI", "LearningDisabilityStatus", "Learning disability status",
          "1 to 5 from the person's latest screening (U, X and Z counted apart)",
          "Record the learning disability status in the person's next or latest screening.",
          patients_select,
          lambda c, s: _coded(c.learning_disability_status, ("1", "2", "3", "4", "5"),
                              NOT_STATED_OR_KNOWN["diagnosis"]),
          "person", "person_id"),
    Check("autism_status", "MHS001MPI", "AutismStatus", "Autism status",
          "1 to 5 from the person's latest screening (U, X and Z counted apart)",
          "Record the autism status in the person's next or latest screening.",
          patients_select,
          lambda c, s: _coded(c.autism_status, ("1", "2", "3", "4", "5"), NOT_STATED_OR_KNOWN["diagnosis"]),
          "person", "person_id"),
    Check("referral_person", "MHS101Referral", "LocalPatientId", "Person on the referral",
          "the request names the person it is about",
          "Link the request to the person it is about.",
          referrals_select, lambda c, s: _present(c.person_id), "request", "request_id"),
    Check("source_of_referral", "MHS101Referral", "SourceOfReferralMH", "Source of referral",
          "a national source of referral code (E1 police, E2 courts…)",
          "Give the source its national code in Service settings, or correct the request's source.",
          referrals_select,
          lambda c, s: _coded(c.source_national_code, SOURCE_OF_REFERRAL_CODES), "request", "request_id"),
    Check("closure_reason", "MHS102ServiceTypeReferredTo", "ReferClosReason", "Closure reason (closed requests)",
          "a national referral closure reason code, 01 to 09",
          "Give the closure reason its national code in Service settings, or correct the request's closure.",
          referrals_select,
          lambda c, s: _coded(c.closure_national_code, REFERRAL_CLOSURE_REASON_CODES), "request", "request_id",
          applies=_closed_in_month),
    Check("contact_mechanism", "MHS201CareContact", "ConsMechanismMH", "Contact mechanism",
          "a national consultation mechanism code (01 face to face, 02 telephone…)",
          "Record how the screening was done in its Person and context section.",
          contacts_select,
          lambda c, s: _coded(c.contact_mechanism, ContactMechanism.choices()), "screening", "screening_id"),
    Check("attendance", "MHS201CareContact", "AttendOrDNACode", "Attended or did not attend",
          "2 to 7: attended, late, cancelled or did not attend (0, not yet happened, is no outcome for a past contact)",
          "Record whether the person attended in the screening's Person and context section.",
          contacts_select, lambda c, s: _coded(c.attendance, ATTENDANCE_OUTCOMES), "screening", "screening_id"),
    Check("onward_referral_request", "MHS105OnwardReferral", "ServiceRequestId", "Request of an onward referral",
          "the onward referral was made from a screening of a request",
          "Make onward referrals from the screening of the person's request.",
          onward_referrals_select, lambda c, s: _present(c.request_id), "person", "person_id"),
)
CHECKS_BY_KEY = {check.key: check for check in CHECKS}


@dataclass(frozen=True)
class QualityLine:
    check: Check
    counts: dict[Quality, int]

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    def share(self, quality: Quality) -> float | None:
        return self.counts[quality] / self.records if self.records else None

    @property
    def to_fix(self) -> int:
        return self.records - self.counts[Quality.VALID]


@dataclass(frozen=True)
class RecordToFix:
    kind: str  # "person", "request" or "screening"
    record_id: int
    reference: str | None  # the request's reference, when the record has one
    quality: Quality


def _graded_rows(rows_of: Callable[[Scope], Select], scope: Scope):
    """The table's rows worked out once: a CASE names a column several times, and an inlined subquery
    would run the patient index's latest-screening look-ups again for every mention."""
    return rows_of(scope).cte("graded_rows").prefix_with("MATERIALIZED")


def _graded(check: Check, scope: Scope):
    rows = _graded_rows(check.rows, scope)
    quality = check.quality(rows.c, scope).label("quality")
    conditions = [check.applies(rows.c, scope)] if check.applies else []
    return rows, quality, conditions


def quality_lines(session: Session, scope: Scope) -> list[QualityLine]:
    """Every check's counts for the month, in CHECKS order: one query per table, whatever its checks.

    Each count is a SUM over the same CASE that `records_to_fix` filters on, so a line's numbers and
    its list of records come from one definition.
    """
    counts: dict[str, dict[Quality, int]] = {}
    for rows_of in dict.fromkeys(check.rows for check in CHECKS):
        checks = [check for check in CHECKS if check.rows is rows_of]
        rows = _graded_rows(rows_of, scope)
        sums = []
        for check in checks:
            quality = check.quality(rows.c, scope)
            applies = check.applies(rows.c, scope) if check.applies else literal(True)
            sums += [func.coalesce(func.sum(case((and_(applies, quality == category.value), 1), else_=0)), 0)
                     for category in Quality]
        totals = session.connection().execute(select(*sums)).one()
        for index, check in enumerate(checks):
            counts[check.key] = dict(zip(Quality, totals[index * len(Quality):(index + 1) * len(Quality)],
                                         strict=True))
    return [QualityLine(check, counts[check.key]) for check in CHECKS]


def records_to_fix(session: Session, user: User, month: ReturnMonth, check_key: str) -> list[RecordToFix]:
    """The records a check did not find valid, in id order: ids and references only, no names."""
    _require_quality(user)
    check = CHECKS_BY_KEY[check_key]
    scope = Scope.of(user, month)
    rows, quality, conditions = _graded(check, scope)
    reference = rows.c.reference if "reference" in rows.c else literal(None)
    record_id = rows.c[check.record_id]
    statement = (select(record_id, reference, quality).where(*conditions, quality != Quality.VALID.value)
                 .distinct().order_by(record_id))
    return [RecordToFix(check.record, found_id, found_reference, Quality(found_quality))
            for found_id, found_reference, found_quality in session.connection().execute(statement)]


def _require_quality(user: User) -> None:
    """The counts and the ids of records to fix: what a team lead sees on the Caseload page."""
    try:
        require(user, Permission.VIEW_CASELOAD)
    except PermissionDenied as denial:
        raise denial.with_context(user, "view", entity=RETURN_NAME) from None


def quality_report(session: Session, user: User, month: ReturnMonth) -> list[QualityLine]:
    _require_quality(user)
    scope = Scope.of(user, month)
    return quality_lines(session, scope)


# Red, amber and green for a share valid: a local choice (no national threshold was found), kept
# here so that the report's table and the month-on-month chart colour alike.
GREEN_FROM, AMBER_FROM = 0.95, 0.80
RAG_WORDS = {"green": "Green: 95% or more valid", "amber": "Amber: 80% to 95% valid", "red": "Red: under 80% valid",
             "none": "No records this month"}


def rag(share: float | None) -> str:
    if share is None:
        return "none"
    return "green" if share >= GREEN_FROM else "amber" if share >= AMBER_FROM else "red"


def chart_rows(session: Session, user: User, month: ReturnMonth) -> list[dict]:
    """One month's share valid for every check: the month-on-month chart's rows for that month."""
    _require_quality(user)
    return [{"month": month.first_day, "month_label": month.label, "check": line.check.key,
             "title": line.check.title, "records": line.records, "valid": line.counts[Quality.VALID],
             "share_valid": line.share(Quality.VALID), "rag": rag(line.share(Quality.VALID))}
            for line in quality_lines(session, Scope.of(user, month))]


def quality_by_month(session: Session, user: User, months: int = 12, today: date | None = None) -> list[dict]:
    """The last `months` months' chart rows, oldest first (this month last, so a slip shows as it happens)."""
    return [row for month in reversed(ReturnMonth.recent(months, today)) for row in chart_rows(session, user, month)]


# --- The extract -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NationalTable:
    name: str  # the national table's name, e.g. MHS101Referral
    title: str
    columns: tuple[ExportColumn, ...]  # keys and headings are the national field names
    rows: tuple[dict, ...]


def _columns(*fields: tuple[str, ColumnKind]) -> tuple[ExportColumn, ...]:
    return tuple(ExportColumn(name, name, kind) for name, kind in fields)


CODE, DAY, TEXT, NUMBER = ColumnKind.identifier, ColumnKind.date, ColumnKind.text, ColumnKind.number


def _london_date(moment: datetime | None) -> date | None:
    return None if moment is None else clock.to_london(moment).date()


def _london_time(moment: datetime | None) -> str | None:
    return None if moment is None else f"{clock.to_london(moment):%H:%M:%S}"


def _service_request_id(reference: str | None, request_id: int | None) -> str | None:
    if request_id is None:
        return None
    return reference or f"request-{request_id}"


def _local_patient_id(person_id: int | None) -> str | None:
    return None if person_id is None else str(person_id)


def _rows(session: Session, statement: Select) -> list:
    return session.connection().execute(statement).all()


def _patient_table(session: Session, scope: Scope) -> NationalTable:
    rows = tuple({
        "LocalPatientId": _local_patient_id(row.person_id),
        "NHSNumber": row.nhs_number,
        "NHSNumberStatus": NHS_NUMBER_STATUS_CODES.get(row.nhs_number_status),
        "PersonBirthDate": row.date_of_birth,
        "GenderIDCode": row.gender_identity,
        "EthnicCategory": row.ethnic_category,
        "LearningDisabilityStatus": row.learning_disability_status,
        "AutismStatus": row.autism_status,
    } for row in _rows(session, patients_select(scope).order_by(Person.id)))
    columns = _columns(("LocalPatientId", CODE), ("NHSNumber", CODE), ("NHSNumberStatus", CODE),
                       ("PersonBirthDate", DAY), ("GenderIDCode", CODE), ("EthnicCategory", CODE),
                       ("LearningDisabilityStatus", CODE), ("AutismStatus", CODE))
    return NationalTable("MHS001MPI", "Patient index", columns, rows)


def _referral_tables(session: Session, scope: Scope) -> tuple[NationalTable, NationalTable]:
    found = _rows(session, referrals_select(scope).order_by(Request.received_at, Request.id))
    referrals = tuple({
        "ServiceRequestId": _service_request_id(row.reference, row.request_id),
        "LocalPatientId": _local_patient_id(row.person_id),
        "ReferralRequestReceivedDate": _london_date(row.received_at),
        "ReferralRequestReceivedTime": _london_time(row.received_at),
        "SourceOfReferralMH": row.source_national_code,
        "ClinRespPriorityType": PRIORITY_CODES.get(row.urgency),
        "ServDischDate": _london_date(_closed_by(row, scope)),
        "ServDischTime": _london_time(_closed_by(row, scope)),
    } for row in found)
    team_types = tuple({
        "ServiceRequestId": _service_request_id(row.reference, row.request_id),
        "ServTeamTypeRefToMH": TEAM_TYPE,
        "ReferClosureDate": _london_date(_closed_by(row, scope)),
        "ReferClosureTime": _london_time(_closed_by(row, scope)),
        "ReferClosReason": row.closure_national_code if _closed_by(row, scope) else None,
    } for row in found)
    return (
        NationalTable("MHS101Referral", "Referrals", _columns(
            ("ServiceRequestId", CODE), ("LocalPatientId", CODE), ("ReferralRequestReceivedDate", DAY),
            ("ReferralRequestReceivedTime", TEXT), ("SourceOfReferralMH", CODE), ("ClinRespPriorityType", CODE),
            ("ServDischDate", DAY), ("ServDischTime", TEXT)), referrals),
        NationalTable("MHS102ServiceTypeReferredTo", "Service or team type referred to", _columns(
            ("ServiceRequestId", CODE), ("ServTeamTypeRefToMH", CODE), ("ReferClosureDate", DAY),
            ("ReferClosureTime", TEXT), ("ReferClosReason", CODE)), team_types),
    )


def _closed_by(row, scope: Scope) -> datetime | None:
    """The closure, if it happened by the month's end: a request closed later was still open in this month."""
    return row.closed_at if row.closed_at is not None and row.closed_at < scope.end else None


def _contact_table(session: Session, scope: Scope) -> NationalTable:
    rows = tuple({
        "CareContactId": str(row.screening_id),
        "ServiceRequestId": _service_request_id(row.reference, row.request_id),
        "CareContDate": _london_date(row.screened_at),
        "CareContTime": _london_time(row.screened_at),
        "ConsMechanismMH": row.contact_mechanism,
        "AttendOrDNACode": row.attendance,
    } for row in _rows(session, contacts_select(scope).order_by(Screening.screened_at, Screening.id)))
    return NationalTable("MHS201CareContact", "Care contacts", _columns(
        ("CareContactId", CODE), ("ServiceRequestId", CODE), ("CareContDate", DAY), ("CareContTime", TEXT),
        ("ConsMechanismMH", CODE), ("AttendOrDNACode", CODE)), rows)


def _onward_referral_table(session: Session, scope: Scope) -> NationalTable:
    statement = onward_referrals_select(scope).order_by(OnwardReferral.referred_on, OnwardReferral.id)
    rows = tuple({
        "ServiceRequestId": _service_request_id(row.reference, row.request_id),
        "OnwardReferDate": row.referred_on,
        "LocalOnwardService": row.service,
    } for row in _rows(session, statement))
    return NationalTable("MHS105OnwardReferral", "Onward referrals", _columns(
        ("ServiceRequestId", CODE), ("OnwardReferDate", DAY), ("LocalOnwardService", CODE)), rows)


def _assessment_table(session: Session, scope: Scope) -> NationalTable:
    statement = assessments_select(scope)
    ordered = statement.order_by(statement.selected_columns.screened_at, statement.selected_columns.result_id)
    rows = tuple({
        "ServiceRequestId": _service_request_id(row.reference, row.request_id),
        "CodedAssToolType": ASSESSMENT_TOOL_CODES[row.instrument],
        "PersScore": row.total,
        "AssToolCompTimestamp": clock.to_london(row.screened_at).isoformat(timespec="seconds"),
    } for row in _rows(session, ordered))
    return NationalTable("MHS606CodedScoreAssessmentRefer", "Coded scored assessments", _columns(
        ("ServiceRequestId", CODE), ("CodedAssToolType", CODE), ("PersScore", NUMBER),
        ("AssToolCompTimestamp", TEXT)), rows)


@dataclass(frozen=True)
class NationalReturn:
    month: ReturnMonth
    tables: tuple[NationalTable, ...]
    quality: tuple[QualityLine, ...]

    @property
    def rows(self) -> int:
        return sum(len(table.rows) for table in self.tables)

    def in_words(self) -> str:
        return "; ".join(f"{table.name} {len(table.rows)}" for table in self.tables)


def build_return(session: Session, user: User, month: ReturnMonth) -> NationalReturn:
    """Every table of the month and its data-quality report. Raises PermissionDenied without export."""
    try:
        require(user, Permission.EXPORT)
        require(user, Permission.VIEW_CASELOAD)
    except PermissionDenied as denial:
        raise denial.with_context(user, "export", entity=RETURN_NAME) from None
    scope = Scope.of(user, month)
    tables = (_patient_table(session, scope), *_referral_tables(session, scope), _contact_table(session, scope),
              _onward_referral_table(session, scope), _assessment_table(session, scope))
    quality = tuple(quality_lines(session, scope))
    return NationalReturn(month, tables, quality)


QUALITY_COLUMNS = (
    ExportColumn("table", "Table", TEXT), ExportColumn("field", "Field", TEXT), ExportColumn("title", "Check", TEXT),
    ExportColumn("rule", "Valid when", TEXT), ExportColumn("records", "Records", NUMBER),
    *(ExportColumn(quality.value, quality.label, NUMBER) for quality in Quality),
    ExportColumn("share_valid", "Valid (%)", NUMBER), ExportColumn("fix", "How to fix", TEXT),
)


def quality_rows(lines: Sequence[QualityLine]) -> list[dict]:
    return [{
        "key": line.check.key, "table": line.check.table, "field": line.check.field, "title": line.check.title,
        "rule": line.check.rule, "records": line.records,
        **{quality.value: line.counts[quality] for quality in Quality},
        "share_valid": None if line.share(Quality.VALID) is None else round(100 * line.share(Quality.VALID), 1),
        "fix": line.check.fix, "rag": rag(line.share(Quality.VALID)),
    } for line in lines]


def file_name(month: ReturnMonth, suffix: str) -> str:
    return f"mhsds-return-{month.code}.{suffix}"


def write_workbook(session: Session, user: User, month: ReturnMonth, *,
                   target: BinaryIO | str | Path) -> NationalReturn:
    """One sheet per table, then the data-quality sheet and About; audited as an export."""
    built = build_return(session, user, month)
    sheets = [DataSheet(table.name, table.columns, table.rows) for table in built.tables]
    sheets.append(DataSheet("Data quality", QUALITY_COLUMNS, quality_rows(built.quality)))
    write_sheets(target, sheets, about=_about(session, user, built))
    export.audit_export(session, user, RETURN_NAME, f"National return {month.label} (workbook): {built.in_words()}")
    return built


def write_csv_zip(session: Session, user: User, month: ReturnMonth, *,
                  target: BinaryIO | str | Path) -> NationalReturn:
    """A zip of CSV files, one per table and one for the data-quality report; audited as an export."""
    built = build_return(session, user, month)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in built.tables:
            archive.writestr(f"{table.name}.csv", _csv(table.columns, table.rows))
        archive.writestr("data_quality.csv", _csv(QUALITY_COLUMNS, quality_rows(built.quality)))
    export.audit_export(session, user, RETURN_NAME, f"National return {month.label} (CSV files): {built.in_words()}")
    return built


def _csv(columns: Sequence[ExportColumn], rows: Sequence[dict]) -> str:
    """National formats: ISO dates (yyyy-mm-dd), 24-hour times, codes as text; nothing for no value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.heading for column in columns])
    for row in rows:
        writer.writerow([_csv_value(row.get(column.key)) for column in columns])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _about(session: Session, user: User, built: NationalReturn) -> list[tuple[str, str]]:
    team = session.get(Team, user.team_id)
    start, end = built.month.utc_range()
    return [
        ("Return", "Mental Health Services Data Set (MHSDS) tables fed by this service"),
        ("Reporting month", f"{built.month.label}: {clock.format_date(built.month.first_day)} 00:00 to "
                            f"{clock.format_date(built.month.last_day)} 24:00, London time"),
        ("Team", f"{team.name if team else ''} (service or team type {TEAM_TYPE})"),
        ("Tables", built.in_words()),
        ("Referrals", "Requests open at some time in the month (received before its end, not closed before "
                      "its start)"),
        ("Care contacts", "Screenings dated in the month"),
        ("Dates and times", "London (UK) local time"),
        ("Exported by", f"{user.full_name} ({user.username})"),
        ("Exported at (UK time)", clock.format_datetime(clock.now())),
        ("Protective marking", PROTECTIVE_MARKING),
    ]
