"""Single sign-on: with an `[auth]` section the sign-in page offers `st.login`; the identity
provider's e-mail is mapped (ignoring case) to an active account; unknown and disabled addresses
are refused with a clear message and audited; signing out ends the organisation sign-in too.

Pages run through AppTest with its user injection (`AppTest.user`, read as `st.user`) and its
secrets (`AppTest.secrets`, read as `st.secrets`)."""

from datetime import timedelta

import pytest
import streamlit
from sqlmodel import select

from models import AuditEvent, User
from services import accounts, audit, clock, db
from services.errors import SignInRefused
from ui import guard

AUTH_SECRETS = {
    "auth": {
        "redirect_uri": "https://ldhub.example.nhs.uk/oauth2callback",
        "cookie_secret": "not-a-real-secret",
        "client_id": "00000000-0000-0000-0000-000000000000",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://login.microsoftonline.com/example/v2.0/.well-known/openid-configuration",
    }
}
EMAIL = "priya.practitioner@example.nhs.uk"


def _give_email(engine, user, email=EMAIL, *, active=True):
    with db.writing(engine) as session:
        row = session.get(User, user.id)
        row.email = email
        row.active = active


def _organisation_user(email, *, minutes_ago=1):
    return {
        "is_logged_in": True,
        "email": email,
        "name": "Priya Practitioner",
        "iat": int((clock.now() - timedelta(minutes=minutes_ago)).timestamp()),
    }


def _sso_test(app_test, page="app.py", user_info=None):
    test = app_test(page)
    test.secrets = dict(AUTH_SECRETS)
    test.user = user_info if user_info is not None else {"is_logged_in": False}
    return test


def _audit_rows(engine, action="sign_in"):
    with db.reading(engine) as session:
        return session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _labels(test):
    return [button.label for button in test.button]


# --- The service ------------------------------------------------------------------------------


def test_email_maps_to_the_active_account_ignoring_case(engine, staff):
    _give_email(engine, staff.practitioner)
    with db.writing(engine) as session:
        signed_in = accounts.sign_in_with_email(session, "  Priya.Practitioner@EXAMPLE.nhs.uk ")
    assert signed_in == accounts.SignedIn(staff.practitioner.id, staff.practitioner.session_epoch, True)
    [row] = _audit_rows(engine)
    assert (row.user_id, row.outcome, row.detail) == (staff.practitioner.id, audit.SUCCESS, "single sign-on")


@pytest.mark.parametrize("case", ["unknown", "disabled", "blank"])
def test_unknown_disabled_or_missing_email_is_refused_and_audited(engine, staff, case):
    _give_email(engine, staff.practitioner, active=case != "disabled")
    email = {"unknown": "someone.else@example.nhs.uk", "disabled": EMAIL, "blank": ""}[case]
    with pytest.raises(SignInRefused) as refused, db.writing(engine) as session:
        accounts.sign_in_with_email(session, email)
    assert ("e-mail address" in str(refused.value)) and (email in str(refused.value))
    [row] = _audit_rows(engine)
    assert row.outcome == audit.FAILURE and row.detail.startswith("single sign-on: ")
    if case == "disabled":
        assert row.user_id == staff.practitioner.id and row.detail.endswith("inactive account")
    else:
        assert row.user_id is None and row.username == email


def test_a_locked_password_does_not_lock_out_single_sign_on(engine, staff):
    _give_email(engine, staff.practitioner)
    with db.writing(engine) as session:
        session.get(User, staff.practitioner.id).locked_until = clock.now() + timedelta(minutes=10)
    with db.writing(engine) as session:
        assert accounts.sign_in_with_email(session, EMAIL).user_id == staff.practitioner.id


def test_the_providers_sign_in_starts_a_session_only_within_the_idle_time_out(engine, staff):
    with db.reading(engine) as session:
        assert accounts.sso_identity_is_recent(session, clock.now() - timedelta(minutes=29))
        assert not accounts.sso_identity_is_recent(session, clock.now() - timedelta(minutes=31))
        assert not accounts.sso_identity_is_recent(session, None)


# --- The pages --------------------------------------------------------------------------------


def test_without_an_auth_section_there_is_no_organisation_button(app_test, sqlite_staff):
    test = app_test("app.py").run()
    assert guard.SSO_BUTTON not in _labels(test)


def test_the_sign_in_page_offers_organisation_sign_in_beside_the_local_form(app_test, sqlite_staff, monkeypatch):
    calls = []
    monkeypatch.setattr(streamlit, "login", lambda *args: calls.append(args))
    test = _sso_test(app_test).run()
    assert not test.exception
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    test.button(key="sso_sign_in").click().run()
    assert calls == [()]  # the default provider of the [auth] section
    assert "signed_in" not in test.session_state


def test_organisation_sign_in_opens_the_app_for_the_mapped_account(app_test, sqlite_engine, sqlite_staff):
    _give_email(sqlite_engine, sqlite_staff.practitioner)
    test = _sso_test(app_test, user_info=_organisation_user("PRIYA.practitioner@example.nhs.uk")).run()
    assert not test.exception
    assert test.title[0].value == "My work"
    assert test.session_state["signed_in"].single_sign_on
    [row] = _audit_rows(sqlite_engine)
    assert (row.user_id, row.outcome, row.detail) == (sqlite_staff.practitioner.id, "success", "single sign-on")
    test.run()
    assert len(_audit_rows(sqlite_engine)) == 1  # one sign-in per session, not one per rerun


def test_a_deep_link_signs_in_through_the_organisation_too(app_test, sqlite_engine, sqlite_staff):
    _give_email(sqlite_engine, sqlite_staff.administrator, "ada@example.nhs.uk")
    test = _sso_test(app_test, "pages/20_Users.py", _organisation_user("ada@example.nhs.uk")).run()
    assert not test.exception
    assert test.title[0].value == "Users"


@pytest.mark.parametrize("case", ["unknown", "disabled"])
def test_an_unknown_or_disabled_email_is_refused_clearly_and_audited_once(
    app_test, sqlite_engine, sqlite_staff, case
):
    _give_email(sqlite_engine, sqlite_staff.practitioner, active=case != "disabled")
    email = EMAIL if case == "disabled" else "stranger@example.nhs.uk"
    test = _sso_test(app_test, user_info=_organisation_user(email)).run()
    assert not test.exception
    assert "signed_in" not in test.session_state
    assert any(email in error.value and "cannot sign in" in error.value for error in test.error)
    assert guard.SSO_SIGN_OUT_BUTTON in _labels(test)  # to try another organisation account
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    test.run()
    assert [row.outcome for row in _audit_rows(sqlite_engine)] == ["failure"]


def test_an_old_organisation_sign_in_must_be_renewed(app_test, sqlite_engine, sqlite_staff):
    """The provider's cookie lasts weeks: a tab opened after the idle time-out must not walk in."""
    _give_email(sqlite_engine, sqlite_staff.practitioner)
    test = _sso_test(app_test, user_info=_organisation_user(EMAIL, minutes_ago=31)).run()
    assert "signed_in" not in test.session_state
    assert test.info[0].value == guard.SSO_EXPIRED
    assert guard.SSO_BUTTON in _labels(test)
    assert _audit_rows(sqlite_engine) == []


def test_signing_out_ends_the_organisation_sign_in_too(app_test, sqlite_engine, sqlite_staff):
    _give_email(sqlite_engine, sqlite_staff.practitioner)
    test = _sso_test(app_test, user_info=_organisation_user(EMAIL)).run()
    assert test.title[0].value == "My work"
    test.sidebar.button(key="sign_out").click().run()
    assert not test.exception
    assert test.user == {"is_logged_in": False}  # st.logout() was called
    assert "signed_in" not in test.session_state
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    test.run()
    assert "signed_in" not in test.session_state  # and nothing signs them back in


def test_a_local_sign_out_does_not_call_the_identity_provider(app_test, sqlite_staff, monkeypatch):
    calls = []
    monkeypatch.setattr(streamlit, "logout", lambda: calls.append("logout"))
    test = app_test("app.py", sqlite_staff.practitioner)
    test.secrets = dict(AUTH_SECRETS)
    test.user = {"is_logged_in": False}
    test.run()
    test.sidebar.button(key="sign_out").click().run()
    assert "signed_in" not in test.session_state
    assert calls == []
