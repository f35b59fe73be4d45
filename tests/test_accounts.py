"""Sign-in, lockout, sessions and the administration of users."""

from datetime import timedelta

import pytest
from sqlmodel import func, select

from models import AuditEvent, User
from models.codes import Role
from services import accounts, clock, db, permissions
from services.accounts import NewUser, SignedIn
from services.errors import InputErrors, PermissionDenied, SignInRefused
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
        ("", PASSWORD, "username", "Enter a username"),
        ("practitioner", PASSWORD, "username", "is taken"),
        ("PRACTITIONER", PASSWORD, "username", "is taken"),
        ("newperson", "short", "temporary_password", "at least 8"),
        ("newperson", "password123", "temporary_password", "most common"),
        ("newperson", "Password1", "temporary_password", "most common"),
    ],
)
def test_bad_new_users_are_refused_and_nothing_is_written(engine, staff, username, password, field, message):
    before = _count(engine, User)
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        accounts.create_user(session, staff.administrator,
                             NewUser(username, "New Person", Role.PRACTITIONER, staff.team.id, password))
    assert message in refused.value.errors[field]
    assert _count(engine, User) == before


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
        accounts.change_own_password(session, user, "temporary pass 1", "password1")
    with db.writing(engine) as session:
        accounts.change_own_password(session, user, "temporary pass 1", "my own long phrase")
    assert _sign_in(engine, "newbie", "my own long phrase")


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
