"""The audit log for administrators: search it, page through it, export exactly what is shown.

One query drives both the screen and the export: `list_query(user, filters)` returns a
SQLAlchemy Core select and the column definitions, so the workbook holds the same rows, in the
same order, under the same headings as the list on screen. The export itself (permission,
workbook, audit row with filters and row count) is `services/export.py`'s, through the list
registered as "audit_log" in `services/export_lists.py`.

Pages are read by keyset (`WHERE (at, id) < (last at, last id)` on the indexed time), never by a
deep OFFSET, so the hundredth page costs what the first does. Dates in the filters are London
dates: "from 1 to 3 June" means from midnight at the start of 1 June to midnight at the end of
3 June on a London clock, in summer time or not.
"""

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, String, case, func, select, tuple_
from sqlmodel import Session

from models import AuditEvent, User
from services import audit, clock
from services.errors import InputErrors
from services.permissions import Permission, require
from services.workbook import ColumnKind, ExportColumn

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TEXT_FILTER_LIMIT = 64
EARLIEST_DATE = date(2000, 1, 1)

# What a person reads for each action code the app records. The code is what is stored and
# filtered on; it stays beside the label (the "Action code" column, the drop-down's entries) so an
# administrator can still search for it. A code not listed here (one recorded by a newer feature,
# or a refused permission's name) reads as its words: "view_audit" as "View audit".
ACTION_LABELS: dict[str, str] = {
    "sign_in": "Signed in",
    "sign_out": "Signed out",
    "resume_session": "Resumed a session",
    "lockout": "Account locked",
    "change_password": "Changed a password",
    "reset_password": "Reset a password",
    "create_user": "Created a user",
    "enable_user": "Enabled a user",
    "disable_user": "Disabled a user",
    "change_role": "Changed a role",
    "move_user": "Moved a user to another team",
    "change_export_permission": "Changed who may export",
    "open_page": "Opened a page",
    "view_person": "Viewed a person's record",
    "create_person": "Recorded a person",
    "log_request": "Logged a request",
    "view_request": "Viewed a request",
    "allocate_request": "Allocated a request",
    "allocate_request_to_self": "Took a request",
    "reallocate_request": "Reallocated a request",
    "reallocate_open_requests": "Reallocated open requests",
    "start_request_work": "Started work on a request",
    "record_first_response": "Recorded a first response",
    "close_request": "Closed a request",
    "reopen_request": "Reopened a request",
    "create_screening": "Started a screening",
    "view_screening": "Viewed a screening",
    "view_screening_summary": "Viewed a screening summary",
    "save_screening_section": "Saved a screening section",
    "complete_screening": "Completed a screening",
    "amend_screening": "Amended a screening",
    "create_onward_referral": "Made an onward referral",
    "update_onward_referral": "Updated an onward referral",
    "delete_onward_referral": "Deleted an onward referral",
    "log_activity": "Logged an activity",
    "view_activity": "Viewed an activity",
    "update_activity": "Updated an activity",
    "view_caseload_list": "Viewed a caseload list",
    "export": "Exported a list",
    "create_column_set": "Saved export columns",
    "update_column_set": "Changed saved export columns",
    "delete_column_set": "Deleted saved export columns",
    "add_team": "Added a team",
    "rename_team": "Renamed a team",
    "add_site": "Added a site",
    "change_site": "Changed a site",
    "deactivate_site": "Deactivated a site",
    "reactivate_site": "Reactivated a site",
    "delete_site": "Deleted a site",
    "add_code": "Added a code",
    "rename_code": "Renamed a code",
    "set_national_code": "Set a code's national code",
    "reorder_code": "Moved a code",
    "deactivate_code": "Withdrew a code",
    "reactivate_code": "Reactivated a code",
    "change_setting": "Changed a setting",
    "retention_delete": "Deleted a record past retention",
}
ENTITY_LABELS: dict[str, str] = {
    "user": "User account",
    "person": "Person",
    "request": "Request",
    "screening": "Screening",
    "onward_referral": "Onward referral",
    "activity": "Activity",
    "page": "Page",
    "audit_log": "Audit log",
    "caseload": "Caseload",
    "team": "Team",
    "site": "Site",
    "code_item": "Code",
    "setting": "Setting",
    "column_set": "Saved export columns",
}
OUTCOME_LABELS: dict[str, str] = {audit.SUCCESS: "Succeeded", audit.FAILURE: "Failed", audit.DENIED: "Refused"}

# Offered in the page's drop-downs; any other value recorded by a newer feature can be typed.
KNOWN_ACTIONS = tuple(sorted(ACTION_LABELS, key=ACTION_LABELS.get))
KNOWN_ENTITIES = tuple(sorted(ENTITY_LABELS, key=ENTITY_LABELS.get))
OUTCOMES = (audit.SUCCESS, audit.FAILURE, audit.DENIED)

COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("at", "When (UK time)", ColumnKind.datetime),
    ExportColumn("username", "Username", ColumnKind.text),
    ExportColumn("full_name", "Name now", ColumnKind.text),
    ExportColumn("action_label", "Action", ColumnKind.text),
    ExportColumn("entity_label", "Record type", ColumnKind.text),
    ExportColumn("entity_id", "Record id", ColumnKind.identifier),
    ExportColumn("outcome_label", "Outcome", ColumnKind.text),
    ExportColumn("detail", "Detail", ColumnKind.text),
    ExportColumn("action", "Action code", ColumnKind.text),
    ExportColumn("id", "Entry", ColumnKind.identifier),
)


def _words(code: str) -> str:
    """A code as words: "view_audit" → "View audit"."""
    return code.replace("_", " ").capitalize()


def action_label(code: str | None) -> str:
    return "" if code is None else ACTION_LABELS.get(code) or _words(code)


def entity_label(code: str | None) -> str:
    return "" if code is None else ENTITY_LABELS.get(code) or _words(code)


def outcome_label(code: str | None) -> str:
    return "" if code is None else OUTCOME_LABELS.get(code) or _words(code)


def _labelled(column, labels: dict[str, str]):
    """The label of a code column, in SQL, so the screen and the export read the same words."""
    words = (func.upper(func.substr(column, 1, 1), type_=String)
             + func.replace(func.substr(column, 2), "_", " ", type_=String))
    return case(labels, value=column, else_=words)


@dataclass(frozen=True)
class AuditFilters:
    """What the administrator asked for; every field is optional."""

    user_id: int | None = None
    username: str | None = None  # as recorded, for failed sign-ins by names that match no account
    action: str | None = None
    entity: str | None = None
    entity_id: int | None = None
    outcome: str | None = None
    date_from: date | None = None  # London date, inclusive
    date_to: date | None = None  # London date, inclusive

    def cleaned(self) -> "AuditFilters":
        """Blank text is no filter; text is trimmed."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str):
                value = value.strip() or None
            values[field.name] = value
        return AuditFilters(**values)

    def describe(self) -> str:
        """One line for the export's audit row and its About sheet. Never clinical: codes and dates only."""
        parts = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            parts.append(f"{field.name}={clock.format_date(value) if isinstance(value, date) else value}")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: just after this entry in (at, id) descending order."""

    at: datetime
    id: int


@dataclass(frozen=True)
class AuditQuery:
    statement: Select
    columns: tuple[ExportColumn, ...]


@dataclass(frozen=True)
class AuditPage:
    rows: list[dict]
    next_cursor: Cursor | None


def validate(filters: AuditFilters, *, today: date | None = None) -> AuditFilters:
    """The cleaned filters, or InputErrors naming each field that cannot be searched for."""
    filters = filters.cleaned()
    today = today or clock.today_in_london()
    errors: dict[str, str] = {}
    for name in ("username", "action", "entity", "outcome"):
        value = getattr(filters, name)
        if value is not None and len(value) > TEXT_FILTER_LIMIT:
            errors[name] = f"Enter at most {TEXT_FILTER_LIMIT} characters."
    if filters.entity_id is not None and filters.entity_id < 1:
        errors["entity_id"] = "A record id is a whole number from 1."
    if filters.entity_id is not None and filters.entity is None:
        errors["entity"] = "Choose the record type that the id belongs to."
    for name in ("date_from", "date_to"):
        value = getattr(filters, name)
        if value is not None and not EARLIEST_DATE <= value <= today:
            errors[name] = f"Enter a date from {clock.format_date(EARLIEST_DATE)} to today."
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = "The end date is before the start date."
    if errors:
        raise InputErrors(errors)
    return filters


def list_query(user: User, filters: AuditFilters) -> AuditQuery:
    """The audit log's list as a Core select (newest first) and its columns, for screen and export."""
    require(user, Permission.VIEW_AUDIT)
    filters = validate(filters)
    statement = (
        select(
            AuditEvent.at.label("at"),
            AuditEvent.username.label("username"),
            User.full_name.label("full_name"),
            _labelled(AuditEvent.action, ACTION_LABELS).label("action_label"),
            _labelled(AuditEvent.entity, ENTITY_LABELS).label("entity_label"),
            AuditEvent.entity_id.label("entity_id"),
            _labelled(AuditEvent.outcome, OUTCOME_LABELS).label("outcome_label"),
            AuditEvent.detail.label("detail"),
            AuditEvent.action.label("action"),
            AuditEvent.entity.label("entity"),
            AuditEvent.outcome.label("outcome"),
            AuditEvent.id.label("id"),
        )
        .select_from(AuditEvent)
        .outerjoin(User, User.id == AuditEvent.user_id)
        .where(*_conditions(filters))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )
    return AuditQuery(statement, COLUMNS)


def _conditions(filters: AuditFilters) -> list:
    conditions = []
    if filters.user_id is not None:
        conditions.append(AuditEvent.user_id == filters.user_id)
    if filters.username is not None:
        conditions.append(func.lower(AuditEvent.username) == filters.username.lower())
    if filters.action is not None:
        conditions.append(AuditEvent.action == filters.action)
    if filters.entity is not None:
        conditions.append(AuditEvent.entity == filters.entity)
    if filters.entity_id is not None:
        conditions.append(AuditEvent.entity_id == filters.entity_id)
    if filters.outcome is not None:
        conditions.append(AuditEvent.outcome == filters.outcome)
    if filters.date_from is not None:
        conditions.append(AuditEvent.at >= clock.from_london(filters.date_from, time(0)))
    if filters.date_to is not None:
        conditions.append(AuditEvent.at < clock.from_london(filters.date_to + timedelta(days=1), time(0)))
    return conditions


def search(
    session: Session,
    user: User,
    filters: AuditFilters,
    *,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """One page of the log, newest first, starting just after `after`."""
    query = list_query(user, filters)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    statement = query.statement
    if after is not None:
        statement = statement.where(tuple_(AuditEvent.at, AuditEvent.id) < tuple_(after.at, after.id))
    rows = [dict(row._mapping) for row in session.execute(statement.limit(limit + 1))]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1]["at"], rows[-1]["id"])
    return AuditPage(rows, next_cursor)


@dataclass(frozen=True)
class UserChoice:
    id: int
    username: str
    full_name: str


def user_choices(session: Session, user: User) -> list[UserChoice]:
    """Every account, for the 'member of staff' filter (disabled ones too: their trail matters)."""
    require(user, Permission.VIEW_AUDIT)
    rows = session.execute(select(User.id, User.username, User.full_name).order_by(User.full_name, User.username))
    return [UserChoice(*row) for row in rows]
