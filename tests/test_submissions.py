"""A create is idempotent: a second submit with the same token finds the first record, writes nothing.

Runs on SQLite and PostgreSQL; the race test sends two presses from two threads at once.
"""

import threading
import uuid

import pytest
from sqlmodel import func, select

from models import AuditEvent, Person, Request, Submission
from services import db, requests, submissions
from services.errors import InputErrors
from services.people import NewPerson
from tests.test_requests import fixed_clock, new_request  # noqa: F401


def count(engine, model) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def log(engine, user, staff, token, **changes):
    with db.writing(engine) as session:
        return requests.log_request(session, user, new_request(staff, **changes), submission=token)


def test_a_second_press_returns_the_first_request_and_writes_nothing(engine, staff):
    token = uuid.uuid4().hex
    first = log(engine, staff.practitioner, staff, token, new_person=NewPerson("Siôn", "Nguyễn", "05/11/1990"))
    written = (count(engine, Request), count(engine, Person), count(engine, AuditEvent))
    again = log(engine, staff.practitioner, staff, token, new_person=NewPerson("Siôn", "Nguyễn", "05/11/1990"))
    assert (again.id, again.reference) == (first.id, first.reference)
    assert (count(engine, Request), count(engine, Person), count(engine, AuditEvent)) == written == (1, 1, 2)


def test_a_new_token_makes_a_new_request(engine, staff):
    first = log(engine, staff.practitioner, staff, uuid.uuid4().hex)
    second = log(engine, staff.practitioner, staff, uuid.uuid4().hex)
    assert first.id != second.id and count(engine, Request) == 2


def test_a_refused_submit_keeps_its_token_free_for_the_corrected_form(engine, staff):
    token = uuid.uuid4().hex
    with pytest.raises(InputErrors):
        log(engine, staff.practitioner, staff, token, reason="")
    assert count(engine, Submission) == 0 and count(engine, Request) == 0
    logged = log(engine, staff.practitioner, staff, token)
    assert count(engine, Request) == 1 and logged.reference


def test_another_users_token_is_refused_not_answered(engine, staff):
    token = uuid.uuid4().hex
    log(engine, staff.practitioner, staff, token)
    with pytest.raises(InputErrors) as refused:
        log(engine, staff.second_practitioner, staff, token)
    assert "already sent" in refused.value.errors["submission"]
    assert count(engine, Request) == 1


@pytest.mark.parametrize("token", ["", "x" * 32, "A" * 32, "0" * 31, "０" * 32])
def test_a_malformed_token_is_refused_with_nothing_written(engine, staff, token):
    with pytest.raises(InputErrors) as refused:
        log(engine, staff.practitioner, staff, token)
    assert "reload the page" in refused.value.errors["submission"]
    assert count(engine, Request) == 0


def test_two_presses_at_the_same_moment_store_one_request(engine, staff):
    token = uuid.uuid4().hex
    barrier = threading.Barrier(2)
    results, errors = [], []

    def press():
        barrier.wait()
        try:
            results.append(log(engine, staff.practitioner, staff, token).id)
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and count(engine, Request) == 1


def test_claim_without_a_token_claims_nothing(engine, staff):
    with db.writing(engine) as session:
        assert submissions.claim(session, staff.practitioner, None, "request") is None
    assert count(engine, Submission) == 0


def test_a_second_add_referral_press_returns_the_first_referral(engine, staff):
    from models import OnwardReferral
    from services import referrals
    from services.referrals import NewReferral
    from tests.test_referrals import dated_draft
    from tests.test_screening import an_hour_ago

    draft = dated_draft(engine, staff)
    token = uuid.uuid4().hex
    presses = []
    for _press in range(2):
        with db.writing(engine) as session:
            presses.append(referrals.add_referral(session, staff.practitioner, draft.id,
                                                  NewReferral("housing", an_hour_ago()[0]), submission=token).id)
    assert presses[0] == presses[1] and count(engine, OnwardReferral) == 1
    with db.reading(engine) as session:
        audited = session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "create_onward_referral")).one()
    assert audited == 1


def test_a_second_record_this_person_press_returns_the_first_person(engine, staff):
    from services import people

    token = uuid.uuid4().hex
    made = []
    for _press in range(2):
        with db.writing(engine) as session:
            made.append(people.create_person(session, staff.practitioner, NewPerson("Mair", "Ap Rhys", "01/02/2001"),
                                             submission=token).id)
    assert made[0] == made[1] and count(engine, Person) == 1


def test_a_second_record_and_screen_press_opens_the_first_draft(engine, staff):
    from models import Screening
    from services import screening

    token = uuid.uuid4().hex
    drafts = []
    for _press in range(2):
        with db.writing(engine) as session:
            drafts.append(screening.start_for_new_person(session, staff.practitioner,
                                                         NewPerson("Mair", "Ap Rhys", "01/02/2001"),
                                                         submission=token).id)
    assert drafts[0] == drafts[1] and count(engine, Person) == 1 and count(engine, Screening) == 1


def test_a_second_create_user_press_returns_the_first_account(engine, staff):
    from models import User
    from models.codes import Role
    from services import accounts

    token = uuid.uuid4().hex
    made = []
    for _press in range(2):
        with db.writing(engine) as session:
            made.append(accounts.create_user(session, staff.administrator, accounts.NewUser(
                "new.starter", "New Starter", Role.PRACTITIONER, staff.team.id, "a kettle of unusual herons"),
                submission=token).id)
    assert made[0] == made[1]
    with db.reading(engine) as session:
        assert session.exec(select(func.count()).select_from(User).where(User.username == "new.starter")).one() == 1
