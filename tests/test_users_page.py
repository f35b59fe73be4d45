"""The Users page through AppTest: who may export, shown and set per person; renames checked like any
typed text; refusals shown next to the field, as typed, with nothing written."""

from sqlmodel import select

from models import AuditEvent, User
from services import db
from services.permissions import Permission, has_permission
from tests.conftest import shown_errors

PAGE = "pages/20_Users.py"


def opened(app_test, staff, account: User):
    test = app_test(PAGE, staff.administrator).run()
    assert not test.exception, test.exception
    box = next(box for box in test.selectbox if box.label == "Account")
    test = box.select(account.id).run()
    assert not test.exception, test.exception
    return test


def press(test, label: str):
    next(button for button in test.button if button.label == label).click().run()
    assert not test.exception, test.exception
    return test


def stored(engine, account: User) -> User:
    with db.reading(engine) as session:
        return session.get(User, account.id)


def test_the_table_says_who_may_export(app_test, sqlite_staff):
    test = app_test(PAGE, sqlite_staff.administrator).run()
    table = test.dataframe[0].value
    may_export = dict(zip(table["Username"], table["May export"], strict=True))
    assert (may_export["admin"], may_export["lead"], may_export["practitioner"]) == ("No", "Yes", "No")


def test_an_administrator_grants_export_to_a_practitioner_and_it_is_audited(app_test, sqlite_engine, sqlite_staff):
    test = opened(app_test, sqlite_staff, sqlite_staff.practitioner)
    test.radio(key=f"export_choice_{sqlite_staff.practitioner.id}").set_value(True)
    press(test, "Save export permission")
    assert has_permission(stored(sqlite_engine, sqlite_staff.practitioner), Permission.EXPORT)
    table = test.dataframe[0].value
    assert dict(zip(table["Username"], table["May export"], strict=True))["practitioner"] == "Yes (set for them)"
    with db.reading(sqlite_engine) as session:
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "change_export_permission")).one()
    assert (row.user_id, row.entity_id) == (sqlite_staff.administrator.id, sqlite_staff.practitioner.id)


def test_an_administrator_cannot_grant_export_to_themselves(app_test, sqlite_engine, sqlite_staff):
    test = opened(app_test, sqlite_staff, sqlite_staff.administrator)
    test.radio(key=f"export_choice_{sqlite_staff.administrator.id}").set_value(True)
    press(test, "Save export permission")
    assert shown_errors(test) == ["Another administrator must change your own export permission."]
    assert stored(sqlite_engine, sqlite_staff.administrator).can_export is None


def test_a_rename_with_a_hidden_character_is_refused_next_to_the_field(app_test, sqlite_engine, sqlite_staff):
    account = sqlite_staff.second_practitioner
    test = opened(app_test, sqlite_staff, account)
    test.text_input(key=f"rename_name_{account.id}").input("Sam\x07 *Second*")
    test.text_input(key=f"rename_username_{account.id}").input("sam second")
    press(test, "Save name and username")
    errors = shown_errors(test)
    assert any("U+0007" in error for error in errors) and any("a space at character 4" in error for error in errors)
    assert test.text_input(key=f"rename_name_{account.id}").value == "Sam\x07 *Second*"  # kept as typed
    assert (stored(sqlite_engine, account).full_name, stored(sqlite_engine, account).username) == (
        "Sam Second", "second")


def test_a_rename_is_saved_and_shown_as_typed(app_test, sqlite_engine, sqlite_staff):
    account = sqlite_staff.second_practitioner
    test = opened(app_test, sqlite_staff, account)
    test.text_input(key=f"rename_name_{account.id}").input("Siôn **O'Brien**")
    test.text_input(key=f"rename_username_{account.id}").input("sion.obrien")
    press(test, "Save name and username")
    assert (stored(sqlite_engine, account).full_name, stored(sqlite_engine, account).username) == (
        "Siôn **O'Brien**", "sion.obrien")
    assert "Siôn **O'Brien**" in list(test.dataframe[0].value["Name"])
