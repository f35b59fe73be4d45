"""Excel export of exactly the list on screen, saved column sets, and the KPI workbook.

`export_list` streams the rows of a list's own Core select (same filters, same columns, same
order as the screen; `yield_per`, so no ORM objects and no DataFrame) into the workbook writer,
then records one audit row saying which list, which filters (in words) and how many rows. The
file is written first and audited in its own write transaction, so a reading transaction never
holds SQLite's write lock while a large file is built; a refusal writes nothing and is audited as
denied (by `services.db`, when it leaves the caller's session).

The registry of lists lives in `services.export_lists`; this module is its one public door.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import numpy
import pandas as pd
from sqlalchemy import Select, func, select
from sqlmodel import Session

from models import SavedColumnSet, Team, User
from models.codes import ActivityKind
from models.export import COLUMN_SET_NAME_LIMIT
from models.validators import FieldError, free_text
from services import audit, caseload, clock, db
from services.errors import InputErrors, NotFound, PermissionDenied
from services.export_lists import LISTS, ExportableList, FilterField, FilterKind, describe_filters
from services.permissions import Permission, has_permission, require
from services.workbook import (
    PROTECTIVE_MARKING,
    ColumnKind,
    DataSheet,
    ExportColumn,
    write_counted_workbook,
    write_sheets,
)

__all__ = [
    "LISTS",
    "ExportResult",
    "ExportableList",
    "FilterField",
    "FilterKind",
    "KpiPeriod",
    "column_sets",
    "count_rows",
    "delete_column_set",
    "export_list",
    "exportable_lists",
    "file_name",
    "kpi_workbook",
    "month_period",
    "preview_rows",
    "quarter_period",
    "recent_periods",
    "save_column_set",
    "shown_value",
    "usable_columns",
]

YIELD_PER = 2000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class ExportResult:
    list_name: str
    title: str
    rows: int
    shortened_cells: int
    columns: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]  # in words, as on the About sheet and in the audit row
    exported_at: datetime
    file_name: str


# --- Which lists, for whom -------------------------------------------------------------------


def exportable_lists(user: User) -> list[ExportableList]:
    """The lists this user may both see and export (empty without the export permission)."""
    if not has_permission(user, Permission.EXPORT):
        return []
    return [exportable for exportable in LISTS.values() if exportable.may_see(user)]


def _allowed(user: User, list_name: str) -> ExportableList:
    """The list, when the user may export it; otherwise PermissionDenied naming the list."""
    exportable = LISTS.get(list_name)
    if exportable is None:
        raise NotFound(f"There is no list called {list_name!r} to export.")
    try:
        require(user, Permission.EXPORT)
        if not exportable.may_see(user):
            permissions = exportable.permission
            require(user, permissions[0] if isinstance(permissions, tuple) else permissions)
    except PermissionDenied as denial:
        raise denial.with_context(user, "export", entity=list_name) from None
    return exportable


def _chosen_columns(exportable: ExportableList, keys: Sequence[str] | None) -> tuple[ExportColumn, ...]:
    if keys is None:
        return exportable.columns
    by_key = {column.key: column for column in exportable.columns}
    unknown = [key for key in keys if key not in by_key]
    if unknown:
        raise InputErrors({"columns": f"{exportable.title} has no column {unknown[0]!r}."})
    if not keys:
        raise InputErrors({"columns": "Choose at least one column to export."})
    if len(set(keys)) != len(keys):
        raise InputErrors({"columns": "Each column can be chosen once."})
    return tuple(by_key[key] for key in keys)


def _statement(session: Session, user: User, exportable: ExportableList, filters,
               columns: Sequence[ExportColumn]) -> Select:
    """The list's own select, narrowed to the chosen columns (its joins, filters and order unchanged).

    When a chosen column is worked out per row (`ExportableList.derived`), the whole select is
    kept: the row function reads the columns it needs from it.
    """
    statement = exportable.select(session, user, filters)
    selected = statement.selected_columns
    keys = [column.key for column in columns]
    if keys == list(selected.keys()) or exportable.derived.intersection(keys):
        return statement
    return statement.with_only_columns(*[selected[key] for key in keys], maintain_column_froms=True)


def _list_rows(session: Session, user: User, exportable: ExportableList, filters, columns: Sequence[ExportColumn],
               now: datetime, *, limit: int | None = None, **options) -> Iterable[Sequence]:
    """The rows an export of these columns holds, in the list's order (what export_list writes)."""
    statement = _statement(session, user, exportable, filters, columns)
    return _rows(session, exportable, statement if limit is None else statement.limit(limit), columns, now,
                 **options)


def _rows(session: Session, exportable: ExportableList, statement: Select, columns: Sequence[ExportColumn],
          now: datetime, **options) -> Iterable[Sequence]:
    """The statement's rows as the chosen columns' values, in their order (derived ones worked out)."""
    keys = [column.key for column in columns]
    result = session.execute(statement.execution_options(**options) if options else statement)
    if not exportable.derived.intersection(keys):
        return result
    derive = exportable.derive(session, now)

    def rows():
        for row in result.mappings():
            derived = derive(row)
            yield tuple(derived[key] if key in exportable.derived else row[key] for key in keys)

    return rows()


def _filters(exportable: ExportableList, filters):
    """The list's filters object; None is "no filters", a mapping sets only the filters it names."""
    if filters is None:
        return exportable.no_filters()
    if isinstance(filters, Mapping):
        values = exportable.filter_values(exportable.no_filters())
        unknown = set(filters) - set(values)
        if unknown:
            raise InputErrors({"filters": f"{exportable.title} has no filter {sorted(unknown)[0]!r}."})
        return exportable.filters_from({**values, **filters})
    return filters


# --- Export ------------------------------------------------------------------------------------


def file_name(list_name: str, at: datetime | None = None, suffix: str = "xlsx") -> str:
    """`triage-queue-2026-11-29-1405.xlsx`: the list and the UK time it was exported."""
    moment = clock.to_london(at or clock.now())
    return f"{list_name.replace('_', '-')}-{moment:%Y-%m-%d-%H%M}.{suffix}"


def export_list(
    session: Session,
    user: User,
    list_name: str,
    filters: Any = None,
    columns: Sequence[str] | None = None,
    *,
    target: BinaryIO | str | Path,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Write the list as the user sees it with these filters to `target`, then audit the export.

    `columns` are column keys in the order wanted (None: every column, in the list's order).
    `progress(rows_written)` is called every 2,000 rows and at the end. Raises PermissionDenied
    (nothing written) without the export permission or the list's own.
    """
    exportable = _allowed(user, list_name)
    filters = _filters(exportable, filters)
    chosen = _chosen_columns(exportable, columns)
    exported_at = now or clock.now()
    described = tuple(describe_filters(session, user, exportable, filters))
    about = _about(session, user, exportable, described, chosen, exported_at)

    rows = _list_rows(session, user, exportable, filters, chosen, exported_at, yield_per=YIELD_PER)
    written = write_counted_workbook(target, title=exportable.title, columns=chosen, rows=rows, about=about,
                                     progress=progress, progress_every=YIELD_PER)
    _audit_list_export(session, user, exportable, described, chosen, written.rows)
    return ExportResult(
        list_name=exportable.name,
        title=exportable.title,
        rows=written.rows,
        shortened_cells=written.shortened_cells,
        columns=tuple(column.key for column in chosen),
        filters=described,
        exported_at=exported_at,
        file_name=file_name(exportable.name, exported_at),
    )


def filters_in_words(described: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{label}: {value}" for label, value in described) or "none (every record you may see)"


def _about(session: Session, user: User, exportable: ExportableList, described: Sequence[tuple[str, str]],
           chosen: Sequence[ExportColumn], exported_at: datetime) -> list[tuple[str, str]]:
    team = session.get(Team, user.team_id)
    lines = [("List", exportable.title)]
    if described:
        lines += [(f"Filter: {label}", value) for label, value in described]
    else:
        lines.append(("Filters", "None: every record you may see"))
    lines += [
        ("Columns", f"{len(chosen)} of {len(exportable.columns)}: " + ", ".join(c.heading for c in chosen)),
        ("Order", exportable.order),
        ("Exported by", f"{user.full_name} ({user.username})"),
        ("Team", team.name if team else ""),
        ("Exported at (UK time)", clock.format_datetime(exported_at)),
        ("Times", "UK local time (Europe/London, summer time included)"),
        ("Protective marking", PROTECTIVE_MARKING),
    ]
    return lines


def _audit_list_export(session: Session, user: User, exportable: ExportableList, described: Sequence[tuple[str, str]],
                  chosen: Sequence[ExportColumn], rows: int) -> None:
    detail = (f"{exportable.title}: {rows} rows; filters: {filters_in_words(described)}; "
              f"columns: {len(chosen)} of {len(exportable.columns)}")
    audit_export(session, user, exportable.name, detail)


def audit_export(session: Session, user: User, entity: str, detail: str, action: str = "export") -> None:
    if session.info.get("writing"):
        # The caller's own write transaction: the audit row commits with it.
        audit.record(session, user, action, entity=entity, detail=detail)
        return
    # Its own short write transaction, after the file is written: a reading session must not
    # take SQLite's write lock for as long as a large export takes.
    with db.writing(session.get_bind()) as writing:
        audit.record(writing, user, action, entity=entity, detail=detail)


# --- What the Export page shows before the download ---------------------------------------------


def count_rows(session: Session, user: User, list_name: str, filters: Any = None, *, up_to: int | None = None) -> int:
    """How many rows the export would have (at most `up_to`, to ask cheaply 'more than N?')."""
    exportable = _allowed(user, list_name)
    statement = exportable.select(session, user, _filters(exportable, filters)).order_by(None)
    if up_to is not None:
        statement = statement.limit(up_to)
    return session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def preview_rows(session: Session, user: User, list_name: str, filters: Any = None,
                 columns: Sequence[str] | None = None, limit: int = PREVIEW_ROWS, *,
                 audited: bool = True) -> list[dict[str, object]]:
    """The first rows of the export as the screen shows them: heading → value (UK dates, Yes/No).

    A preview shows names, dates of birth, risk and scores, so showing one is audited
    ("preview_export": the list, its filters and columns, how many rows were shown), in the
    caller's write transaction or a short one of its own. A page redrawing a preview it has
    already audited in the same browser session passes `audited=False`.
    """
    exportable = _allowed(user, list_name)
    filters = _filters(exportable, filters)
    chosen = _chosen_columns(exportable, columns)
    shown = [
        {column.heading: shown_value(column, value) for column, value in zip(chosen, row, strict=True)}
        for row in _list_rows(session, user, exportable, filters, chosen, clock.now(), limit=limit)
    ]
    if audited:
        described = describe_filters(session, user, exportable, filters)
        detail = (f"{exportable.title}: first {len(shown)} rows shown; filters: {filters_in_words(described)}; "
                  f"columns: {len(chosen)} of {len(exportable.columns)}")
        audit_export(session, user, exportable.name, detail, action="preview_export")
    return shown


def shown_value(column: ExportColumn, value):
    """A value as a list on screen shows it: UK dates and times, Yes/No, text as text."""
    if value is None:
        return None
    if column.kind is ColumnKind.datetime and isinstance(value, datetime):
        return clock.format_datetime(value)
    if column.kind is ColumnKind.date and isinstance(value, date):
        return clock.format_date(value)
    if column.kind is ColumnKind.yes_no:
        return "Yes" if value else "No"
    if column.kind is ColumnKind.hours and hasattr(value, "total_seconds"):
        return round(value.total_seconds() / 3600, 1)
    if column.kind in (ColumnKind.identifier, ColumnKind.text):
        return str(value)
    return value


# --- Saved column sets ---------------------------------------------------------------------------


def column_sets(session: Session, user: User, list_name: str) -> list[SavedColumnSet]:
    """The user's own saved column sets for a list, by name."""
    _allowed(user, list_name)
    query = (
        select(SavedColumnSet)
        .where(SavedColumnSet.user_id == user.id, SavedColumnSet.list_name == list_name)
        .order_by(SavedColumnSet.name)
    )
    return list(session.execute(query).scalars())


def usable_columns(exportable: ExportableList, saved: SavedColumnSet) -> list[str]:
    """A saved set's columns that the list still has, in the saved order."""
    known = set(exportable.column_keys())
    return [key for key in saved.columns if key in known]


def save_column_set(session: Session, user: User, list_name: str, name: str,
                    columns: Sequence[str]) -> SavedColumnSet:
    """Save (or replace) the user's column set of this name for this list."""
    exportable = _allowed(user, list_name)
    errors: dict[str, str] = {}
    try:
        name = free_text(name, "column_set_name", COLUMN_SET_NAME_LIMIT, required=True)
    except FieldError as error:
        errors[error.field] = error.message
    try:
        keys = [column.key for column in _chosen_columns(exportable, list(columns))]
    except InputErrors as refused:
        errors.update(refused.errors)
    if errors:
        raise InputErrors(errors)
    existing = session.execute(
        select(SavedColumnSet).where(
            SavedColumnSet.user_id == user.id, SavedColumnSet.list_name == list_name, SavedColumnSet.name == name
        )
    ).scalar_one_or_none()
    if existing is None:
        saved = SavedColumnSet(user_id=user.id, list_name=list_name, name=name, columns=keys)
        session.add(saved)
        action = "create_column_set"
    else:
        saved = existing
        saved.columns = keys
        saved.updated_at = clock.now()
        action = "update_column_set"
    session.flush()
    audit.record(session, user, action, entity="column_set", entity_id=saved.id,
                 detail=f"{exportable.title}: {len(keys)} columns")
    return saved


def delete_column_set(session: Session, user: User, column_set_id: int) -> None:
    """Delete one of the user's own column sets (nobody else's)."""
    require(user, Permission.EXPORT)
    saved = session.get(SavedColumnSet, column_set_id)
    if saved is None or saved.user_id != user.id:
        raise NotFound("No such saved column set.")
    session.delete(saved)
    audit.record(session, user, "delete_column_set", entity="column_set", entity_id=column_set_id)


# --- KPI workbook ------------------------------------------------------------------------------

KPI_LIST_NAME = "kpi_workbook"
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")


@dataclass(frozen=True)
class KpiPeriod:
    label: str
    start: date  # London dates, both included
    end: date


def month_period(year: int, month: int) -> KpiPeriod:
    start = date(year, month, 1)
    end = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    return KpiPeriod(f"{MONTH_NAMES[month - 1]} {year}", start, end)


def quarter_period(year: int, quarter: int) -> KpiPeriod:
    """A quarter of the NHS financial year that starts in April of `year` (quarter 1: April to June)."""
    if quarter not in (1, 2, 3, 4):
        raise ValueError("a quarter is 1, 2, 3 or 4")
    first = 3 + 3 * (quarter - 1)  # months after January of `year`: April is 3
    start = date(year + first // 12, first % 12 + 1, 1)
    end = month_period(year + (first + 2) // 12, (first + 2) % 12 + 1).end
    return KpiPeriod(
        f"Q{quarter} {year}/{(year + 1) % 100:02d} ({MONTH_NAMES[start.month - 1]} to "
        f"{MONTH_NAMES[end.month - 1]} {end.year})",
        start,
        end,
    )


def recent_periods(today: date | None = None, months: int = 13, quarters: int = 5) -> list[KpiPeriod]:
    """The last `months` months and `quarters` financial quarters, the current ones first."""
    today = today or clock.today_in_london()
    periods = []
    year, month = today.year, today.month
    for _ in range(months):
        periods.append(month_period(year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    financial_year = today.year if today.month >= 4 else today.year - 1
    quarter = (today.month - 4) % 12 // 3 + 1
    for _ in range(quarters):
        periods.append(quarter_period(financial_year, quarter))
        financial_year, quarter = (financial_year, quarter - 1) if quarter > 1 else (financial_year - 1, 4)
    return periods


def kpi_workbook(session: Session, user: User, period: KpiPeriod, *, target: BinaryIO | str | Path,
                 now: datetime | None = None) -> ExportResult:
    """One sheet per caseload measure for the period (the charts' own functions), plus About."""
    try:
        require(user, Permission.EXPORT)
        require(user, Permission.VIEW_CASELOAD)
    except PermissionDenied as denial:
        raise denial.with_context(user, "export", entity=KPI_LIST_NAME) from None
    filters = caseload.CaseloadFilters(start=period.start, end=period.end)
    frames = caseload.all_measures(session, user, filters)
    sheets = _kpi_sheets(session, user, filters, frames)
    exported_at = now or clock.now()
    team = session.get(Team, user.team_id)
    about = [
        ("Workbook", "KPI workbook: caseload measures"),
        ("Period", f"{period.label}: {clock.format_date(period.start)} to {clock.format_date(period.end)}"),
        ("Requests", filters.describe()),
        ("Team", team.name if team else ""),
        ("Exported by", f"{user.full_name} ({user.username})"),
        ("Exported at (UK time)", clock.format_datetime(exported_at)),
        ("Protective marking", PROTECTIVE_MARKING),
    ]
    about += [(caseload.MEASURES[key].title, caseload.MEASURES[key].definition) for key in frames]
    written = write_sheets(target, sheets, about=about)
    detail = f"KPI workbook: {period.label}; {len(sheets)} measures; {written.rows} rows"
    audit_export(session, user, KPI_LIST_NAME, detail)
    return ExportResult(
        list_name=KPI_LIST_NAME,
        title=f"KPI workbook {period.label}",
        rows=written.rows,
        shortened_cells=written.shortened_cells,
        columns=tuple(frames),
        filters=(("Period", period.label),),
        exported_at=exported_at,
        file_name=file_name(KPI_LIST_NAME, exported_at),
    )


# Per-period measures are laid out one row per period: every London week (its Monday) or calendar
# month (its first day) of the range, in order, as a real Excel date, with zeros where nothing
# happened; what the chart stacks or colours becomes a column each. The other measures are written
# as the caseload functions return them.
WEEK_BEGINNING = ExportColumn("week", "Week beginning (Monday)", ColumnKind.date)
MONTH = ExportColumn("month", "Month", ColumnKind.month)


def _kpi_sheets(session: Session, user: User, filters: "caseload.CaseloadFilters",
               frames: Mapping[str, pd.DataFrame]) -> list[DataSheet]:
    """One sheet per caseload measure, in the page's order."""
    layouts = {
        "requests_by_week_and_site": lambda frame: weeks_by_category(
            filters, frame, "site_id", _sites(session, user, frame), "requests", "All sites"),
        "requests_by_week_and_source": lambda frame: weeks_by_category(
            filters, frame, "source", _sources(session, user, frame), "requests", "All sources"),
        "screening_within_target_by_week": lambda frame: screening_weeks(filters, frame),
        "activities_by_month": lambda frame: activity_months(filters, frame),
    }
    sheets = []
    for key, frame in frames.items():
        title = caseload.MEASURES[key].title
        layout = layouts.get(key)
        sheets.append(DataSheet(title, *layout(frame)) if layout else measure_sheet(title, frame))
    return sheets


def month_starts(start: date, end: date) -> list[date]:
    """The first day of every calendar month that overlaps [start, end], in order."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _sites(session: Session, user: User, frame: pd.DataFrame) -> dict:
    """The team's sites by name, then any other site the period's requests came from."""
    sites = dict(caseload.filter_choices(session, user).sites)
    for site_id, name in zip(frame["site_id"], frame["site"], strict=True):
        sites.setdefault(python_value(site_id), name)
    return sites


def _sources(session: Session, user: User, frame: pd.DataFrame) -> dict:
    """The sources of referral in the team's order, then any other code the period's requests have."""
    sources = dict(caseload.filter_choices(session, user).sources)
    for code, label in zip(frame["source"], frame["source_label"], strict=True):
        sources.setdefault(python_value(code), label)
    return sources


def _counts(frame: pd.DataFrame, period: str, category: str, value: str) -> dict[tuple, int]:
    counts: dict[tuple, int] = {}
    for when, what, count in zip(frame[period], frame[category], frame[value], strict=True):
        key = (_period_date(when), python_value(what))
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def _period_date(value) -> date:
    """A week's Monday or a month ('2026-11' as SQL gives it) as a date."""
    value = python_value(value)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    return date.fromisoformat(text if len(text) == 10 else f"{text[:7]}-01")


def weeks_by_category(filters, frame: pd.DataFrame, category: str, labels: Mapping, value: str,
                      total_heading: str) -> tuple[list[ExportColumn], list[tuple]]:
    """A row per week of the range, a column per category (zeros included), then the week's total."""
    counts = _counts(frame, "week", category, value)
    categories = list(labels)
    columns = [WEEK_BEGINNING, *(ExportColumn(f"{category}:{code}", str(labels[code]), ColumnKind.number)
                                 for code in categories),
               ExportColumn("total", total_heading, ColumnKind.number)]
    rows = []
    for week in caseload.week_starts(filters):
        values = [counts.get((week, code), 0) for code in categories]
        rows.append((week, *values, sum(values)))
    return columns, rows


def screening_weeks(filters, frame: pd.DataFrame) -> tuple[list[ExportColumn], list[tuple]]:
    """A row per week: screened requests green, amber and red, how many, how many within target, the share."""
    counts = _counts(frame, "week", "rag", "requests")
    columns = [WEEK_BEGINNING,
               *(ExportColumn(rag, label, ColumnKind.number) for rag, label in caseload.RAG_LABELS.items()),
               ExportColumn("screened", "Screened", ColumnKind.number),
               ExportColumn("within_target", "Within target", ColumnKind.number),
               ExportColumn("share_within_target", "Share within target", ColumnKind.number)]
    rows = []
    for week in caseload.week_starts(filters):
        by_rag = [counts.get((week, rag), 0) for rag in caseload.RAG_LABELS]
        screened, within = sum(by_rag), sum(by_rag) - counts.get((week, "red"), 0)
        rows.append((week, *by_rag, screened, within, within / screened if screened else None))
    return columns, rows


def activity_months(filters, frame: pd.DataFrame) -> tuple[list[ExportColumn], list[tuple]]:
    """A row per calendar month: MAPPA meetings, training sessions and people trained."""
    kinds = (ActivityKind.MAPPA_MEETING.value, ActivityKind.TRAINING.value)
    sessions = _counts(frame, "month", "kind", "sessions")
    trained = _counts(frame, "month", "kind", "people_trained")
    columns = [MONTH, ExportColumn("mappa_meetings", "MAPPA meetings", ColumnKind.number),
               ExportColumn("training_sessions", "Training sessions", ColumnKind.number),
               ExportColumn("people_trained", "People trained", ColumnKind.number)]
    rows = [(month, *(sessions.get((month, kind), 0) for kind in kinds),
             sum(trained.get((month, kind), 0) for kind in kinds))
            for month in month_starts(filters.start, filters.end)]
    return columns, rows


def measure_sheet(title: str, frame) -> DataSheet:
    """A measure's small DataFrame as a sheet: a column each, typed from its values."""
    rows = [tuple(python_value(value) for value in row) for row in frame.itertuples(index=False, name=None)]
    columns = [
        ExportColumn(str(name), heading_of(str(name)), kind_of_values([row[position] for row in rows]))
        for position, name in enumerate(frame.columns)
    ]
    return DataSheet(title, columns, rows)


def python_value(value):
    """A pandas or numpy value as the plain Python value the writer takes; missing as None."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float | numpy.floating) and math.isnan(value):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, numpy.generic):
        return value.item()
    return value


def kind_of_values(values: Sequence) -> ColumnKind:
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return ColumnKind.yes_no
    if present and all(isinstance(value, int | float | Decimal) and not isinstance(value, bool) for value in present):
        return ColumnKind.number
    if present and all(isinstance(value, datetime) for value in present):
        return ColumnKind.datetime
    if present and all(isinstance(value, date) for value in present):
        return ColumnKind.date
    return ColumnKind.text


def heading_of(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
