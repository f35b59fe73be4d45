"""'Export this view': the one line a list page adds to offer its rows as an Excel file.

    export_button(user, "triage_queue", filters)
    st.dataframe(view_rows("triage_queue", rows))  # the same columns, from the same definition

Drawn only for users with the export permission who may see the list. The file is built when the
button is pressed, never on a rerun: for up to PROGRESS_THRESHOLD rows the download button builds
it itself (`st.download_button(data=<callable>)`, on Streamlit's download thread, where no progress
can be drawn); above that, a first button builds it in the page with a progress bar, then offers
the finished file. Either way `services.export` checks the permission again and audits the export.
"""

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from models import User
from services import db, export
from services.errors import InputErrors, ServiceError
from services.permissions import Permission, has_permission
from services.workbook import ColumnKind
from ui.guard import app_engine

PROGRESS_THRESHOLD = 5_000
PREPARED = "export_prepared"


@dataclass(frozen=True)
class Prepared:
    signature: str
    data: bytes
    file_name: str
    rows: int


def export_button(user: User, list_name: str, filters: Any = None, label: str = "Export this view", *,
                  columns: list[str] | None = None, key: str | None = None) -> None:
    """Offer this list, with these filters (and columns), as an .xlsx download.

    Without `columns`, the file has the columns the list's screen shows, in its order
    (`ExportableList.view`, which the page draws its table from: see `view_rows`).
    """
    exportable = export.LISTS[list_name]
    if not has_permission(user, Permission.EXPORT) or not exportable.may_see(user):
        return
    if columns is None:
        columns = exportable.view_keys()
    engine = app_engine()
    key = key or f"export_{list_name}"
    try:
        with db.reading(engine) as session:
            at_least = export.count_rows(session, user, list_name, filters, up_to=PROGRESS_THRESHOLD + 1)
    except InputErrors:
        st.caption("Correct the filters to export this list.")
        return
    if at_least <= PROGRESS_THRESHOLD:
        st.download_button(
            label,
            data=_builder(engine, user, list_name, filters, columns),
            file_name=export.file_name(list_name),
            mime=export.XLSX_MIME,
            on_click="ignore",
            icon=":material/download:",
            key=key,
            help="An Excel file of every row these filters select, in the order shown. The export is recorded.",
        )
        return
    _large_export(engine, user, list_name, filters, columns, label, key)


def view_rows(list_name: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the list's table shows them: its view's headings, in order, and each value as
    the screen writes it (UK dates and times, Yes/No, blank for nothing). "Export this view" writes
    the same columns, so the table and the file cannot drift apart."""
    columns = export.LISTS[list_name].view_columns()
    return [{column.heading: _shown(column, row[column.key]) for column in columns} for row in rows]


def _shown(column, value):
    shown = export.shown_value(column, value)
    if shown is None and column.kind in (ColumnKind.text, ColumnKind.identifier):
        return ""
    return shown


def _builder(engine: Engine, user: User, list_name: str, filters: Any, columns: list[str] | None):
    """The file, built when the button is pressed (on Streamlit's thread: no st calls here)."""

    def build() -> bytes:
        target = io.BytesIO()
        with db.reading(engine) as session:
            export.export_list(session, user, list_name, filters, columns, target=target)
        return target.getvalue()

    return build


def _large_export(engine: Engine, user: User, list_name: str, filters: Any, columns: list[str] | None,
                  label: str, key: str) -> None:
    signature = repr((list_name, filters, columns))
    prepared: Prepared | None = st.session_state.get(f"{PREPARED}_{key}")
    if prepared is not None and prepared.signature == signature:
        st.download_button(
            f"Download {prepared.file_name} ({prepared.rows:,} rows)",
            data=prepared.data,
            file_name=prepared.file_name,
            mime=export.XLSX_MIME,
            on_click=_forget,
            args=(key,),
            icon=":material/download:",
            type="primary",
            key=f"{key}_download",
        )
        return
    if not st.button(f"{label} (over {PROGRESS_THRESHOLD:,} rows)", icon=":material/download:", key=key,
                     help="Builds the Excel file with a progress bar, then offers it to download."):
        return
    try:
        prepared = _build_with_progress(engine, user, list_name, filters, columns, signature)
    except ServiceError as refused:
        st.error(str(refused), icon=":material/error:")
        return
    st.session_state[f"{PREPARED}_{key}"] = prepared
    st.rerun()


def _build_with_progress(engine: Engine, user: User, list_name: str, filters: Any, columns: list[str] | None,
                         signature: str) -> Prepared:
    with st.status("Building the Excel file…", expanded=True) as status:
        with db.reading(engine) as session:
            total = max(export.count_rows(session, user, list_name, filters), 1)
        bar = st.progress(0.0, text=f"0 of {total:,} rows written")

        def progress(rows: int) -> None:
            bar.progress(min(rows / total, 1.0), text=f"{rows:,} of {total:,} rows written")

        target = io.BytesIO()
        with db.reading(engine) as session:
            result = export.export_list(session, user, list_name, filters, columns, target=target, progress=progress)
        status.update(label=f"Ready: {result.rows:,} rows", state="complete", expanded=False)
    return Prepared(signature, target.getvalue(), result.file_name, result.rows)


def _forget(key: str) -> None:
    """Once downloaded, the file is not kept in the session."""
    st.session_state.pop(f"{PREPARED}_{key}", None)


def kpi_button(user: User, period: export.KpiPeriod, *, key: str = "export_kpi") -> None:
    """The KPI workbook of a month or quarter, built when pressed."""
    if not (has_permission(user, Permission.EXPORT) and has_permission(user, Permission.VIEW_CASELOAD)):
        return
    engine = app_engine()

    def build() -> bytes:
        target = io.BytesIO()
        with db.reading(engine) as session:
            export.kpi_workbook(session, user, period, target=target)
        return target.getvalue()

    st.download_button(
        f"Download the KPI workbook for {period.label}",
        data=build,
        file_name=export.file_name(f"kpi_workbook_{period.start:%Y-%m}_to_{period.end:%Y-%m}"),
        mime=export.XLSX_MIME,
        on_click="ignore",
        icon=":material/download:",
        key=key,
    )
