"""In real Chromium: an administrator finds their own sign-in in the audit log and exports the view;
the downloaded workbook holds the rows on screen and the export is audited."""

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from models import AuditEvent, User
from services import db
from tests.browser import browser, live_app, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser


def test_administrator_searches_and_exports_the_audit_log(page, live_app, tmp_path):  # noqa: F811
    with db.writing(live_app.engine) as session:  # export granted to this administrator by name
        session.get(User, live_app.staff.administrator.id).can_export = True
    sign_in(page, live_app, "admin")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    page.get_by_text("Page 1 · 1 entry on this page").wait_for()  # the administrator's own sign-in
    table = page.get_by_test_id("stDataFrame")
    # The grid is drawn on a canvas; its cells are in the accessible table behind it.
    table.get_by_text("Signed in", exact=True).wait_for(state="attached")  # words, not sign_in

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this view").click()
    saved = tmp_path / "audit.xlsx"
    download_info.value.save_as(saved)
    sheet = load_workbook(saved, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("When (UK time)", "Username", "Name now", "Action")
    assert rows[0][8] == "Action code"
    assert [(row[1], row[3], row[6], row[8]) for row in rows[1:]] == [("admin", "Signed in", "Succeeded", "sign_in")]

    with db.reading(live_app.engine) as session:
        exported = session.exec(select(AuditEvent).where(AuditEvent.action == "export")).one()
    assert exported.user_id == live_app.staff.administrator.id
    assert exported.entity == "audit_log" and exported.detail.startswith("Audit log: 1 rows; filters: none")
