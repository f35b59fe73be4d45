"""In real Chromium, the monthly national return (MHSDS) as a team lead meets it, on the month of
tests/test_national_return.py (October 2026, built by hand) seeded into the live app's database.

The server runs on the real clock, so October 2026 is not the month the Export page first offers
(that is the last complete month): each journey chooses it. What is on screen is checked against
the services and the database: the report's counts, the records to fix, the audit rows written
by opening a record or downloading the return, and the files read back.

- Export → "National return (MHSDS)": a line of the data-quality grid lists its records to fix;
  another line replaces the list; a rerun or a refresh never moves the choice to another check;
  each link opens exactly its record, and that opening is audited.
- Both downloads: the workbook (openpyxl) and the zip of CSV files hold the service's tables; each
  click writes one export audit row.
- Caseload: the heatmap draws one cell per check per month; a click on a cell lists its records.
- A practitioner is refused the Export page, and so its national return.
"""

import csv
import io
import re
import time
import zipfile
from urllib.parse import parse_qs, urlparse

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlmodel import func, select

from models import AuditEvent
from services import db, national_return
from services.national_return import CHECKS, CHECKS_BY_KEY, RETURN_NAME, ReturnMonth
from tests.browser import (  # noqa: F401
    LIVE_ELEMENT,
    browser,
    chart_under_heading,
    choose,
    choose_row,
    drawn_rect_marks,
    grid,
    grid_row_number,
    grid_rows,
    idle,
    live_app,
    page,
    reload_and_settle,
    rerun,
    selected_grid_rows,
    sign_in,
)
from tests.test_national_return import OCTOBER, build_month
from ui.national_return import RECORD_PAGES, record_label

pytestmark = pytest.mark.browser

TAB = "National return (MHSDS)"
ERROR_BOX = "This app has encountered an error"
HEATMAP_HEADING = "Data quality for the national return"
# Which page a record to fix opens, by its kind: the page's address and the audit action of opening it.
RECORD_PAGE_PATHS = {kind: path.removeprefix("pages/").removesuffix(".py").split("_", 1)[1]
                     for kind, path in RECORD_PAGES.items()}
OPENING_ACTIONS = {"person": "view_person", "request": "view_request", "screening": "view_screening"}


@pytest.fixture(scope="module")
def october(live_app):  # noqa: F811
    """The hand-built October 2026 in the live app's database: its records' ids by name (P1, Q3, S2…)."""
    return build_month(live_app.engine, live_app.staff)


def to_fix(live_app, check_key: str, month: ReturnMonth = OCTOBER):  # noqa: F811
    with db.reading(live_app.engine) as session:
        return national_return.records_to_fix(session, live_app.staff.team_lead, month, check_key)


def audit_count(live_app, **where) -> int:  # noqa: F811
    conditions = [getattr(AuditEvent, column) == value for column, value in where.items()]
    with db.reading(live_app.engine) as session:
        return session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()


def wait_for_audit_count(live_app, expected: int, *, at_least: bool = False, **where) -> None:  # noqa: F811
    """The audit row is written by the server during the run a click starts: wait for it to arrive."""
    deadline = time.monotonic() + 20
    while (found := audit_count(live_app, **where)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found >= expected if at_least else found == expected, f"{found} audit rows {where}, not {expected}"


def assert_no_error(page) -> None:  # noqa: F811
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text(ERROR_BOX).count() == 0


# --- The Export page's tab ---------------------------------------------------------------------------


def open_national_return(page, live_app, month: ReturnMonth = OCTOBER) -> None:  # noqa: F811
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Export").click()
    page.get_by_role("heading", name="Export").first.wait_for()
    idle(page)
    show_tab(page)
    choose(page, "Reporting month", month.label)
    page.get_by_role("heading", name=f"Data quality, {month.label}").wait_for()
    idle(page)


def show_tab(page) -> None:  # noqa: F811
    page.get_by_role("tab", name=TAB).click()
    page.get_by_text("Reporting month").locator("visible=true").first.wait_for()


def quality_grid(page) -> int:  # noqa: F811
    """The data-quality grid's number among the page's live tables: the other tabs' tables are on the page too."""
    idle(page)
    tables = page.locator(f'{LIVE_ELEMENT} [data-testid="stDataFrame"]')
    shown = [number for number in range(tables.count()) if tables.nth(number).is_visible()]
    assert len(shown) == 1, f"{len(shown)} tables are visible on the tab"
    return shown[0]


def choose_check(page, title: str) -> None:  # noqa: F811
    """Choose the report's line for a check, by its title, as a person would: a click on its row's box."""
    table = quality_grid(page)
    choose_row(page, grid_row_number(page, title, table), table)


def list_heading(check_key: str, found: list, month: ReturnMonth = OCTOBER) -> str:
    records = "record" if len(found) == 1 else "records"
    return f"{CHECKS_BY_KEY[check_key].title}, {month.label}: {len(found):,} {records} to fix."


def assert_listed(page, live_app, check_key: str, month: ReturnMonth = OCTOBER) -> list:  # noqa: F811
    """The records to fix shown are exactly the service's for that check and month (count and links)."""
    found = to_fix(live_app, check_key, month)
    assert found, f"the seeded month has nothing to fix for {check_key}: choose another check"
    live = page.locator(LIVE_ELEMENT).locator("visible=true")
    live.get_by_text(list_heading(check_key, found, month)).wait_for()
    # The page's own links (the sidebar's are page links too), those to a record only.
    links = page.locator(f'[data-testid="stMain"] {LIVE_ELEMENT} [data-testid="stPageLink"] a').locator("visible=true")
    shown = [text.strip() for text in links.all_inner_texts()
             if re.match(r"^(Person|Request|Screening) ", text.strip())]
    assert shown == [record_label(record) for record in found]
    others = [check.key for check in CHECKS if check.key != check_key]
    for other in others:  # one list at a time: no other check's heading is left on the tab
        expect(live.get_by_text(re.compile(rf"^{re.escape(CHECKS_BY_KEY[other].title)}, "))).to_have_count(0)
    return found


def test_the_report_shows_each_checks_counts_for_the_chosen_month(page, live_app, october):  # noqa: F811
    open_national_return(page, live_app)
    with db.reading(live_app.engine) as session:
        lines = national_return.quality_report(session, live_app.staff.team_lead, OCTOBER)
    rows = grid_rows(page, quality_grid(page))
    assert len(rows) == len(CHECKS)
    for cells, line in zip(rows, lines, strict=True):
        counts = [str(line.records), *(str(line.counts[quality]) for quality in national_return.Quality)]
        position = cells.index(line.check.title)
        assert cells[position + 3:position + 8] == counts, (line.check.key, cells)
    assert selected_grid_rows(page, quality_grid(page)) == []
    page.get_by_text("Choose a line to list the records to fix.").wait_for()
    assert_no_error(page)


# The last line too: the grid is tall enough for all twelve, so none is chosen out of sight.
@pytest.mark.parametrize("check_key", ["source_of_referral", "birth_date", "contact_mechanism", "attendance"])
def test_a_line_lists_its_records_and_each_link_opens_exactly_that_record(page, live_app, october,  # noqa: F811
                                                                         check_key):
    open_national_return(page, live_app)
    choose_check(page, CHECKS_BY_KEY[check_key].title)
    found = assert_listed(page, live_app, check_key)
    record = found[0]
    opened = dict(action=OPENING_ACTIONS[record.kind], entity=record.kind, entity_id=record.record_id,
                  user_id=live_app.staff.team_lead.id)
    before = audit_count(live_app, **opened)

    page.locator(LIVE_ELEMENT).get_by_role("link", name=record_label(record), exact=True).click()
    page.wait_for_url(re.compile(rf"/{RECORD_PAGE_PATHS[record.kind]}\?"))
    assert parse_qs(urlparse(page.url).query) == {"id": [str(record.record_id)]}
    assert_record_page(page, record, october)
    wait_for_audit_count(live_app, before + 1, **opened)
    assert_no_error(page)


def assert_record_page(page, record, october: dict) -> None:  # noqa: F811
    """The page opened shows the record asked for: its reference, or its person's name, or its context."""
    people = {record_id: name for name, record_id in october.items() if name.startswith("P")}  # P1…P6, PO
    if record.kind == "request":
        page.get_by_role("heading", name=f"Request {record.reference}", exact=True).wait_for()
    elif record.kind == "person":
        page.get_by_role("heading", name="People", exact=True).wait_for()
        page.get_by_text(f"Name: {people[record.record_id]} Test").wait_for()
    else:
        page.get_by_role("heading", name="Screening", exact=True).wait_for()
        page.get_by_text(record.reference).first.wait_for()
    idle(page)


def test_another_line_replaces_the_list_and_a_rerun_or_refresh_keeps_to_the_choice(page, live_app,  # noqa: F811
                                                                                 october):
    open_national_return(page, live_app)
    choose_check(page, CHECKS_BY_KEY["closure_reason"].title)
    assert_listed(page, live_app, "closure_reason")

    choose_check(page, CHECKS_BY_KEY["nhs_number"].title)
    assert_listed(page, live_app, "nhs_number")
    table = quality_grid(page)
    chosen = selected_grid_rows(page, table)
    assert [CHECKS_BY_KEY["nhs_number"].title in cells for cells in chosen] == [True]

    # A rerun of the whole page (another tab's widget changed) keeps the same line and its list.
    page.get_by_role("tab", name="A list").click()
    other_list = next_list_title(page)
    rerun(page, lambda: choose(page, "List", other_list))
    show_tab(page)
    idle(page)
    assert selected_grid_rows(page, quality_grid(page)) == chosen
    assert_listed(page, live_app, "nhs_number")

    # A refresh starts the page afresh: no line, or the same line, is chosen; never another check.
    reload_and_settle(page)
    show_tab(page)
    choose(page, "Reporting month", OCTOBER.label)
    page.get_by_role("heading", name=f"Data quality, {OCTOBER.label}").wait_for()
    idle(page)
    assert selected_grid_rows(page, quality_grid(page)) in ([], chosen)
    for check in CHECKS:
        if check.key != "nhs_number":
            expect(page.get_by_text(re.compile(rf"^{re.escape(check.title)}, {OCTOBER.label}: "))).to_have_count(0)
    assert_no_error(page)


def next_list_title(page) -> str:  # noqa: F811
    """A list of the "A list" tab other than the one chosen: choosing it makes the whole page run again."""
    idle(page)
    page.locator(LIVE_ELEMENT).get_by_label("List", exact=True).locator("visible=true").click()
    others = page.get_by_role("option", selected=False).all_inner_texts()
    page.keyboard.press("Escape")
    return next(option.strip() for option in others if option.strip())


# --- The downloads -----------------------------------------------------------------------------------


def download(page, tmp_path, label: str):  # noqa: F811
    with page.expect_download() as download_info:
        page.get_by_role("button", name=label).click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    return saved


def built_return(live_app):  # noqa: F811
    with db.reading(live_app.engine) as session:
        return national_return.build_return(session, live_app.staff.team_lead, OCTOBER)


def test_the_workbook_download_holds_the_months_tables_and_is_audited_once(page, live_app, october,  # noqa: F811
                                                                          tmp_path):
    open_national_return(page, live_app)
    exported = dict(action="export", entity=RETURN_NAME, user_id=live_app.staff.team_lead.id)
    before = audit_count(live_app, **exported)
    saved = download(page, tmp_path, f"Download the {OCTOBER.label} return: Excel workbook")
    assert saved.name == national_return.file_name(OCTOBER, "xlsx")
    wait_for_audit_count(live_app, before + 1, **exported)

    expected = built_return(live_app)
    workbook = load_workbook(saved, read_only=True)
    names = [table.name for table in expected.tables]
    assert workbook.sheetnames[:len(names) + 1] == [*names, "Data quality"]
    for table in expected.tables:
        rows = list(workbook[table.name].iter_rows(values_only=True))
        assert rows[0] == tuple(column.heading for column in table.columns)
        assert len(rows) - 1 == len(table.rows), table.name
    quality = list(workbook["Data quality"].iter_rows(values_only=True))
    assert [row[2] for row in quality[1:]] == [check.title for check in CHECKS]
    assert_no_error(page)


def test_the_csv_zip_download_holds_one_file_per_table_and_is_audited_once_per_file(page, live_app, october,  # noqa: F811
                                                                               tmp_path):
    open_national_return(page, live_app)
    exported = dict(action="export", entity=RETURN_NAME, user_id=live_app.staff.team_lead.id)
    before = audit_count(live_app, **exported)
    label = f"Download the {OCTOBER.label} return: CSV files (zip)"
    saved = download(page, tmp_path, label)
    assert saved.name == national_return.file_name(OCTOBER, "zip")
    wait_for_audit_count(live_app, before + 1, **exported)

    expected = built_return(live_app)
    with zipfile.ZipFile(saved) as archive:
        assert archive.namelist() == [*(f"{table.name}.csv" for table in expected.tables), "data_quality.csv"]
        for table in expected.tables:
            rows = list(csv.reader(io.StringIO(archive.read(f"{table.name}.csv").decode())))
            assert len(rows) - 1 == len(table.rows), table.name
        quality = list(csv.DictReader(io.StringIO(archive.read("data_quality.csv").decode())))
    assert [row["Check"] for row in quality] == [check.title for check in CHECKS]

    # A double click: the file arrives and the export is audited, one row for each file received.
    idle(page)
    received = []
    page.on("download", lambda file: received.append(file))
    page.get_by_role("button", name=label).dblclick()
    wait_for_audit_count(live_app, before + 2, at_least=True, **exported)
    page.wait_for_timeout(2_000)  # lets a second click's file and row arrive, if it makes one
    assert len(received) >= 1
    assert audit_count(live_app, **exported) == before + 1 + len(received)
    assert_no_error(page)


# --- The Caseload page's heatmap ---------------------------------------------------------------------


def heatmap(page):  # noqa: F811
    return chart_under_heading(page, HEATMAP_HEADING)


def heatmap_cells(page) -> list[dict]:  # noqa: F811
    """The heatmap's cells as drawn: each one's aria-label read into fields, and its box."""
    return drawn_rect_marks(heatmap(page))


def open_caseload(page, live_app) -> None:  # noqa: F811
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Caseload").click()
    page.get_by_role("heading", name="Caseload", exact=True).wait_for()
    page.get_by_role("heading", name=HEATMAP_HEADING, exact=True).wait_for()
    idle(page)
    # Twelve months of checks are counted only when asked for: the page's first visit does not wait.
    page.get_by_role("button", name="Show data quality for the last 12 months").click()
    heatmap(page).locator("g.mark-rect.role-mark > path").first.wait_for(state="attached")
    idle(page)


def click_cell(page, check_key: str, month: ReturnMonth) -> None:  # noqa: F811
    """Click a cell off its centre, where its rectangle is not under its label."""
    idle(page)
    title = CHECKS_BY_KEY[check_key].title
    cell = next(cell for cell in heatmap_cells(page)
                if cell["fields"].get("Check") == title and cell["fields"].get("Reporting month") == month.label)
    page.mouse.click(cell["x"] + cell["width"] * 0.2, cell["y"] + cell["height"] * 0.25)
    page.get_by_text(re.compile(rf"^{re.escape(title)}, {month.label}: ")).wait_for()
    idle(page)


def test_the_heatmap_draws_a_cell_per_check_per_month_and_a_click_lists_its_records(page, live_app,  # noqa: F811
                                                                                   october):
    open_caseload(page, live_app)
    cells = heatmap_cells(page)
    months = ReturnMonth.recent(12)
    assert len(cells) == len(months) * len(CHECKS)
    # a screen reader hears the whole month ("Reporting month: October 2026"), the axis shows "Oct 2026"
    drawn = {(cell["fields"]["Check"], cell["fields"]["Reporting month"], cell["fields"]["Month"]) for cell in cells}
    assert drawn == {(check.title, month.label, f"{month.first_day:%b %Y}") for check in CHECKS for month in months}
    assert all(cell["width"] >= 4 and cell["height"] >= 4 for cell in cells)
    with db.reading(live_app.engine) as session:
        by_month = national_return.quality_by_month(session, live_app.staff.team_lead)
    shown = {(cell["fields"]["Check"], cell["fields"]["Reporting month"]): int(cell["fields"]["Records"])
             for cell in cells}
    assert shown == {(row["title"], row["month_label"]): row["records"] for row in by_month}

    click_cell(page, "nhs_number", OCTOBER)
    assert_listed(page, live_app, "nhs_number")
    assert_no_error(page)
    click_cell(page, "closure_reason", OCTOBER)
    assert_listed(page, live_app, "closure_reason")
    assert_no_error(page)


# --- A practitioner ---------------------------------------------------------------------------------


def test_a_practitioner_is_refused_the_export_page_and_its_national_return(page, live_app, october):  # noqa: F811
    refused = dict(action="open_page", entity="page", outcome="denied", detail="Export",
                   user_id=live_app.staff.practitioner.id)
    before = audit_count(live_app, **refused)
    sign_in(page, live_app, "practitioner")
    expect(page.get_by_role("link", name="Export", exact=True)).to_have_count(0)
    page.goto(f"{live_app.url}/Export")
    page.get_by_text("You do not have permission to open this page.").wait_for()
    idle(page)
    expect(page.get_by_role("tab", name=TAB)).to_have_count(0)
    expect(page.get_by_text("Reporting month")).to_have_count(0)
    wait_for_audit_count(live_app, before + 1, **refused)
    assert audit_count(live_app, entity=RETURN_NAME, user_id=live_app.staff.practitioner.id) == 0
