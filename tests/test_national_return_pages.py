"""The national return on the Export page, its month-on-month chart on Caseload, and mapping a closure
reason's national code in Service settings (AppTest; the clicks on a report line and a chart cell are
in tests/test_browser_national_return.py, in Chromium)."""

import pytest
from sqlmodel import select

from models import AuditEvent, CodeItem, User
from models.codes import CodeList
from services import clock, db
from services.national_return import CHECKS, ReturnMonth
from tests.conftest import shown_errors, unescaped
from tests.test_national_return import NOW, build_month

EXPORT_PAGE = "pages/9_Export.py"
SETTINGS_PAGE = "pages/21_Service_settings.py"


@pytest.fixture(autouse=True)
def now(monkeypatch):
    """05/11/2026, as the hand-built month's tests: October 2026 is the last complete month."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return NOW


def _national_tab(test):
    (tab,) = [tab for tab in test.tabs if tab.label == "National return (MHSDS)"]
    return tab


def test_a_team_lead_sees_the_last_complete_months_report_and_both_downloads(app_test, sqlite_engine, sqlite_staff):
    build_month(sqlite_engine, sqlite_staff)
    test = app_test(EXPORT_PAGE, sqlite_staff.team_lead).run()
    assert not test.exception
    month = test.selectbox(key="national_return_month")
    last_complete = ReturnMonth(2026, 10)
    assert month.value == last_complete and month.label == "Reporting month"
    tab = _national_tab(test)
    assert f"Data quality, {last_complete.label}" in [header.value for header in tab.subheader]
    (report,) = [frame for frame in tab.dataframe if frame.key == f"national_quality_{last_complete.code}"]
    assert list(report.value["Check"]) == [check.title for check in CHECKS]
    assert [button.label for button in test.get("download_button") if button.key.startswith("national_return")] == [
        f"Download the {last_complete.label} return: Excel workbook",
        f"Download the {last_complete.label} return: CSV files (zip)"]


def test_the_report_counts_the_chosen_month(app_test, sqlite_engine, sqlite_staff):
    build_month(sqlite_engine, sqlite_staff)
    test = app_test(EXPORT_PAGE, sqlite_staff.team_lead).run()
    (report,) = [frame for frame in _national_tab(test).dataframe if frame.key == "national_quality_2026-10"]
    nhs = report.value.set_index("Check").loc["NHS number"]
    assert (nhs["Records"], nhs["Valid"], nhs["Invalid"], nhs["Missing"], nhs["Valid (%)"]) == (4, 2, 1, 1, 50.0)
    test.selectbox(key="national_return_month").set_value(ReturnMonth(2026, 9)).run()
    assert not test.exception
    (report,) = [frame for frame in _national_tab(test).dataframe if frame.key == "national_quality_2026-09"]
    assert report.value.set_index("Check").loc["Person on the referral", "Records"] == 3  # Q5, Q4 and Q7


def test_opening_the_tab_builds_and_audits_nothing(app_test, sqlite_engine, sqlite_staff):
    build_month(sqlite_engine, sqlite_staff)
    app_test(EXPORT_PAGE, sqlite_staff.team_lead).run()
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.entity == "national_return")).all() == []


def test_an_administrator_without_export_gets_no_return_and_one_with_it_does(app_test, sqlite_engine, sqlite_staff):
    refused = app_test(EXPORT_PAGE, sqlite_staff.administrator).run()
    assert "National return (MHSDS)" not in [tab.label for tab in refused.tabs]
    with db.writing(sqlite_engine) as session:
        session.get(User, sqlite_staff.administrator.id).can_export = True
    granted = app_test(EXPORT_PAGE, sqlite_staff.administrator).run()
    assert not granted.exception and _national_tab(granted) is not None


def test_the_caseload_page_draws_twelve_months_of_data_quality_when_asked(app_test, sqlite_engine, sqlite_staff):
    build_month(sqlite_engine, sqlite_staff)
    test = app_test("pages/7_Caseload.py", sqlite_staff.team_lead).run()
    assert not test.exception
    assert "Data quality for the national return" in [header.value for header in test.header]
    assert "chart_data_quality" not in [chart.key for chart in test.get("vega_lite_chart")]  # not on first visit
    (show,) = [button for button in test.button if button.label == "Show data quality for the last 12 months"]
    show.click().run()
    assert not test.exception
    assert "chart_data_quality" in [chart.key for chart in test.get("vega_lite_chart")]
    test.run()  # asked once: kept for the session's reruns
    assert "chart_data_quality" in [chart.key for chart in test.get("vega_lite_chart")]


def _closure_reason(sqlite_engine, code: str) -> CodeItem:
    with db.reading(sqlite_engine) as session:
        return session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.CLOSURE_REASON,
                                                   CodeItem.code == code)).one()


def _change_national_code(app_test, sqlite_engine, sqlite_staff, typed: str):
    screened = _closure_reason(sqlite_engine, "screened")
    test = app_test(SETTINGS_PAGE, sqlite_staff.administrator, query={"tab": "Code lists"}).run()
    test.selectbox(key="code_list").select("closure_reason").run()
    (choice,) = [box for box in test.selectbox if box.label == "Code to change"]
    choice.select(screened.id).run()
    (national,) = [box for box in test.text_input if box.label.startswith("National code (the national return")]
    national.input(typed)
    (save,) = [button for button in test.button if button.label == "Save national code"]
    save.click().run()
    return test, national


def test_a_closure_reason_gets_its_national_code_on_the_settings_page(app_test, sqlite_engine, sqlite_staff):
    test, _ = _change_national_code(app_test, sqlite_engine, sqlite_staff, "03")
    assert not test.exception
    assert "National code saved." in " ".join(unescaped(str(notice.value)) for notice in test.success)
    assert _closure_reason(sqlite_engine, "screened").national_code == "03"


def test_a_bad_national_code_is_refused_next_to_the_field_and_kept(app_test, sqlite_engine, sqlite_staff):
    test, national = _change_national_code(app_test, sqlite_engine, sqlite_staff, "12")
    assert "12 is not a national code for closure reasons: use one of 01, 02, 03, 04, 05, 06, 07, 08, 09." in \
        shown_errors(test)
    (kept,) = [box for box in test.text_input if box.label.startswith("National code (the national return")]
    assert kept.value == "12"
    assert _closure_reason(sqlite_engine, "screened").national_code is None
