"""My account (pages/24_My_account.py): every role sees who they are and changes their own password;
the current password is required, refusals show next to their field, and a change ends every session."""

import pytest
from sqlmodel import select

from models import AuditEvent, User
from models.codes import Role
from services import accounts, db, passwords
from services.accounts import SignedIn
from tests.conftest import PASSWORD, shown_errors
from ui import nav

PAGE = "pages/24_My_account.py"
NEW = "a long phrase nobody guesses"


def change(test, current: str, new: str, confirm: str | None = None):
    test.text_input[0].input(current)
    test.text_input[1].input(new)
    test.text_input[2].input(new if confirm is None else confirm)
    next(button for button in test.button if button.label == "Change password").click().run()
    assert not test.exception, test.exception
    return test


def stored(engine, account: User) -> User:
    with db.reading(engine) as session:
        return session.get(User, account.id)


def test_the_page_is_in_every_roles_sidebar():
    (entry,) = [entry for entry in nav.PAGES if entry.path == PAGE]
    for role in Role:
        assert nav.visible_pages(User(username="x", full_name="X", role=role, team_id=1)).count(entry) == 1


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_who_they_are_and_the_form(app_test, sqlite_staff, role):
    account = sqlite_staff.by_role(role)
    test = app_test(PAGE, account).run()
    assert not test.exception, test.exception
    shown = test.text[0].value
    assert f"Name: {account.full_name}" in shown and f"Username: {account.username}" in shown
    assert [field.label for field in test.text_input] == ["Current password", "New password",
                                                          "Confirm new password"]


def test_changing_the_password_ends_every_session_and_asks_to_sign_in_again(app_test, sqlite_engine, sqlite_staff):
    account = sqlite_staff.practitioner
    with db.writing(sqlite_engine) as session:  # signed in in another browser too
        elsewhere = accounts.sign_in(session, account.username, PASSWORD)
    test = change(app_test(PAGE, account).run(), PASSWORD, NEW)
    assert any("Password changed. Sign in with your new password." in info.value for info in test.info)
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    fresh = stored(sqlite_engine, account)
    assert passwords.verify_password(fresh.password_hash, NEW)
    with db.reading(sqlite_engine) as session:
        assert accounts.current_user(session, elsewhere, None) is None
        assert accounts.current_user(session, SignedIn(account.id, account.session_epoch), None) is None
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "change_password")).one()
    assert (row.user_id, row.outcome) == (account.id, "success")


@pytest.mark.parametrize(
    ("current", "new", "confirm", "says"),
    [
        ("not my password at all", NEW, NEW, "Current password is not right."),
        (PASSWORD, "liaison1", "liaison1", "at least 12 characters; it has 8"),
        (PASSWORD, "aaaaaaaaaaaa", "aaaaaaaaaaaa", "one character repeated"),
        (PASSWORD, "qwertyuiop123", "qwertyuiop123", "most common"),
        (PASSWORD, NEW, NEW + "!", "The new password and its confirmation differ"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(app_test, sqlite_engine, sqlite_staff, current, new,
                                                       confirm, says):
    account = sqlite_staff.team_lead
    test = change(app_test(PAGE, account).run(), current, new, confirm)
    assert any(says in error for error in shown_errors(test)), shown_errors(test)
    fresh = stored(sqlite_engine, account)
    assert passwords.verify_password(fresh.password_hash, PASSWORD) and fresh.session_epoch == account.session_epoch
    assert [field.label for field in test.text_input][0] == "Current password"  # still signed in, on the page


def test_a_single_sign_on_account_is_told_to_change_it_at_the_organisation(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        account = accounts.create_user(session, sqlite_staff.administrator, accounts.NewUser(
            "sso.only", "Sso Only", Role.PRACTITIONER, sqlite_staff.team.id, "", email="sso.only@nhs.net"))
    test = app_test(PAGE, account).run()
    assert not test.exception and not test.text_input
    assert any("organisation account" in info.value for info in test.info)
