"""Onward referrals: added at a screening, refused when dated wrongly, followed up later with locking."""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from models import AuditEvent, CodeItem, OnwardReferral
from models.codes import CodeList, ReferralStatus, ScreeningOutcome
from services import clock, db, referrals, screening
from services.errors import Conflict, InputErrors, PermissionDenied
from services.referrals import NewReferral, ReferralUpdate
from services.screening import Outcome
from tests.test_screening import an_hour_ago, complete, context, make_person, save, start, valid_screening, view


def add(engine, staff, screening_id: int, data: NewReferral, user=None) -> OnwardReferral:
    with db.writing(engine) as session:
        return referrals.add_referral(session, user or staff.practitioner, screening_id, data)


def refused(engine, staff, screening_id: int, data: NewReferral) -> dict[str, str]:
    with pytest.raises(InputErrors) as refusal:
        add(engine, staff, screening_id, data)
    with db.reading(engine) as session:
        assert session.exec(select(OnwardReferral)).all() == []
        assert session.exec(select(AuditEvent).where(AuditEvent.entity == "onward_referral")).all() == []
    return refusal.value.errors


def dated_draft(engine, staff):
    draft = start(engine, staff)
    save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    return draft


def today() -> date:
    return clock.today_in_london()


def test_a_referral_is_added_to_the_screening_for_its_person_and_audited(engine, staff):
    draft = dated_draft(engine, staff)
    referral = add(engine, staff, draft.id, NewReferral("housing", an_hour_ago()[0], note="<b>Council</b> =1+1"))
    assert referral.person_id == draft.person_id and referral.team_id == staff.team.id
    assert referral.status == ReferralStatus.MADE and referral.note == "<b>Council</b> =1+1"
    with db.reading(engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "create_onward_referral")).one()
        rows = referrals.referrals_for_screening(session, staff.practitioner, draft.id)
    assert event.entity_id == referral.id and "Council" not in (event.detail or "")
    assert [(row.service, row.status) for row in rows] == [("Housing", "Made")]


def test_a_referral_dated_before_the_screening_is_refused(engine, staff):
    draft = dated_draft(engine, staff)
    errors = refused(engine, staff, draft.id, NewReferral("housing", an_hour_ago()[0] - timedelta(days=1)))
    assert "before the screening" in errors["referred_on"]


def test_a_referral_dated_in_the_future_or_undated_is_refused(engine, staff):
    draft = dated_draft(engine, staff)
    assert "future" in refused(engine, staff, draft.id, NewReferral("housing", today() + timedelta(days=1)))[
        "referred_on"]
    assert "required" in refused(engine, staff, draft.id, NewReferral("housing", None))["referred_on"]


def test_a_withdrawn_or_unknown_service_is_refused(engine, staff):
    draft = dated_draft(engine, staff)
    with db.writing(engine) as session:
        item = session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.ONWARD_SERVICE,
                                                   CodeItem.code == "probation")).one()
        item.active = False
        session.add(item)
    assert "not an active choice" in refused(engine, staff, draft.id, NewReferral("probation", today()))["service"]
    assert "Choose the service" in refused(engine, staff, draft.id, NewReferral(None, today()))["service"]


def test_a_note_over_its_limit_is_refused(engine, staff):
    draft = dated_draft(engine, staff)
    errors = refused(engine, staff, draft.id, NewReferral("housing", today(), note="n" * 2001))
    assert "at most 2,000 characters" in errors["note"]


def test_attendance_must_agree_with_the_status(engine, staff):
    draft = dated_draft(engine, staff)
    errors = refused(engine, staff, draft.id, NewReferral("housing", today(), status="attended"))
    assert "attended on time" in errors["attendance"]
    errors = refused(engine, staff, draft.id, NewReferral("housing", today(), status="made", attendance="3"))
    assert "set the status" in errors["attendance"]
    errors = refused(engine, staff, draft.id, NewReferral("housing", today(), status="lost"))
    assert set(errors) == {"status"}


def test_a_referral_on_an_undated_draft_is_checked_again_when_the_screening_is_dated(engine, staff):
    draft = start(engine, staff)
    add(engine, staff, draft.id, NewReferral("housing", today() - timedelta(days=2)))
    with pytest.raises(InputErrors) as refusal:
        save(engine, staff, draft.id, screening.save_person_and_context, context(staff))
    assert "before this screening date" in refusal.value.errors["screened_at"]


def test_onward_referral_outcome_needs_a_referral_to_complete(engine, staff):
    draft_id = valid_screening(engine, staff)
    save(engine, staff, draft_id, screening.save_outcome, Outcome(ScreeningOutcome.ONWARD_REFERRAL))
    with pytest.raises(screening.CompletionRefused) as refusal:
        complete(engine, staff, draft_id)
    assert set(refusal.value.by_section) == {"referrals"}
    add(engine, staff, draft_id, NewReferral("crisis_team", an_hour_ago()[0]))
    complete(engine, staff, draft_id)
    assert view(engine, staff, draft_id).section_saved("referrals")


def test_a_referral_is_followed_up_later_with_attendance_and_outcome(engine, staff):
    draft_id = valid_screening(engine, staff)
    referral = add(engine, staff, draft_id, NewReferral("talking_therapies", an_hour_ago()[0]))
    complete(engine, staff, draft_id)
    with db.writing(engine) as session:
        updated = referrals.update_referral(session, staff.second_practitioner, referral.id, referral.version,
                                            ReferralUpdate("attended", "6", today(), "Seen by Dr Lee"))
    assert updated.version == referral.version + 1 and updated.attendance == "6"
    with db.reading(engine) as session:
        rows = referrals.referrals_for_person(session, staff.team_lead, referral.person_id)
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "update_onward_referral")).one()
    assert (rows[0].status, rows[0].attendance) == ("Attended", "Arrived late and was seen")
    assert event.detail == "status, attendance, outcome_on, note"


def test_an_outcome_dated_before_the_referral_or_in_the_future_is_refused(engine, staff):
    draft = dated_draft(engine, staff)
    referral = add(engine, staff, draft.id, NewReferral("housing", today()))
    for outcome_on, message in ((today() - timedelta(days=1), "before the referral"),
                                (today() + timedelta(days=1), "future")):
        with pytest.raises(InputErrors) as refusal, db.writing(engine) as session:
            referrals.update_referral(session, staff.practitioner, referral.id, referral.version,
                                      ReferralUpdate("accepted", None, outcome_on))
        assert message in refusal.value.errors["outcome_on"]


def test_a_stale_referral_update_is_refused_naming_who_saved_first(engine, staff):
    draft = dated_draft(engine, staff)
    referral = add(engine, staff, draft.id, NewReferral("housing", today()))
    with db.writing(engine) as session:
        referrals.update_referral(session, staff.second_practitioner, referral.id, referral.version,
                                  ReferralUpdate("accepted"))
    with pytest.raises(Conflict) as conflict, db.writing(engine) as session:
        referrals.update_referral(session, staff.practitioner, referral.id, referral.version,
                                  ReferralUpdate("declined"))
    assert "Sam Second" in str(conflict.value)
    with db.reading(engine) as session:
        assert session.get(OnwardReferral, referral.id).status == "accepted"


def test_a_referral_is_removed_from_a_draft_only(engine, staff):
    draft_id = valid_screening(engine, staff)
    mistake = add(engine, staff, draft_id, NewReferral("housing", an_hour_ago()[0]))
    kept = add(engine, staff, draft_id, NewReferral("benefits_advice", an_hour_ago()[0]))
    with db.writing(engine) as session:
        referrals.remove_referral(session, staff.practitioner, mistake.id, mistake.version)
    complete(engine, staff, draft_id)
    with pytest.raises(InputErrors) as refusal, db.writing(engine) as session:
        referrals.remove_referral(session, staff.practitioner, kept.id, kept.version)
    assert "draft" in refusal.value.errors["referral"]
    with db.reading(engine) as session:
        assert [row.id for row in session.exec(select(OnwardReferral)).all()] == [kept.id]


def test_another_team_cannot_add_or_update_referrals(engine, staff):
    draft = dated_draft(engine, staff)
    referral = add(engine, staff, draft.id, NewReferral("housing", today()))
    with pytest.raises(PermissionDenied):
        add(engine, staff, draft.id, NewReferral("housing", today()), user=staff.other_team_practitioner)
    with pytest.raises(PermissionDenied), db.writing(engine) as session:
        referrals.update_referral(session, staff.other_team_lead, referral.id, referral.version,
                                  ReferralUpdate("declined"))
    other_person = make_person(engine, staff, team=staff.other_team)
    with pytest.raises(PermissionDenied), db.reading(engine) as session:
        referrals.referrals_for_person(session, staff.practitioner, other_person.id)
