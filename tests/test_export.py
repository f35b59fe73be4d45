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
from services import activities, audit, audit_log, clock, db, export, matching
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


def test_lists_offered_follow_the_permissions(staff):
    names = {exportable.name for exportable in export.exportable_lists(staff.team_lead)}
    assert "mappa_meetings" in names and "audit_log" not in names
    assert "audit_log" in {exportable.name for exportable in export.exportable_lists(staff.administrator)}
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
    _result, file = run_export(engine, staff.administrator, "audit_log", columns=["at", "id"])
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
        export.delete_column_set(session, staff.administrator, saved.id)
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
