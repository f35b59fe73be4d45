"""Service administration: sites, code lists, settings, teams and export permission.

Every rule is checked on SQLite and on PostgreSQL (the `engine` fixture); every refusal says which
field is wrong and writes nothing.
"""

import uuid
from datetime import timedelta

import pytest
from sqlmodel import func, select

from models import AuditEvent, CodeItem, Request, Setting, Site, Submission, Team, User
from models.codes import CodeList, RequestStatus, Role, SiteKind
from services import administration, clock, code_lists, db, organisation, settings
from services.errors import Conflict, InputErrors, PermissionDenied
from services.permissions import Permission


def _count(engine, model, *conditions) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


def _audits(engine, action: str) -> list[AuditEvent]:
    with db.reading(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _write(engine, operation, *args, **kwargs):
    with db.writing(engine) as session:
        return operation(session, *args, **kwargs)


def _add_site(engine, staff, name="Grays custody suite", kind=SiteKind.CUSTODY_SUITE, team=None):
    team = team or staff.team
    return _write(engine, administration.add_site, staff.administrator, team.id, name, kind)


def _fresh(engine, model, row_id):
    with db.reading(engine) as session:
        return session.get(model, row_id)


# --- Permission ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.PRACTITIONER, Role.TEAM_LEAD])
def test_only_administrators_manage_the_service(engine, staff, role):
    user = staff.by_role(role)
    calls = [
        lambda session: administration.add_site(session, user, staff.team.id, "Tilbury", SiteKind.COMMUNITY),
        lambda session: administration.add_code(session, user, CodeList.VULNERABILITY, "Gambling"),
        lambda session: administration.change_settings(session, user, {"amber_percent": 50}, {}),
        lambda session: administration.add_team(session, user, "A new team"),
        lambda session: administration.list_sites(session, user, staff.team.id),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied), db.writing(engine) as session:
            call(session)
    assert _count(engine, Site, Site.name == "Tilbury") == 0
    assert _count(engine, Team) == 2
    denials = _audits(engine, Permission.MANAGE_SERVICE.value)
    assert len(denials) == len(calls) and all(denial.outcome == "denied" for denial in denials)


# --- Sites ---------------------------------------------------------------------------------


def test_administrator_adds_a_site_that_the_team_then_sees(engine, staff):
    site = _add_site(engine, staff, "  Grays custody suite ")
    assert site.name == "Grays custody suite" and site.active and site.kind == SiteKind.CUSTODY_SUITE
    with db.reading(engine) as session:
        names = [choice.name for choice in organisation.active_sites(session, staff.practitioner)]
        others = [choice.name for choice in organisation.active_sites(session, staff.other_team_practitioner)]
    assert "Grays custody suite" in names and "Grays custody suite" not in others
    [event] = _audits(engine, "add_site")
    assert event.entity_id == site.id and event.user_id == staff.administrator.id


@pytest.mark.parametrize("name", ["Southend custody suite", "southend CUSTODY suite", " Southend custody suite "])
def test_duplicate_site_name_in_one_team_is_refused(engine, staff, name):
    with pytest.raises(InputErrors) as refused:
        _add_site(engine, staff, name)
    assert set(refused.value.errors) == {"name"}
    assert "already has a site called Southend custody suite" in refused.value.errors["name"]
    assert _count(engine, Site, Site.team_id == staff.team.id) == 2
    assert not _audits(engine, "add_site")


def test_the_same_site_name_is_allowed_in_another_team(engine, staff):
    site = _add_site(engine, staff, "Southend custody suite", team=staff.other_team)
    assert site.team_id == staff.other_team.id


def test_renaming_onto_another_sites_name_is_refused(engine, staff):
    basildon = staff.sites[1]
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.change_site, staff.administrator, basildon.id, basildon.version,
               "Southend Custody Suite", basildon.kind)
    assert "already has a site" in refused.value.errors["name"]
    assert _fresh(engine, Site, basildon.id).name == "Basildon Magistrates' Court"


@pytest.mark.parametrize(("name", "kind", "fields"), [
    ("", SiteKind.COMMUNITY, {"name"}),
    ("x" * 101, SiteKind.COMMUNITY, {"name"}),
    ("Tilbury\ndocks", SiteKind.COMMUNITY, {"name"}),
    ("Tilbury", "moon_base", {"kind"}),
    ("", None, {"name", "kind"}),
])
def test_bad_site_input_is_refused_per_field(engine, staff, name, kind, fields):
    with pytest.raises(InputErrors) as refused:
        _add_site(engine, staff, name, kind)
    assert set(refused.value.errors) == fields
    assert _count(engine, Site) == 3


def test_rename_and_change_kind_are_audited_with_old_and_new(engine, staff):
    site = staff.sites[1]
    changed = _write(engine, administration.change_site, staff.administrator, site.id, site.version,
                     "Basildon Youth Court", SiteKind.YOUTH_COURT)
    assert (changed.name, changed.kind, changed.version) == ("Basildon Youth Court", "youth_court", 2)
    [event] = _audits(engine, "change_site")
    assert "Basildon Magistrates' Court → Basildon Youth Court" in event.detail
    assert "magistrates_court → youth_court" in event.detail


def test_a_stale_site_edit_is_refused_naming_who_changed_it(engine, staff):
    site = staff.sites[0]
    _write(engine, administration.change_site, staff.administrator, site.id, 1, "Southend police station",
           site.kind)
    with pytest.raises(Conflict) as conflict:
        _write(engine, administration.set_site_active, staff.administrator, site.id, 1, False)
    assert "Ada Administrator" in str(conflict.value)
    fresh = _fresh(engine, Site, site.id)
    assert fresh.active and fresh.name == "Southend police station"


def _add_request(engine, staff, site):
    with db.writing(engine) as session:
        now = clock.now()
        request = Request(
            received_at=now, source_of_referral="police", requester_name="PC Smith", request_type="advice",
            urgency="routine", reason="Advice", team_id=staff.team.id, site_id=site.id,
            status=RequestStatus.NEW, due_at=now + timedelta(days=1), created_by_id=staff.practitioner.id,
        )
        session.add(request)
        session.flush()
        return request


def test_a_site_in_use_is_never_deleted_only_deactivated(engine, staff):
    site = staff.sites[0]
    request = _add_request(engine, staff, site)
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.delete_site, staff.administrator, site.id, site.version)
    assert "cannot be deleted" in refused.value.errors["site_id"] and "Deactivate" in refused.value.errors["site_id"]
    deactivated = _write(engine, administration.set_site_active, staff.administrator, site.id, site.version, False)
    assert not deactivated.active
    with db.reading(engine) as session:
        choices = [choice.id for choice in organisation.active_sites(session, staff.practitioner)]
        assert site.id not in choices  # gone from forms for new records
        old = session.get(Request, request.id)
        assert session.get(Site, old.site_id).name == "Southend custody suite"  # still on the old record
        [row] = [row for row in administration.list_sites(session, staff.administrator, staff.team.id)
                 if row.site.id == site.id]
        assert row.records == 1
    assert [event.action for event in _audits(engine, "deactivate_site")] == ["deactivate_site"]


def test_an_unused_site_added_by_mistake_can_be_deleted(engine, staff):
    site = _add_site(engine, staff, "Typo custody suiet")
    _write(engine, administration.delete_site, staff.administrator, site.id, site.version)
    assert _fresh(engine, Site, site.id) is None
    assert len(_audits(engine, "delete_site")) == 1


def test_a_site_can_be_reactivated(engine, staff):
    site = staff.sites[0]
    off = _write(engine, administration.set_site_active, staff.administrator, site.id, 1, False)
    on = _write(engine, administration.set_site_active, staff.administrator, site.id, off.version, True)
    assert on.active and on.version == 3
    assert len(_audits(engine, "reactivate_site")) == 1


# --- Code lists ----------------------------------------------------------------------------


def test_added_code_goes_to_the_end_with_a_stable_code(engine, staff):
    item = _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Gambling harm")
    assert item.code == "gambling_harm" and item.national_code is None
    with db.reading(engine) as session:
        active = code_lists.active_items(session, CodeList.VULNERABILITY)
    assert active[-1].id == item.id
    assert _audits(engine, "add_code")[0].detail == "vulnerability: gambling_harm"


def test_a_code_from_a_label_already_used_as_a_code_gets_a_new_code(engine, staff):
    item = _write(engine, administration.add_code, staff.administrator, CodeList.ONWARD_SERVICE, "Housing.")
    assert item.code == "housing_2"  # "housing" is taken; codes are never reused


def test_duplicate_label_in_a_list_is_refused(engine, staff):
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "autism")
    assert "already has Autism" in refused.value.errors["label"]


def test_sources_of_referral_need_a_valid_national_code(engine, staff):
    for bad, message in [(None, "national code"), ("E-1", "1 to 10 letters or digits"),
                         ("Z9", "Z9 is not a national code for sources of referral: use one of A1, A2,")]:
        with pytest.raises(InputErrors) as refused:
            _write(engine, administration.add_code, staff.administrator, CodeList.SOURCE_OF_REFERRAL,
                   "Liaison nurse", bad)
        assert message in refused.value.errors["national_code"]
    item = _write(engine, administration.add_code, staff.administrator, CodeList.SOURCE_OF_REFERRAL,
                  "Liaison nurse", " m6 ")
    assert item.national_code == "M6"


def _closure_reason(engine, staff, code: str) -> CodeItem:
    with db.reading(engine) as session:
        return next(item for item in administration.list_codes(session, staff.administrator, CodeList.CLOSURE_REASON)
                    if item.code == code)


def test_a_closure_reason_is_given_its_national_code_and_the_change_is_audited(engine, staff):
    screened = _closure_reason(engine, staff, "screened")
    assert screened.national_code is None  # seeded without one: their meanings were not confirmed
    mapped = _write(engine, administration.set_national_code, staff.administrator, screened.id, screened.version,
                    " 02 ")
    assert (mapped.national_code, mapped.label, mapped.version) == ("02", "Screened", screened.version + 1)
    _write(engine, administration.set_national_code, staff.administrator, mapped.id, mapped.version, "")
    assert _fresh(engine, CodeItem, screened.id).national_code is None  # a closure reason may have none
    assert [event.detail for event in _audits(engine, "set_national_code")] == [
        "closure_reason.screened: none → 02", "closure_reason.screened: 02 → none"]


@pytest.mark.parametrize("list_name, code, bad, message", [
    (CodeList.CLOSURE_REASON, "screened", "10",
     "10 is not a national code for closure reasons: use one of 01, 02, 03, 04, 05, 06, 07, 08, 09."),
    (CodeList.CLOSURE_REASON, "screened", "0 1", "A national code is 1 to 10 letters or digits, such as E1 or M6."),
    (CodeList.SOURCE_OF_REFERRAL, "police", "",
     "Sources of referral need their national code (Mental Health Services Data Set), such as M6 for any other "
     "service or agency."),
    (CodeList.SOURCE_OF_REFERRAL, "police", "E7", "E7 is not a national code for sources of referral: use one of"),
])
def test_a_bad_national_code_is_refused_with_the_codes_allowed_and_nothing_changes(engine, staff, list_name, code,
                                                                                   bad, message):
    with db.reading(engine) as session:
        item = next(entry for entry in administration.list_codes(session, staff.administrator, list_name)
                    if entry.code == code)
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.set_national_code, staff.administrator, item.id, item.version, bad)
    assert refused.value.errors["national_code"].startswith(message)
    fresh = _fresh(engine, CodeItem, item.id)
    assert (fresh.national_code, fresh.version) == (item.national_code, item.version)
    assert _audits(engine, "set_national_code") == []


def test_request_types_can_be_renamed_but_not_added(engine, staff):
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.add_code, staff.administrator, CodeList.REQUEST_TYPE, "Welfare check")
    assert "cannot be added" in refused.value.errors["label"]
    with db.reading(engine) as session:
        [advice] = [item for item in administration.list_codes(session, staff.administrator, CodeList.REQUEST_TYPE)
                    if item.code == "advice"]
    renamed = _write(engine, administration.rename_code, staff.administrator, advice.id, advice.version,
                     "Advice line")
    assert renamed.label == "Advice line" and renamed.code == "advice"


def test_renaming_keeps_the_national_code_beside_the_local_label(engine, staff):
    with db.reading(engine) as session:
        [police] = [item for item in administration.list_codes(session, staff.administrator,
                                                               CodeList.SOURCE_OF_REFERRAL) if item.code == "police"]
    renamed = _write(engine, administration.rename_code, staff.administrator, police.id, police.version,
                     "Essex Police")
    assert (renamed.label, renamed.national_code, renamed.code) == ("Essex Police", "E1", "police")
    [event] = _audits(engine, "rename_code")
    assert event.detail == "source_of_referral.police: Police → Essex Police"


def test_moving_a_code_reorders_the_list_the_forms_show(engine, staff):
    with db.reading(engine) as session:
        before = [item.code for item in code_lists.active_items(session, CodeList.CLOSURE_REASON)]
        item = administration.list_codes(session, staff.administrator, CodeList.CLOSURE_REASON)[2]
    _write(engine, administration.move_code, staff.administrator, item.id, item.version, -2)
    with db.reading(engine) as session:
        after = [entry.code for entry in code_lists.active_items(session, CodeList.CLOSURE_REASON)]
    assert after == [before[2], before[0], before[1], *before[3:]]
    assert "position 3 → 1" in _audits(engine, "reorder_code")[0].detail


def test_a_deactivated_code_leaves_new_records_but_keeps_its_label(engine, staff):
    with db.reading(engine) as session:
        [veteran] = [item for item in administration.list_codes(session, staff.administrator, CodeList.VULNERABILITY)
                     if item.code == "veteran"]
    _write(engine, administration.set_code_active, staff.administrator, veteran.id, veteran.version, False)
    with db.reading(engine) as session:
        assert "veteran" not in [item.code for item in code_lists.active_items(session, CodeList.VULNERABILITY)]
        assert code_lists.labels(session, CodeList.VULNERABILITY)["veteran"] == "Veteran"
        with pytest.raises(InputErrors) as refused:
            code_lists.check_active(session, CodeList.VULNERABILITY, {"vulnerabilities": ["veteran"]})
    assert "not an active choice" in refused.value.errors["vulnerabilities"]


def test_stale_code_rename_is_a_conflict(engine, staff):
    item = _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Gambling")
    _write(engine, administration.rename_code, staff.administrator, item.id, item.version, "Gambling harm")
    with pytest.raises(Conflict):
        _write(engine, administration.rename_code, staff.administrator, item.id, item.version, "Betting")
    assert _fresh(engine, CodeItem, item.id).label == "Gambling harm"


# --- Settings ------------------------------------------------------------------------------


def _versions(engine, staff):
    with db.reading(engine) as session:
        return {row.key: row.version for row in administration.list_settings(session, staff.administrator)}


def test_a_valid_target_is_saved_and_audited_old_to_new(engine, staff):
    changed = _write(engine, administration.change_settings, staff.administrator,
                     {"target_minutes.urgent": 180, "amber_percent": 75}, _versions(engine, staff))
    assert changed == ["target_minutes.urgent"]  # 75 is the value already in force
    with db.reading(engine) as session:
        assert settings.response_target(session, "urgent") == timedelta(hours=3)
    [event] = _audits(engine, "change_setting")
    assert event.detail == "target_minutes.urgent: 240 → 180" and event.entity == "setting"
    _write(engine, administration.change_settings, staff.administrator, {"target_minutes.urgent": "120"},
           _versions(engine, staff))
    assert [event.detail for event in _audits(engine, "change_setting")][-1] == "target_minutes.urgent: 180 → 120"


@pytest.mark.parametrize("value", [0, -5, settings.MINUTES_IN_A_YEAR + 1, 10**9, "four hours", 2.5, ""])
def test_a_target_of_zero_negative_over_a_year_or_not_a_number_is_refused(engine, staff, value):
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.change_settings, staff.administrator,
               {"target_minutes.emergency": value, "target_minutes.routine": 600}, _versions(engine, staff))
    assert set(refused.value.errors) == {"target_minutes.emergency"}
    message = refused.value.errors["target_minutes.emergency"]
    assert "Response target: emergency must be" in message and "525,600 minutes (a year)" in message
    assert _count(engine, Setting) == 0  # the valid routine target was not saved either
    assert not _audits(engine, "change_setting")


@pytest.mark.parametrize(("key", "value"), [("amber_percent", 100), ("amber_percent", 0),
                                            ("idle_timeout_minutes", 4), ("retention_child_until_age", 17),
                                            ("retention_adult_years", 101)])
def test_other_settings_outside_their_range_are_refused(engine, staff, key, value):
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.change_settings, staff.administrator, {key: value}, {})
    assert f"you entered {value}" in refused.value.errors[key]
    assert _count(engine, Setting) == 0


def test_a_stale_setting_save_is_a_conflict(engine, staff):
    shown = _versions(engine, staff)
    _write(engine, administration.change_settings, staff.administrator,
           {"amber_percent": 80}, shown)
    with pytest.raises(Conflict):
        _write(engine, administration.change_settings, staff.administrator, {"amber_percent": 60}, shown)
    with db.reading(engine) as session:
        assert settings.get_int(session, "amber_percent") == 80


# --- Teams ---------------------------------------------------------------------------------


def test_teams_are_added_and_renamed_with_unique_names(engine, staff):
    team = _write(engine, administration.add_team, staff.administrator, "Thurrock Liaison and Diversion")
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.add_team, staff.administrator, "north essex liaison and diversion")
    assert "already a team called" in refused.value.errors["name"]
    renamed = _write(engine, administration.rename_team, staff.administrator, team.id, team.version,
                     "Thurrock L&D")
    assert renamed.name == "Thurrock L&D"
    assert _audits(engine, "rename_team")[0].detail == "Thurrock Liaison and Diversion → Thurrock L&D"
    with db.reading(engine) as session:
        rows = {row.team.name: row for row in administration.list_teams(session, staff.administrator)}
    assert rows["Thurrock L&D"].users == 0 and rows["Mid and South Essex Liaison and Diversion"].sites == 2


def test_a_user_moves_to_another_team_and_then_sees_only_its_records(engine, staff):
    moved = _write(engine, administration.move_user, staff.administrator, staff.second_practitioner.id,
                   staff.second_practitioner.version, staff.other_team.id)
    assert moved.team_id == staff.other_team.id
    assert moved.session_epoch == staff.second_practitioner.session_epoch + 1  # must sign in again
    with db.reading(engine) as session:
        sites = [site.name for site in organisation.active_sites(session, moved)]
    assert sites == ["Colchester custody suite"]
    assert _audits(engine, "move_user")[0].detail == f"team {staff.team.id} → {staff.other_team.id}"


def test_a_user_with_open_requests_is_not_moved(engine, staff):
    request = _add_request(engine, staff, staff.sites[0])
    with db.writing(engine) as session:
        row = session.get(Request, request.id)
        row.allocated_to_id = staff.practitioner.id
        row.status = RequestStatus.ALLOCATED
        session.add(row)
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.move_user, staff.administrator, staff.practitioner.id,
               staff.practitioner.version, staff.other_team.id)
    assert "1 open request and 0 draft screenings" in refused.value.errors["team_id"]
    assert _fresh(engine, User, staff.practitioner.id).team_id == staff.team.id


# --- One record per submission (a double click, a rerun) ------------------------------------


@pytest.mark.parametrize(("model", "add"), [
    (Site, lambda staff: (administration.add_site, staff.administrator, staff.team.id, "Grays custody suite",
                          SiteKind.CUSTODY_SUITE)),
    (CodeItem, lambda staff: (administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Gambling harm")),
    (Team, lambda staff: (administration.add_team, staff.administrator, "Thurrock Liaison and Diversion")),
], ids=["site", "code", "team"])
def test_a_second_add_with_the_same_token_returns_the_first_and_writes_nothing(engine, staff, model, add):
    token = uuid.uuid4().hex
    operation, *args = add(staff)
    before = _count(engine, model)
    first = _write(engine, operation, *args, submission=token)
    written = (_count(engine, model), _count(engine, AuditEvent), _count(engine, Submission))
    again = _write(engine, operation, *args, submission=token)
    assert again.id == first.id
    assert (_count(engine, model), _count(engine, AuditEvent), _count(engine, Submission)) == written
    assert written[0] == before + 1 and written[2] == 1


def test_a_refused_add_leaves_its_token_free_for_the_corrected_form(engine, staff):
    token = uuid.uuid4().hex
    with pytest.raises(InputErrors):
        _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Mental health",
               submission=token)  # a label the list already has
    assert _count(engine, Submission) == 0
    added = _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Gambling harm",
                   submission=token)
    assert added.label == "Gambling harm" and _count(engine, CodeItem, CodeItem.label == "Gambling harm") == 1


def test_a_site_token_cannot_answer_for_a_code(engine, staff):
    token = uuid.uuid4().hex
    _write(engine, administration.add_site, staff.administrator, staff.team.id, "Grays custody suite",
           SiteKind.CUSTODY_SUITE, submission=token)
    with pytest.raises(InputErrors) as refused:
        _write(engine, administration.add_code, staff.administrator, CodeList.VULNERABILITY, "Gambling harm",
               submission=token)
    assert "already sent" in refused.value.errors["submission"]
    assert _count(engine, CodeItem, CodeItem.label == "Gambling harm") == 0
