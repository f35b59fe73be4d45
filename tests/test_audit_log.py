"""The administrators' audit log: search by user, action, record and London dates; keyset pages;
an export that holds exactly the rows of the list and is itself audited."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import func, select

from models import AuditEvent
from services import audit, audit_log, db, export
from services.audit_log import AuditFilters, Cursor
from services.errors import InputErrors, PermissionDenied

TODAY = date(2025, 6, 30)


def _event(engine, user, action, *, at, entity=None, entity_id=None, outcome=audit.SUCCESS, username=None):
    with db.writing(engine) as session:
        row = audit.record(session, user, action, entity=entity, entity_id=entity_id, outcome=outcome,
                           username=username)
        row.at = at  # a new row, not yet written: setting its time is not an update


def _search(engine, user, filters=AuditFilters(), **kwargs):
    with db.reading(engine) as session:
        return audit_log.search(session, user, filters, **kwargs)


@pytest.fixture
def trail(engine, staff):
    """A small trail around the start of British Summer Time 2025 (30 March, 01:00 UTC)."""
    admin, practitioner, lead = staff.administrator, staff.practitioner, staff.team_lead
    _event(engine, practitioner, "sign_in", at=datetime(2025, 3, 29, 23, 30, tzinfo=UTC), entity="user",
           entity_id=practitioner.id)
    _event(engine, practitioner, "view_person", at=datetime(2025, 3, 30, 9, 0, tzinfo=UTC), entity="person",
           entity_id=42)
    # 23:30 UTC on 30 March is 00:30 on 31 March in London (summer time has begun).
    _event(engine, lead, "view_person", at=datetime(2025, 3, 30, 23, 30, tzinfo=UTC), entity="person",
           entity_id=43)
    _event(engine, None, "sign_in", at=datetime(2025, 4, 1, 8, 0, tzinfo=UTC), outcome=audit.FAILURE,
           username="Mallory")
    _event(engine, admin, "change_role", at=datetime(2025, 4, 2, 8, 0, tzinfo=UTC), entity="user",
           entity_id=practitioner.id)
    return staff


def _actions(page):
    return [row["action"] for row in page.rows]


def test_everything_newest_first_with_names(engine, trail):
    page = _search(engine, trail.administrator)
    assert _actions(page) == ["change_role", "sign_in", "view_person", "view_person", "sign_in"]
    assert page.rows[0]["full_name"] == "Ada Administrator"
    assert page.rows[1]["username"] == "Mallory" and page.rows[1]["full_name"] is None
    assert page.next_cursor is None


def test_filter_by_user_action_and_record(engine, trail):
    admin = trail.administrator
    by_user = _search(engine, admin, AuditFilters(user_id=trail.practitioner.id))
    assert _actions(by_user) == ["view_person", "sign_in"]
    by_action = _search(engine, admin, AuditFilters(action="view_person"))
    assert [row["entity_id"] for row in by_action.rows] == [43, 42]
    by_record = _search(engine, admin, AuditFilters(entity="person", entity_id=42))
    assert [row["full_name"] for row in by_record.rows] == ["Priya Practitioner"]
    about_the_practitioner = _search(engine, admin, AuditFilters(entity="user", entity_id=trail.practitioner.id))
    assert _actions(about_the_practitioner) == ["change_role", "sign_in"]


def test_filter_by_username_as_recorded_ignores_case(engine, trail):
    page = _search(engine, trail.administrator, AuditFilters(username="  mallory "))
    assert [(row["action"], row["outcome"]) for row in page.rows] == [("sign_in", "failure")]


def test_dates_are_london_dates(engine, trail):
    admin = trail.administrator
    # 23:30 UTC on 29 March was 23:30 in London (still winter time): it belongs to 29 March.
    on_29th = _search(engine, admin, AuditFilters(date_from=date(2025, 3, 29), date_to=date(2025, 3, 29)))
    assert _actions(on_29th) == ["sign_in"]
    # 23:30 UTC on 30 March was 00:30 on 31 March in London: not on the 30th, but on the 31st.
    on_30th = _search(engine, admin, AuditFilters(date_from=date(2025, 3, 30), date_to=date(2025, 3, 30)))
    assert [row["entity_id"] for row in on_30th.rows] == [42]
    on_31st = _search(engine, admin, AuditFilters(date_from=date(2025, 3, 31), date_to=date(2025, 3, 31)))
    assert [row["entity_id"] for row in on_31st.rows] == [43]
    from_april = _search(engine, admin, AuditFilters(date_from=date(2025, 4, 1)))
    assert _actions(from_april) == ["change_role", "sign_in"]


def test_keyset_pages_cover_every_row_once_even_with_equal_times(engine, staff):
    same_moment = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    for number in range(7):
        _event(engine, staff.practitioner, "view_person", at=same_moment, entity="person", entity_id=number + 1)
    for number in range(5):
        _event(engine, staff.practitioner, "view_person", at=same_moment - timedelta(minutes=number + 1),
               entity="person", entity_id=100 + number)
    seen, cursor, pages = [], None, 0
    while True:
        page = _search(engine, staff.administrator, AuditFilters(action="view_person"), after=cursor, limit=5)
        seen += [row["id"] for row in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        assert isinstance(page.next_cursor, Cursor)
        cursor = page.next_cursor
    assert pages == 3
    everything = _search(engine, staff.administrator, AuditFilters(action="view_person"), limit=100)
    assert seen == [row["id"] for row in everything.rows]
    assert len(set(seen)) == 12


def test_a_page_is_bounded(engine, staff):
    page = _search(engine, staff.administrator, limit=10_000_000)
    assert len(page.rows) <= audit_log.MAX_PAGE_SIZE


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (AuditFilters(date_from=date(2025, 4, 2), date_to=date(2025, 4, 1)), "date_to"),
        (AuditFilters(entity_id=5), "entity"),
        (AuditFilters(entity="person", entity_id=0), "entity_id"),
        (AuditFilters(action="x" * 65), "action"),
        (AuditFilters(date_from=date(1999, 12, 31)), "date_from"),
        (AuditFilters(date_to=TODAY + timedelta(days=1)), "date_to"),
    ],
)
def test_filters_that_cannot_be_searched_are_refused_by_field(filters, field):
    with pytest.raises(InputErrors) as refused:
        audit_log.validate(filters, today=TODAY)
    assert field in refused.value.errors


@pytest.mark.parametrize("role", ["practitioner", "team_lead"])
def test_only_those_allowed_may_read_the_log_and_a_refusal_is_audited(engine, staff, role):
    user = staff.practitioner if role == "practitioner" else staff.team_lead
    with pytest.raises(PermissionDenied):
        _search(engine, user)
    with db.reading(engine) as session:
        denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == audit.DENIED)).one()
    assert (denial.user_id, denial.action) == (user.id, "view_audit")


def _workbook_rows(content: bytes):
    workbook = load_workbook(io.BytesIO(content), read_only=True)
    sheet = workbook.worksheets[0]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    return values[0], values[1:], workbook


def _export(engine, user, filters):
    """The Export this view button's path: the shared export service, on a reading session."""
    target = io.BytesIO()
    with db.reading(engine) as session:
        result = export.export_list(session, user, "audit_log", filters, target=target)
    return target.getvalue(), result.rows


def _granted_export(engine, user):
    """The user with export granted by name (administrators do not have it by their role)."""
    with db.writing(engine) as session:
        granted = session.get(type(user), user.id)
        granted.can_export = True
    return granted


def test_export_holds_exactly_the_rows_of_the_list_and_is_audited(engine, trail):
    admin = _granted_export(engine, trail.administrator)
    filters = AuditFilters(action="view_person")
    shown = _search(engine, admin, filters, limit=100).rows
    content, row_count = _export(engine, admin, filters)
    heading, rows, _workbook = _workbook_rows(content)
    assert heading == [column.heading for column in audit_log.COLUMNS]
    assert row_count == len(rows) == len(shown) == 2
    assert [row[-1] for row in rows] == [str(row["id"]) for row in shown]
    # 23:30 UTC on 30 March 2025 is shown as 00:30 on 31 March (London), with no timezone.
    assert rows[0][0] == datetime(2025, 3, 31, 0, 30)
    with db.reading(engine) as session:
        exported = session.exec(select(AuditEvent).where(AuditEvent.action == "export")).one()
    assert exported.user_id == admin.id and exported.entity == "audit_log"
    assert exported.detail.startswith("Audit log: 2 rows; filters: Action: Viewed a person's record (view_person)")


def test_export_needs_the_export_permission_too(engine, staff):
    with db.writing(engine) as session:
        admin = session.get(type(staff.administrator), staff.administrator.id)
        admin.can_export = False  # an administrator whose export was withdrawn
    with pytest.raises(PermissionDenied):
        _export(engine, admin, AuditFilters())
    with db.reading(engine) as session:
        actions = session.exec(select(AuditEvent.action, AuditEvent.outcome)).all()
    assert ("export", "denied") in actions
    assert not any(action == "export" and outcome == "success" for action, outcome in actions)


def test_a_team_lead_may_export_but_not_the_audit_log(engine, staff):
    with pytest.raises(PermissionDenied):
        _export(engine, staff.team_lead, AuditFilters())


def test_export_of_an_empty_view_is_still_audited(engine, staff):
    _content, row_count = _export(engine, _granted_export(engine, staff.administrator), AuditFilters(action="nothing"))
    assert row_count == 0
    with db.reading(engine) as session:
        count = session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export")).one()
    assert count == 1


def test_codes_read_as_words_in_the_list_and_its_export_on_both_databases(engine, staff):
    _event(engine, staff.practitioner, "sign_in", at=datetime(2025, 6, 1, 8, 0, tzinfo=UTC), entity="user",
           entity_id=staff.practitioner.id)
    _event(engine, staff.practitioner, "view_audit", at=datetime(2025, 6, 1, 9, 0, tzinfo=UTC),
           outcome=audit.DENIED)  # a refused permission's name: no label of its own
    _event(engine, staff.administrator, "retention_delete", at=datetime(2025, 6, 1, 10, 0, tzinfo=UTC),
           entity="code_item", entity_id=4)
    rows = _search(engine, staff.administrator).rows
    assert [(row["action_label"], row["entity_label"], row["outcome_label"], row["action"]) for row in rows] == [
        ("Deleted a record past retention", "Code", "Succeeded", "retention_delete"),
        ("View audit", None, "Refused", "view_audit"),
        ("Signed in", "User account", "Succeeded", "sign_in"),
    ]
    assert [audit_log.action_label(code) for code in ("sign_in", "view_audit", None)] == [
        "Signed in", "View audit", ""]
    by_code = _search(engine, staff.administrator, AuditFilters(action="sign_in")).rows
    assert [row["action_label"] for row in by_code] == ["Signed in"]  # still filtered by its code
    headings = [column.heading for column in audit_log.COLUMNS]
    assert headings[3] == "Action" and "Action code" in headings
