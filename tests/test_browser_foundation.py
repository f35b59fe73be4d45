"""Golden path in real Chromium: sign in as a practitioner; the admin page stays shut by URL."""

import pytest

from tests.browser import browser, live_app, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser


def test_practitioner_signs_in_and_cannot_open_users_by_url(page, live_app):  # noqa: F811
    sign_in(page, live_app, "practitioner")
    assert page.get_by_text("Signed in as").is_visible()
    assert page.get_by_role("link", name="Users").count() == 0  # not offered in the sidebar
    # Typing the address opens a new Streamlit session: it takes up this tab's sign-in (checked on
    # the server), and the practitioner is refused the page as before.
    page.goto(f"{live_app.url}/Users")
    page.get_by_text("You do not have permission to open this page.").wait_for()
    assert page.get_by_label("Temporary password").count() == 0
    assert page.get_by_role("button", name="Sign in").count() == 0


def test_anonymous_deep_link_shows_only_the_sign_in_prompt(page, live_app):  # noqa: F811
    page.goto(f"{live_app.url}/Users")
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_label("Temporary password").count() == 0
