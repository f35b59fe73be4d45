"""The Service settings and Activities pages through AppTest, as each role.

Administrators use Service settings; practitioners and team leads use Activities; each page
refuses the other roles (and an anonymous visitor) before drawing anything. Refusals keep what
was typed and show the message under the field.
"""

from datetime import date, timedelta

import pytest
from sqlmodel import func, select

from models import Activity, AuditEvent, CodeItem, Person, Setting, Site, Team, User
from models.codes import ActivityKind, Role, SiteKind
from services import activities, administration, clock, db, matching, settings
from tests.conftest import shown_errors, unescaped
from ui.record_id import NOT_A_RECORD_ID

SETTINGS_PAGE = "pages/21_Service_settings.py"
ACTIVITIES_PAGE = "pages/8_Activities.py"


def _widget(test, kind: str, label: str):
    found = [widget for widget in getattr(test, kind) if widget.label == label]
    assert found, f"no {kind} labelled {label!r}; have {[widget.label for widget in getattr(test, kind)]}"
    return found[0]


def _click(test, label: str):
    return _widget(test, "button", label).click().run()


def _texts(test) -> str:
    """The alerts as a person reads them (notices escape markdown so typed names show as typed)."""
    return " ".join(unescaped(str(element.value)) for kind in ("error", "success", "info", "warning")
                    for element in getattr(test, kind))


def _count(engine, model, *conditions) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*conditions)).one()


# --- Who may open which page ---------------------------------------------------------------


@pytest.mark.parametrize(("page", "allowed"), [
    (SETTINGS_PAGE, {Role.ADMINISTRATOR}),
    (ACTIVITIES_PAGE, {Role.PRACTITIONER, Role.TEAM_LEAD}),
])
@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_only_the_pages_it_may(app_test, sqlite_staff, page, allowed, role):
    test = app_test(page, sqlite_staff.by_role(role)).run()
    assert not test.exception, test.exception
    if role in allowed:
        assert test.title[0].value in {"Service settings", "Activities"}
        assert test.dataframe and test.text_input
    else:
        assert any("do not have permission" in error for error in shown_errors(test))
        assert not test.title and not test.dataframe and not test.text_input


@pytest.mark.parametrize("page", [SETTINGS_PAGE, ACTIVITIES_PAGE])
def test_anonymous_visitors_see_only_the_sign_in_prompt(app_test, sqlite_staff, page):
    test = app_test(page).run()
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    assert not test.dataframe and not test.selectbox


# --- Service settings ----------------------------------------------------------------------


def _settings_page(app_test, sqlite_staff, tab: str | None = None):
    """The page as an administrator, on `tab` (as its link ?tab=… opens it); only that tab is drawn."""
    return app_test(SETTINGS_PAGE, sqlite_staff.administrator, query={"tab": tab} if tab else None).run()


def test_administrator_adds_a_site(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff)
    test.text_input(key="add_site_name_0").input("Grays custody suite")
    test.selectbox(key="add_site_kind_0").select(SiteKind.CUSTODY_SUITE.value)
    _click(test, "Add site")
    assert not test.exception, test.exception
    assert "Site added." in _texts(test)
    assert _count(sqlite_engine, Site, Site.name == "Grays custody suite", Site.team_id == sqlite_staff.team.id) == 1
    assert "Grays custody suite" in test.dataframe[0].value["Site"].tolist()
    assert test.text_input(key="add_site_name_1").value == ""  # a fresh form for the next site


def test_a_duplicate_site_is_refused_under_the_field_and_keeps_what_was_typed(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff)
    test.text_input(key="add_site_name_0").input("southend custody suite")
    _click(test, "Add site")
    errors = shown_errors(test)
    assert any("already has a site called Southend custody suite" in error for error in errors)
    assert any("Choose the kind of site." in error for error in errors)
    assert test.text_input(key="add_site_name_0").value == "southend custody suite"
    assert _count(sqlite_engine, Site) == 3


def test_administrator_deactivates_a_site(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff)
    _widget(test, "selectbox", "Site to change").select(sqlite_staff.sites[1].id)
    test.run()
    _click(test, "Deactivate site")
    assert "it leaves the forms and stays on old records" in _texts(test)
    with db.reading(sqlite_engine) as session:
        assert not session.get(Site, sqlite_staff.sites[1].id).active


def test_a_stale_site_save_is_refused_with_who_changed_it(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff)
    site = sqlite_staff.sites[0]
    _widget(test, "selectbox", "Site to change").select(site.id)
    test.run()  # the administrator now sees version 1
    with db.writing(sqlite_engine) as session:  # another administrator deactivates it meanwhile
        administration.set_site_active(session, sqlite_staff.administrator, site.id, 1, False)
    _widget(test, "text_input", "New name").input("Southend custody")
    _click(test, "Save site")
    assert "Changed by Ada Administrator" in _texts(test)
    with db.reading(sqlite_engine) as session:
        assert session.get(Site, site.id).name == "Southend custody suite"
    assert _widget(test, "text_input", "New name").value == "Southend custody suite"  # redrawn from the database
    _widget(test, "text_input", "New name").input("Southend custody")
    _click(test, "Save site")  # now made against what is shown, it is saved
    with db.reading(sqlite_engine) as session:
        assert session.get(Site, site.id).name == "Southend custody"


def test_a_code_is_added_renamed_and_withdrawn(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff, "Code lists")
    test.selectbox(key="code_list").select("vulnerability").run()
    test.text_input(key="add_code_label_vulnerability_0").input("Gambling harm")
    _click(test, "Add code")
    assert "Code added at the end of the list." in _texts(test)
    with db.reading(sqlite_engine) as session:
        added = session.exec(select(CodeItem).where(CodeItem.label == "Gambling harm")).one()
    _widget(test, "selectbox", "Code to change").select(added.id).run()
    _widget(test, "text_input", "New label").input("Gambling-related harm")
    _click(test, "Save label")
    assert "Label saved." in _texts(test)
    _click(test, "Withdraw code")
    labels = test.dataframe[0].value  # the code list's table
    row = labels[labels["Label"] == "Gambling-related harm"].iloc[0]
    assert row["Active"] == "No" and row["Code"] == "gambling_harm"


@pytest.mark.parametrize("tab", ["Code lists", "Settings", "Teams"])
def test_a_save_in_a_later_tab_comes_back_to_that_tab(app_test, sqlite_engine, sqlite_staff, tab):
    test = _settings_page(app_test, sqlite_staff, tab)
    if tab == "Code lists":
        test.selectbox(key="code_list").select("onward_service").run()
        test.text_input(key="add_code_label_onward_service_0").input("Veterans' hub")
        _click(test, "Add code")
        assert test.selectbox(key="code_list").value == "onward_service"  # the same list, too
        assert test.text_input(key="add_code_label_onward_service_1").value == ""
    elif tab == "Settings":
        test.number_input(key="setting_target_minutes.emergency_0").set_value(45)
        _click(test, "Save settings")
        assert test.number_input(key="setting_target_minutes.emergency_1").value == 45
    else:
        test.text_input(key="add_team_name_0").input("Thurrock L&D")
        _click(test, "Add team")
        assert test.text_input(key="add_team_name_1").value == ""
    assert not test.exception and not test.error, [error.value for error in test.error]
    assert len(test.toast) == 1
    assert test.session_state["tab"] == tab
    assert [header.value for header in test.header] == []  # no section heading below the tabs


def test_sources_of_referral_show_their_national_codes(app_test, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff, "Code lists")
    test.selectbox(key="code_list").select("source_of_referral").run()
    table = test.dataframe[0].value
    assert table[table["Label"] == "Police"].iloc[0]["National code"] == "E1"


@pytest.mark.parametrize("value", [0, -10, settings.MINUTES_IN_A_YEAR + 1])
def test_a_bad_target_is_refused_on_the_page_and_nothing_saved(app_test, sqlite_engine, sqlite_staff, value):
    test = _settings_page(app_test, sqlite_staff, "Settings")
    test.number_input(key="setting_target_minutes.emergency_0").set_value(value)
    test.number_input(key="setting_target_minutes.urgent_0").set_value(120)
    _click(test, "Save settings")
    assert any("Response target: emergency must be from 1 to 525,600 minutes" in error for error in shown_errors(test))
    assert test.number_input(key="setting_target_minutes.emergency_0").value == value  # kept as typed
    assert _count(sqlite_engine, Setting) == 0


def test_a_good_target_is_saved_and_audited(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff, "Settings")
    test.number_input(key="setting_target_minutes.emergency_0").set_value(45)
    _click(test, "Save settings")
    assert "Settings saved." in _texts(test)
    with db.reading(sqlite_engine) as session:
        assert settings.get_int(session, "target_minutes.emergency") == 45
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "change_setting")).all()
    assert event.detail == "target_minutes.emergency: 60 → 45"


def test_administrator_adds_a_team_and_moves_a_user(app_test, sqlite_engine, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff, "Teams")
    test.text_input(key="add_team_name_0").input("Thurrock L&D")
    _click(test, "Add team")
    assert "Team added." in _texts(test)
    _widget(test, "selectbox", "Member of staff to move").select(sqlite_staff.second_practitioner.id).run()
    _widget(test, "selectbox", "Move to team").select(sqlite_staff.other_team.id)
    _click(test, "Move to this team")
    assert "Moved; they will be asked to sign in again." in _texts(test)
    with db.reading(sqlite_engine) as session:
        assert session.get(User, sqlite_staff.second_practitioner.id).team_id == sqlite_staff.other_team.id
        assert session.exec(select(Team).where(Team.name == "Thurrock L&D")).one()


def test_service_settings_offer_no_second_way_to_grant_export(app_test, sqlite_staff):
    """Export is granted on the Users page only, which refuses an administrator's own account."""
    for tab in ("Sites", "Code lists", "Settings", "Teams"):
        test = _settings_page(app_test, sqlite_staff, tab)
        assert not [radio for radio in test.radio if radio.label == "Export"]
        assert not [button for button in test.button if "export" in button.label.lower()]


# --- Activities ----------------------------------------------------------------------------


@pytest.fixture
def person(sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        person = Person(team_id=sqlite_staff.team.id, given_name="Siôn", family_name="O'Brien",
                        nhs_number="9990000018", nhs_number_status="present", date_of_birth=date(1990, 5, 11),
                        given_name_key=matching.name_key("Siôn"), family_name_key=matching.name_key("O'Brien"))
        session.add(person)
        session.flush()
        return person


def _activities_page(app_test, user, query=None, kind: ActivityKind | None = None):
    """The page as `user`, on the tab of `kind` (as its link ?tab=… opens it); only that tab is drawn."""
    query = (query or {}) | ({"tab": kind.label} if kind else {})
    return app_test(ACTIVITIES_PAGE, user, query=query).run()


def test_practitioner_logs_a_training_session(app_test, sqlite_engine, sqlite_staff):
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=ActivityKind.TRAINING)
    test.selectbox(key="training_new_0_audience_agency").select("police")
    test.text_input(key="training_new_0_topic").input("<b>Autism</b> awareness")
    test.number_input(key="training_new_0_number_trained").set_value(14)
    test.number_input(key="training_new_0_minutes_spent").set_value(90)
    _click(test, "Save training delivered")
    assert not test.exception, test.exception
    assert "Saved." in _texts(test)
    with db.reading(sqlite_engine) as session:
        [saved] = session.exec(select(Activity)).all()
    assert (saved.topic, saved.number_trained, saved.practitioner_id) == (
        "<b>Autism</b> awareness", 14, sqlite_staff.practitioner.id)
    shown = test.dataframe[0].value  # the training tab's list
    assert shown["Topic"].tolist() == ["<b>Autism</b> awareness"]


@pytest.mark.parametrize(("kind", "new"), [
    (ActivityKind.MAPPA_MEETING, "New MAPPA meeting"),  # the acronym keeps its capitals
    (ActivityKind.TRAINING, "New training delivered"),
    (ActivityKind.PRE_SENTENCE_REPORT, "New pre-sentence report information"),
])
def test_a_new_record_is_named_in_words_that_keep_acronyms(app_test, sqlite_staff, kind, new):
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=kind)
    assert test.selectbox(key=f"{kind}_record").value is None
    assert test.selectbox(key=f"{kind}_record").options[0] == new
    assert [header.value for header in test.header] == ["Log or edit"]  # below the page's title: no level skipped


def test_the_chosen_tab_survives_a_save_and_only_it_is_drawn(app_test, sqlite_engine, sqlite_staff, person):
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=ActivityKind.PRISON_RELEASE)
    assert [box.key for box in test.selectbox if box.key and box.key.endswith("_record")] == ["prison_release_record"]
    key = "prison_release_new_0"
    test.text_input(key=f"{key}_find").input("sion").run()
    test.selectbox(key=f"{key}_person").select(person.id)
    test.text_input(key=f"{key}_prison").input("HMP Chelmsford")
    test.date_input(key=f"{key}_release_on").set_value(clock.today_in_london() + timedelta(days=7))
    _click(test, "Save prison release liaison")
    assert "Saved." in _texts(test) and [unescaped(toast.value) for toast in test.toast] == ["Saved."]
    assert test.session_state["tab"] == ActivityKind.PRISON_RELEASE.label
    assert test.text_input(key="prison_release_new_1_find").value == ""  # the same tab, its form afresh
    assert _count(sqlite_engine, Activity) == 1


def test_numbers_trained_over_500_are_refused_under_the_field(app_test, sqlite_engine, sqlite_staff):
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=ActivityKind.TRAINING)
    test.selectbox(key="training_new_0_audience_agency").select("court")
    test.text_input(key="training_new_0_topic").input("Mental health first aid")
    test.number_input(key="training_new_0_number_trained").set_value(501)
    test.number_input(key="training_new_0_minutes_spent").set_value(60)
    _click(test, "Save training delivered")
    assert any("Number trained must be from 0 to 500; you entered 501." in error for error in shown_errors(test))
    assert test.text_input(key="training_new_0_topic").value == "Mental health first aid"
    assert _count(sqlite_engine, Activity) == 0


def test_mappa_meeting_with_a_person_found_by_search(app_test, sqlite_engine, sqlite_staff, person):
    test = _activities_page(app_test, sqlite_staff.practitioner)
    test.text_input(key="mappa_meeting_new_0_find").input("obrien").run()
    test.selectbox(key="mappa_meeting_new_0_person").select(person.id)
    test.selectbox(key="mappa_meeting_new_0_mappa_category").select(2)
    test.selectbox(key="mappa_meeting_new_0_mappa_level").select(3)
    test.text_input(key="mappa_meeting_new_0_agencies_present").input("Police, probation")
    test.text_area(key="mappa_meeting_new_0_contribution").input("History shared")
    test.number_input(key="mappa_meeting_new_0_minutes_spent").set_value(60)
    _click(test, "Save MAPPA meeting")
    assert not test.exception, test.exception
    with db.reading(sqlite_engine) as session:
        [saved] = session.exec(select(Activity)).all()
    assert (saved.person_id, saved.mappa_category, saved.mappa_level) == (person.id, 2, 3)
    assert test.dataframe[0].value["Person"].tolist() == ["Siôn O'Brien"]


def test_a_date_provided_before_requested_is_refused_on_the_page(app_test, sqlite_engine, sqlite_staff, person):
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=ActivityKind.PRE_SENTENCE_REPORT)
    key = "pre_sentence_report_new_0"
    test.text_input(key=f"{key}_find").input("9990000018").run()
    test.selectbox(key=f"{key}_person").select(person.id)
    test.text_input(key=f"{key}_offender_manager").input("Jo Bloggs")
    test.selectbox(key=f"{key}_report_type").select("oral")
    test.date_input(key=f"{key}_requested_on").set_value(clock.today_in_london())
    test.date_input(key=f"{key}_provided_on").set_value(clock.today_in_london() - timedelta(days=2))
    _click(test, "Save pre-sentence report information")
    assert any("cannot be before the date requested" in error for error in shown_errors(test))
    assert test.text_input(key=f"{key}_offender_manager").value == "Jo Bloggs"
    assert _count(sqlite_engine, Activity) == 0


def _saved_mappa(engine, user):
    with db.writing(engine) as session:
        return activities.log_activity(session, user, activities.MappaMeetingInput(
            clock.today_in_london(), 1, 1, "Police", "Advice given", 30))


def test_an_activity_is_edited_by_its_link(app_test, sqlite_engine, sqlite_staff):
    saved = _saved_mappa(sqlite_engine, sqlite_staff.practitioner)
    test = _activities_page(app_test, sqlite_staff.team_lead, query={"id": str(saved.id)})
    assert not test.exception, test.exception
    key = f"mappa_meeting_{saved.id}_0"
    assert test.selectbox(key=f"{key}_mappa_level").value == 1
    test.selectbox(key=f"{key}_mappa_level").select(2)
    _click(test, "Save MAPPA meeting")
    with db.reading(sqlite_engine) as session:
        edited = session.get(Activity, saved.id)
    assert (edited.mappa_level, edited.version, edited.updated_by_id) == (2, 2, sqlite_staff.team_lead.id)


def test_another_teams_activity_by_link_is_refused(app_test, sqlite_engine, sqlite_staff):
    saved = _saved_mappa(sqlite_engine, sqlite_staff.practitioner)
    test = _activities_page(app_test, sqlite_staff.other_team_practitioner, query={"id": str(saved.id)})
    assert not test.exception, test.exception
    assert any("No such record in your team" in error for error in shown_errors(test))
    assert "Advice given" not in " ".join(str(frame.value) for frame in test.dataframe)
    assert not [widget for widget in test.text_area if widget.value == "Advice given"]
    with db.reading(sqlite_engine) as session:
        denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
    assert (denial.action, denial.entity_id, denial.user_id) == (
        "view_activity", saved.id, sqlite_staff.other_team_practitioner.id)


def test_a_stale_activity_edit_is_refused_on_the_page(app_test, sqlite_engine, sqlite_staff):
    saved = _saved_mappa(sqlite_engine, sqlite_staff.practitioner)
    test = _activities_page(app_test, sqlite_staff.practitioner, query={"id": str(saved.id)})
    with db.writing(sqlite_engine) as session:
        activities.update_activity(session, sqlite_staff.second_practitioner, saved.id, 1, activities.MappaMeetingInput(
            clock.today_in_london(), 1, 3, "Police", "Advice given", 30))
    test.selectbox(key=f"mappa_meeting_{saved.id}_0_mappa_level").select(2)
    _click(test, "Save MAPPA meeting")
    assert "Changed by Sam Second" in _texts(test)
    with db.reading(sqlite_engine) as session:
        assert session.get(Activity, saved.id).mappa_level == 3


def test_a_new_prison_site_appears_in_the_practitioners_prison_choice(app_test, sqlite_engine, sqlite_staff, person):
    with db.writing(sqlite_engine) as session:
        site = administration.add_site(session, sqlite_staff.administrator, sqlite_staff.team.id, "HMP Chelmsford",
                                       SiteKind.PRISON)
    test = _activities_page(app_test, sqlite_staff.practitioner, kind=ActivityKind.PRISON_RELEASE)
    key = "prison_release_new_0"
    prison = test.selectbox(key=f"{key}_prison_site")
    assert site.id in prison.options or "HMP Chelmsford" in prison.options
    test.text_input(key=f"{key}_find").input("sion").run()
    test.selectbox(key=f"{key}_person").select(person.id)
    test.selectbox(key=f"{key}_prison_site").select(site.id)
    test.multiselect(key=f"{key}_services_referred").select("housing")
    test.date_input(key=f"{key}_release_on").set_value(clock.today_in_london() + timedelta(days=7))
    _click(test, "Save prison release liaison")
    assert not test.exception, test.exception
    assert not test.error, [error.value for error in test.error]
    with db.reading(sqlite_engine) as session:
        [saved] = session.exec(select(Activity)).all()
    assert (saved.prison, saved.services_referred, saved.kind) == ("HMP Chelmsford", "housing",
                                                                   ActivityKind.PRISON_RELEASE)


def test_list_filters_narrow_the_list(app_test, sqlite_engine, sqlite_staff):
    _saved_mappa(sqlite_engine, sqlite_staff.practitioner)
    with db.writing(sqlite_engine) as session:
        activities.log_activity(session, sqlite_staff.practitioner, activities.MappaMeetingInput(
            clock.today_in_london(), 3, 2, "Police", "Plan", 30))
    test = _activities_page(app_test, sqlite_staff.practitioner)
    assert len(test.dataframe[0].value) == 2
    test.selectbox(key="mappa_meeting_filter_category").select(3).run()
    assert test.dataframe[0].value["Category"].tolist() == [3]


def test_a_listed_record_is_chosen_edited_and_stays_chosen(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        saved = activities.log_activity(session, sqlite_staff.practitioner, activities.TrainingInput(
            clock.today_in_london(), "police", "Custody awareness", 10, 60))
    test = _activities_page(app_test, sqlite_staff.second_practitioner, kind=ActivityKind.TRAINING)
    test.selectbox(key="training_record").select(saved.id).run()
    key = f"training_{saved.id}_0"
    assert test.text_input(key=f"{key}_topic").value == "Custody awareness"
    test.text_input(key=f"{key}_topic").input("Custody and autism awareness")
    _click(test, "Save training delivered")
    assert "Saved." in _texts(test)
    assert test.selectbox(key="training_record").value == saved.id  # its label changed; the choice did not
    assert test.text_input(key=f"training_{saved.id}_1_topic").value == "Custody and autism awareness"
    with db.reading(sqlite_engine) as session:
        edited = session.get(Activity, saved.id)
    assert (edited.topic, edited.version, edited.updated_by_id) == (
        "Custody and autism awareness", 2, sqlite_staff.second_practitioner.id)


@pytest.mark.parametrize("kind", list(ActivityKind))
def test_team_leads_get_an_export_of_each_list_and_practitioners_do_not(app_test, sqlite_staff, kind):
    lead = _activities_page(app_test, sqlite_staff.team_lead, kind=kind)
    practitioner = _activities_page(app_test, sqlite_staff.practitioner, kind=kind)
    assert len(lead.get("download_button")) == 1
    assert not practitioner.get("download_button")


def test_the_export_holds_exactly_the_filtered_list(sqlite_engine, sqlite_staff):
    import io

    from openpyxl import load_workbook

    from services import export, export_lists

    with db.writing(sqlite_engine) as session:
        for category in (1, 3):
            activities.log_activity(session, sqlite_staff.practitioner, activities.MappaMeetingInput(
                clock.today_in_london(), category, 2, "=HYPERLINK(\"x\")", "Plan", 30))
    filters = activities.ActivityFilters(mappa_category=3)
    buffer = io.BytesIO()
    with db.reading(sqlite_engine) as session:
        shown = activities.list_activities(session, sqlite_staff.team_lead, ActivityKind.MAPPA_MEETING, filters)
        export.export_list(session, sqlite_staff.team_lead, export_lists.activity_list_name("mappa_meeting"), filters,
                           target=buffer)
    sheet = load_workbook(io.BytesIO(buffer.getvalue())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == [column.heading for column in shown.columns]
    assert len(rows) - 1 == len(shown.rows) == 1
    assert rows[1][list(rows[0]).index("Agencies present")] == "=HYPERLINK(\"x\")"  # text, not a formula


def test_an_old_record_keeps_its_withdrawn_service_and_typed_prison(app_test, sqlite_engine, sqlite_staff, person):
    with db.writing(sqlite_engine) as session:
        saved = activities.log_activity(session, sqlite_staff.practitioner, activities.PrisonReleaseInput(
            person.id, clock.today_in_london(), prison="HMP Nowhere", services_referred=["crisis_team"]))
        [crisis] = [item for item in administration.list_codes(session, sqlite_staff.administrator, "onward_service")
                    if item.code == "crisis_team"]
        administration.set_code_active(session, sqlite_staff.administrator, crisis.id, crisis.version, False)
    test = _activities_page(app_test, sqlite_staff.practitioner, query={"id": str(saved.id)})
    assert not test.exception, test.exception
    key = f"prison_release_{saved.id}_0"
    assert test.multiselect(key=f"{key}_services_referred").value == ["crisis_team"]
    assert test.text_input(key=f"{key}_prison").value == "HMP Nowhere"
    assert test.selectbox(key=f"{key}_person").value == person.id
    test.number_input(key=f"{key}_minutes_spent").set_value(45)
    _click(test, "Save prison release liaison")
    assert "Saved." in _texts(test)
    with db.reading(sqlite_engine) as session:
        edited = session.get(Activity, saved.id)
    assert (edited.minutes_spent, edited.services_referred, edited.prison) == (45, "crisis_team", "HMP Nowhere")


@pytest.mark.parametrize(("record_id", "message"), [
    ("abc", NOT_A_RECORD_ID), ("１２", NOT_A_RECORD_ID), ("-1", NOT_A_RECORD_ID), ("9" * 30, NOT_A_RECORD_ID),
    ("999999", "No such record in your team."),  # read as another team's record would be
])
def test_a_link_to_no_such_activity_says_so(app_test, sqlite_staff, record_id, message):
    test = _activities_page(app_test, sqlite_staff.practitioner, query={"id": record_id})
    assert not test.exception, test.exception
    assert [error.value for error in test.error] == [message]
    assert not test.text_input


def test_opening_an_activity_is_audited_once_per_browser_session(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        made = activities.log_activity(session, sqlite_staff.practitioner, activities.TrainingInput(
            activity_on=date(2026, 1, 5), audience_agency="police", topic="Mental health awareness",
            number_trained=12, minutes_spent=60))
    test = _activities_page(app_test, sqlite_staff.practitioner, query={"id": str(made.id)})
    assert not test.exception and not test.error
    test.run()
    with db.reading(sqlite_engine) as session:
        views = session.exec(select(AuditEvent).where(AuditEvent.action == "view_activity")).all()
    assert [(view.entity_id, view.user_id) for view in views] == [(made.id, sqlite_staff.practitioner.id)]


def test_each_retention_and_time_out_setting_shows_its_source_and_why(app_test, sqlite_staff):
    test = _settings_page(app_test, sqlite_staff, "Settings")
    captions = " ".join(caption.value for caption in test.caption)
    assert "Records Management Code of Practice 2021, Appendix II, mental health records: 20 years" in captions
    assert "children's records: until the 25th birthday, or the 26th if the young person was 17" in captions
    assert "At most 60 minutes: on a shared custody-suite or court PC the screen clears itself" in captions
    assert test.number_input(key="setting_idle_timeout_minutes_0").help == "Default 30; from 5 to 60."


def test_a_name_over_its_limit_is_kept_whole_and_refused_with_a_message(app_test, sqlite_engine, sqlite_staff):
    """No max_chars in the browser: a long paste is not cut without a word; the service says what is wrong."""
    long_name = "Southend and Leigh-on-Sea combined custody and magistrates' liaison suite, " * 2
    test = _settings_page(app_test, sqlite_staff)
    assert test.text_input(key="add_site_name_0").proto.max_chars == 0
    test.text_input(key="add_site_name_0").input(long_name)
    test.selectbox(key="add_site_kind_0").select(SiteKind.CUSTODY_SUITE.value)
    _click(test, "Add site")
    assert any("at most 100 characters" in message for message in shown_errors(test))
    assert test.text_input(key="add_site_name_0").value == long_name
    assert _count(sqlite_engine, Site, Site.name == long_name.strip()) == 0
