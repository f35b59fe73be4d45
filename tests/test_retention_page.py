"""The retention review page: ids not names, and nothing deleted without a ticked confirmation."""

from datetime import UTC, date, datetime

from sqlmodel import select

from models import AuditEvent, Person
from services import db

PAGE = "pages/23_Retention.py"


def _person(engine, staff, given, last_contact_on) -> int:
    with db.writing(engine) as session:
        person = Person(given_name=given, family_name="Nguyễn", given_name_key=given.lower(),
                        family_name_key="nguyen", nhs_number_status="not_known", date_of_birth=date(1950, 1, 1),
                        last_contact_on=last_contact_on, team_id=staff.team.id,
                        created_at=datetime(2000, 1, 1, tzinfo=UTC))
        session.add(person)
        session.flush()
        return person.id


def _exists(engine, person_id) -> bool:
    with db.reading(engine) as session:
        return session.get(Person, person_id) is not None


def _page_text(test) -> str:
    parts = [str(element.value) for kind in ("markdown", "caption", "text", "info", "success", "error")
             for element in getattr(test, kind)]
    frames = [test.dataframe[0].value.to_string()] if test.dataframe else []
    return " ".join(parts + frames)


def _delete_button(test):
    return next(button for button in test.button if button.label.startswith("Delete the chosen"))


def test_the_queue_shows_ids_and_dates_but_no_names(app_test, sqlite_engine, sqlite_staff):
    old = _person(sqlite_engine, sqlite_staff, "Dafydd", date(1990, 1, 1))
    _person(sqlite_engine, sqlite_staff, "Recent", date(2024, 1, 1))
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    assert [metric.value for metric in test.metric] == ["1", "1", "0"]
    frame = test.dataframe[0].value
    assert list(frame["Person id"]) == [str(old)]
    assert list(frame["Last contact"]) == ["01/01/1990"] and list(frame["Kept until"]) == ["01/01/2010"]
    text = _page_text(test)
    assert "Dafydd" not in text and "Nguyễn" not in text and "1950" not in text


def test_nothing_is_deleted_without_the_confirmation(app_test, sqlite_engine, sqlite_staff):
    old = _person(sqlite_engine, sqlite_staff, "Dafydd", date(1990, 1, 1))
    test = app_test(PAGE, sqlite_staff.administrator).run()
    test.multiselect[0].set_value([old])
    _delete_button(test).click().run()
    assert any("Tick the box" in error.value for error in test.error)
    assert _exists(sqlite_engine, old)
    assert test.multiselect[0].value == [old]  # what was chosen stays chosen


def test_approved_deletion_deletes_and_is_audited(app_test, sqlite_engine, sqlite_staff):
    first = _person(sqlite_engine, sqlite_staff, "Dafydd", date(1990, 1, 1))
    second = _person(sqlite_engine, sqlite_staff, "Eirlys", date(1991, 1, 1))
    test = app_test(PAGE, sqlite_staff.administrator).run()
    test.multiselect[0].set_value([second])
    next(box for box in test.checkbox if box.label.startswith("I have checked")).check()
    _delete_button(test).click().run()
    assert not test.exception
    assert test.success[0].value.startswith("Deleted 1 record. Each deletion is in the audit log")
    assert [toast.value for toast in test.toast] == ["Deleted 1 record."]  # also where the eye is
    assert not _exists(sqlite_engine, second) and _exists(sqlite_engine, first)
    assert list(test.dataframe[0].value["Person id"]) == [str(first)]
    with db.reading(sqlite_engine) as session:
        row = session.exec(select(AuditEvent).where(AuditEvent.action == "retention_delete")).one()
    assert (row.user_id, row.entity_id) == (sqlite_staff.administrator.id, second)


def test_an_empty_queue_says_so(app_test, sqlite_staff):
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    assert test.info[0].value == "No records are past retention today."
    assert not test.multiselect
