"""Export: exactly the list on screen, typed cells, formula-safe, permitted, audited.

Each list's export is compared with the list's own screen function for the same filters (same
ids, same order). Runs on SQLite and on PostgreSQL.
"""

import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from models import Activity, AuditEvent, Person, SavedColumnSet
from models.codes import ActivityKind
from services import activities, audit, audit_log, caseload, clock, db, export, matching, requests, screening
from services.activities import ActivityFilters, MappaMeetingInput, TrainingInput
from services.errors import InputErrors, NotFound, PermissionDenied
from services.workbook import ABOUT_SHEET_TITLE, PROTECTIVE_MARKING

FORMULA_PAYLOADS = ["=1+1", '=HYPERLINK("http://x","y")', "+1", "-1+1", "@SUM(1)", "\t=1", "\r=1"]
ERROR_LOOKALIKES = ["#N/A", "#REF!"]
PAYLOADS = FORMULA_PAYLOADS + ERROR_LOOKALIKES
TODAY = clock.today_in_london()


# --- helpers ---------------------------------------------------------------------------------


def run_export(engine, user, list_name, filters=None, columns=None, **options):
    target = io.BytesIO()
    with db.reading(engine) as session:
        result = export.export_list(session, user, list_name, filters, columns, target=target, **options)
    target.seek(0)
    return result, target


def granted_export(engine, user):
    """The account with export granted for it alone (administrators do not have it by their role)."""
    with db.writing(engine) as session:
        session.get(type(user), user.id).can_export = True
    user.can_export = True
    return user


def data_rows(file) -> list[tuple]:
    workbook = load_workbook(file)
    sheet = workbook.worksheets[0]
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def data_cells(file):
    return list(load_workbook(file).worksheets[0].iter_rows(min_row=2))


def about(file) -> dict:
    sheet = load_workbook(file)[ABOUT_SHEET_TITLE]
    return {row[0]: row[1] if len(row) > 1 else None for row in sheet.iter_rows(values_only=True) if row and row[0]}


def raw_sheet_xml(file) -> str:
    file.seek(0)
    with zipfile.ZipFile(file) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


def column_of(file, heading: str) -> list:
    rows = data_rows(file)
    position = rows[0].index(heading)
    return [row[position] for row in rows[1:]]


def export_events(engine, outcome=audit.SUCCESS) -> list[AuditEvent]:
    with db.reading(engine) as session:
        query = select(AuditEvent).where(AuditEvent.action == "export", AuditEvent.outcome == outcome)
        return list(session.execute(query.order_by(AuditEvent.id)).scalars())


def add_person(session, team, given="Siôn", family="O'Brien") -> Person:
    person = Person(team_id=team.id, given_name=given, family_name=family, nhs_number_status="not_known",
                    given_name_key=matching.name_key(given), family_name_key=matching.name_key(family))
    session.add(person)
    session.flush()
    return person


def log_mappa(engine, user, on: date, agencies="Police, probation", category=2, minutes=60) -> int:
    with db.writing(engine) as session:
        activity = activities.log_activity(session, user, MappaMeetingInput(
            activity_on=on, mappa_category=category, mappa_level=1, agencies_present=agencies,
            contribution="Summary shared", minutes_spent=minutes))
        return activity.id


# --- the registry -------------------------------------------------------------------------


def test_every_list_has_columns_filters_and_an_id_column():
    assert export.LISTS, "no exportable lists registered"
    for name, exportable in export.LISTS.items():
        assert name == exportable.name
        assert exportable.columns and exportable.title and exportable.order
        assert exportable.id_column in exportable.column_keys()
        assert len(set(exportable.column_keys())) == len(exportable.columns)
        exportable.no_filters()  # "no filters" can be made without arguments


def test_lists_offered_follow_the_permissions(engine, staff):
    names = {exportable.name for exportable in export.exportable_lists(staff.team_lead)}
    assert "mappa_meetings" in names and "audit_log" not in names
    assert export.exportable_lists(staff.administrator) == []  # export is granted per administrator
    administrator = granted_export(engine, staff.administrator)
    assert "audit_log" in {exportable.name for exportable in export.exportable_lists(administrator)}
    assert export.exportable_lists(staff.practitioner) == []


def test_file_name_says_the_list_and_the_uk_time():
    summer_afternoon = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    assert export.file_name("triage_queue", summer_afternoon) == "triage-queue-2026-07-01-1405.xlsx"


# --- same rows, same order as the screen --------------------------------------------------------


def test_activities_export_equals_the_list_on_screen(engine, staff):
    for days_ago in (3, 1, 10, 1, 30):
        log_mappa(engine, staff.practitioner, TODAY - timedelta(days=days_ago),
                  category=1 if days_ago == 30 else 2)
    log_mappa(engine, staff.other_team_practitioner, TODAY - timedelta(days=2))  # another team's
    for filters in (ActivityFilters(), ActivityFilters(mappa_category=2),
                    ActivityFilters(date_from=TODAY - timedelta(days=5), practitioner_id=staff.practitioner.id)):
        with db.reading(engine) as session:
            screen = activities.list_activities(session, staff.team_lead, ActivityKind.MAPPA_MEETING, filters)
        result, file = run_export(engine, staff.team_lead, "mappa_meetings", filters)
        assert column_of(file, "Number") == [str(row["id"]) for row in screen.rows]
        assert result.rows == len(screen.rows)
    assert result.rows == 3


def test_audit_log_export_equals_the_list_on_screen(engine, staff):
    granted_export(engine, staff.administrator)
    with db.writing(engine) as session:
        for action in ("sign_in", "view_person", "sign_in", "export"):
            audit.record(session, staff.practitioner, action, entity="person", entity_id=7)
        audit.record(session, staff.team_lead, "sign_in", outcome=audit.FAILURE)
    for filters in (audit_log.AuditFilters(), audit_log.AuditFilters(action="sign_in"),
                    audit_log.AuditFilters(user_id=staff.practitioner.id, date_from=TODAY)):
        with db.reading(engine) as session:
            screen = audit_log.search(session, staff.administrator, filters, limit=500)
        _result, file = run_export(engine, staff.administrator, "audit_log", filters)
        assert column_of(file, "Entry") == [str(row["id"]) for row in screen.rows]


def test_chosen_columns_come_out_in_the_order_chosen(engine, staff):
    log_mappa(engine, staff.practitioner, TODAY)
    result, file = run_export(engine, staff.team_lead, "mappa_meetings", columns=["practitioner", "id", "activity_on"])
    assert data_rows(file)[0] == ("Logged by", "Number", "Meeting date")
    assert data_rows(file)[1][0] == "Priya Practitioner"
    assert result.columns == ("practitioner", "id", "activity_on")
    assert about(file)["Columns"].startswith("3 of 9: Logged by, Number, Meeting date")


@pytest.mark.parametrize("columns", [[], ["id", "id"], ["no_such_column"]])
def test_bad_column_choices_are_refused_and_nothing_is_audited(engine, staff, columns):
    with pytest.raises(InputErrors) as refused:
        run_export(engine, staff.team_lead, "mappa_meetings", columns=columns)
    assert "columns" in refused.value.errors
    assert export_events(engine) == []


# --- cell types ----------------------------------------------------------------------------


def test_cells_are_typed_dates_in_london_time_identifiers_as_text_numbers_as_numbers(engine, staff):
    log_mappa(engine, staff.practitioner, date(2026, 3, 29), minutes=45)
    _result, file = run_export(engine, staff.team_lead, "mappa_meetings")
    (row,) = data_cells(file)
    by_heading = dict(zip(data_rows(file)[0], row, strict=True))
    assert by_heading["Number"].data_type == "s"
    assert by_heading["Meeting date"].value == datetime(2026, 3, 29)
    assert by_heading["Meeting date"].is_date and by_heading["Meeting date"].number_format == "dd/mm/yyyy"
    assert by_heading["Minutes spent"].value == 45 and by_heading["Minutes spent"].data_type == "n"
    assert by_heading["Category"].value == 2


def test_audit_times_are_uk_local_time_without_a_zone(engine, staff):
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in London
    with db.writing(engine) as session:
        event = audit.record(session, staff.practitioner, "sign_in")
        event.at = summer
    _result, file = run_export(engine, granted_export(engine, staff.administrator), "audit_log",
                               columns=["at", "id"])
    (cell, _identifier) = data_cells(file)[0]
    assert cell.value == datetime(2026, 7, 2, 0, 30) and cell.value.tzinfo is None
    assert cell.number_format == "dd/mm/yyyy hh:mm"


# --- safety ----------------------------------------------------------------------------------


def test_formula_and_error_payloads_in_real_records_come_out_as_text(engine, staff):
    # Inserted as stored (an import or an older version could hold them); the form strips outer
    # whitespace, so "\t=1" could not be typed into it.
    with db.writing(engine) as session:
        for payload in PAYLOADS:
            session.add(Activity(kind=ActivityKind.MAPPA_MEETING.value, team_id=staff.team.id,
                                 practitioner_id=staff.practitioner.id, activity_on=TODAY, mappa_category=1,
                                 mappa_level=1, agencies_present=payload, contribution=payload))
    _result, file = run_export(engine, staff.team_lead, "mappa_meetings", columns=["id", "agencies_present",
                                                                                  "contribution"])
    rows = data_cells(file)
    by_id = sorted(rows, key=lambda row: int(row[0].value))
    assert [row[1].value for row in by_id] == PAYLOADS
    assert [row[2].value for row in by_id] == PAYLOADS
    assert {cell.data_type for row in rows for cell in row} == {"s"}
    assert all(row[1].quotePrefix == (row[1].value in FORMULA_PAYLOADS) for row in rows)
    xml = raw_sheet_xml(file)
    assert "<f>" not in xml and "<f " not in xml
    assert 't="e"' not in xml


# --- permission ------------------------------------------------------------------------------


def test_a_practitioner_without_the_export_permission_is_refused_nothing_written_and_audited(engine, staff):
    log_mappa(engine, staff.practitioner, TODAY)
    target = io.BytesIO()
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        export.export_list(session, staff.practitioner, "mappa_meetings", None, target=target)
    assert target.getvalue() == b""
    assert export_events(engine) == []
    (denied,) = export_events(engine, audit.DENIED)
    assert (denied.user_id, denied.entity) == (staff.practitioner.id, "mappa_meetings")


def test_export_permission_is_per_user(engine, staff):
    with db.writing(engine) as session:
        practitioner = session.get(type(staff.practitioner), staff.practitioner.id)
        practitioner.can_export = True
        lead = session.get(type(staff.team_lead), staff.team_lead.id)
        lead.can_export = False
    result, _file = run_export(engine, practitioner, "mappa_meetings")
    assert result.rows == 0
    with pytest.raises(PermissionDenied):
        run_export(engine, lead, "mappa_meetings")


def test_a_list_the_user_cannot_see_cannot_be_exported(engine, staff):
    with pytest.raises(PermissionDenied):
        run_export(engine, staff.team_lead, "audit_log")
    (denied,) = export_events(engine, audit.DENIED)
    assert denied.entity == "audit_log"


def test_an_unknown_list_is_not_found(engine, staff):
    with pytest.raises(NotFound):
        run_export(engine, staff.team_lead, "everything")


def test_other_teams_records_never_leave(engine, staff):
    log_mappa(engine, staff.other_team_practitioner, TODAY)
    result, _file = run_export(engine, staff.team_lead, "mappa_meetings")
    assert result.rows == 0


# --- audit and About sheet -------------------------------------------------------------------


def test_each_export_is_audited_with_list_filters_and_row_count(engine, staff):
    log_mappa(engine, staff.practitioner, TODAY, category=3)
    log_mappa(engine, staff.practitioner, TODAY, category=1)
    filters = ActivityFilters(mappa_category=3, practitioner_id=staff.practitioner.id)
    result, file = run_export(engine, staff.team_lead, "mappa_meetings", filters)
    (event,) = export_events(engine)
    assert (event.user_id, event.entity, event.outcome) == (staff.team_lead.id, "mappa_meetings", audit.SUCCESS)
    assert "1 rows" in event.detail
    assert "MAPPA category: 3" in event.detail and "Logged by: Priya Practitioner" in event.detail
    assert result.filters == (("Logged by", "Priya Practitioner (practitioner)"), ("MAPPA category", "3"))


def test_about_sheet_names_list_filters_rows_person_time_and_marking(engine, staff):
    log_mappa(engine, staff.practitioner, TODAY)
    moment = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    filters = ActivityFilters(date_from=date(2026, 1, 1), text="police")
    _result, file = run_export(engine, staff.team_lead, "mappa_meetings", filters, now=moment)
    facts = about(file)
    assert facts["List"] == "Activities: MAPPA meeting"
    assert facts["Filter: From"] == "01/01/2026"
    assert facts["Filter: Containing"] == "police"
    assert facts["Rows"] == 1
    assert facts["Exported by"] == "Lee Lead (lead)"
    assert facts["Exported at (UK time)"] == "01/07/2026 14:05"
    assert facts["Protective marking"] == PROTECTIVE_MARKING


def test_no_filters_is_said_in_words(engine, staff):
    _result, file = run_export(engine, staff.team_lead, "training_delivered")
    assert about(file)["Filters"] == "None: every record you may see"
    (event,) = export_events(engine)
    assert "filters: none" in event.detail and "0 rows" in event.detail


def test_progress_is_reported_as_rows_are_written(engine, staff):
    with db.writing(engine) as session:
        session.add_all([
            Activity(kind=ActivityKind.TRAINING.value, team_id=staff.team.id, practitioner_id=staff.practitioner.id,
                     activity_on=TODAY, audience_agency="police", topic=f"Session {index}", number_trained=3)
            for index in range(4_500)
        ])
    calls = []
    result, _file = run_export(engine, staff.team_lead, "training_delivered", progress=calls.append)
    assert calls == [2_000, 4_000, 4_500]
    assert result.rows == 4_500


def test_an_export_inside_a_write_transaction_audits_in_it(engine, staff):
    target = io.BytesIO()
    with db.writing(engine) as session:
        export.export_list(session, staff.team_lead, "training_delivered", target=target)
    assert len(export_events(engine)) == 1


# --- count and preview -----------------------------------------------------------------------


def test_count_and_preview_match_the_export(engine, staff):
    for days_ago in range(5):
        log_mappa(engine, staff.practitioner, TODAY - timedelta(days=days_ago))
    with db.reading(engine) as session:
        assert export.count_rows(session, staff.team_lead, "mappa_meetings") == 5
        assert export.count_rows(session, staff.team_lead, "mappa_meetings", up_to=3) == 3
        preview = export.preview_rows(session, staff.team_lead, "mappa_meetings", columns=["id", "activity_on"],
                                      limit=2)
    _result, file = run_export(engine, staff.team_lead, "mappa_meetings", columns=["id", "activity_on"])
    assert [row["Number"] for row in preview] == column_of(file, "Number")[:2]
    assert preview[0]["Meeting date"] == clock.format_date(TODAY)
    assert export_events(engine) and len(export_events(engine)) == 1  # counting and previewing are not exports


def test_count_and_preview_need_the_export_permission(engine, staff):
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        export.count_rows(session, staff.practitioner, "mappa_meetings")


# --- saved column sets -----------------------------------------------------------------------


def test_a_named_column_set_is_saved_replaced_and_reused(engine, staff):
    with db.writing(engine) as session:
        saved = export.save_column_set(session, staff.team_lead, "mappa_meetings", "  Short  ", ["activity_on", "id"])
    with db.writing(engine) as session:
        export.save_column_set(session, staff.team_lead, "mappa_meetings", "Short", ["id", "practitioner"])
        export.save_column_set(session, staff.team_lead, "mappa_meetings", "Everything",
                               export.LISTS["mappa_meetings"].column_keys())
    with db.reading(engine) as session:
        sets = export.column_sets(session, staff.team_lead, "mappa_meetings")
        other_lists = export.column_sets(session, staff.team_lead, "training_delivered")
        someone_else = export.column_sets(session, staff.other_team_lead, "mappa_meetings")
    assert [(each.name, each.columns) for each in sets] == [
        ("Everything", export.LISTS["mappa_meetings"].column_keys()),
        ("Short", ["id", "practitioner"]),
    ]
    assert sets[1].id == saved.id
    assert other_lists == [] and someone_else == []
    log_mappa(engine, staff.practitioner, TODAY)
    _result, file = run_export(engine, staff.team_lead, "mappa_meetings", columns=sets[1].columns)
    assert data_rows(file)[0] == ("Number", "Logged by")


@pytest.mark.parametrize(
    ("name", "columns", "field"),
    [("", ["id"], "column_set_name"), ("x" * 61, ["id"], "column_set_name"), ("Fine", [], "columns"),
     ("Fine", ["nope"], "columns")],
)
def test_bad_column_sets_are_refused_and_nothing_saved(engine, staff, name, columns, field):
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        export.save_column_set(session, staff.team_lead, "mappa_meetings", name, columns)
    assert field in refused.value.errors
    with db.reading(engine) as session:
        assert list(session.execute(select(SavedColumnSet)).scalars()) == []


def test_only_your_own_column_set_can_be_deleted(engine, staff):
    with db.writing(engine) as session:
        saved = export.save_column_set(session, staff.team_lead, "mappa_meetings", "Mine", ["id"])
    with pytest.raises(NotFound), db.writing(engine) as session:
        export.delete_column_set(session, granted_export(engine, staff.administrator), saved.id)
    with db.writing(engine) as session:
        export.delete_column_set(session, staff.team_lead, saved.id)
    with db.reading(engine) as session:
        assert export.column_sets(session, staff.team_lead, "mappa_meetings") == []
        actions = [row.action for row in session.execute(select(AuditEvent).where(AuditEvent.entity == "column_set"))
                   .scalars()]
    assert actions == ["create_column_set", "delete_column_set"]


def test_a_saved_set_keeps_only_columns_the_list_still_has(engine, staff):
    saved = SavedColumnSet(user_id=staff.team_lead.id, list_name="mappa_meetings", name="Old",
                           columns=["id", "retired_column", "person"])
    assert export.usable_columns(export.LISTS["mappa_meetings"], saved) == ["id", "person"]


def test_text_export_of_training_has_numbers_for_numbers(engine, staff):
    with db.writing(engine) as session:
        activities.log_activity(session, staff.practitioner, TrainingInput(
            activity_on=TODAY, audience_agency="court", topic="Autism awareness", number_trained=14,
            minutes_spent=90))
    _result, file = run_export(engine, staff.team_lead, "training_delivered")
    rows = data_rows(file)
    assert rows[1][rows[0].index("Number trained")] == 14
    assert rows[1][rows[0].index("Audience")] == "Court"
    assert re.fullmatch(r"\d+", rows[1][rows[0].index("Number")])


# --- triage queue (services/requests.py) -------------------------------------------------------


def new_request(staff, received: datetime, **changes):
    local = clock.to_london(received)
    values = dict(received_on=local.date(), received_time=local.time().replace(second=0, microsecond=0),
                  source_of_referral="police", requester_name="PC Dawn Jones", requester_phone="01702 123456",
                  site_id=staff.sites[0].id,
                  request_type="screening", urgency="urgent", reason="Appears distressed.")
    values.update(changes)
    return requests.NewRequest(**values)


def log_requests(engine, staff, count=6) -> list[int]:
    ids = []
    urgencies = ["urgent", "routine", "emergency"]
    with db.writing(engine) as session:
        person = add_person(session, staff.team)
        for index in range(count):
            request = requests.log_request(session, staff.practitioner, new_request(
                staff, clock.now() - timedelta(hours=3 + index * 7), urgency=urgencies[index % 3],
                site_id=staff.sites[index % 2].id, person_id=person.id if index % 2 else None))
            ids.append(request.id)
    return ids


def test_triage_queue_export_equals_the_queue_on_screen(engine, staff):
    log_requests(engine, staff)
    with db.writing(engine) as session:  # another team's request never appears
        requests.log_request(session, staff.other_team_practitioner, new_request(
            staff, clock.now() - timedelta(hours=1), site_id=staff.sites[2].id))
    for filters in (requests.RequestFilters(), requests.RequestFilters(urgencies=("urgent", "emergency")),
                    requests.RequestFilters(site_ids=(staff.sites[1].id,), statuses=())):
        with db.reading(engine) as session:
            screen = requests.triage_page(session, staff.team_lead, filters, size=500)
        result, file = run_export(engine, staff.team_lead, "triage_queue", filters)
        assert column_of(file, "Reference") == [row.reference for row in screen.rows]
        assert result.rows == len(screen.rows) > 0
    assert data_rows(file)[0] == tuple(column.heading for column in requests.REQUEST_LIST_COLUMNS)


def test_triage_queue_cells_are_typed_and_filters_said_in_words(engine, staff):
    log_requests(engine, staff, count=2)
    filters = requests.RequestFilters(urgencies=("urgent",), site_ids=(staff.sites[0].id,))
    _result, file = run_export(engine, staff.team_lead, "triage_queue", filters)
    headings = data_rows(file)[0]
    (row,) = data_cells(file)
    cell = dict(zip(headings, row, strict=True))
    with db.reading(engine) as session:
        (request,) = session.execute(select(requests.Request)).scalars().all()[:1]
    assert cell["Reference"].data_type == "s" and cell["Reference"].value == request.reference
    assert cell["Received"].is_date and cell["Received"].number_format == "dd/mm/yyyy hh:mm"
    assert cell["Received"].value == clock.to_london(request.received_at).replace(tzinfo=None)
    assert cell["Urgency"].value == "Urgent"
    facts = about(file)
    assert facts["Filter: Urgency"] == "Urgent"
    assert facts["Filter: Site"] == "Southend custody suite"
    assert facts["Filter: Status"] == "New, Allocated, In progress, Reopened"


def test_an_administrator_granted_export_exports_the_queue_without_working_it(engine, staff):
    log_requests(engine, staff, count=2)
    with pytest.raises(PermissionDenied):
        run_export(engine, staff.administrator, "triage_queue")
    result, _file = run_export(engine, granted_export(engine, staff.administrator), "triage_queue")
    assert result.rows == 2


def test_payloads_typed_as_a_persons_name_come_out_as_text(engine, staff):
    with db.writing(engine) as session:
        for payload in PAYLOADS:
            person = add_person(session, staff.team, given=payload, family=payload)
            requests.log_request(session, staff.practitioner, new_request(
                staff, clock.now() - timedelta(hours=1), person_id=person.id, requester_name=payload.strip() or "x",
                reason=payload.strip() or "x"))
    _result, file = run_export(engine, staff.team_lead, "triage_queue", columns=["given_name", "family_name"])
    rows = data_cells(file)
    assert sorted(row[0].value for row in rows) == sorted(PAYLOADS)
    assert all(row[0].value == row[1].value and row[0].data_type == row[1].data_type == "s" for row in rows)
    assert all(row[0].quotePrefix == (row[0].value in FORMULA_PAYLOADS) for row in rows)
    xml = raw_sheet_xml(file)
    assert "<f>" not in xml and "<f " not in xml and 't="e"' not in xml
    assert set(re.findall(r'<c r="[A-Z]+\d+"[^>]* t="(\w+)"', xml)) == {"inlineStr"}


# --- caseload drill-down and KPI workbook (services/caseload.py) -------------------------------


@pytest.fixture
def caseload_team(engine, monkeypatch):
    from tests.test_caseload import NOW, build_fixture

    monkeypatch.setattr(clock, "now", lambda: NOW)
    return build_fixture(engine)


CASELOAD_PERIOD = caseload.CaseloadFilters(start=date(2025, 3, 24), end=date(2025, 4, 6))


@pytest.mark.parametrize(
    ("measure", "values"),
    [("pathway_funnel", {"stage": "received"}), ("pathway_funnel", {"stage": "screened"}),
     ("cover_by_hour_and_day", {"weekday": 7, "hour": 23})],
)
def test_caseload_list_export_equals_the_drilldown_on_screen(engine, caseload_team, measure, values):
    lead = caseload_team.staff.team_lead
    selection = caseload.Selection.of(measure, values)
    with db.writing(engine) as session:
        frame, _total = caseload.drilldown_rows(session, lead, CASELOAD_PERIOD, selection)
    result, file = run_export(engine, lead, "caseload_requests", (CASELOAD_PERIOD, selection))
    assert column_of(file, "Reference") == list(frame["reference"])
    assert result.rows == len(frame) > 0
    facts = about(file)
    assert facts["Filter: Requests"].startswith("received 24/03/2025 to 06/04/2025")
    assert ("Filter: Chart selection" in facts) == (values != {"stage": "received"})


def test_caseload_list_from_the_export_page_is_every_request_received(engine, caseload_team):
    lead = caseload_team.staff.team_lead
    exportable = export.LISTS["caseload_requests"]
    values = exportable.filter_values(exportable.no_filters())
    values.update(start=CASELOAD_PERIOD.start, end=CASELOAD_PERIOD.end)
    result, _file = run_export(engine, lead, "caseload_requests", exportable.filters_from(values))
    assert result.rows == 6


def kpi_rows(file, title: str) -> tuple[tuple, list[tuple]]:
    sheet = load_workbook(file)[title]
    rows = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    return rows[0], rows[1:]


def comparable(value):
    value = export.python_value(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"  # yes/no columns are written as words
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)  # openpyxl reads a date back as midnight
    if isinstance(value, float):
        return round(value, 9)
    return value


@pytest.mark.parametrize("period", [export.KpiPeriod("Two weeks", date(2025, 3, 24), date(2025, 4, 6)),
                                    export.month_period(2025, 3), export.quarter_period(2024, 4)])
def test_kpi_workbook_numbers_equal_the_caseload_functions(engine, caseload_team, period):
    lead = caseload_team.staff.team_lead
    target = io.BytesIO()
    with db.reading(engine) as session:
        result = export.kpi_workbook(session, lead, period, target=target)
    target.seek(0)
    workbook = load_workbook(target)
    titles = workbook.sheetnames
    assert titles[-1] == ABOUT_SHEET_TITLE
    assert len(titles) == len(caseload.MEASURES) + 1
    filters = caseload.CaseloadFilters(start=period.start, end=period.end)
    non_empty = 0
    for title, (key, info) in zip(titles, caseload.MEASURES.items(), strict=False):
        with db.reading(engine) as session:
            frame = info.function(session, lead, filters)
        headings, rows = kpi_rows(target, title)
        if key in PERIOD_SHEETS:  # one row per period: test_kpi_period_sheets_...
            assert headings[0] == PERIOD_SHEETS[key], key
            non_empty += any(any(value for value in row[1:]) for row in rows)
            continue
        assert headings == tuple(export.heading_of(name) for name in frame.columns), key
        expected = [tuple(comparable(value) for value in row) for row in frame.itertuples(index=False, name=None)]
        assert [tuple(comparable(value) for value in row) for row in rows] == expected, key
        non_empty += bool(rows)
    assert non_empty >= 5
    facts = about(target)
    assert facts["Period"].startswith(period.label)
    assert facts[caseload.MEASURES["headline"].title] == caseload.MEASURES["headline"].definition
    (event,) = export_events(engine)
    assert event.entity == "kpi_workbook" and period.label in event.detail
    assert result.rows == facts["Rows"]


PERIOD_SHEETS = {"requests_by_week_and_site": "Week beginning (Monday)",
                 "requests_by_week_and_source": "Week beginning (Monday)",
                 "screening_within_target_by_week": "Week beginning (Monday)",
                 "activities_by_month": "Month"}


def period_cells(file, title: str):
    """The sheet's rows as openpyxl cells (not values), heading row first."""
    sheet = load_workbook(file)[title]
    return [list(row) for row in sheet.iter_rows()]


def test_kpi_period_sheets_hold_every_period_as_a_date_with_zeros(engine, caseload_team):
    """Issue #15 item 6: weeks and months are Excel dates, every one of the range, in order, zeros kept."""
    lead = caseload_team.staff.team_lead
    # January to April 2025: the fixture's requests fall in the weeks of 24 March to 7 April and
    # its activities in March and April, so most weeks and two months had nothing.
    period = export.KpiPeriod("January to April 2025", date(2025, 1, 1), date(2025, 4, 30))
    filters = caseload.CaseloadFilters(start=period.start, end=period.end)
    target = io.BytesIO()
    with db.reading(engine) as session:
        export.kpi_workbook(session, lead, period, target=target)
        frames = {key: caseload.MEASURES[key].function(session, lead, filters) for key in PERIOD_SHEETS}
    target.seek(0)
    mondays = [date(2024, 12, 30) + timedelta(weeks=week) for week in range(18)]  # 30/12/2024 to 28/04/2025
    months = [date(2025, month, 1) for month in (1, 2, 3, 4)]
    titles = dict(zip(caseload.MEASURES, load_workbook(target).sheetnames, strict=False))
    for key, heading in PERIOD_SHEETS.items():
        cells = period_cells(target, titles[key])
        assert cells[0][0].value == heading, key
        body = cells[1:]
        expected = mondays if heading.startswith("Week") else months
        assert [row[0].value for row in body] == [datetime(d.year, d.month, d.day) for d in expected], key
        assert all(row[0].is_date for row in body), key  # a number with a date format, not text
        assert {row[0].number_format for row in body} == {"dd/mm/yyyy" if heading.startswith("Week") else "mm/yyyy"}
        # Every count cell is a number: zero where nothing happened, never a gap.
        count_columns = [index for index, cell in enumerate(cells[0]) if cell.value != "Share within target"][1:]
        assert all(isinstance(row[index].value, int) for row in body for index in count_columns), key
        frame = frames[key]
        value = {"activities_by_month": "sessions"}.get(key, "requests")
        if key != "activities_by_month":
            totals = {}
            for week, count in zip(frame["week"], frame[value], strict=True):
                totals[week] = totals.get(week, 0) + int(count)
            total_column = {"requests_by_week_and_site": "All sites", "requests_by_week_and_source": "All sources",
                            "screening_within_target_by_week": "Screened"}[key]
            position = [cell.value for cell in cells[0]].index(total_column)
            assert {week: row[position].value for week, row in zip(expected, body, strict=True)
                    if row[position].value} == totals, key
            assert sum(row[position].value for row in body) == int(frame[value].sum()), key
    month_rows = [[cell.value for cell in row] for row in period_cells(target, titles["activities_by_month"])]
    assert month_rows == [["Month", "MAPPA meetings", "Training sessions", "People trained"],
                          [datetime(2025, 1, 1), 0, 0, 0], [datetime(2025, 2, 1), 0, 0, 0],
                          [datetime(2025, 3, 1), 1, 0, 0], [datetime(2025, 4, 1), 1, 2, 20]]
    site_rows = [[cell.value for cell in row] for row in period_cells(target, titles["requests_by_week_and_site"])]
    sites = [site.name for site in caseload_team.staff.sites if site.team_id == caseload_team.staff.team.id]
    assert set(site_rows[0][1:-1]) == set(sites)  # every site of the team, each a column
    week_of_31_march = site_rows[1 + mondays.index(date(2025, 3, 31))]
    assert week_of_31_march[-1] == 3 and sum(week_of_31_march[1:-1]) == 3  # R2, R9 and R6 (R7 is the next week)


def test_kpi_workbook_needs_export_and_caseload_permissions(engine, staff):
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        export.kpi_workbook(session, staff.practitioner, export.month_period(2026, 1), target=io.BytesIO())
    (denied,) = export_events(engine, audit.DENIED)
    assert denied.entity == "kpi_workbook"


def test_quarters_are_nhs_financial_quarters_and_months_end_on_their_last_day():
    first, last = export.quarter_period(2025, 1), export.quarter_period(2025, 4)
    assert (first.start, first.end) == (date(2025, 4, 1), date(2025, 6, 30))
    assert (last.start, last.end) == (date(2026, 1, 1), date(2026, 3, 31))
    assert export.quarter_period(2025, 4).label == "Q4 2025/26 (January to March 2026)"
    assert export.month_period(2028, 2).end == date(2028, 2, 29)
    assert export.month_period(2026, 12).end == date(2026, 12, 31)
    periods = export.recent_periods(date(2026, 4, 15), months=2, quarters=2)
    assert [period.label for period in periods] == ["April 2026", "March 2026", "Q1 2026/27 (April to June 2026)",
                                                    "Q4 2025/26 (January to March 2026)"]


# --- screenings (services/screening.py) ---------------------------------------------------------


def add_screenings(engine, staff) -> list[int]:
    from models import InstrumentResult, Screening
    from services import instruments

    ids = []
    with db.writing(engine) as session:
        person = add_person(session, staff.team)
        born = add_person(session, staff.team, given="Zoë", family="Nguyễn")
        born.date_of_birth = date(1990, 2, 28)
        other = add_person(session, staff.other_team, given="Other", family="Team")
        session.add(Screening(team_id=staff.other_team.id, person_id=other.id,
                              practitioner_id=staff.other_team_practitioner.id, status="complete",
                              screened_at=clock.now()))
        for index in range(5):
            screened = Screening(team_id=staff.team.id, person_id=(person if index % 2 else born).id,
                                 practitioner_id=staff.practitioner.id, site_id=staff.sites[index % 2].id,
                                 status="complete" if index < 4 else "draft",
                                 screened_at=None if index == 4 else datetime(2026, 7, 1 + index, 23, 30, tzinfo=UTC),
                                 appropriate_adult_required=index == 1, outcome="onward_referral")
            session.add(screened)
            session.flush()
            session.add(InstrumentResult(screening_id=screened.id, instrument=instruments.PHQ9.code,
                                         scoring_version="1", answers={"item9": index % 2}, total=index * 3,
                                         band="Mild", complete=True))
            ids.append(screened.id)
    return ids


def test_screenings_export_equals_the_list_on_screen(engine, staff):
    add_screenings(engine, staff)
    for filters in (screening.ScreeningFilters(), screening.ScreeningFilters(status="complete"),
                    screening.ScreeningFilters(site_id=staff.sites[1].id, screened_from=date(2026, 7, 2))):
        with db.reading(engine) as session:
            screen = screening.list_screenings(session, staff.team_lead, filters)
        result, file = run_export(engine, staff.team_lead, "screenings", filters)
        assert column_of(file, "Screening") == [str(row["screening_id"]) for row in screen]
        assert result.rows == len(screen) > 0


def test_screenings_cells_are_typed(engine, staff):
    add_screenings(engine, staff)
    _result, file = run_export(engine, staff.team_lead, "screenings", screening.ScreeningFilters(status="complete"),
                               columns=["screening_id", "screened_at", "date_of_birth", "appropriate_adult_required",
                                        "phq9_total", "self_harm_flag"])
    rows = data_rows(file)[1:]
    first_of_july = next(row for row in rows if row[1] == datetime(2026, 7, 2, 0, 30))  # 23:30 UTC is 00:30 BST
    assert first_of_july[2] == datetime(1990, 2, 28)
    assert [row[3] for row in rows] == ["No", "No", "Yes", "No"]
    assert sorted(row[4] for row in rows) == [0, 3, 6, 9]
    assert {row[5] for row in rows} == {"Yes", "No"}
    assert all(isinstance(row[0], str) for row in rows)


def test_an_administrator_exports_screenings_only_when_granted_export(engine, staff):
    """Administrators cannot open a person's record; by their role alone they cannot take every
    screening's names, dates of birth and risk out of the app in a file either."""
    add_screenings(engine, staff)
    with pytest.raises(PermissionDenied):
        run_export(engine, staff.administrator, "screenings")
    (denied,) = export_events(engine, audit.DENIED)
    assert (denied.user_id, denied.entity) == (staff.administrator.id, "screenings")
    result, _file = run_export(engine, granted_export(engine, staff.administrator), "screenings")
    assert result.rows == 5


# --- the benchmark compares like with like -----------------------------------------------------------


def test_benchmark_writers_stream_the_same_cells_from_the_database(engine, staff, tmp_path, monkeypatch):
    from bench import export_bench

    log_requests(engine, staff, count=5)
    moment = clock.now()
    monkeypatch.setattr(clock, "now", lambda: moment)  # time left is read at one moment by every writer
    rows = export_bench.run_export_list(engine, staff.team_lead, tmp_path / "app.xlsx")
    assert rows == 5
    assert export_bench.run_xlsxwriter(engine, staff.team_lead, tmp_path / "xlsxwriter.xlsx") == rows
    assert export_bench.run_csv(engine, staff.team_lead, tmp_path / "rows.csv") == rows

    def cells(path):
        sheet = load_workbook(path).worksheets[0]
        return [[(cell.value, cell.number_format, cell.quotePrefix) for cell in row] for row in sheet.iter_rows()]

    assert cells(tmp_path / "app.xlsx") == cells(tmp_path / "xlsxwriter.xlsx")


# --- onward referrals (services/referrals.py) ----------------------------------------------------


def add_referrals(engine, staff) -> int:
    from models import OnwardReferral

    with db.writing(engine) as session:
        person = add_person(session, staff.team)
        someone_else = add_person(session, staff.team, given="Zoë", family="Nguyễn")
        stranger = add_person(session, staff.other_team, given="Other", family="Team")
        for index, (owner, team) in enumerate([(person, staff.team)] * 4 + [(someone_else, staff.team),
                                                                              (stranger, staff.other_team)]):
            session.add(OnwardReferral(team_id=team.id, person_id=owner.id, service="crisis_team",
                                       referred_on=date(2026, 5, 1 + index % 3), status="attended" if index else "made",
                                       attendance="5" if index else None, note=PAYLOADS[index]))
        return person.id


def test_referrals_export_equals_the_persons_referrals_on_screen(engine, staff):
    from services import referrals

    person_id = add_referrals(engine, staff)
    with db.reading(engine) as session:
        screen = referrals.referrals_for_person(session, staff.team_lead, person_id)
    result, file = run_export(engine, staff.team_lead, "onward_referrals", {"person_id": person_id})
    assert column_of(file, "Referral") == [str(row.referral_id) for row in screen]
    assert column_of(file, "Status") == [row.status for row in screen]
    assert column_of(file, "Attendance") == [row.attendance or None for row in screen]
    assert column_of(file, "Note") == [row.note for row in screen]  # formula-like notes stay text
    assert column_of(file, "Referred on") == [datetime.combine(row.referred_on, datetime.min.time())
                                              for row in screen]
    assert result.filters == (("Person (record number)", str(person_id)),)
    assert run_export(engine, staff.team_lead, "onward_referrals")[0].rows == 5  # the team's, not the other's


def test_filters_given_as_a_mapping_name_only_what_they_set(engine, staff):
    with pytest.raises(InputErrors) as refused:
        run_export(engine, staff.team_lead, "onward_referrals", {"nobody": 1})
    assert "filters" in refused.value.errors
    result, _file = run_export(engine, staff.team_lead, "triage_queue", {"urgencies": ("urgent",)})
    assert dict(result.filters)["Status"] == "New, Allocated, In progress, Reopened"  # the default still applies


def test_every_lists_select_has_every_column_it_declares(engine, staff):
    granted_export(engine, staff.administrator)
    for exportable in export.LISTS.values():
        user = staff.team_lead if exportable.may_see(staff.team_lead) else staff.administrator
        with db.reading(engine) as session:
            statement = exportable.select(session, user, exportable.no_filters())
            selected = set(statement.selected_columns.keys())
            assert set(exportable.column_keys()) - exportable.derived <= selected, exportable.name
            assert export.count_rows(session, user, exportable.name) >= 0


# --- the Export page's preview shows people's details: audited ------------------------------------


def test_a_preview_is_audited_like_an_export_unless_it_is_a_redraw(engine, staff):
    log_requests(engine, staff, count=3)
    with db.reading(engine) as session:
        shown = export.preview_rows(session, staff.team_lead, "triage_queue", {"urgencies": ("urgent",)},
                                    ["reference", "given_name"])
        again = export.preview_rows(session, staff.team_lead, "triage_queue", {"urgencies": ("urgent",)},
                                    ["reference", "given_name"], audited=False)
    assert shown == again and len(shown) == 1  # one urgent request of the three
    with db.reading(engine) as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == "preview_export")).scalars().all()
    assert [(row.user_id, row.entity, row.outcome) for row in rows] == [
        (staff.team_lead.id, "triage_queue", audit.SUCCESS)]
    assert rows[0].detail.startswith("Triage queue: first 1 rows shown; filters: ")
    assert "Urgency: Urgent" in rows[0].detail
    assert rows[0].detail.endswith(f"columns: 2 of {len(export.LISTS['triage_queue'].columns)}")
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        export.preview_rows(session, staff.administrator, "screenings")  # no export permission: refused
