"""'Export this view' holds the columns on screen, in their order, and the rows the screen shows (issue #15 item 7).

Each page that offers the button is opened through AppTest; the button's arguments are caught as
the page passes them, the file is built from them as the download would build it, and its header
and rows are compared with the table the page drew. The triage queue's clock and time left depend
on now and the amber setting, so the clock is fixed for the page and the file alike.
"""

import io
import math
from datetime import UTC, date, datetime, time, timedelta

import pytest
from openpyxl import load_workbook

from models import Activity, OnwardReferral, Person, Screening
from models.codes import ActivityKind
from services import audit, caseload, clock, db, export, requests
from services.people import NewPerson
from services.requests import FirstResponse, NewRequest, RequestFilters
from ui import export_button as export_button_module

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # London and UTC alike in March


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def caught(monkeypatch):
    """The (user, list, filters, columns) of every 'Export this view' a page draws."""
    calls = []

    def builder(engine, user, list_name, filters, columns):
        calls.append((user, list_name, filters, columns))
        return lambda: b""

    monkeypatch.setattr(export_button_module, "_builder", builder)
    return calls


def exported(engine, call) -> tuple[list[str], list[list]]:
    """The file the caught button builds: its heading row and its rows, as the screen writes them."""
    user, list_name, filters, columns = call
    target = io.BytesIO()
    with db.reading(engine) as session:
        export.export_list(session, user, list_name, filters, columns, target=target)
    target.seek(0)
    rows = list(load_workbook(target).worksheets[0].iter_rows(values_only=True))
    return list(rows[0]), [[on_screen(value) for value in row] for row in rows[1:]]


def on_screen(value):
    """A cell as a table on screen shows it (UK date and time, blank for nothing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def table(test, index: int = 0) -> tuple[list[str], list[list]]:
    frame = test.dataframe[index].value
    return list(frame.columns), [[on_screen(value) for value in row] for row in frame.itertuples(index=False)]


def log(engine, staff, received: datetime, urgency: str, **values) -> requests.Request:
    details = dict(received_on=received.date(), received_time=received.time(), source_of_referral="police",
                   requester_name="PC Dawn Jones", requester_phone="01702 123456", site_id=staff.sites[0].id,
                   request_type="screening", urgency=urgency, reason="Distressed in the cell.")
    details.update(values)
    with db.writing(engine) as session:
        return requests.log_request(session, staff.practitioner, NewRequest(**details))


def a_queue_of_every_clock(engine, staff) -> None:
    """Overdue, due soon, on time, answered and closed unanswered; with and without a person."""
    log(engine, staff, datetime(2026, 3, 10, 10, 30), "emergency",
        new_person=NewPerson("Siôn", "O'Brien", "01/01/1990"))
    log(engine, staff, datetime(2026, 3, 10, 11, 10), "emergency")
    log(engine, staff, datetime(2026, 3, 10, 11, 30), "routine", new_person=NewPerson("Zoë", "Nguyễn", "02/02/1992"))
    answered = log(engine, staff, datetime(2026, 3, 10, 9, 0), "urgent")
    with db.writing(engine) as session:
        requests.record_first_response(session, staff.practitioner, answered.id, answered.version,
                                       FirstResponse(date(2026, 3, 10), time(9, 30), "02", "Advice given."))
    closed = log(engine, staff, datetime(2026, 3, 9, 9, 0), "routine")
    with db.writing(engine) as session:
        moved = requests.allocate(session, staff.team_lead, closed.id, closed.version, staff.practitioner.id)
        moved = requests.start_work(session, staff.practitioner, moved.id, moved.version)
        requests.close_request(session, staff.team_lead, moved.id, moved.version, "declined")


# --- The triage queue ---------------------------------------------------------------------------


def test_the_triage_export_is_the_queue_on_screen_with_its_clock(app_test, sqlite_engine, sqlite_staff, caught):
    a_queue_of_every_clock(sqlite_engine, sqlite_staff)
    test = app_test("pages/1_Triage_queue.py", sqlite_staff.team_lead).run()
    test.multiselect(key="triage_status").set_value([]).run()  # any status: the closed request too
    assert not test.exception, test.exception
    headings, shown = table(test)
    call = caught[-1]
    assert call[2] == RequestFilters(statuses=())
    file_headings, file_rows = exported(sqlite_engine, call)
    assert file_headings == headings
    assert file_rows == shown
    assert headings == ["Clock", "Time left (minutes)", "Reference", "Received", "Due", "Urgency", "Request type",
                        "Status", "Site", "Person", "Allocated to"]
    clocks = {row[0] for row in shown}
    assert {"🔴 Overdue", "🟠 Due soon", "🟢 On time", "Answered", "—"} <= clocks
    assert [row[1] for row in shown if row[0] == "🔴 Overdue"] == [-30]  # due 11:30, now 12:00


def test_the_triage_export_agrees_with_the_service_for_other_filters(engine, staff):
    a_queue_of_every_clock(engine, staff)
    exportable = export.LISTS["triage_queue"]
    for filters in (RequestFilters(), RequestFilters(statuses=()), RequestFilters(urgencies=("emergency",))):
        with db.reading(engine) as session:
            page = requests.triage_page(session, staff.team_lead, filters, size=500)
        file_headings, file_rows = exported(engine, (staff.team_lead, "triage_queue", filters,
                                                     exportable.view_keys()))
        assert file_headings == [column.heading for column in exportable.view_columns()]
        assert file_rows == [[on_screen(export_button_module._shown(column, row.values[column.key]))
                              for column in exportable.view_columns()] for row in page.rows]
        assert len(file_rows) == len(page.rows) > 0


def test_the_clock_columns_are_the_response_clock(engine, staff):
    """One reading per row, as requests.response_clock gives it, for the screen and the file."""
    values = requests.clock_columns(NOW, 75)
    received, due = NOW - timedelta(minutes=50), NOW + timedelta(minutes=10)  # 50 of 60 minutes: amber at 75%
    row = {"received_at": received, "due_at": due, "first_response_at": None, "status_code": "new"}
    assert values(row) == {"clock": "🟠 Due soon", "time_left_minutes": 10}
    assert values({**row, "due_at": NOW - timedelta(seconds=90)}) == {"clock": "🔴 Overdue", "time_left_minutes": -1}
    assert values({**row, "first_response_at": NOW}) == {"clock": "Answered", "time_left_minutes": None}
    assert values({**row, "status_code": "closed"}) == {"clock": "—", "time_left_minutes": None}
    assert requests.whole_minutes(timedelta(minutes=-30, seconds=-59)) == -30


# --- The other lists with the button --------------------------------------------------------------


def test_an_activity_list_export_is_its_table(app_test, sqlite_engine, sqlite_staff, caught):
    with db.writing(sqlite_engine) as session:
        for day in range(3):
            session.add(Activity(kind=ActivityKind.MAPPA_MEETING.value, team_id=sqlite_staff.team.id,
                                 practitioner_id=sqlite_staff.practitioner.id, activity_on=date(2026, 3, 2 + day),
                                 mappa_category=2, mappa_level=day % 3 + 1, agencies_present="Police, probation"))
    test = app_test("pages/8_Activities.py", sqlite_staff.team_lead).run()
    assert not test.exception, test.exception
    headings, shown = table(test)
    (call,) = caught
    file_headings, file_rows = exported(sqlite_engine, call)
    assert file_headings == headings
    assert len(file_rows) == len(shown) == 3
    # The number is an identifier: text in the file, a number on screen.
    assert [row[0] for row in file_rows] == [str(row[0]) for row in shown]


def test_the_audit_log_export_is_its_table(app_test, sqlite_engine, sqlite_staff, caught):
    from models import User

    with db.writing(sqlite_engine) as session:
        for person_id in range(1, 6):
            audit.record(session, sqlite_staff.practitioner, "view_person", entity="person", entity_id=person_id)
        session.get(User, sqlite_staff.administrator.id).can_export = True
    with db.reading(sqlite_engine) as session:
        administrator = session.get(User, sqlite_staff.administrator.id)
        session.expunge(administrator)
    test = app_test("pages/22_Audit_log.py", administrator).run()
    assert not test.exception, test.exception
    headings, shown = table(test)
    (call,) = caught
    file_headings, file_rows = exported(sqlite_engine, call)
    assert file_headings == headings
    # The file holds every matching entry, newest first; the screen a page of them. Opening the page
    # may have been audited after the table was drawn, so the page's rows are a run of the file's.
    assert shown and any(file_rows[start:start + len(shown)] == shown for start in range(len(file_rows)))


def test_a_persons_screenings_and_referrals_export_their_tables(app_test, sqlite_engine, sqlite_staff, caught):
    with db.writing(sqlite_engine) as session:
        person = Person(team_id=sqlite_staff.team.id, given_name="Siôn", family_name="O'Brien",
                        nhs_number_status="X", given_name_key="sion", family_name_key="obrien")
        session.add(person)
        session.flush()
        screened = Screening(team_id=sqlite_staff.team.id, person_id=person.id, status="complete",
                             practitioner_id=sqlite_staff.practitioner.id, screened_at=NOW - timedelta(days=1))
        session.add(screened)
        session.flush()
        session.add(OnwardReferral(team_id=sqlite_staff.team.id, person_id=person.id, screening_id=screened.id,
                                   service="crisis_team", referred_on=date(2026, 3, 9), status="made"))
        person_id = person.id
    test = app_test("pages/4_People.py", sqlite_staff.team_lead, query={"id": str(person_id)}).run()
    assert not test.exception, test.exception
    by_list = {call[1]: call for call in caught}
    for position, list_name in enumerate(("screenings", "onward_referrals")):
        headings, shown = table(test, position)
        file_headings, file_rows = exported(sqlite_engine, by_list[list_name])
        assert file_headings == headings, list_name
        assert len(file_rows) == len(shown) == 1, list_name


def test_the_caseload_list_export_has_the_drilldown_columns(engine, staff, monkeypatch):
    """The caseload page draws drilldown_display(frame); its button passes no columns (all of them)."""
    from tests.test_caseload import NOW as CASELOAD_NOW
    from tests.test_caseload import build_fixture

    monkeypatch.setattr(clock, "now", lambda: CASELOAD_NOW)
    fixture = build_fixture(engine, staff)
    filters = caseload.CaseloadFilters(start=date(2025, 3, 24), end=date(2025, 4, 6))
    selection = caseload.Selection.of("pathway_funnel", {"stage": "received"})
    lead = fixture.staff.team_lead
    with db.writing(engine) as session:
        frame, _total = caseload.drilldown_rows(session, lead, filters, selection)
    shown = caseload.drilldown_display(frame)
    exportable = export.LISTS["caseload_requests"]
    file_headings, file_rows = exported(engine, (lead, "caseload_requests", (filters, selection),
                                                 exportable.view_keys()))
    assert file_headings == list(shown.columns)
    assert [row[0] for row in file_rows] == list(shown["Reference"])
