"""Every page, opened anonymously and as each role: only the sign-in prompt or a refusal renders
where the role may not be, and the refusal is audited on the server."""

from pathlib import Path

import pytest
from sqlmodel import select

from models import AuditEvent
from models.codes import Role
from services import db
from services.permissions import has_permission
from tests.conftest import ROOT
from ui import nav

PAGE_FILES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "pages").glob("*.py"))
REGISTERED = {entry.path: entry for entry in nav.PAGES}


def _all_text(test) -> str:
    parts = [element.value for kind in ("markdown", "title", "header", "subheader", "caption", "text")
             for element in getattr(test, kind)]
    return " ".join(str(part) for part in parts)


def test_every_page_file_is_in_the_navigation_registry():
    assert set(PAGE_FILES) <= set(REGISTERED), "a page without a NavEntry has no permission in the sidebar"


@pytest.mark.parametrize("page", ["app.py", *PAGE_FILES])
def test_anonymous_visitor_sees_only_the_sign_in_prompt(app_test, sqlite_staff, page):
    test = app_test(page).run()
    assert not test.exception
    assert [field.label for field in test.text_input] == ["Username", "Password"]
    assert not test.dataframe and not test.selectbox and not test.text_area
    assert not test.title or test.title[0].value == "Liaison and Diversion hub"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("page", PAGE_FILES)
def test_each_role_opens_only_its_pages(app_test, sqlite_engine, sqlite_staff, page, role):
    user = sqlite_staff.by_role(role)
    test = app_test(page, user).run()
    assert not test.exception, test.exception
    refused = any("do not have permission" in error.value for error in test.error)
    allowed = has_permission(user, REGISTERED[page].permission)
    assert refused != allowed
    if refused:
        assert not test.text_input and not test.dataframe and not test.title
        with db.reading(sqlite_engine) as session:
            denial = session.exec(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
        assert denial.user_id == user.id


def test_sidebar_lists_only_permitted_pages(app_test, sqlite_staff):
    test = app_test("app.py", sqlite_staff.practitioner).run()
    links = {link.proto.page for link in test.sidebar.get("page_link")}
    assert not any("Users" in link for link in links)
    assert any("Triage_queue" in link or "1_Triage" in link for link in links) or not Path(
        ROOT / "pages/1_Triage_queue.py").exists()


def test_sign_in_through_the_form(app_test, sqlite_staff):
    from tests.conftest import PASSWORD

    test = app_test("app.py").run()
    test.text_input[0].input("practitioner")
    test.text_input[1].input(PASSWORD)
    test.button[0].click().run()
    assert not test.exception
    assert test.title[0].value == "My work"


def test_wrong_password_keeps_the_username_typed(app_test, sqlite_staff):
    test = app_test("app.py").run()
    test.text_input[0].input("practitioner")
    test.text_input[1].input("wrong password")
    test.button[0].click().run()
    assert "not right" in test.error[0].value
    assert test.text_input[0].value == "practitioner"


def test_sign_out_clears_the_session(app_test, sqlite_staff):
    test = app_test("app.py", sqlite_staff.practitioner).run()
    test.sidebar.button[0].click().run()
    assert "signed_in" not in test.session_state
    assert [field.label for field in test.text_input] == ["Username", "Password"]


def test_demo_mode_says_so_on_every_page(app_test, sqlite_staff, monkeypatch):
    monkeypatch.setenv("DEMO", "1")
    for page in ["app.py", *PAGE_FILES]:
        test = app_test(page).run()
        assert "Demo data" in test.warning[0].value


def test_a_shared_link_opens_where_it_points_after_signing_in(app_test, sqlite_staff):
    from tests.conftest import PASSWORD

    test = app_test("pages/1_Triage_queue.py", query={"urgency": "urgent"}).run()
    test.text_input[0].input("lead")
    test.text_input[1].input(PASSWORD)
    test.button[0].click().run()
    assert not test.exception
    assert test.title[0].value == "Triage queue"
    assert test.query_params["urgency"] == "urgent"
