"""In real Chromium: a team lead opens the Export page, downloads the triage queue, and the file opens
in openpyxl with the rows on screen, typed cells, formula-safe names and an audit row."""

from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from models import AuditEvent, Person
from services import clock, db, matching, requests
from services.workbook import ABOUT_SHEET_TITLE
from tests.browser import browser, live_app, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser

NAMES = [("=1+1", "O'Brien"), ("Siôn", "#N/A"), ("Nguyễn", "@SUM(1)")]


def log_requests(app) -> list[str]:
    staff = app.staff
    references = []
    with db.writing(app.engine) as session:
        for index, (given, family) in enumerate(NAMES):
            person = Person(team_id=staff.team.id, given_name=given, family_name=family,
                            nhs_number_status="not_known", given_name_key=matching.name_key(given),
                            family_name_key=matching.name_key(family))
            session.add(person)
            session.flush()
            received = clock.to_london(clock.now() - timedelta(hours=2 + index))
            request = requests.log_request(session, staff.practitioner, requests.NewRequest(
                received_on=received.date(), received_time=received.time().replace(second=0, microsecond=0),
                source_of_referral="police", requester_name="PC Dawn Jones", requester_phone="01702 123456",
                site_id=staff.sites[0].id, request_type="screening", urgency="urgent", reason="Distressed.",
                person_id=person.id))
            references.append(request.reference)
    return references


def test_team_lead_downloads_the_triage_queue_from_the_export_page(page, live_app, tmp_path):  # noqa: F811
    references = log_requests(live_app)
    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Export").click()
    page.get_by_role("heading", name="Export").first.wait_for()
    page.get_by_text("What will be exported").wait_for()

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as Excel").click()
    download = download_info.value
    assert download.suggested_filename.startswith("triage-queue-") and download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    workbook = load_workbook(saved)
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    headings = rows[0]
    assert headings[:3] == ("Reference", "Received", "Due")
    with db.reading(live_app.engine) as session:
        screen = requests.triage_page(session, live_app.staff.team_lead, requests.RequestFilters())
    assert [row[0] for row in rows[1:]] == [row.reference for row in screen.rows]
    assert sorted(row[0] for row in rows[1:]) == sorted(references)
    given = headings.index("Given name")
    family = headings.index("Family name")
    assert {(row[given], row[family]) for row in rows[1:]} == set(NAMES)
    cells = list(sheet.iter_rows(min_row=2))
    assert all(row[given].data_type == "s" and row[family].data_type == "s" for row in cells)
    assert all(row[1].is_date for row in cells)
    about = {row[0]: row[1] for row in workbook[ABOUT_SHEET_TITLE].iter_rows(values_only=True) if row and row[0]}
    assert about["List"] == "Triage queue" and about["Rows"] == 3
    assert about["Exported by"] == "Lee Lead (lead)"

    with db.reading(live_app.engine) as session:
        exported = session.exec(select(AuditEvent).where(AuditEvent.action == "export")).one()
    assert exported.user_id == live_app.staff.team_lead.id
    assert exported.entity == "triage_queue" and "3 rows" in exported.detail
