"""Sign-in, lockout, sessions and the administration of users."""

from datetime import timedelta

import pytest
from sqlmodel import func, select

from models import AuditEvent, User
from models.codes import Role
from services import accounts, clock, db, passwords, permissions
from services.accounts import NewUser, SignedIn
from services.errors import InputErrors, NotFound, PermissionDenied, SignInRefused
from services.permissions import Permission
from tests.conftest import PASSWORD


def _sign_in(engine, username, password):
    with db.writing(engine) as session:
        return accounts.sign_in(session, username, password)


def _count(engine, model, *conditions):
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def test_right_password_signs_in_and_is_audited(engine, staff):
    signed_in = _sign_in(engine, "practitioner", PASSWORD)
    assert signed_in.user_id == staff.practitioner.id
    assert _count(engine, AuditEvent, AuditEvent.action == "sign_in", AuditEvent.outcome == "success") == 1


def test_username_is_not_case_sensitive(engine, staff):
    assert _sign_in(engine, "  Practitioner ", PASSWORD).user_id == staff.practitioner.id


def test_unknown_user_and_wrong_password_get_the_same_message(engine, staff):
    with pytest.raises(SignInRefused) as unknown:
        _sign_in(engine, "nobody", PASSWORD)
    with pytest.raises(SignInRefused) as wrong:
        _sign_in(engine, "practitioner", "wrong password")
    assert str(unknown.value) == str(wrong.value) == accounts.SIGN_IN_REFUSED
    assert _count(engine, AuditEvent, AuditEvent.action == "sign_in", AuditEvent.outcome == "failure") == 2


def test_five_failures_lock_the_account_even_across_separate_sessions(engine, staff):
    for _ in range(accounts.MAX_FAILED_SIGN_INS):
        with pytest.raises(SignInRefused):
            _sign_in(engine, "practitioner", "wrong")  # each call is its own session, like a new tab
    with pytest.raises(SignInRefused):
        _sign_in(engine, "practitioner", PASSWORD)  # the right password no longer works
    with db.reading(engine) as session:
        user = session.get(User, staff.practitioner.id)
        assert user.locked_until > clock.now() + timedelta(minutes=14)
    assert _count(engine, AuditEvent, AuditEvent.action == "lockout") == 1


def _guess_the_current_password(engine, user):
    with db.writing(engine) as session:
        accounts.change_own_password(session, user, "wrong", "a new and long passphrase")


@pytest.mark.parametrize("guess_once", [
    pytest.param(lambda engine, staff: _sign_in(engine, "practitioner", "wrong"), id="sign-in"),
    pytest.param(lambda engine, staff: _guess_the_current_password(engine, staff.practitioner),
                 id="current password on My account"),
])
def test_failures_made_at_the_same_moment_are_each_counted(engine, staff, guess_once):
    """Guesses sent at once (to several app processes behind the proxy) are each refused and
    counted, and lock the account at the fifth; none ends in an error instead."""
    import threading

    attempts = accounts.MAX_FAILED_SIGN_INS + 1
    start_together = threading.Barrier(attempts)
    outcomes: list[str] = []

    def guess() -> None:
        start_together.wait()
        try:
            guess_once(engine, staff)
        except (SignInRefused, InputErrors):
            outcomes.append("refused")
        except Exception as error:  # what a lost race looked like: the page's error box
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=guess) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["refused"] * attempts
    assert _count(engine, AuditEvent, AuditEvent.action == "lockout") == 1
    with db.reading(engine) as session:
        assert session.get(User, staff.practitioner.id).locked_until > clock.now()


def test_lock_expires_after_fifteen_minutes(engine, staff):
    with db.writing(engine) as session:
        user = session.get(User, staff.practitioner.id)
        user.locked_until = clock.now() - timedelta(seconds=1)
    assert _sign_in(engine, "practitioner", PASSWORD).user_id == staff.practitioner.id


def test_failures_spread_beyond_fifteen_minutes_do_not_lock(engine, staff):
    for _ in range(4):
        with pytest.raises(SignInRefused):
            _sign_in(engine, "practitioner", "wrong")
    with db.writing(engine) as session:
        user = session.get(User, staff.practitioner.id)
        user.first_failed_sign_in_at = clock.now() - timedelta(minutes=16)
    with pytest.raises(SignInRefused):
        _sign_in(engine, "practitioner", "wrong")  # starts a new window
    assert _sign_in(engine, "practitioner", PASSWORD)


def test_disabled_account_cannot_sign_in(engine, staff):
    with db.writing(engine) as session:
        accounts.set_active(session, staff.administrator, staff.practitioner.id, False)
    with pytest.raises(SignInRefused, match="cannot sign in"):
        _sign_in(engine, "practitioner", PASSWORD)


def test_idle_session_must_sign_in_again(engine, staff):
    signed_in = SignedIn(staff.practitioner.id, 0)
    with db.reading(engine) as session:
        assert accounts.current_user(session, signed_in, clock.now() - timedelta(minutes=29)) is not None
        assert accounts.current_user(session, signed_in, clock.now() - timedelta(minutes=31)) is None


def test_disabling_or_resetting_ends_other_sessions(engine, staff):
    signed_in = _sign_in(engine, "second", PASSWORD)
    with db.writing(engine) as session:
        accounts.reset_password(session, staff.administrator, staff.second_practitioner.id, "a new temporary one")
    with db.reading(engine) as session:
        assert accounts.current_user(session, signed_in, clock.now()) is None
    fresh = _sign_in(engine, "second", "a new temporary one")
    with db.reading(engine) as session:
        user = accounts.current_user(session, fresh, clock.now())
        assert user.must_change_password


def test_a_hundred_byte_unicode_password_works(engine, staff):
    long_password = "pässwörd-🔒-" * 7  # well over 72 bytes, where bcrypt would silently truncate
    assert len(long_password.encode()) >= 100
    with db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser("unicode", "Ünïcode User", Role.PRACTITIONER, staff.team.id, long_password))
    assert _sign_in(engine, "unicode", long_password)
    with pytest.raises(SignInRefused):
        _sign_in(engine, "unicode", long_password[:-1])


@pytest.mark.parametrize(
    ("username", "password", "field", "message"),
    [
        ("", PASSWORD, "username", "Username is required"),
        ("practitioner", PASSWORD, "username", "is taken"),
        ("PRACTITIONER", PASSWORD, "username", "is taken"),
        ("newperson", "short", "temporary_password", "at least 12"),
        ("newperson", "password123", "temporary_password", "at least 12"),
        ("newperson", "Password123456", "temporary_password", "most common"),
    ],
)
def test_bad_new_users_are_refused_and_nothing_is_written(engine, staff, username, password, field, message):
    before = _count(engine, User)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser(username, "New Person", Role.PRACTITIONER, staff.team.id, password))
    assert message in refused.value.errors[field]
    assert _count(engine, User) == before


# --- The password policy (ASVS level 2) -------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("aaaaaaaa", "at least 12 characters; it has 8"),
        (" " * 8, "at least 12 characters; it has 8"),
        ("liaison1", "at least 12 characters; it has 8"),
        ("eleven char", "at least 12 characters; it has 11"),
        (" " * 12, "one character repeated"),
        ("a" * 12, "one character repeated"),
        ("ññññññññññññ", "one character repeated"),
        ("qwertyuiop123", "most common"),  # a listed password with digits added
        ("Password 2026!", "most common"),
        ("1q2w3e4r5t6y", "most common"),
        ("Liaison and Diversion 2026", "the service's name"),
        ("my diversion passphrase", "the service's name"),
        ("the LD Hub is where I work", "the service's name"),
        ("newstarter was here", "must not contain the username"),
        ("I am New Starter ok", "must not contain the username"),
        ("x" * 129, "at most 128 characters; it has 129"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password, says):
    assert says in passwords.policy_problem(password, "newstarter")


@pytest.mark.parametrize(
    "password",
    ["twelve chars", "correct horse battery staple", "x" * 127 + "y", "Siôn's café 🔒 passphrase",
     "مرحبا بالعالم الجميل"],
)
def test_long_passwords_of_any_characters_are_accepted(password):
    assert passwords.policy_problem(password, "newstarter") is None


def test_the_common_password_list_is_large_and_shipped_with_the_app():
    common = passwords.common_passwords()
    assert len(common) >= 10_000
    assert {"password", "qwerty", "iloveyou", "qwertyuiop", "nhspassword"} <= common


def test_the_username_is_looked_for_ignoring_case_and_spaces_unless_it_is_very_short():
    assert passwords.policy_problem("enjoy the long journey", "jo") is None  # "jo" would refuse too much
    assert "username" in passwords.policy_problem("Jo.Bloggs is here", "jo.bloggs")
    assert "username" in passwords.policy_problem("my name is pat smith", "patsmith")


def test_a_password_is_never_truncated(engine, staff):
    longest = "a long passphrase, " * 6 + "typed in full!"
    assert len(longest) == passwords.MAXIMUM_LENGTH
    with db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser("longest", "Long Est", Role.PRACTITIONER, staff.team.id, longest))
    assert _sign_in(engine, "longest", longest)
    for near_miss in (longest[:-1], longest[:72], longest + "!"):
        with pytest.raises(SignInRefused):
            _sign_in(engine, "longest", near_miss)


# --- Staff names and usernames get the same checks as any typed text ---------------------------


@pytest.mark.parametrize(
    ("username", "full_name", "field", "says"),
    [
        ("bell\x07", "Bell Ringer", "username", "hidden character U+0007"),
        ("two words", "Two Words", "username", "a space"),
        ("right\u202eleft", "Right Left", "username", "hidden character U+202E"),
        ("u" * 65, "Long Username", "username", "at most 64 characters"),
        ("tabbed", "Tab\tName", "full_name", "a tab"),
        ("nul", "Nul\x00Name", "full_name", "hidden character U+0000"),
        ("escape", "Esc\x1bName", "full_name", "hidden character U+001B"),
        ("huge", "N" * 40_000, "full_name", "at most 100 characters; it is 40,000"),
        ("blank", "   ", "full_name", "Full name is required"),
    ],
)
def test_bad_staff_names_are_refused_clearly_and_nothing_is_written(engine, staff, username, full_name, field, says):
    before = _count(engine, User), _count(engine, AuditEvent)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser(username, full_name, Role.PRACTITIONER, staff.team.id, PASSWORD))
    assert says in refused.value.errors[field]
    with pytest.raises(InputErrors) as renamed, db.writing(engine) as session:
        accounts.rename_user(session, staff.administrator, staff.second_practitioner.id, full_name, username)
    assert says in renamed.value.errors[field]
    assert (_count(engine, User), _count(engine, AuditEvent)) == before
    with db.reading(engine) as session:
        unchanged = session.get(User, staff.second_practitioner.id)
    assert (unchanged.username, unchanged.full_name) == ("second", "Sam Second")


def test_rename_changes_name_and_username_and_is_audited(engine, staff):
    with db.writing(engine) as session:
        accounts.rename_user(session, staff.administrator, staff.second_practitioner.id, " Sam Second-Jones ",
                             "sam.jones")
    with db.reading(engine) as session:
        renamed = session.get(User, staff.second_practitioner.id)
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "rename_user")).one()
    assert (renamed.full_name, renamed.username) == ("Sam Second-Jones", "sam.jones")
    assert (row.user_id, row.entity_id, row.detail) == (staff.administrator.id, renamed.id,
                                                        "full name; username second → sam.jones")
    assert _sign_in(engine, "sam.jones", PASSWORD).user_id == renamed.id
    with pytest.raises(InputErrors, match="is taken"), db.writing(engine) as session:
        accounts.rename_user(session, staff.administrator, renamed.id, "Sam", "Practitioner")
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        accounts.rename_user(session, staff.team_lead, renamed.id, "Sam", "sam")


# --- Export is granted per person ---------------------------------------------------------------


def test_administrators_do_not_export_until_another_administrator_grants_it(engine, staff):
    assert not permissions.has_permission(staff.administrator, Permission.EXPORT)
    assert permissions.has_permission(staff.team_lead, Permission.EXPORT)
    with db.writing(engine) as session:
        second_admin = accounts.create_user(session, staff.administrator, NewUser(
            "admin2", "Ade Second", Role.ADMINISTRATOR, staff.team.id, PASSWORD))
    with pytest.raises(InputErrors, match="Another administrator"), db.writing(engine) as session:
        accounts.set_export_permission(session, staff.administrator, staff.administrator.id, True)
    with db.writing(engine) as session:
        granted = accounts.set_export_permission(session, second_admin, staff.administrator.id, True)
        withdrawn = accounts.set_export_permission(session, second_admin, staff.team_lead.id, False)
    assert permissions.has_permission(granted, Permission.EXPORT)
    assert not permissions.has_permission(withdrawn, Permission.EXPORT)
    with db.reading(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.action == "change_export_permission")
                            .order_by(AuditEvent.id)).all()
    assert [(row.user_id, row.entity_id, row.detail) for row in rows] == [
        (second_admin.id, staff.administrator.id, "export: as the role allows → allowed"),
        (second_admin.id, staff.team_lead.id, "export: as the role allows → not allowed")]
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        accounts.set_export_permission(session, staff.team_lead, staff.practitioner.id, True)


def test_only_administrators_manage_users_and_refusals_are_audited(engine, staff):
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        accounts.create_user(session, staff.team_lead,
                             NewUser("sneaky", "Sneaky", Role.ADMINISTRATOR, staff.team.id, PASSWORD))
    assert _count(engine, User, User.username == "sneaky") == 0
    assert _count(engine, AuditEvent, AuditEvent.outcome == "denied", AuditEvent.user_id == staff.team_lead.id) == 1


def test_account_changes_are_audited(engine, staff):
    with db.writing(engine) as session:
        accounts.change_role(session, staff.administrator, staff.practitioner.id, Role.TEAM_LEAD)
        accounts.set_active(session, staff.administrator, staff.second_practitioner.id, False)
    assert _count(engine, AuditEvent, AuditEvent.action.in_(["change_role", "disable_user"])) == 2


def test_must_change_password_flow(engine, staff):
    with db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser("newbie", "New Bie", Role.PRACTITIONER, staff.team.id, "temporary pass 1"))
    signed_in = _sign_in(engine, "newbie", "temporary pass 1")
    with db.reading(engine) as session:
        user = accounts.current_user(session, signed_in, None)
    assert user.must_change_password
    with pytest.raises(InputErrors, match="most common"), db.writing(engine) as session:
        accounts.change_own_password(session, user, "temporary pass 1", "password1234")
    with db.writing(engine) as session:
        accounts.change_own_password(session, user, "temporary pass 1", "my own long phrase")
    assert _sign_in(engine, "newbie", "my own long phrase")


def test_changing_ones_own_password_needs_the_current_one_and_ends_other_sessions(engine, staff):
    elsewhere = _sign_in(engine, "practitioner", PASSWORD)  # another browser, still signed in
    here = _sign_in(engine, "practitioner", PASSWORD)
    with db.reading(engine) as session:
        user = accounts.current_user(session, here, clock.now())
    with db.writing(engine) as session:
        renewed = accounts.change_own_password(session, user, PASSWORD, "a brand new phrase of mine")
    with db.reading(engine) as session:
        assert accounts.current_user(session, elsewhere, clock.now()) is None
        assert accounts.current_user(session, here, clock.now()) is None
        assert accounts.current_user(session, renewed, clock.now()).id == staff.practitioner.id
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "change_password")).one()
    assert (row.user_id, row.outcome) == (staff.practitioner.id, "success")
    with pytest.raises(SignInRefused):
        _sign_in(engine, "practitioner", PASSWORD)
    assert _sign_in(engine, "practitioner", "a brand new phrase of mine")


def test_a_wrong_current_password_is_refused_counted_and_locks_after_five(engine, staff):
    with db.reading(engine) as session:
        user = session.get(User, staff.practitioner.id)
    for _ in range(accounts.MAX_FAILED_SIGN_INS):
        with pytest.raises(InputErrors, match="Current password is not right"), db.writing(engine) as session:
            accounts.change_own_password(session, user, "a guess at the password", "a brand new phrase of mine")
    with pytest.raises(InputErrors, match="Too many wrong passwords"), db.writing(engine) as session:
        accounts.change_own_password(session, user, PASSWORD, "a brand new phrase of mine")
    assert _count(engine, AuditEvent, AuditEvent.action == "change_password",
                  AuditEvent.outcome == "failure") == accounts.MAX_FAILED_SIGN_INS
    assert _count(engine, AuditEvent, AuditEvent.action == "lockout") == 1
    with pytest.raises(SignInRefused):
        _sign_in(engine, "practitioner", PASSWORD)  # locked for sign-in too


@pytest.mark.parametrize(("new", "field", "says"), [
    (PASSWORD, "new_password", "must differ"),
    ("short one", "new_password", "at least 12"),
    ("practitioner 2026", "new_password", "username"),
])
def test_a_refused_new_password_changes_nothing(engine, staff, new, field, says):
    with db.reading(engine) as session:
        user = session.get(User, staff.practitioner.id)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        accounts.change_own_password(session, user, PASSWORD, new)
    assert says in refused.value.errors[field]
    with db.reading(engine) as session:
        assert session.get(User, staff.practitioner.id).session_epoch == 0
    assert _sign_in(engine, "practitioner", PASSWORD)


def test_a_single_sign_on_account_changes_its_password_at_the_organisation(engine, staff):
    with db.writing(engine) as session:
        user = accounts.create_user(session, staff.administrator, NewUser(
            "sso.only", "Sso Only", Role.PRACTITIONER, staff.team.id, "", email="sso.only@nhs.net"))
    with pytest.raises(InputErrors, match="through your organisation"), db.writing(engine) as session:
        accounts.change_own_password(session, user, "", "a brand new phrase of mine")


def test_unknown_role_in_the_database_is_refused_at_start_up(engine, staff):
    with db.writing(engine) as session:
        session.get(User, staff.practitioner.id).role = "superuser"
    with pytest.raises(accounts.UnknownRoleInDatabase, match=r"practitioner \('superuser'\)"), \
            db.reading(engine) as session:
        accounts.check_roles(session)


@pytest.mark.parametrize("role", list(Role))
def test_permission_table_covers_every_role(role):
    assert permissions.ROLE_PERMISSIONS[role]


def test_unknown_role_has_no_permission(staff):
    staff.practitioner.role = "superuser"
    assert not permissions.has_permission(staff.practitioner, Permission.VIEW_HOME)


def test_export_can_be_granted_to_one_practitioner(staff):
    assert not permissions.has_permission(staff.practitioner, Permission.EXPORT)
    staff.practitioner.can_export = True
    assert permissions.has_permission(staff.practitioner, Permission.EXPORT)


def test_single_sign_on_only_account_has_no_password(engine, staff):
    with db.writing(engine) as session:
        user = accounts.create_user(session, staff.administrator, NewUser(
            "sso.only", "Sso Only", Role.PRACTITIONER, staff.team.id, "", email="sso.only@nhs.net"))
    assert user.password_hash is None and not user.must_change_password
    with pytest.raises(SignInRefused):
        _sign_in(engine, "sso.only", "")


def test_no_password_and_no_email_is_refused(engine, staff):
    with pytest.raises(InputErrors, match="single sign-on only"), db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser("nopass", "No Pass", Role.PRACTITIONER, staff.team.id, ""))


def test_the_command_line_grants_export_to_the_first_administrator_and_it_is_audited(engine, staff):
    with db.writing(engine) as session:
        granted = accounts.set_export_from_the_command_line(session, "ADMIN", True)
    assert permissions.has_permission(granted, Permission.EXPORT)
    with db.reading(engine) as session:
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "change_export_permission")).one()
    assert (row.user_id, row.username, row.entity_id) == (None, "manage.py", staff.administrator.id)
    with pytest.raises(NotFound), db.writing(engine) as session:
        accounts.set_export_from_the_command_line(session, "nobody", True)
