"""The audit log page: labelled filters, UK times, pages of entries, export only for exporters."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import OperationalError

from models import User
from services import audit, audit_log, db
from tests.conftest import unescaped
from ui import guard

PAGE = "pages/22_Audit_log.py"


def _events(engine, user, count, *, action="view_person", start=datetime(2025, 7, 1, 12, 0, tzinfo=UTC)):
    with db.writing(engine) as session:
        for number in range(count):
            row = audit.record(session, user, action, entity="person", entity_id=number + 1)
            row.at = start + timedelta(minutes=number)


def _search_button(test):
    return next(button for button in test.button if button.label == "Search")


def _rows(test):
    return test.dataframe[0].value if test.dataframe else None


def test_filters_have_visible_labels_and_times_are_uk_times(app_test, sqlite_engine, sqlite_staff):
    # 12:00 UTC on 1 July is 13:00 in London (summer time).
    _events(sqlite_engine, sqlite_staff.practitioner, 1)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    labels = [widget.label for kind in ("selectbox", "text_input", "number_input", "date_input")
              for widget in getattr(test, kind)]
    assert {"Member of staff", "Username as recorded", "Action", "Outcome", "Record type", "Record id",
            "From (UK date)", "To (UK date, inclusive)"} <= set(labels)
    frame = _rows(test)
    assert list(frame.columns) == [column.heading for column in audit_log.COLUMNS]
    assert frame.iloc[0]["When (UK time)"] == "01/07/2025 13:00"
    assert frame.iloc[0]["Name now"] == "Priya Practitioner"


def test_searching_by_action_narrows_the_list(app_test, sqlite_engine, sqlite_staff):
    _events(sqlite_engine, sqlite_staff.practitioner, 3)
    _events(sqlite_engine, sqlite_staff.team_lead, 2, action="export")
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert len(_rows(test)) == 5
    action = next(box for box in test.selectbox if box.label == "Action")
    action.set_value("export")
    _search_button(test).click().run()
    assert not test.exception
    assert set(_rows(test)["Action"]) == {"Exported a list"}  # words a person reads …
    assert set(_rows(test)["Action code"]) == {"export"}  # … beside the code that was searched for
    assert len(_rows(test)) == 2


def test_actions_read_as_words_and_the_drop_down_finds_them_by_words_or_code(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        audit.record(session, sqlite_staff.practitioner, "sign_in", entity="user", entity_id=3)
        audit.record(session, None, "sign_in", outcome=audit.FAILURE, username="mallory")
        audit.record(session, sqlite_staff.practitioner, "view_audit", outcome=audit.DENIED)  # a refused permission
        audit.record(session, sqlite_staff.administrator, "add_code", entity="code_item", entity_id=9)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    rows = _rows(test)
    assert list(zip(rows["Action"], rows["Outcome"], rows["Record type"], rows["Action code"], strict=True)) == [
        ("Added a code", "Succeeded", "Code", "add_code"),
        ("View audit", "Refused", "", "view_audit"),  # no label of its own: its code as words
        ("Signed in", "Failed", "", "sign_in"),
        ("Signed in", "Succeeded", "User account", "sign_in"),
    ]
    action = next(box for box in test.selectbox if box.label == "Action")
    assert "Signed in (sign_in)" in action.options and "Exported a list (export)" in action.options
    assert next(box for box in test.selectbox if box.label == "Outcome").options == [
        "Any", "Succeeded", "Failed", "Refused"]


def test_one_entry_is_one_entry(app_test, sqlite_engine, sqlite_staff):
    _events(sqlite_engine, sqlite_staff.practitioner, 1)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert "Page 1 · 1 entry on this page" in [caption.value for caption in test.caption]


def test_refused_filters_say_which_field_and_show_the_list_unchanged(app_test, sqlite_engine, sqlite_staff):
    _events(sqlite_engine, sqlite_staff.practitioner, 2)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    record_id = next(box for box in test.number_input if box.label == "Record id")
    record_id.set_value(7)
    _search_button(test).click().run()
    assert any("record type" in error.value for error in test.error)
    assert len(_rows(test)) == 2


def test_older_and_newer_pages(app_test, sqlite_engine, sqlite_staff):
    _events(sqlite_engine, sqlite_staff.practitioner, audit_log.PAGE_SIZE + 5)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    first_page = list(_rows(test)["Entry"])
    assert len(first_page) == audit_log.PAGE_SIZE
    test.button(key="older").click().run()
    second_page = list(_rows(test)["Entry"])
    assert len(second_page) == 5 and not set(first_page) & set(second_page)
    assert test.button(key="older").disabled
    test.button(key="newer").click().run()
    assert list(_rows(test)["Entry"]) == first_page


def test_export_is_offered_only_to_those_who_may_export(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:  # administrators export only when granted it by name
        session.get(User, sqlite_staff.administrator.id).can_export = True
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert [button.label for button in test.get("download_button")] == ["Export this view"]
    with db.writing(sqlite_engine) as session:
        session.get(User, sqlite_staff.administrator.id).can_export = False
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    assert list(test.get("download_button")) == []


def test_a_database_error_on_this_page_shows_the_plain_message(app_test, sqlite_staff, monkeypatch):
    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(audit_log, "search", unreachable)
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    assert [error.value for error in test.error] == [guard.DATABASE_UNREACHABLE]


def test_a_typed_username_in_the_filters_is_shown_as_typed_not_as_markdown(app_test, sqlite_staff):
    test = app_test(PAGE, sqlite_staff.administrator).run()
    next(box for box in test.text_input if box.label == "Username as recorded").input("[x](http://e.test)*y*")
    _search_button(test).click().run()
    assert not test.exception
    shown = [caption.value for caption in test.caption if caption.value.startswith("Showing")]
    assert [unescaped(value) for value in shown] == ["Showing: username=[x](http://e.test)*y*"]
    assert r"\[x\]\(http" in shown[0]  # escaped, so markdown draws no link: it reads as typed
