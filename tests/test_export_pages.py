"""The Export page and the 'Export this view' button, through AppTest (SQLite)."""

from datetime import timedelta

from sqlalchemy import select

from models import Activity, AuditEvent, SavedColumnSet, User
from models.codes import ActivityKind
from services import clock, db, export
from ui import export_button as export_button_module

PAGE = "pages/9_Export.py"
TODAY = clock.today_in_london()


def add_training(engine, staff, count: int) -> None:
    with db.writing(engine) as session:
        session.add_all([
            Activity(kind=ActivityKind.TRAINING.value, team_id=staff.team.id, practitioner_id=staff.practitioner.id,
                     activity_on=TODAY - timedelta(days=index % 40), audience_agency="police",
                     topic=f"Session {index}", number_trained=index % 9)
            for index in range(count)
        ])


def choose_list(test, title: str):
    box = test.selectbox(key="export_list")
    return box.select(next(option for option in box.options if option == title)).run()


def test_team_lead_sees_lists_filters_columns_count_preview_and_a_download(app_test, sqlite_engine, sqlite_staff):
    add_training(sqlite_engine, sqlite_staff, 30)
    test = app_test(PAGE, sqlite_staff.team_lead).run()
    assert not test.exception
    assert test.title[0].value == "Export"
    titles = test.selectbox(key="export_list").options
    assert "Triage queue" in titles and "Activities: Training delivered" in titles and "Audit log" not in titles

    test = choose_list(test, "Activities: Training delivered")
    assert not test.exception
    labels = {widget.label for kind in ("date_input", "selectbox", "text_input", "multiselect")
              for widget in test.get(kind)}
    assert {"From", "To", "Logged by", "Containing", "Audience", "Columns, in the order chosen"} <= labels
    assert test.metric[0].value == "30"
    (preview,) = test.tabs[0].dataframe  # the national return's report is in its own tab
    assert len(preview.value) == export.PREVIEW_ROWS
    assert list(preview.value.columns)[:2] == ["Number", "Date delivered"]
    assert [button.label for button in test.get("download_button")][0] == "Download as Excel"

    test.text_input(key="export_filter_training_delivered_text").input("Session 1").run()
    assert test.metric[0].value == "11"  # Session 1 and Session 10 to 19


def test_columns_chosen_change_the_preview_and_a_named_set_is_saved_and_reused(app_test, sqlite_engine,
                                                                               sqlite_staff):
    add_training(sqlite_engine, sqlite_staff, 3)
    test = choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    test.multiselect(key="export_columns_training_delivered").set_value(["topic", "id"]).run()
    assert list(test.dataframe[0].value.columns) == ["Topic", "Number"]

    name_box = next(box for box in test.text_input if box.label == "Name for this column set")
    name_box.input("Topic first")
    next(button for button in test.button if button.label == "Save column set").click().run()
    assert not test.exception
    with db.reading(sqlite_engine) as session:
        (saved,) = session.execute(select(SavedColumnSet)).scalars().all()
    assert (saved.name, saved.columns, saved.user_id) == ("Topic first", ["topic", "id"], sqlite_staff.team_lead.id)

    test = choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    assert len(test.dataframe[0].value.columns) == 7  # a new session starts with every column
    next(button for button in test.button if button.label == "Use this column set").click().run()
    assert list(test.dataframe[0].value.columns) == ["Topic", "Number"]


def test_a_column_set_without_a_name_is_refused_next_to_the_field(app_test, sqlite_engine, sqlite_staff):
    test = choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    next(button for button in test.button if button.label == "Save column set").click().run()
    assert any("required" in error.value for error in test.error)
    with db.reading(sqlite_engine) as session:
        assert session.execute(select(SavedColumnSet)).first() is None


def test_practitioner_is_refused_the_page_and_the_refusal_audited(app_test, sqlite_engine, sqlite_staff):
    test = app_test(PAGE, sqlite_staff.practitioner).run()
    assert not test.exception
    assert [error.value for error in test.error] == [
        "You do not have permission to open this page. Ask an administrator if you need it."]
    assert not test.get("download_button") and not test.dataframe
    with db.reading(sqlite_engine) as session:
        denied = session.execute(select(AuditEvent).where(AuditEvent.outcome == "denied")).scalars().all()
    assert [(event.action, event.detail) for event in denied] == [("open_page", "Export")]


def test_a_practitioner_granted_export_may_use_the_page(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        session.get(User, sqlite_staff.practitioner.id).can_export = True
    test = app_test(PAGE, sqlite_staff.practitioner).run()
    assert not test.exception and not test.error
    assert len(test.tabs) == 1  # no caseload permission: no KPI workbook tab


def test_administrator_granted_export_gets_the_audit_log_and_the_kpi_workbook(app_test, sqlite_engine, sqlite_staff):
    refused = app_test(PAGE, sqlite_staff.administrator).run()  # export is not in the administrator's role
    assert [error.value for error in refused.error] == [
        "You do not have permission to open this page. Ask an administrator if you need it."]
    with db.writing(sqlite_engine) as session:
        session.get(User, sqlite_staff.administrator.id).can_export = True
    test = app_test(PAGE, sqlite_staff.administrator).run()
    assert not test.exception
    assert "Audit log" in test.selectbox(key="export_list").options
    assert [tab.label for tab in test.tabs] == ["A list", "KPI workbook", "National return (MHSDS)"]
    periods = test.selectbox(key="export_kpi_period").options
    assert periods[0] == export.recent_periods()[0].label and any(label.startswith("Q") for label in periods)
    assert any(button.label.startswith("Download the KPI workbook for") for button in test.get("download_button"))


def test_a_large_list_is_built_with_progress_then_offered(app_test, sqlite_engine, sqlite_staff, monkeypatch):
    monkeypatch.setattr(export_button_module, "PROGRESS_THRESHOLD", 10)
    add_training(sqlite_engine, sqlite_staff, 25)
    test = choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    offered_already = ["export_kpi", "national_return_xlsx", "national_return_zip"]  # built only when pressed
    assert [button.key for button in test.get("download_button")] == offered_already
    (prepare,) = [button for button in test.button if button.label.startswith("Download as Excel (over")]
    prepare.click().run()
    assert not test.exception
    (download,) = [button for button in test.get("download_button") if button.key not in offered_already]
    assert download.label.startswith("Download training-delivered-") and "(25 rows)" in download.label
    with db.reading(sqlite_engine) as session:
        (event,) = session.execute(select(AuditEvent).where(AuditEvent.action == "export")).scalars().all()
    assert event.entity == "training_delivered" and "25 rows" in event.detail


def test_nothing_is_built_or_audited_just_by_opening_the_page(app_test, sqlite_engine, sqlite_staff):
    add_training(sqlite_engine, sqlite_staff, 3)
    choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    with db.reading(sqlite_engine) as session:
        assert session.execute(select(AuditEvent).where(AuditEvent.action == "export")).first() is None


def test_the_triage_queue_offers_its_export_to_those_who_may_export(app_test, sqlite_engine, sqlite_staff):
    test = app_test("pages/1_Triage_queue.py", sqlite_staff.team_lead).run()
    assert not test.exception
    assert [button.label for button in test.get("download_button")] == ["Export this view"]
    test = app_test("pages/1_Triage_queue.py", sqlite_staff.practitioner).run()
    assert not test.exception and list(test.get("download_button")) == []


def test_a_persons_record_offers_its_screenings_and_referrals_for_export(app_test, sqlite_engine, sqlite_staff):
    from models import OnwardReferral, Person, Screening

    with db.writing(sqlite_engine) as session:
        person = Person(team_id=sqlite_staff.team.id, given_name="Siôn", family_name="O'Brien",
                        nhs_number_status="not_known", given_name_key="sion", family_name_key="o brien")
        session.add(person)
        session.flush()
        screened = Screening(team_id=sqlite_staff.team.id, person_id=person.id, status="complete",
                             practitioner_id=sqlite_staff.practitioner.id, screened_at=clock.now())
        session.add(screened)
        session.flush()
        session.add(OnwardReferral(team_id=sqlite_staff.team.id, person_id=person.id, screening_id=screened.id,
                                   service="crisis_team", referred_on=TODAY, status="made"))
        person_id = person.id
    test = app_test("pages/4_People.py", sqlite_staff.team_lead, query={"id": str(person_id)}).run()
    assert not test.exception
    assert [button.key for button in test.get("download_button")] == ["export_screenings", "export_referrals"]
    with db.reading(sqlite_engine) as session:
        for list_name, columns in (("screenings", ["screened_at", "status"]), ("onward_referrals", ["service"])):
            assert export.count_rows(session, sqlite_staff.team_lead, list_name, {"person_id": person_id}) == 1
            assert export.preview_rows(session, sqlite_staff.team_lead, list_name, {"person_id": person_id},
                                       columns)
    test = app_test("pages/4_People.py", sqlite_staff.practitioner, query={"id": str(person_id)}).run()
    assert not test.exception and list(test.get("download_button")) == []


def test_the_activities_page_exports_through_the_shared_button(app_test, sqlite_engine, sqlite_staff):
    test = app_test("pages/8_Activities.py", sqlite_staff.team_lead).run()
    assert not test.exception
    assert {button.label for button in test.get("download_button")} == {"Export this view"}
    test = app_test("pages/8_Activities.py", sqlite_staff.practitioner).run()
    assert not test.exception and list(test.get("download_button")) == []


def preview_audits(engine) -> list[tuple[int, str, str]]:
    with db.reading(engine) as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == "preview_export")
                               .order_by(AuditEvent.id)).scalars().all()
    return [(row.user_id, row.entity, row.detail) for row in rows]


def test_each_distinct_preview_is_audited_once_not_at_every_redraw(app_test, sqlite_engine, sqlite_staff):
    add_training(sqlite_engine, sqlite_staff, 30)
    test = choose_list(app_test(PAGE, sqlite_staff.team_lead).run(), "Activities: Training delivered")
    lead = sqlite_staff.team_lead.id
    first, chosen = preview_audits(sqlite_engine)  # the list first offered, then the one chosen
    assert first[:2] == (lead, "triage_queue")
    assert chosen == (lead, "training_delivered", "Activities: Training delivered: first 20 rows shown; "
                                                  "filters: none (every record you may see); columns: 7 of 7")
    test.run()  # a redraw shows the same preview: not a new one
    assert len(preview_audits(sqlite_engine)) == 2
    test.text_input(key="export_filter_training_delivered_text").input("Session 1").run()
    assert not test.exception
    (*_, narrowed) = preview_audits(sqlite_engine)
    assert len(preview_audits(sqlite_engine)) == 3
    assert narrowed == (lead, "training_delivered", "Activities: Training delivered: first 11 rows shown; "
                                                    "filters: Containing: Session 1; columns: 7 of 7")
