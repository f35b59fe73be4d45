"""The national return on screen: its data-quality report with the records to fix, its downloads, and
the month-on-month chart of the Caseload page. The counting is services/national_return.py's."""

import io
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from models import User
from services import db, export, national_return
from services.errors import InputErrors
from services.national_return import Quality, RecordToFix, ReturnMonth
from services.permissions import Permission, has_permission
from ui import charts

MONTHS_OFFERED = 24
SHOWN_RECORDS = 100  # links drawn at once: a month with every closure unmapped can list thousands
RECORD_PAGES = {"person": "pages/4_People.py", "request": "pages/3_Request.py", "screening": "pages/5_Screening.py"}
GRID_ROW_PIXELS = 35  # Streamlit's data grid: the heading and each row
RAG_BACKGROUNDS = {"green": "#c8e6c9", "amber": "#ffecb3", "red": "#ffcdd2", "none": ""}


def month_choice(key: str) -> ReturnMonth:
    """The reporting month, the last complete one first chosen."""
    months = ReturnMonth.recent(MONTHS_OFFERED)
    return st.selectbox("Reporting month", months, index=1, format_func=lambda month: month.label, key=key)


def quality_table(lines: list[national_return.QualityLine], key: str) -> national_return.Check | None:
    """The report, one line per check, red/amber/green by the share valid; the chosen line's check."""
    rows = national_return.quality_rows(lines)
    frame = pd.DataFrame([{
        "Check": row["title"], "Table": row["table"], "Field": row["field"], "Records": row["records"],
        **{quality.label: row[quality.value] for quality in Quality},
        "Valid (%)": row["share_valid"],
    } for row in rows])
    colours = [RAG_BACKGROUNDS[row["rag"]] for row in rows]
    styled = frame.style.apply(lambda column: [f"background-color: {colour}" if colour else "" for colour in colours],
                               subset=["Valid (%)"]).format({"Valid (%)": lambda share: "—" if pd.isna(share)
                                                             else f"{share:.1f}%"})
    # Tall enough for every line: a line scrolled out of view cannot be seen to be chosen.
    event = st.dataframe(styled, hide_index=True, on_select="rerun", selection_mode="single-row", key=key,
                         height=GRID_ROW_PIXELS * (len(rows) + 1) + 3)
    chosen = event.selection.rows if event is not None else []
    # The checks are a fixed list in a fixed order, so a row's position names its check on every rerun.
    return national_return.CHECKS[chosen[0]] if chosen else None


def records_to_fix(engine: Engine, user: User, month: ReturnMonth, check: national_return.Check) -> None:
    with db.reading(engine) as session:
        found = national_return.records_to_fix(session, user, month, check.key)
    st.markdown(f"**{check.title}, {month.label}: {len(found):,} "
                f"{'record' if len(found) == 1 else 'records'} to fix.** {check.fix}")
    if not found:
        st.success("Nothing to fix for this check in this month.", icon=":material/check_circle:")
        return
    if len(found) > SHOWN_RECORDS:
        st.caption(f"The first {SHOWN_RECORDS} by record number are shown; the list moves on as they are fixed.")
    with st.container(height=min(40 * len(found[:SHOWN_RECORDS]) + 20, 420)):
        for record in found[:SHOWN_RECORDS]:
            st.page_link(RECORD_PAGES[record.kind], label=record_label(record),
                         query_params={"id": str(record.record_id)})


def record_label(record: RecordToFix) -> str:
    words = {"person": f"Person {record.record_id}", "request": f"Request {record.reference}",
             "screening": f"Screening {record.record_id}" + (f" of {record.reference}" if record.reference else "")}
    return f"{words[record.kind]}: {record.quality.label.lower()}"


def export_tab(engine: Engine, user: User) -> None:
    """The Export page's national return: check the month's data quality, fix, then download."""
    st.write("The month's records as the Mental Health Services Data Set (MHSDS) tables this service feeds "
             "(team type D02), with a data-quality report. Fix what the report finds, then download. Dates and "
             "times are London time; a month runs from midnight on its first day to midnight after its last.")
    month = month_choice("national_return_month")
    with db.reading(engine) as session:
        lines = national_return.quality_report(session, user, month)
    st.subheader(f"Data quality, {month.label}")
    st.caption("Choose a line to list the records to fix. Green: 95% or more valid; amber: 80% to 95%; red: under "
               "80%. \"Not stated or not known\" are national codes a person may give, counted apart.")
    check = quality_table(lines, key=f"national_quality_{month.code}")
    if check is not None:
        records_to_fix(engine, user, month, check)
    st.subheader("Download")
    if has_permission(user, Permission.EXPORT):
        left, right = st.columns(2)
        with left:
            download(engine, user, month, national_return.write_workbook, "xlsx", export.XLSX_MIME, "Excel workbook")
        with right:
            download(engine, user, month, national_return.write_csv_zip, "zip", national_return.ZIP_MIME,
                     "CSV files (zip)")


def download(engine: Engine, user: User, month: ReturnMonth, write: Callable, suffix: str, mime: str,
             what: str) -> None:
    def build() -> bytes:
        target = io.BytesIO()
        with db.reading(engine) as session:
            write(session, user, month, target=target)
        return target.getvalue()

    st.download_button(f"Download the {month.label} return: {what}", data=build,
                       file_name=national_return.file_name(month, suffix), mime=mime, on_click="ignore",
                       icon=":material/download:", key=f"national_return_{suffix}")


CHART_MONTHS = 12
CHART_ASKED = "national_return_chart_asked"


@st.cache_data(ttl=300, show_spinner=False, max_entries=200)
def _month_rows(user_id: int, team_id: int, role: str, month: ReturnMonth, stamp: int, _user, _engine) -> list[dict]:
    """A month's chart rows, keyed by the user, their team, the month and the data version."""
    with db.reading(_engine) as session:
        return national_return.chart_rows(session, _user, month)


def _rows_with_progress(engine: Engine, user: User, stamp: int, today) -> list[dict]:
    months = list(reversed(ReturnMonth.recent(CHART_MONTHS, today)))
    bar = st.progress(0.0, text=f"Counting {months[0].label}…")
    rows = []
    for index, month in enumerate(months):
        rows += _month_rows(user.id, user.team_id, user.role, month, stamp, user, engine)
        bar.progress((index + 1) / len(months), text=f"Counted {index + 1} of {len(months)} months")
    bar.empty()
    return rows


def month_on_month(engine: Engine, user: User, stamp: int, today) -> None:
    """The Caseload page's chart: each check's share valid for the last 12 months; a cell lists its records.

    Counted when asked for (then kept for the session, from the cache while the data stay the same):
    twelve months of every check take seconds at a large service, which the page's first visit should
    not wait for.
    """
    with st.container(border=True):
        st.header("Data quality for the national return")
        st.caption("Each check of the monthly national return (MHSDS) for the last 12 months, this month last: the "
                   "share of records valid. The team's records in each month, whatever the filters above.")
        if not st.session_state.get(CHART_ASKED):
            if not st.button("Show data quality for the last 12 months", icon=":material/grid_on:",
                             key="national_return_show_chart"):
                return
            st.session_state[CHART_ASKED] = True
        spec = _spec(_rows_with_progress(engine, user, stamp, today))
        if spec is None:
            st.info("No records in the last 12 months.")
            return
        event = st.vega_lite_chart(spec=spec, width="stretch", on_select="rerun", selection_mode=charts.SELECTION,
                                   key="chart_data_quality")
        point = charts.selected_point(event, charts.QUALITY_FIELDS)
        if point is None:
            st.caption("Click a cell to list the records to fix for that check and month.")
            return
        try:
            month = ReturnMonth.parse(point["month_code"])
            check = national_return.CHECKS_BY_KEY[point["check"]]
        except (InputErrors, KeyError):
            st.warning("That cell has no list behind it.")
            return
        records_to_fix(engine, user, month, check)


def _spec(rows: list[dict]) -> dict | None:
    built = charts.data_quality_by_month(rows)
    return None if built.chart is None else charts.vega_lite(built.chart)
