"""Values that came from people are plain text on every page, administrators' values included.

Every name and label a person can type (a staff member's full name, the team's and a site's name, a
code-list label, a person's names, a requester's name, a reason, an activity's topic) is set to
markdown that would render as a live link; then every page is opened as each role that may open it
(the record pages with a record's id) and every element Streamlit renders as markdown is read: none
may hold the link's markdown unescaped. `st.text` elements are plain by construction and are read
only to prove the values reached the page at all.
"""

from datetime import date, time

import pytest
from sqlmodel import select

from models import CodeItem, Site, Team, User
from models.codes import CodeList, Role
from services import activities, db, people, requests, screening
from services.permissions import has_permission
from tests.conftest import ROOT, unescaped
from ui import nav

LINK = "](https://evil.example/"
NAMES = {kind: f"[{kind}](https://evil.example/{kind.lower()})" for kind in
         ("Staff", "Team", "Site", "Type", "Given", "Family", "Requester", "Reason", "Topic")}
MARKDOWN_KINDS = ("markdown", "title", "header", "subheader", "caption", "success", "info", "warning", "error",
                  "toast", "exception")
PAGE_FILES = ["app.py", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "pages").glob("*.py"))]


@pytest.fixture
def hostile(sqlite_engine, sqlite_staff):
    """The team's typed values, all markdown links; one request, one screening, one activity."""
    staff = sqlite_staff
    with db.writing(sqlite_engine) as session:
        for user in (staff.practitioner, staff.team_lead, staff.administrator):
            session.get(User, user.id).full_name = NAMES["Staff"]
        session.get(Team, staff.team.id).name = NAMES["Team"]
        session.get(Site, staff.sites[0].id).name = NAMES["Site"]
        item = session.exec(select(CodeItem).where(CodeItem.list_name == CodeList.REQUEST_TYPE.value,
                                                   CodeItem.code == "screening")).one()
        item.label = NAMES["Type"]
    with db.writing(sqlite_engine) as session:
        practitioner = session.get(User, staff.practitioner.id)
        person = people.create_person(session, practitioner, people.NewPerson(NAMES["Given"], NAMES["Family"],
                                                                               "05/11/1990"))
    with db.writing(sqlite_engine) as session:
        request = requests.log_request(session, practitioner, requests.NewRequest(
            received_on=date(2026, 11, 2), received_time=time(10, 0),
            source_of_referral="police", requester_name=NAMES["Requester"], site_id=staff.sites[0].id,
            request_type="screening", urgency="urgent", reason=NAMES["Reason"], requester_phone="01702 123456",
            person_id=person.id))
    with db.writing(sqlite_engine) as session:
        draft = screening.start_from_request(session, practitioner, request.id)
        activity = activities.log_activity(session, practitioner, activities.TrainingInput(
            activity_on=date(2026, 11, 2), audience_agency="police", topic=NAMES["Topic"], number_trained=3,
            minutes_spent=30))
    return {"pages/3_Request.py": request.id, "pages/4_People.py": person.id, "pages/5_Screening.py": draft.id,
            "pages/6_Screening_summary.py": draft.id, "pages/8_Activities.py": activity.id}


def _rendered_as_markdown(test) -> list[str]:
    found = []
    for kind in MARKDOWN_KINDS:
        for element in getattr(test, kind, []):
            found.append(str(getattr(element, "value", "")))
    for widget_kind in ("button", "selectbox", "multiselect", "text_input", "text_area", "radio", "checkbox",
                        "date_input", "time_input", "number_input"):
        found += [str(widget.label) for widget in getattr(test, widget_kind)]  # labels render markdown too
    found += [str(metric.label) for metric in test.metric]
    return found


def _plain(test) -> str:
    return " ".join(str(element.value) for element in test.text)


def _may_open(role: Role, page: str) -> bool:
    entry = next(entry for entry in nav.PAGES if entry.path == page)
    return has_permission(User(username="x", full_name="x", role=role, team_id=0), entry.permission)


# Each page with each role that may open it (tests/test_pages_guard.py checks the refusals).
@pytest.mark.parametrize(("page", "role"), [(page, role) for page in PAGE_FILES for role in Role
                                            if _may_open(role, page)])
def test_no_typed_value_renders_as_markdown(app_test, sqlite_staff, hostile, page, role):
    user = sqlite_staff.by_role(role)
    query = {"id": str(hostile[page])} if page in hostile else None
    test = app_test(page, user, query).run()
    assert not test.exception, test.exception
    leaked = [value for value in _rendered_as_markdown(test) if LINK in value]
    assert leaked == [], f"markdown from a typed value on {page} as {role}: {leaked}"
    assert NAMES["Staff"] in " ".join(str(text.value) for text in test.sidebar.text)  # shown, as plain text


def test_the_screening_chooser_names_the_waiting_request_as_plain_text(app_test, sqlite_engine, sqlite_staff,
                                                                       hostile):
    with db.writing(sqlite_engine) as session:
        waiting = requests.log_request(session, session.get(User, sqlite_staff.practitioner.id), requests.NewRequest(
            received_on=date(2026, 11, 3), received_time=time(9, 0), source_of_referral="courts",
            requester_name="Usher", site_id=sqlite_staff.sites[0].id, request_type="advice", urgency="routine",
            reason="Advice", requester_phone="01268 000000", person_id=hostile["pages/4_People.py"]))
    test = app_test("pages/5_Screening.py", sqlite_staff.practitioner, {"request": str(waiting.id)}).run()
    labels = [button.label for button in test.button]
    assert any("Start the screening for" in unescaped(label) for label in labels)
    assert not [label for label in labels if LINK in label]
