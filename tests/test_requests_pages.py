"""The request pages through AppTest: log a request, triage and allocate it, answer, close, reopen.

Refused input shows a message next to the field, writes nothing and keeps what was typed. The
clock is fixed at NOW (12:00 on 10/03/2026, London and UTC alike).
"""

from datetime import UTC, date, datetime, time

import pytest
from sqlmodel import func, select

from models import AuditEvent, Person, Request
from models.requests import REASON_LIMIT
from services import clock, db, people, requests
from services.people import NewPerson
from services.requests import NewRequest
from tests.conftest import unescaped
from ui.person_picker import CONFIRM_LABEL, FIND, NEW, NOBODY

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LOG, QUEUE, REQUEST = "pages/2_Log_request.py", "pages/1_Triage_queue.py", "pages/3_Request.py"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def button(test, label):
    found = [candidate for candidate in test.button if candidate.label == label]
    assert found, f"no button {label!r} in {[candidate.label for candidate in test.button]}"
    return found[0]


def labelled(test, kind: str, label: str):
    found = [widget for widget in getattr(test, kind) if widget.label == label]
    assert found, f"no {kind} labelled {label!r}"
    return found[0]


def errors(test) -> str:
    return " | ".join(unescaped(element.value) for element in test.error)


def texts(test) -> str:
    return " | ".join(str(element.value) for element in test.text)


def count(engine, model) -> int:
    with db.reading(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def fill_request(test, staff, **values):
    """Fill the request form (not the person) with good values, changed by ``values``."""
    good = {"log_source": "police", "log_requester_name": "PC Dawn Jones", "log_requester_phone": "01702 123456",
            "log_site": staff.sites[0].id, "log_type": "screening", "log_urgency": "urgent",
            "log_reason": "Detained person appears very distressed."}
    good.update(values)
    for key, value in good.items():
        widget = next(widget for kind in ("text_input", "text_area", "selectbox", "radio", "date_input", "time_input")
                      for widget in getattr(test, kind) if widget.key == key)
        widget.set_value(value)
    return test


def new_person_mode(test, **typed):
    test.radio(key="person_mode").set_value(NEW).run()
    for key, value in typed.items():
        test.text_input(key=f"person_{key}").input(value)
    return test


def log_page(app_test, user):
    test = app_test(LOG, user).run()
    assert not test.exception, test.exception
    return test


# --- Logging --------------------------------------------------------------------------------


def test_log_a_request_about_a_new_person(app_test, sqlite_engine, sqlite_staff):
    test = log_page(app_test, sqlite_staff.practitioner)
    assert test.date_input(key="log_received_on").value == date(2026, 3, 10)
    assert test.time_input(key="log_received_time").value == time(12, 0)  # now, never a silent 00:00
    new_person_mode(test, given="Siôn", family="Nguyễn-O'Brien", born="05/11/1990", nhs="943 476 5919")
    fill_request(test, sqlite_staff, log_received_time=time(11, 40))
    button(test, "Log request").click().run()
    assert not test.exception and not test.error, errors(test)
    assert "Logged R-2026-000001" in unescaped(test.success[0].value)
    with db.reading(sqlite_engine) as session:
        request = session.exec(select(Request)).one()
        person = session.get(Person, request.person_id)
    assert request.received_at == datetime(2026, 3, 10, 11, 40, tzinfo=UTC)
    assert request.due_at == datetime(2026, 3, 10, 15, 40, tzinfo=UTC)
    assert (person.given_name, person.family_name, person.nhs_number) == ("Siôn", "Nguyễn-O'Brien", "9434765919")
    # The form starts afresh for the next request.
    assert test.text_input(key="log_requester_name").value == ""
    assert test.radio(key="person_mode").value == FIND


def test_every_field_has_a_visible_label(app_test, sqlite_staff):
    test = new_person_mode(log_page(app_test, sqlite_staff.practitioner)).run()
    widgets = [*test.text_input, *test.text_area, *test.selectbox, *test.radio, *test.date_input, *test.time_input]
    assert widgets and all(widget.label and widget.proto.label_visibility.value == 0 for widget in widgets)


BAD_INPUTS = [
    ("received time in the future", {"log_received_time": time(14, 0)}, {}, "cannot be in the future",
     "log_received_time", time(14, 0)),
    ("received before the date of birth", {"log_received_on": date(2026, 3, 1)}, {"born": "05/03/2026"},
     "before this date of birth", "person_born", "05/03/2026"),
    ("aged under 10 on the received date", {}, {"born": "11/03/2016"}, "age of criminal responsibility",
     "person_born", "11/03/2016"),
    ("NHS number with a wrong check digit", {}, {"nhs": "943 476 5918"}, "check digit", "person_nhs",
     "943 476 5918"),
    ("NHS number of 9 digits", {}, {"nhs": "943 476 591"}, "must be 10 digits", "person_nhs", "943 476 591"),
    ("NHS number of 11 digits", {}, {"nhs": "943 476 59190"}, "must be 10 digits", "person_nhs", "943 476 59190"),
    ("NHS number with letters", {}, {"nhs": "943 476 591A"}, "only the digits", "person_nhs", "943 476 591A"),
    ("NHS number in full-width digits", {}, {"nhs": "９４３４７６５９１９"}, "full-width", "person_nhs",
     "９４３４７６５９１９"),
    ("date of birth 29/02 in a non-leap year", {}, {"born": "29/02/2023"}, "not a leap year", "person_born",
     "29/02/2023"),
    ("no way to reply", {"log_requester_phone": ""}, {}, "phone number or an e-mail", "log_requester_name",
     "PC Dawn Jones"),
    ("e-mail without @", {"log_requester_email": "dawn.jones.police.uk"}, {}, "exactly one @",
     "log_requester_email", "dawn.jones.police.uk"),
]


@pytest.mark.parametrize(("why", "form", "person", "says", "kept_key", "kept"), BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_refused_next_to_its_field_and_what_was_typed_is_kept(
        app_test, sqlite_engine, sqlite_staff, why, form, person, says, kept_key, kept):
    test = log_page(app_test, sqlite_staff.practitioner)
    new_person_mode(test, **{"given": "Kim", "family": "Ray", "born": "01/01/1990", **person})
    fill_request(test, sqlite_staff, **form)
    button(test, "Log request").click().run()
    assert not test.exception
    assert says in errors(test)
    assert count(sqlite_engine, Request) == count(sqlite_engine, Person) == 0
    kept_widget = next(widget for kind in ("text_input", "date_input", "time_input")
                       for widget in getattr(test, kind) if widget.key == kept_key)
    assert kept_widget.value == kept
    assert test.text_input(key="person_given").value == "Kim"
    assert test.text_area(key="log_reason").value == "Detained person appears very distressed."


def test_text_over_its_limit_is_kept_whole_and_refused_with_a_message(app_test, sqlite_engine, sqlite_staff):
    """No max_chars in the browser (it cut a 156-character name to 100 without a word): the
    service refuses the long text by name, and every character typed is still in the field."""
    test = log_page(app_test, sqlite_staff.practitioner)
    assert test.text_area(key="log_reason").proto.max_chars == 0
    assert test.text_area(key="log_reason").help == f"Up to {REASON_LIMIT:,} characters."
    long_name = "Detective Constable " + "Featherstonehaugh-" * 8
    fill_request(test, sqlite_staff, log_requester_name=long_name, log_reason="r" * (REASON_LIMIT + 1))
    button(test, "Log request").click().run()
    assert "at most 100 characters" in errors(test) and f"at most {REASON_LIMIT:,} characters" in errors(test)
    assert test.text_input(key="log_requester_name").value == long_name
    assert len(test.text_area(key="log_reason").value) == REASON_LIMIT + 1
    assert count(sqlite_engine, Request) == 0


def test_a_likely_duplicate_must_be_confirmed(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        people.create_person(session, sqlite_staff.practitioner, NewPerson("Siobhán", "O'Brien", "05/11/1990"))
    test = log_page(app_test, sqlite_staff.practitioner)
    new_person_mode(test, given="Siobhan", family="OBrien", born="05/11/1990").run()
    assert "Siobhán O'Brien · born 05/11/1990" in texts(test)
    assert [box.label for box in test.checkbox] == [CONFIRM_LABEL]
    fill_request(test, sqlite_staff, log_type="advice")
    button(test, "Log request").click().run()
    assert "may be the same person" in errors(test)
    assert count(sqlite_engine, Request) == 0 and count(sqlite_engine, Person) == 1
    test.checkbox[0].check()
    button(test, "Log request").click().run()
    assert not test.error, errors(test)
    assert count(sqlite_engine, Request) == 1 and count(sqlite_engine, Person) == 2


def test_find_a_person_while_typing_and_use_them(app_test, sqlite_engine, sqlite_staff):
    with db.writing(sqlite_engine) as session:
        existing = people.create_person(session, sqlite_staff.practitioner,
                                        NewPerson("Siobhán", "O'Brien", "05/11/1990", nhs_number="9434765919"))
    test = log_page(app_test, sqlite_staff.practitioner)
    test.text_input(key="person_search").input("obri").run()
    assert "Siobhán O'Brien · born 05/11/1990 · NHS 943 476 5919" in texts(test)
    button(test, "Use this person").click().run()
    assert "Person: Siobhán O'Brien" in texts(test)
    fill_request(test, sqlite_staff)
    button(test, "Log request").click().run()
    assert not test.error, errors(test)
    with db.reading(sqlite_engine) as session:
        request = session.exec(select(Request)).one()
        viewed = session.exec(select(AuditEvent).where(AuditEvent.action == "view_person")).all()
    assert request.person_id == existing.id
    assert [(row.user_id, row.entity_id) for row in viewed] == [(sqlite_staff.practitioner.id, existing.id)]


def test_searching_without_choosing_is_not_taken_as_nobody(app_test, sqlite_engine, sqlite_staff):
    test = log_page(app_test, sqlite_staff.practitioner)
    test.text_input(key="person_search").input("nobody like this").run()
    fill_request(test, sqlite_staff)
    button(test, "Log request").click().run()
    assert "Choose a person from the search results" in errors(test)
    assert count(sqlite_engine, Request) == 0


def test_general_advice_without_a_person(app_test, sqlite_engine, sqlite_staff):
    test = log_page(app_test, sqlite_staff.team_lead)
    test.radio(key="person_mode").set_value(NOBODY).run()
    fill_request(test, sqlite_staff, log_type="advice", log_requester_phone="", log_requester_email="a@b.nhs.uk")
    button(test, "Log request").click().run()
    assert not test.error, errors(test)
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(Request.person_id)).one() is None


# --- Plain text, never markup ---------------------------------------------------------------

SCRIPT = "<script>alert('x')</script>"
FORMULA = '=HYPERLINK("http://evil.example","Click")'


def log_via_service(engine, staff, user=None, **changes) -> Request:
    values = dict(received_on=date(2026, 3, 10), received_time=time(11, 30), source_of_referral="police",
                  requester_name="PC Dawn Jones", requester_phone="01702 123456", site_id=staff.sites[0].id,
                  request_type="screening", urgency="urgent", reason="Distressed in the cell.")
    values.update(changes)
    with db.writing(engine) as session:
        return requests.log_request(session, user or staff.practitioner, NewRequest(**values))


def test_script_and_formula_are_shown_as_plain_text(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff, requester_name=SCRIPT, requester_role=FORMULA,
                              reason=f"{SCRIPT} {FORMULA}", offence=FORMULA, custody_number=SCRIPT[:40],
                              new_person=NewPerson(SCRIPT, FORMULA, "01/01/1990", pnc_reference=FORMULA[:40]))
    test = app_test(REQUEST, sqlite_staff.practitioner, {"id": str(request.id)}).run()
    assert not test.exception
    shown = texts(test)
    assert f"Requester: {SCRIPT} ({FORMULA})" in shown and f"{SCRIPT} {FORMULA}" in shown
    assert f"{SCRIPT} {FORMULA} · born 01/01/1990" in shown
    markdown = " ".join(element.value for element in test.markdown)
    assert "<script>" not in markdown and "HYPERLINK" not in markdown
    queue = app_test(QUEUE, sqlite_staff.team_lead).run()
    assert queue.dataframe[0].value["Person"][0] == f"{SCRIPT} {FORMULA}"


# --- The triage queue -----------------------------------------------------------------------


def test_the_queue_shows_the_clock_and_a_team_lead_allocates(app_test, sqlite_engine, sqlite_staff):
    overdue = log_via_service(sqlite_engine, sqlite_staff, urgency="emergency", received_time=time(10, 30))
    due_soon = log_via_service(sqlite_engine, sqlite_staff, urgency="emergency", received_time=time(11, 10))
    log_via_service(sqlite_engine, sqlite_staff, urgency="routine")
    test = app_test(QUEUE, sqlite_staff.team_lead).run()
    assert not test.exception, test.exception
    table = test.dataframe[0].value
    assert list(table["Reference"]) == [overdue.reference, due_soon.reference, "R-2026-000003"]
    assert list(table["Clock"]) == ["🔴 Overdue", "🟠 Due soon", "🟢 On time"]
    assert list(table["Time left (minutes)"])[:2] == [-30, 10]
    assert "Click a request's row in the list to choose it." in test.info[0].value  # nothing chosen: no action
    assert not [candidate for candidate in test.button if candidate.label.startswith("Allocate")]
    test.session_state["triage_chosen"] = due_soon.id  # what the row-selection callback keeps: an id
    test.run()
    assert f"Chosen: {due_soon.reference}" in texts(test)
    labelled(test, "selectbox", f"Allocate {due_soon.reference} to").set_value(
        sqlite_staff.second_practitioner.id).run()
    button(test, f"Allocate {due_soon.reference}").click().run()
    assert not test.error, errors(test)
    assert f"{due_soon.reference} allocated to Sam Second" in unescaped(test.success[0].value)
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, due_soon.id).allocated_to_id == sqlite_staff.second_practitioner.id
        assert session.get(Request, overdue.id).allocated_to_id is None
    table = test.dataframe[0].value  # allocated to a colleague, it moves below the unallocated requests
    assert list(zip(table["Reference"], table["Allocated to"], strict=True)) == [
        (overdue.reference, ""), ("R-2026-000003", ""), (due_soon.reference, "Sam Second")]
    assert f"Chosen: {due_soon.reference}" in texts(test)  # the choice stays on the request acted on


def test_a_practitioner_takes_a_request(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff)
    test = app_test(QUEUE, sqlite_staff.practitioner).run()
    test.session_state["triage_chosen"] = request.id
    test.run()
    assert not [box for box in test.selectbox if box.label.startswith("Allocate R-")]  # team leads only
    button(test, f"Allocate {request.reference} to me").click().run()
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, request.id).allocated_to_id == sqlite_staff.practitioner.id


def test_filters_come_from_and_go_to_the_url(app_test, sqlite_engine, sqlite_staff):
    log_via_service(sqlite_engine, sqlite_staff, urgency="routine")
    emergency = log_via_service(sqlite_engine, sqlite_staff, urgency="emergency", site_id=sqlite_staff.sites[1].id)
    test = app_test(QUEUE, sqlite_staff.team_lead, {"urgency": "emergency", "site": "999"}).run()
    assert list(test.dataframe[0].value["Reference"]) == [emergency.reference]
    assert test.caption[0].value.startswith("1 request matches · showing 1–1")
    assert test.multiselect(key="triage_site").value == []  # a site not in the team is dropped
    test.multiselect(key="triage_site").set_value([sqlite_staff.sites[1].id]).run()
    assert test.query_params["site"] == str(sqlite_staff.sites[1].id)
    assert test.query_params["urgency"] == "emergency"
    test.multiselect(key="triage_urgency").set_value([]).run()
    assert "urgency" not in test.query_params


def test_paging_through_a_long_queue(app_test, sqlite_engine, sqlite_staff):
    for minute in range(requests.PAGE_SIZE + 5):
        log_via_service(sqlite_engine, sqlite_staff, received_time=time(10, minute % 60), urgency="routine")
    test = app_test(QUEUE, sqlite_staff.team_lead).run()
    assert len(test.dataframe[0].value) == requests.PAGE_SIZE
    assert "55 requests match · showing 1–50" in test.caption[0].value
    button(test, "Next page").click().run()
    assert len(test.dataframe[0].value) == 5
    assert "showing 51–55" in test.caption[0].value
    button(test, "Previous page").click().run()
    assert len(test.dataframe[0].value) == requests.PAGE_SIZE


# --- The request page -----------------------------------------------------------------------


def request_page(app_test, user, request):
    test = app_test(REQUEST, user, {"id": str(request.id)}).run()
    assert not test.exception, test.exception
    return test


def test_answer_close_and_reopen(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    test = request_page(app_test, sqlite_staff.practitioner, request)
    assert test.title[0].value == f"Request {request.reference}"
    assert f"Screen Kim for {request.reference} (opens their draft if one is started)" in [
        unescaped(candidate.label) for candidate in test.button]
    button(test, "Allocate to me").click().run()
    assert "Allocated to you." in unescaped(test.success[0].value)
    labelled(test, "selectbox", "How the response was given").set_value("02")
    labelled(test, "text_area", "Advice given or action agreed").input("Advised custody to call the crisis team.")
    assert test.time_input(key="respond_time").value == time(12, 0)  # now, by default
    button(test, "Record first response").click().run()
    assert not test.error, errors(test)
    assert "First response recorded." in unescaped(test.success[0].value)
    timeline = test.dataframe[0].value
    assert list(timeline["What"]) == ["Received", "Allocated", "First response", "In progress"]
    labelled(test, "selectbox", "Closure reason").set_value("advice_given")
    button(test, "Close request").click().run()
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, request.id).status == "closed"
    assert not [candidate for candidate in test.button if candidate.label == "Reopen request"]  # team leads only
    lead = request_page(app_test, sqlite_staff.team_lead, request)
    why = labelled(lead, "text_input", "Why reopen it (shown on the timeline; no clinical details)")
    why.input("Police asked again")
    button(lead, "Reopen request").click().run()
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, request.id).status == "reopened"


def test_a_bad_first_response_keeps_what_was_typed(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff)
    test = request_page(app_test, sqlite_staff.practitioner, request)
    labelled(test, "text_area", "Advice given or action agreed").input("Advised <b>custody</b>.")
    test.time_input(key="respond_time").set_value(time(11, 50))
    button(test, "Record first response").click().run()
    assert "Choose how the response was given" in errors(test)
    assert labelled(test, "text_area", "Advice given or action agreed").value == "Advised <b>custody</b>."
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, request.id).first_response_at is None


def test_a_stale_page_is_refused_with_who_and_when(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff)
    test = request_page(app_test, sqlite_staff.practitioner, request)
    with db.writing(sqlite_engine) as session:  # meanwhile, the team lead allocates it
        requests.allocate(session, sqlite_staff.team_lead, request.id, None, sqlite_staff.second_practitioner.id)
    labelled(test, "selectbox", "How the response was given").set_value("02")
    labelled(test, "text_area", "Advice given or action agreed").input("Advice")
    test.time_input(key="respond_time").set_value(time(11, 50))
    button(test, "Record first response").click().run()
    assert "Changed by Lee Lead at 12:00 on 10/03/2026" in errors(test)
    with db.reading(sqlite_engine) as session:
        assert session.get(Request, request.id).first_response_at is None


def test_another_teams_request_is_refused_by_url(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    test = app_test(REQUEST, sqlite_staff.other_team_practitioner, {"id": str(request.id)}).run()
    assert not test.exception
    assert "No such record in your team." in errors(test)
    assert "Kim" not in texts(test) and request.reference not in " ".join(title.value for title in test.title)
    assert not test.dataframe and not test.text_area
    with db.reading(sqlite_engine) as session:
        denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
    assert (denial.user_id, denial.entity_id) == (sqlite_staff.other_team_practitioner.id, request.id)


@pytest.mark.parametrize(("query", "said"), [({}, "Choose a request"), ({"id": "abc"}, "does not point to a record"),
                                           ({"id": "999"}, "No such record in your team.")])
def test_a_missing_or_unknown_id(app_test, sqlite_staff, query, said):
    test = app_test(REQUEST, sqlite_staff.practitioner, query).run()
    assert not test.exception
    assert said in " ".join([errors(test), *(info.value for info in test.info)])


def test_opening_a_request_audits_the_person_view(app_test, sqlite_engine, sqlite_staff):
    request = log_via_service(sqlite_engine, sqlite_staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    request_page(app_test, sqlite_staff.team_lead, request)
    with db.reading(sqlite_engine) as session:
        rows = session.exec(select(AuditEvent.action).where(AuditEvent.user_id == sqlite_staff.team_lead.id)).all()
    assert sorted(rows) == ["view_person", "view_request"]



def test_redrawing_a_request_does_not_audit_it_again(app_test, sqlite_engine, sqlite_staff):
    """Every click reruns the page: only the first opening in the browser session is a view."""
    request = log_via_service(sqlite_engine, sqlite_staff, new_person=NewPerson("Kim", "Ray", "01/01/1990"))
    test = request_page(app_test, sqlite_staff.team_lead, request)
    test.run()
    test.run()
    assert not test.exception
    with db.reading(sqlite_engine) as session:
        rows = session.exec(select(AuditEvent.action).where(AuditEvent.user_id == sqlite_staff.team_lead.id)).all()
    assert sorted(rows) == ["view_person", "view_request"]


def test_a_team_lead_moves_all_of_one_practitioners_open_requests(app_test, sqlite_engine, sqlite_staff):
    made = [log_via_service(sqlite_engine, sqlite_staff, received_time=time(11, minute)) for minute in range(3)]
    for request in made:
        with db.writing(sqlite_engine) as session:
            requests.allocate(session, sqlite_staff.team_lead, request.id, None, sqlite_staff.practitioner.id)
    test = app_test(QUEUE, sqlite_staff.team_lead).run()
    labelled(test, "selectbox", "Move the open requests of").set_value(sqlite_staff.practitioner.id).run()
    test.multiselect[-1].set_value([sqlite_staff.second_practitioner.id]).run()
    assert "This moves 3 open requests from Priya Practitioner to Sam Second (3)." in unescaped(test.warning[0].value)
    button(test, "Move 3 requests").click().run()
    assert not test.error, errors(test)
    assert "Moved 3 open requests from Priya Practitioner to Sam Second (3)." in unescaped(test.success[0].value)
    with db.reading(sqlite_engine) as session:
        owners = {session.get(Request, request.id).allocated_to_id for request in made}
    assert owners == {sqlite_staff.second_practitioner.id}


# --- Filters kept in the URL (ui/query_filters.py, pure parts) -----------------------------


def test_query_filters_parse_what_the_app_wrote_and_drop_anything_else():
    from ui.query_filters import FilterKind, QueryFilter, encode, parse

    filters = [
        QueryFilter("site", FilterKind.INTS, choices={1, 2}),
        QueryFilter("status", FilterKind.TEXTS, default=("new", "allocated"), choices={"new", "allocated", "closed"}),
        QueryFilter("who", FilterKind.TEXT, default="any"),
        QueryFilter("from", FilterKind.DATE),
        QueryFilter("mine", FilterKind.BOOL),
    ]
    values = {"site": (2,), "status": (), "who": "7", "from": date(2026, 3, 1), "mine": True}
    query = encode(filters, values)
    assert query == {"site": ["2"], "status": [""], "who": ["7"], "from": ["2026-03-01"], "mine": ["1"]}
    assert parse(filters, query) == values
    assert encode(filters, parse(filters, {})) == {}  # defaults stay out of the URL
    hostile = {"site": ["2", "3", "1;DROP", "１"], "status": ["closed", "<script>"], "from": ["31/02/2026"],
               "who": ["x" * 500]}
    assert parse(filters, hostile) == {"site": (2,), "status": ("closed",), "who": "any", "from": None,
                                       "mine": False}


def test_the_autumn_hour_asks_which_and_the_spring_hour_says_why(app_test, sqlite_engine, sqlite_staff):
    test = log_page(app_test, sqlite_staff.practitioner)
    test.radio(key="person_mode").set_value(NOBODY).run()
    fill_request(test, sqlite_staff, log_type="advice")
    test.date_input(key="log_received_on").set_value(date(2026, 3, 8))
    test.time_input(key="log_received_time").set_value(time(1, 30)).run()
    assert not [radio for radio in test.radio if "happened twice" in radio.label]  # an ordinary night
    test.date_input(key="log_received_on").set_value(date(2025, 10, 26)).run()
    question = [radio for radio in test.radio if radio.label == "01:30 on 26/10/2025 happened twice: which one?"]
    assert question and question[0].options == ["The first, in summer time (BST)",
                                                "The second, after the clocks went back (GMT)"]
    button(test, "Log request").click().run()
    assert "happened twice in the UK" in errors(test) and count(sqlite_engine, Request) == 0
    test.radio(key="log_received_fold").set_value(1)
    button(test, "Log request").click().run()
    assert not test.error, errors(test)
    with db.reading(sqlite_engine) as session:
        assert session.exec(select(Request)).one().received_at == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    test.radio(key="person_mode").set_value(NOBODY).run()  # a fresh form after the save
    test.date_input(key="log_received_on").set_value(date(2025, 3, 30))
    test.time_input(key="log_received_time").set_value(time(1, 30)).run()
    fill_request(test, sqlite_staff, log_type="advice")
    button(test, "Log request").click().run()
    assert "01:30 on 30/03/2025 did not happen in the UK: clocks went forward at 01:00" in errors(test)
    assert count(sqlite_engine, Request) == 1


@pytest.mark.parametrize("odd", ["9" * 30, "-1", "0", "1e3", "١٢", " 12"])
def test_an_odd_request_id_gets_a_plain_message_and_no_exception(app_test, sqlite_staff, odd):
    from ui.record_id import NOT_A_RECORD_ID

    test = app_test(REQUEST, sqlite_staff.practitioner, {"id": odd}).run()
    assert not test.exception, test.exception
    assert NOT_A_RECORD_ID in errors(test) and not test.dataframe
