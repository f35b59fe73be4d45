"""The lists that can be exported, each adapted from the service that draws it on screen.

Every list's own service exposes one query that drives both its screen and its export (a SQLAlchemy
Core select, its columns, its filters). An `ExportableList` wraps that query without changing it:
same filters, same columns, same order, same team scoping — so the file holds exactly the rows
the screen shows. Nothing here runs a query of its own except to put names on filter values.

No Streamlit here: the Export page and the "Export this view" buttons read this registry.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlmodel import Session

from models import CodeItem, OnwardReferral, Person, Site, User
from models.activities import AudienceAgency
from models.codes import (
    ActivityKind,
    AttendanceCode,
    CodeList,
    ReferralStatus,
    ReportType,
    RequestStatus,
    Role,
    ScreeningOutcome,
    ScreeningStatus,
    Urgency,
)
from services import activities, audit, audit_log, caseload, clock, code_lists, requests, screening
from services.permissions import Permission, has_permission
from services.workbook import ColumnKind, ExportColumn


class FilterKind(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    yes_no = "yes_no"
    choice = "choice"
    choices = "choices"  # any of several (a tuple; empty means any)


Choices = Callable[[Session, User], Sequence[tuple[Any, str]]]


@dataclass(frozen=True)
class FilterField:
    """One filter of a list, as the Export page offers it and the About sheet names it."""

    name: str  # the field of the list's own filters object
    label: str
    kind: FilterKind
    choices: Choices | None = None  # (value, label) pairs, for kinds "choice" and "choices"


@dataclass(frozen=True)
class ExportableList:
    """A list on screen that can be exported.

    `select(session, user, filters)` returns the list's own Core select (the list's service
    checks its permission and scopes it to the user's team); `filters_type()` is "no filters".
    `describe`, when given, says the filters in words (otherwise they are read from
    `filter_fields`). `order` says in words how the rows are sorted.
    """

    name: str
    title: str
    permission: Permission | tuple[Permission, ...]  # any one of them lets a user see the list
    columns: tuple[ExportColumn, ...]
    select: Callable[[Session, User, Any], Select]
    filters_type: type
    filter_fields: tuple[FilterField, ...]
    order: str
    id_column: str
    describe: Callable[[Session, User, Any], list[tuple[str, str]]] | None = None
    # How the Export page reads and builds the filters object (default: its dataclass fields).
    to_values: Callable[[Any], dict[str, Any]] | None = None
    from_values: Callable[[dict[str, Any]], Any] | None = None
    # The columns its screen shows, in order: what "Export this view" writes (None: every column).
    view: tuple[str, ...] | None = None
    # Columns worked out per row in Python rather than selected (they depend on now or a setting):
    # `derive(session, now)` gives a function of a row of the full select (a mapping) to their values.
    derived: frozenset[str] = frozenset()
    derive: Callable[[Session, datetime], Callable[[Mapping[str, Any]], Mapping[str, Any]]] | None = None

    def view_keys(self) -> list[str]:
        """The column keys of the list as its screen shows it (all, when it shows every column)."""
        return list(self.view) if self.view is not None else self.column_keys()

    def view_columns(self) -> tuple[ExportColumn, ...]:
        by_key = {column.key: column for column in self.columns}
        return tuple(by_key[key] for key in self.view_keys())

    def may_see(self, user: User) -> bool:
        permissions = self.permission if isinstance(self.permission, tuple) else (self.permission,)
        return any(has_permission(user, permission) for permission in permissions)

    def column_keys(self) -> list[str]:
        return [column.key for column in self.columns]

    def no_filters(self):
        return self.filters_type()

    def filter_values(self, filters) -> dict[str, Any]:
        if self.to_values is not None:
            return self.to_values(filters)
        return {declared.name: getattr(filters, declared.name) for declared in fields(filters)}

    def filters_from(self, values: dict[str, Any]):
        if self.from_values is not None:
            return self.from_values(values)
        return self.filters_type(**values)


def describe_filters(session: Session, user: User, exportable: ExportableList, filters) -> list[tuple[str, str]]:
    """Every filter that is set, as (label, value in words); an empty list when none is."""
    if exportable.describe is not None:
        return exportable.describe(session, user, filters)
    described = []
    for filter_field in exportable.filter_fields:
        value = getattr(filters, filter_field.name, None)
        if value is None or value == "" or value is False or value == ():
            continue
        described.append((filter_field.label, _in_words(session, user, filter_field, value)))
    return described


def _in_words(session: Session, user: User, field: FilterField, value) -> str:
    if field.kind in (FilterKind.choice, FilterKind.choices) and field.choices is not None:
        labels = dict(field.choices(session, user))
        if field.kind is FilterKind.choices:
            return ", ".join(labels.get(each, str(each)) for each in value)
        return labels.get(value, str(value))
    if field.kind is FilterKind.yes_no:
        return "Yes" if value else "No"
    if isinstance(value, date):
        return clock.format_date(value)
    return str(value)


def filter_fields_of(filters_type: type, labels: dict[str, str], kinds: dict[str, FilterKind] | None = None,
                     choices: dict[str, Choices] | None = None) -> tuple[FilterField, ...]:
    """The filter fields of a filters dataclass, in its own order, with labels and choices."""
    kinds, choices = kinds or {}, choices or {}
    result = []
    for declared in fields(filters_type):
        if declared.name not in labels:
            continue  # a filter the page sets itself (not offered on the Export page)
        kind = kinds.get(declared.name) or _kind_of(declared.type)
        if declared.name in choices:
            kind = FilterKind.choices if "tuple" in str(declared.type) else FilterKind.choice
        result.append(FilterField(declared.name, labels[declared.name], kind, choices.get(declared.name)))
    return tuple(result)


def _kind_of(annotation) -> FilterKind:
    text = str(annotation)
    if "date" in text:
        return FilterKind.date
    if "bool" in text:
        return FilterKind.yes_no
    if "int" in text:
        return FilterKind.number
    return FilterKind.text


def _staff_choices(session: Session, user: User) -> list[tuple[int, str]]:
    """Members of the user's team (the audit log's administrators see everyone)."""
    query = select(User.id, User.full_name, User.username).order_by(User.full_name, User.username)
    if user.role != Role.ADMINISTRATOR:
        query = query.where(User.team_id == user.team_id)
    return [(row.id, f"{row.full_name} ({row.username})") for row in session.execute(query)]


def _fixed(pairs: Sequence[tuple[Any, str]]) -> Choices:
    return lambda _session, _user: list(pairs)


def _site_choices(session: Session, user: User) -> list[tuple[int, str]]:
    query = select(Site.id, Site.name).where(Site.team_id == user.team_id).order_by(Site.name)
    return [(row.id, row.name) for row in session.execute(query)]


def _code_choices(code_list: CodeList) -> Choices:
    return lambda session, _user: list(code_lists.labels(session, code_list).items())


# --- Triage queue (services/requests.py) ----------------------------------------------------------

TRIAGE_FILTER_LABELS = {
    "statuses": "Status",
    "site_ids": "Site",
    "request_types": "Request type",
    "urgencies": "Urgency",
    "allocated_to_id": "Allocated to",
    "unallocated_only": "Only requests not yet allocated",
    "received_from": "Received from (UK date)",
    "received_to": "Received to (UK date)",
}


def _triage_select(_session: Session, user: User, filters: requests.RequestFilters) -> Select:
    return requests.request_list_query(user, filters).statement


TRIAGE_QUEUE = ExportableList(
    name="triage_queue",
    title="Triage queue",
    # As the queue's own service: administrators export it without working the queue.
    permission=(Permission.VIEW_REQUESTS, Permission.EXPORT),
    columns=tuple(requests.REQUEST_LIST_COLUMNS),
    select=_triage_select,
    filters_type=requests.RequestFilters,
    filter_fields=filter_fields_of(
        requests.RequestFilters,
        TRIAGE_FILTER_LABELS,
        choices={
            "statuses": _fixed([(status.value, status.label) for status in RequestStatus]),
            "site_ids": _site_choices,
            "request_types": _code_choices(CodeList.REQUEST_TYPE),
            "urgencies": _fixed([(urgency.value, urgency.label) for urgency in Urgency]),
            "allocated_to_id": _staff_choices,
        },
    ),
    order="Your unanswered requests first, then unallocated, then the rest; soonest due first in each",
    id_column="reference",
    view=requests.TRIAGE_VIEW,
    derived=requests.CLOCK_COLUMNS,
    derive=requests.list_clock,
)


# --- Screenings (services/screening.py) -----------------------------------------------------------

SCREENING_FILTER_LABELS = {
    "status": "Status",
    "site_id": "Site",
    "practitioner_id": "Practitioner",
    "person_id": "Person (record number)",
    "outcome": "Outcome",
    "screened_from": "Screened from (UK date)",
    "screened_to": "Screened to (UK date)",
}


def _screenings_select(_session: Session, user: User, filters: screening.ScreeningFilters) -> Select:
    return screening.screenings_query(user, filters).statement


SCREENINGS = ExportableList(
    name="screenings",
    title="Screenings",
    # As the list's own service: export alone lets an administrator export it.
    permission=(Permission.VIEW_PEOPLE, Permission.EXPORT),
    columns=tuple(ExportColumn(column.key, column.heading, ColumnKind(column.kind))
                  for column in screening.SCREENING_COLUMNS),
    select=_screenings_select,
    filters_type=screening.ScreeningFilters,
    filter_fields=filter_fields_of(
        screening.ScreeningFilters,
        SCREENING_FILTER_LABELS,
        choices={
            "status": _fixed([(status.value, status.label) for status in ScreeningStatus]),
            "site_id": _site_choices,
            "practitioner_id": _staff_choices,
            "outcome": _fixed([(outcome.value, outcome.label) for outcome in ScreeningOutcome]),
        },
    ),
    order="Newest first (by time screened; drafts not yet screened last)",
    id_column="screening_id",
)


# --- Onward referrals (services/referrals.py) ---------------------------------------------------
# services/referrals.py lists a person's referrals as ORM rows (referrals_for_person); this is the
# same selection and order as a Core select, checked against it by tests/test_export.py.


@dataclass(frozen=True)
class ReferralFilters:
    person_id: int | None = None
    service: str | None = None
    status: str | None = None
    referred_from: date | None = None
    referred_to: date | None = None


REFERRAL_COLUMNS = (
    ExportColumn("referral_id", "Referral", ColumnKind.identifier),
    ExportColumn("given_name", "Given name", ColumnKind.text),
    ExportColumn("family_name", "Family name", ColumnKind.text),
    ExportColumn("screening_id", "Screening", ColumnKind.identifier),
    ExportColumn("service", "Service", ColumnKind.text),
    ExportColumn("referred_on", "Referred on", ColumnKind.date),
    ExportColumn("status", "Status", ColumnKind.text),
    ExportColumn("attendance", "Attendance", ColumnKind.text),
    ExportColumn("outcome_on", "Outcome on", ColumnKind.date),
    ExportColumn("note", "Note", ColumnKind.text),
)


def _labels(column, codes):
    return case({member.value: member.label for member in codes}, value=column, else_=column)


def _referrals_select(_session: Session, user: User, filters: ReferralFilters) -> Select:
    service = CodeItem.__table__.alias("service_item")
    statement = (
        select(
            OnwardReferral.id.label("referral_id"),
            Person.given_name.label("given_name"),
            Person.family_name.label("family_name"),
            OnwardReferral.screening_id.label("screening_id"),
            func.coalesce(service.c.label, OnwardReferral.service).label("service"),
            OnwardReferral.referred_on.label("referred_on"),
            _labels(OnwardReferral.status, ReferralStatus).label("status"),
            _labels(OnwardReferral.attendance, AttendanceCode).label("attendance"),
            OnwardReferral.outcome_on.label("outcome_on"),
            OnwardReferral.note.label("note"),
        )
        .select_from(OnwardReferral)
        .join(Person, Person.id == OnwardReferral.person_id)
        .outerjoin(service, and_(service.c.list_name == CodeList.ONWARD_SERVICE.value,
                                 service.c.code == OnwardReferral.service))
        .where(OnwardReferral.team_id == user.team_id)
        .order_by(OnwardReferral.referred_on.desc(), OnwardReferral.id.desc())
    )
    if filters.person_id is not None:
        statement = statement.where(OnwardReferral.person_id == filters.person_id)
    if filters.service is not None:
        statement = statement.where(OnwardReferral.service == filters.service)
    if filters.status is not None:
        statement = statement.where(OnwardReferral.status == filters.status)
    if filters.referred_from is not None:
        statement = statement.where(OnwardReferral.referred_on >= filters.referred_from)
    if filters.referred_to is not None:
        statement = statement.where(OnwardReferral.referred_on <= filters.referred_to)
    return statement


ONWARD_REFERRALS = ExportableList(
    name="onward_referrals",
    title="Onward referrals",
    permission=Permission.VIEW_PEOPLE,
    columns=REFERRAL_COLUMNS,
    select=_referrals_select,
    filters_type=ReferralFilters,
    filter_fields=filter_fields_of(
        ReferralFilters,
        {"person_id": "Person (record number)", "service": "Service", "status": "Status",
         "referred_from": "Referred from", "referred_to": "Referred to"},
        choices={
            "service": _code_choices(CodeList.ONWARD_SERVICE),
            "status": _fixed([(status.value, status.label) for status in ReferralStatus]),
        },
    ),
    order="Newest first (by date referred)",
    id_column="referral_id",
)


# --- Audit log (services/audit_log.py) -------------------------------------------------------

AUDIT_FILTER_LABELS = {
    "user_id": "Member of staff",
    "username": "Username as recorded",
    "action": "Action",
    "entity": "Record type",
    "entity_id": "Record id",
    "outcome": "Outcome",
    "date_from": "From (UK date)",
    "date_to": "To (UK date)",
}


def _audit_select(_session: Session, user: User, filters: audit_log.AuditFilters) -> Select:
    return audit_log.list_query(user, filters).statement


AUDIT_LOG = ExportableList(
    name="audit_log",
    title="Audit log",
    permission=Permission.VIEW_AUDIT,
    columns=tuple(audit_log.COLUMNS),
    select=_audit_select,
    filters_type=audit_log.AuditFilters,
    filter_fields=filter_fields_of(
        audit_log.AuditFilters,
        AUDIT_FILTER_LABELS,
        choices={
            "user_id": _staff_choices,
            "action": _fixed([(action, f"{audit_log.action_label(action)} ({action})")
                              for action in audit_log.KNOWN_ACTIONS]),
            "entity": _fixed([(entity, audit_log.entity_label(entity)) for entity in audit_log.KNOWN_ENTITIES]),
            "outcome": _fixed([(outcome, audit_log.outcome_label(outcome))
                               for outcome in (audit.SUCCESS, audit.FAILURE, audit.DENIED)]),
        },
    ),
    order="Newest first",
    id_column="id",
)


# --- Activities (services/activities.py): one list per kind, as on the Activities page --------

ACTIVITY_KIND_KINDS = {"identifier": ColumnKind.identifier, "text": ColumnKind.text, "date": ColumnKind.date,
                       "number": ColumnKind.number, "datetime": ColumnKind.datetime, "hours": ColumnKind.hours,
                       "yes_no": ColumnKind.yes_no}

ACTIVITY_FILTER_LABELS = {
    "date_from": "From",
    "date_to": "To",
    "practitioner_id": "Logged by",
    "text": "Containing",
}
ACTIVITY_KIND_FILTER_LABELS = {
    ActivityKind.MAPPA_MEETING: {"mappa_category": "MAPPA category", "mappa_level": "MAPPA level"},
    ActivityKind.TRAINING: {"audience_agency": "Audience"},
    ActivityKind.PRE_SENTENCE_REPORT: {"report_type": "Report type",
                                       "awaiting_information": "Only information not yet provided"},
    ActivityKind.PRISON_RELEASE: {},
}
ACTIVITY_LIST_NAMES = {
    ActivityKind.MAPPA_MEETING: "mappa_meetings",
    ActivityKind.TRAINING: "training_delivered",
    ActivityKind.PRE_SENTENCE_REPORT: "pre_sentence_reports",
    ActivityKind.PRISON_RELEASE: "prison_release_liaison",
}


def activity_list_name(kind: ActivityKind | str) -> str:
    """The export list of one kind of activity (for the Activities page's button)."""
    return ACTIVITY_LIST_NAMES[ActivityKind(kind)]


def _activity_exportable(kind: ActivityKind) -> ExportableList:
    def select_activities(_session: Session, user: User, filters: activities.ActivityFilters) -> Select:
        return activities.activity_list(user, kind, filters).query

    def describe(_session: Session, user: User, filters: activities.ActivityFilters) -> list[tuple[str, str]]:
        # The service's own words; the first pair names the kind, which is the list's title here.
        described = list(activities.activity_list(user, kind, filters).filters[1:])
        if filters.practitioner_id:
            names = dict(_staff_choices(_session, user))
            described = [
                ("Logged by", names.get(filters.practitioner_id, str(filters.practitioner_id)))
                if label.startswith("Logged by") else (label, value)
                for label, value in described
            ]
        return described

    sample = activities.activity_list(_column_reader(), kind, activities.ActivityFilters())
    choices: dict[str, Choices] = {"practitioner_id": _staff_choices,
                                   "audience_agency": _fixed([(m.value, m.label) for m in AudienceAgency]),
                                   "report_type": _fixed([(m.value, m.label) for m in ReportType]),
                                   "mappa_category": _fixed([(value, str(value)) for value in activities.MAPPA_VALUES]),
                                   "mappa_level": _fixed([(value, str(value)) for value in activities.MAPPA_VALUES])}
    labels = {**ACTIVITY_FILTER_LABELS, **ACTIVITY_KIND_FILTER_LABELS[kind]}
    return ExportableList(
        name=ACTIVITY_LIST_NAMES[kind],
        title=f"Activities: {kind.label}",
        permission=Permission.VIEW_ACTIVITIES,
        columns=tuple(ExportColumn(column.key, column.heading, ACTIVITY_KIND_KINDS[column.kind])
                      for column in sample.columns),
        select=select_activities,
        filters_type=activities.ActivityFilters,
        filter_fields=filter_fields_of(activities.ActivityFilters, labels,
                                       choices={name: choices[name] for name in labels if name in choices}),
        order="Newest first (by date, then by number)",
        id_column="id",
        describe=describe,
    )


def _column_reader() -> User:
    """A stand-in user for reading a list's column definitions once, at import (no query is run)."""
    return User(id=0, username="columns", full_name="columns", role="team_lead", team_id=0, active=True)


ACTIVITY_LISTS = tuple(_activity_exportable(kind) for kind in ActivityKind)


# --- Caseload drill-down (services/caseload.py) ---------------------------------------------------

# "Requests received" of the pathway funnel is the whole cohort: what the Export page offers.
EVERY_REQUEST_RECEIVED = caseload.Selection.of("pathway_funnel", {"stage": "received"})


@dataclass(frozen=True)
class CaseloadView:
    """The caseload page's filters and the chart mark whose requests are listed."""

    filters: caseload.CaseloadFilters = field(default_factory=caseload.CaseloadFilters.default)
    selection: caseload.Selection = EVERY_REQUEST_RECEIVED


def caseload_view(filters) -> CaseloadView:
    """A CaseloadView from what the Caseload page holds: the view, or (filters, selection)."""
    if isinstance(filters, CaseloadView):
        return filters
    if isinstance(filters, caseload.CaseloadFilters):
        return CaseloadView(filters)
    page_filters, selection = filters
    return CaseloadView(page_filters, selection)


def _caseload_select(session: Session, user: User, filters) -> Select:
    view = caseload_view(filters)
    statement, _columns = caseload.drilldown_query(session, user, view.filters, view.selection)
    return statement


def _caseload_describe(session: Session, user: User, filters) -> list[tuple[str, str]]:
    view = caseload_view(filters)
    described = [("Requests", view.filters.describe(caseload.filter_choices(session, user)))]
    if view.selection != EVERY_REQUEST_RECEIVED:
        described.append(("Chart selection", view.selection.describe()))
    return described


def _caseload_choices(attribute: str) -> Choices:
    return lambda session, user: list(getattr(caseload.filter_choices(session, user), attribute).items())


CASELOAD_FILTER_LABELS = {
    "start": "Received from",
    "end": "Received to",
    "site_id": "Site",
    "source_of_referral": "Source of referral",
    "request_type": "Request type",
    "urgency": "Urgency",
    "practitioner_id": "Allocated to",
    "age_band": "Age band",
}

CASELOAD_LIST = ExportableList(
    name="caseload_requests",
    title="Caseload requests",
    permission=Permission.VIEW_CASELOAD,
    columns=tuple(ExportColumn(column.key, column.heading, ColumnKind(column.kind))
                  for column in caseload.DRILLDOWN_COLUMNS),
    select=_caseload_select,
    filters_type=CaseloadView,
    filter_fields=filter_fields_of(
        caseload.CaseloadFilters,
        CASELOAD_FILTER_LABELS,
        choices={
            "site_id": _caseload_choices("sites"),
            "source_of_referral": _caseload_choices("sources"),
            "request_type": _caseload_choices("request_types"),
            "urgency": _caseload_choices("urgencies"),
            "practitioner_id": _caseload_choices("practitioners"),
            "age_band": _caseload_choices("age_bands"),
        },
    ),
    order="Newest first (by time received)",
    id_column="reference",
    describe=_caseload_describe,
    to_values=lambda filters: {name: getattr(caseload_view(filters).filters, name) for name in CASELOAD_FILTER_LABELS},
    from_values=lambda values: CaseloadView(caseload.CaseloadFilters(**values)),
)


# --- The registry ------------------------------------------------------------------------------

LISTS: dict[str, ExportableList] = {
    exportable.name: exportable
    for exportable in (
        TRIAGE_QUEUE,
        SCREENINGS,
        ONWARD_REFERRALS,
        CASELOAD_LIST,
        *ACTIVITY_LISTS,
        AUDIT_LOG,
    )
}
