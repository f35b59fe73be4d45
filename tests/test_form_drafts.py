"""Unsaved typing kept per person: written as typed, offered back after a refresh or a time-out, gone once saved.

Service tests on SQLite and PostgreSQL; the page behaviour through AppTest (a new AppTest is a new
browser session, as a refresh or a sign-in after a time-out is).
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlmodel import func, select

from models import FormDraft, Request
from services import clock, db, form_drafts
from services.errors import InputErrors
from tests.conftest import unescaped

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LOG = "pages/2_Log_request.py"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def drafts_stored(engine) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(FormDraft)).one()


def test_a_draft_round_trips_dates_times_lists_and_any_script(engine, staff):
    values = {"given": "Siôn Nguyễn 😊 مريم", "born": date(1990, 11, 5), "at": time(0, 30), "many": ["a", "b"],
              "none": None, "ticked": True}
    with db.writing(engine) as session:
        form_drafts.keep(session, staff.practitioner, "log_request", form_drafts.encode(values))
    with db.reading(engine) as session:
        kept = form_drafts.recall(session, staff.practitioner, "log_request")
    assert kept.values == values and kept.saved_at == NOW


def test_a_draft_is_its_authors_alone(engine, staff):
    with db.writing(engine) as session:
        form_drafts.keep(session, staff.practitioner, "screening:7", {"note": "typed by Priya"})
    with db.reading(engine) as session:
        assert form_drafts.recall(session, staff.second_practitioner, "screening:7") is None
        assert form_drafts.recall(session, staff.practitioner, "screening:8") is None
        assert form_drafts.recall(session, staff.practitioner, "screening:7").values == {"note": "typed by Priya"}


def test_a_draft_expires_and_is_purged(engine, staff, monkeypatch):
    with db.writing(engine) as session:
        form_drafts.keep(session, staff.practitioner, "log_request", {"reason": "x"})
    later = NOW + timedelta(days=form_drafts.KEEP_DAYS, seconds=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    with db.reading(engine) as session:
        assert form_drafts.recall(session, staff.practitioner, "log_request") is None
    with db.writing(engine) as session:
        assert form_drafts.purge_expired(session) == 1
    assert drafts_stored(engine) == 0


def test_an_oversized_draft_is_refused_and_nothing_is_written(engine, staff):
    with pytest.raises(InputErrors) as refused, db.writing(engine) as session:
        form_drafts.keep(session, staff.practitioner, "log_request", {"reason": "x" * (form_drafts.SIZE_LIMIT + 1)})
    assert "too long to keep" in refused.value.errors["draft"]
    assert drafts_stored(engine) == 0


@pytest.mark.parametrize("form", ["", "Log_request", "screening:", "screening:x", "a/b", "x" * 80])
def test_a_form_name_that_is_not_one_is_refused(engine, staff, form):
    with pytest.raises(ValueError), db.writing(engine) as session:
        form_drafts.keep(session, staff.practitioner, form, {})


# --- The log-request page ----------------------------------------------------------------------


def test_typing_survives_a_new_browser_session_and_goes_once_saved(app_test, sqlite_engine, sqlite_staff):
    test = app_test(LOG, sqlite_staff.practitioner).run()
    assert drafts_stored(sqlite_engine) == 0  # an untouched form keeps nothing
    test.text_area(key="log_reason").input("Distressed, asking for his sister <b>now</b>").run()
    test.text_input(key="log_requester_name").input("PC Dawn Jones").run()
    assert drafts_stored(sqlite_engine) == 1

    again = app_test(LOG, sqlite_staff.practitioner).run()  # a refresh, or signing in after a time-out
    assert again.text_area(key="log_reason").value == "Distressed, asking for his sister <b>now</b>"
    assert again.text_input(key="log_requester_name").value == "PC Dawn Jones"
    assert again.date_input(key="log_received_on").value == date(2026, 3, 10)
    assert any("Put back what you typed by 12:00 on 10/03/2026" in unescaped(info.value) for info in again.info)

    colleague = app_test(LOG, sqlite_staff.second_practitioner).run()
    assert colleague.text_area(key="log_reason").value == ""  # nobody else's typing

    again.radio(key="person_mode").set_value("No one: a general advice request").run()
    for key, value in {"log_source": "police", "log_site": sqlite_staff.sites[0].id, "log_type": "advice",
                       "log_urgency": "urgent"}.items():
        (again.radio if key == "log_urgency" else again.selectbox)(key=key).set_value(value)
    again.text_input(key="log_requester_phone").input("01702 123456").run()
    again.button[-2 if again.button[-1].label == "Sign out" else -1].click().run()
    assert not again.error, [error.value for error in again.error]
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(Request)).one() == 1
    assert drafts_stored(sqlite_engine) == 0
    assert again.text_area(key="log_reason").value == ""  # a fresh form for the next request


def test_starting_again_throws_the_draft_away(app_test, sqlite_engine, sqlite_staff):
    test = app_test(LOG, sqlite_staff.practitioner).run()
    test.text_area(key="log_reason").input("Half-typed").run()
    again = app_test(LOG, sqlite_staff.practitioner).run()
    [button for button in again.button if button.label.startswith("Start again")][0].click().run()
    assert again.text_area(key="log_reason").value == ""
    assert drafts_stored(sqlite_engine) == 0


def test_manage_purge_expired_deletes_only_what_has_expired(sqlite_engine, sqlite_staff, monkeypatch, capsys):
    import manage
    from models import SignedInSession, Submission
    from services import accounts, sign_in_sessions, submissions

    with db.writing(sqlite_engine) as session:
        form_drafts.keep(session, sqlite_staff.practitioner, "log_request", {"reason": "old"})
        sign_in_sessions.start(session, accounts.SignedIn(sqlite_staff.practitioner.id, 0))
        submissions.claim(session, sqlite_staff.practitioner, "a" * 32, "request")
    later = NOW + timedelta(days=8)
    monkeypatch.setattr(clock, "now", lambda: later)
    with db.writing(sqlite_engine) as session:
        form_drafts.keep(session, sqlite_staff.second_practitioner, "log_request", {"reason": "today"})
    manage.main(["purge-expired"])
    assert "Deleted 1 expired draft(s), 1 ended sign-in(s) and 1 old submission token(s)." in capsys.readouterr().out
    with db.reading(sqlite_engine) as session:
        kept = [draft.user_id for draft in session.exec(select(FormDraft)).all()]
        assert kept == [sqlite_staff.second_practitioner.id]
        assert session.exec(select(SignedInSession)).all() == [] and session.exec(select(Submission)).all() == []
