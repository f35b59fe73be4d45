"""Signed-in sessions kept in the database: a refresh resumes, a time-out, a lifetime or a sign-out ends.

On SQLite and PostgreSQL; the clock is moved by hand.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import func, select

from models import AuditEvent, Setting, SignedInSession, User
from services import accounts, clock, db, settings, sign_in_sessions

START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


@pytest.fixture
def now(monkeypatch):
    moment = {"at": START}
    monkeypatch.setattr(clock, "now", lambda: moment["at"])
    return moment


def start(engine, user) -> str:
    with db.writing(engine) as session:
        return sign_in_sessions.start(session, accounts.SignedIn(user.id, user.session_epoch))


def click(engine, token, last_activity=None):
    with db.reading(engine) as session:
        found = sign_in_sessions.check(session, token, last_activity)
    if found.touch or found.ended:
        with db.writing(engine) as session:
            sign_in_sessions.note(session, found)
    return found.user


def rows(engine) -> list[SignedInSession]:
    with db.reading(engine) as session:
        return list(session.exec(select(SignedInSession)).all())


def test_only_the_digest_of_the_token_is_stored(engine, staff, now):
    token = start(engine, staff.practitioner)
    (row,) = rows(engine)
    assert len(token) >= 43 and token not in row.token_digest and len(row.token_digest) == 64
    assert click(engine, token).id == staff.practitioner.id
    assert click(engine, "not a token") is None and click(engine, None) is None and click(engine, "x" * 500) is None


def test_a_click_is_written_down_at_most_once_a_minute(engine, staff, now):
    token = start(engine, staff.practitioner)
    now["at"] = START + timedelta(seconds=59)
    click(engine, token, START)
    assert rows(engine)[0].last_active_at == START
    now["at"] = START + timedelta(seconds=61)
    click(engine, token, START + timedelta(seconds=59))
    assert rows(engine)[0].last_active_at == START + timedelta(seconds=61)


def test_the_idle_time_out_ends_the_session_and_its_row(engine, staff, now):
    token = start(engine, staff.practitioner)
    now["at"] = START + timedelta(minutes=30, seconds=1)
    assert click(engine, token, START) is None
    assert rows(engine) == []  # spent: a refresh cannot bring it back


def test_the_lifetime_ends_a_busy_session_too(engine, staff, now):
    token = start(engine, staff.practitioner)
    for minute in range(0, 12 * 60, 20):
        now["at"] = START + timedelta(minutes=minute)
        assert click(engine, token, now["at"] - timedelta(minutes=1)) is not None
    now["at"] = START + timedelta(hours=12, seconds=1)
    assert click(engine, token, now["at"] - timedelta(minutes=1)) is None


def test_a_refresh_resumes_under_a_new_token_and_the_old_one_is_spent(engine, staff, now):
    token = start(engine, staff.practitioner)
    now["at"] = START + timedelta(minutes=10)
    with db.writing(engine) as session:
        resumed = sign_in_sessions.resume(session, token)
    assert resumed.signed_in.user_id == staff.practitioner.id and resumed.token != token
    assert click(engine, resumed.token).id == staff.practitioner.id
    with db.writing(engine) as session:
        assert sign_in_sessions.resume(session, token) is None
    with db.reading(engine) as session:
        assert session.exec(select(AuditEvent.action).where(AuditEvent.action == "resume_session")).all() == [
            "resume_session"]


def test_a_refresh_after_the_idle_time_out_signs_in_again(engine, staff, now):
    token = start(engine, staff.practitioner)
    now["at"] = START + timedelta(minutes=31)
    with db.writing(engine) as session:
        assert sign_in_sessions.resume(session, token) is None
    assert rows(engine) == []


def test_signing_out_ends_every_session_of_the_user_and_no_one_elses(engine, staff, now):
    first, second = start(engine, staff.practitioner), start(engine, staff.practitioner)
    colleague = start(engine, staff.second_practitioner)
    with db.writing(engine) as session:
        sign_in_sessions.end_all(session, staff.practitioner.id)
    assert click(engine, first) is None and click(engine, second) is None
    assert click(engine, colleague).id == staff.second_practitioner.id
    with db.reading(engine) as session:
        assert session.get(User, staff.practitioner.id).session_epoch == staff.practitioner.session_epoch + 1
        assert session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "sign_out", AuditEvent.user_id == staff.practitioner.id)).one() == 1


def test_a_disabled_account_is_signed_out_at_its_next_click(engine, staff, now):
    token = start(engine, staff.practitioner)
    with db.writing(engine) as session:
        session.get(User, staff.practitioner.id).active = False
    assert click(engine, token) is None


def test_the_idle_time_out_is_at_most_an_hour_whatever_was_stored(engine, staff, now):
    with db.writing(engine) as session:
        session.add(Setting(key="idle_timeout_minutes", value="1440"))  # allowed by an older version
    with db.reading(engine) as session:
        assert settings.get_int(session, "idle_timeout_minutes") == 60
    assert settings.DEFINITIONS["session_lifetime_hours"].default == 12
    assert "shared" in settings.DEFINITIONS["idle_timeout_minutes"].why


def test_ended_sessions_are_purged(engine, staff, now):
    start(engine, staff.practitioner)
    now["at"] = START + timedelta(hours=1)
    kept = start(engine, staff.second_practitioner)
    with db.writing(engine) as session:
        assert sign_in_sessions.purge_ended(session) == 1
    assert [row.user_id for row in rows(engine)] == [staff.second_practitioner.id]
    assert click(engine, kept) is not None


def test_a_forced_password_change_keeps_this_tab_signed_in_and_ends_the_others(app_test, sqlite_engine,
                                                                                sqlite_staff):
    with db.writing(sqlite_engine) as session:
        session.get(User, sqlite_staff.practitioner.id).must_change_password = True
    other_tab = start(sqlite_engine, sqlite_staff.practitioner)
    test = app_test("app.py", sqlite_staff.practitioner).run()
    assert test.title[0].value == "Choose a new password"
    assert "12 to 128 characters" in test.text_input[1].help
    test.text_input[0].input("correct horse battery staple")
    test.text_input[1].input("a kettle of unusual herons")
    test.text_input[2].input("a kettle of unusual herons")
    test.button[0].click().run()
    assert not test.error, [error.value for error in test.error]
    assert test.title[0].value == "My work"  # still signed in, in this tab
    assert click(sqlite_engine, other_tab) is None  # the other tab is signed out
    assert click(sqlite_engine, test.session_state["session_token"]).id == sqlite_staff.practitioner.id


def test_a_click_is_checked_in_one_transaction_that_also_names_the_team(engine, staff, now):
    """The guard's whole check at a click: the session, the account, the settings it needs and the
    team's name for the sidebar, read in one transaction with the settings read once, not once each."""
    token = start(engine, staff.practitioner)
    statements = []
    with db.reading(engine) as session:
        event.listen(session.connection(), "before_cursor_execute", lambda *arguments: statements.append(arguments[2]))
        found = sign_in_sessions.check(session, token, START)
    assert found.user.id == staff.practitioner.id and found.team_name == staff.team.name
    setting_reads = [text for text in statements if "FROM setting" in text]
    assert len(setting_reads) == 1, setting_reads  # idle time-out (twice) and lifetime: one query


def test_a_reading_session_reads_the_settings_once_and_a_writing_one_sees_its_own_change(engine, staff):
    with db.writing(engine) as session:
        row = Setting(key="idle_timeout_minutes", value="15")
        session.add(row)
        session.flush()
        assert settings.get_int(session, "idle_timeout_minutes") == 15  # a writer reads afresh
        row.value = "20"
        session.flush()
        assert settings.get_int(session, "idle_timeout_minutes") == 20
    with db.reading(engine) as session:
        assert settings.get_int(session, "idle_timeout_minutes") == 20
        assert settings.get_int(session, "session_lifetime_hours") == 12  # not stored: the default
    with db.reading(engine) as session:  # the next operation reads what was committed since
        assert settings.get_int(session, "idle_timeout_minutes") == 20
