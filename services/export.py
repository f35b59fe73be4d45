"""Excel export of exactly the list on screen, saved column sets, and the KPI workbook.

`export_list` streams the rows of a list's own Core select (same filters, same columns, same
order as the screen; `yield_per`, so no ORM objects and no DataFrame) into the workbook writer,
then records one audit row saying which list, which filters (in words) and how many rows. The
file is written first and audited in its own write transaction, so a reading transaction never
holds SQLite's write lock while a large file is built; a refusal writes nothing and is audited as
denied (by `services.db`, when it leaves the caller's session).

The registry of lists lives in `services.export_lists`; this module is its one public door.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, func, select
from sqlmodel import Session

from models import SavedColumnSet, Team, User
from models.export import COLUMN_SET_NAME_LIMIT
from models.validators import FieldError, free_text
from services import audit, clock, db
from services.errors import InputErrors, NotFound, PermissionDenied
from services.export_lists import LISTS, ExportableList, FilterField, FilterKind, describe_filters
from services.permissions import Permission, has_permission, require
from services.workbook import PROTECTIVE_MARKING, ColumnKind, ExportColumn, write_counted_workbook

__all__ = [
    "LISTS",
    "ExportResult",
    "ExportableList",
    "FilterField",
    "FilterKind",
    "column_sets",
    "count_rows",
    "delete_column_set",
    "export_list",
    "exportable_lists",
    "file_name",
    "preview_rows",
    "save_column_set",
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
    return [exportable for exportable in LISTS.values() if has_permission(user, exportable.permission)]


def _allowed(user: User, list_name: str) -> ExportableList:
    """The list, when the user may export it; otherwise PermissionDenied naming the list."""
    exportable = LISTS.get(list_name)
    if exportable is None:
        raise NotFound(f"There is no list called {list_name!r} to export.")
    try:
        require(user, Permission.EXPORT)
        require(user, exportable.permission)
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
    """The list's own select, narrowed to the chosen columns (its joins, filters and order unchanged)."""
    statement = exportable.select(session, user, filters)
    selected = statement.selected_columns
    if [column.key for column in columns] == list(selected.keys()):
        return statement
    return statement.with_only_columns(*[selected[column.key] for column in columns], maintain_column_froms=True)


def _filters(exportable: ExportableList, filters):
    return exportable.no_filters() if filters is None else filters


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
    statement = _statement(session, user, exportable, filters, chosen)
    exported_at = now or clock.now()
    described = tuple(describe_filters(session, user, exportable, filters))
    about = _about(session, user, exportable, described, chosen, exported_at)

    rows = session.execute(statement.execution_options(yield_per=YIELD_PER))
    written = write_counted_workbook(target, title=exportable.title, columns=chosen, rows=rows, about=about,
                                     progress=progress, progress_every=YIELD_PER)
    _audit_export(session, user, exportable, described, chosen, written.rows)
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


def _audit_export(session: Session, user: User, exportable: ExportableList, described: Sequence[tuple[str, str]],
                  chosen: Sequence[ExportColumn], rows: int) -> None:
    detail = (f"{exportable.title}: {rows} rows; filters: {filters_in_words(described)}; "
              f"columns: {len(chosen)} of {len(exportable.columns)}")
    if session.info.get("writing"):
        # The caller's own write transaction: the audit row commits with it.
        audit.record(session, user, "export", entity=exportable.name, detail=detail)
        return
    # Its own short write transaction, after the file is written: a reading session must not
    # take SQLite's write lock for as long as a large export takes.
    with db.writing(session.get_bind()) as writing:
        audit.record(writing, user, "export", entity=exportable.name, detail=detail)


# --- What the Export page shows before the download ---------------------------------------------


def count_rows(session: Session, user: User, list_name: str, filters: Any = None, *, up_to: int | None = None) -> int:
    """How many rows the export would have (at most `up_to`, to ask cheaply 'more than N?')."""
    exportable = _allowed(user, list_name)
    statement = exportable.select(session, user, _filters(exportable, filters)).order_by(None)
    if up_to is not None:
        statement = statement.limit(up_to)
    return session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def preview_rows(session: Session, user: User, list_name: str, filters: Any = None,
                 columns: Sequence[str] | None = None, limit: int = PREVIEW_ROWS) -> list[dict[str, object]]:
    """The first rows of the export as the screen shows them: heading → value (UK dates, Yes/No)."""
    exportable = _allowed(user, list_name)
    chosen = _chosen_columns(exportable, columns)
    statement = _statement(session, user, exportable, _filters(exportable, filters), chosen).limit(limit)
    return [
        {column.heading: _shown(column, value) for column, value in zip(chosen, row, strict=True)}
        for row in session.execute(statement)
    ]


def _shown(column: ExportColumn, value):
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
