"""Journeys in real Chromium: signing out ends the person's sessions in every tab; tables offer no download.

- Three tabs of one browser, each signed in as the same practitioner (each tab keeps its own token
  in its own sessionStorage). A refresh of a signed-in tab resumes it. Signing out in one tab ends
  the others: the second tab's next click shows the sign-in form; a third tab refreshed without a
  click is refused too; the signed-out tab refreshed stays signed out.
- No st.dataframe offers "Download as CSV" in its toolbar (`client.disableDataExport`): records
  leave the app only through the audited "Export this view".
"""

import pytest
from playwright.sync_api import expect

from services import db, screening
from tests.browser import (  # noqa: F401
    browser,
    choose_row,
    grid,
    idle,
    live_app,
    log_request,
    new_tab,
    page,
    reload_and_settle,
    rerun,
    runs,
    sign_in,
    wait_for_runs,
)
from tests.test_screening import make_person

pytestmark = pytest.mark.browser

TOKEN = "sessionStorage.getItem('ldhub.session')"


def _signed_out(tab, notice: str) -> None:
    """Only the sign-in form, with `notice`, once the script has stopped (no page, no sidebar of links)."""
    tab.get_by_text(notice).wait_for()
    idle(tab)
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible()
    expect(tab.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(tab.get_by_role("link", name="Triage queue")).to_have_count(0)
    expect(tab.get_by_role("heading", name="My work")).to_have_count(0)


def test_signing_out_in_one_tab_ends_the_session_in_every_other_tab(page, live_app):  # noqa: F811
    first = page
    sign_in(first, live_app, "practitioner")
    second, third = new_tab(first), new_tab(first)
    sign_in(second, live_app, "practitioner")
    sign_in(third, live_app, "practitioner")
    assert len({first.evaluate(TOKEN), second.evaluate(TOKEN), third.evaluate(TOKEN)}) == 3  # a token per tab

    # A refresh of a signed-in tab: the sign-in form for a moment, then the page again, still signed in.
    second.get_by_role("link", name="Triage queue", exact=True).click()
    second.get_by_role("heading", name="Triage queue").wait_for()
    token_before = second.evaluate(TOKEN)
    second.reload()
    second.get_by_role("heading", name="Triage queue").wait_for()
    idle(second)
    expect(second.get_by_role("button", name="Sign in")).to_have_count(0)
    expect(second.get_by_text("Signed in as Priya Practitioner")).to_be_visible()
    assert second.evaluate(TOKEN) not in (None, token_before)  # resumed under a new token: the old one is spent

    first.get_by_role("button", name="Sign out").click()
    _signed_out(first, "You have signed out.")
    assert first.evaluate(TOKEN) is None

    # The second tab still shows the queue; its next click is refused and leaves only the sign-in form.
    expect(second.get_by_role("heading", name="Triage queue")).to_be_visible()
    second.get_by_role("link", name="People").click()
    _signed_out(second, "You have been signed out. Please sign in again.")
    expect(second.get_by_role("heading", name="People")).to_have_count(0)
    assert second.evaluate(TOKEN) is None

    # The third tab, refreshed without a click, comes back with a token whose session has ended.
    reload_and_settle(third)
    _signed_out(third, "Your session has ended. Please sign in again.")

    # The tab that signed out, refreshed: the sign-in form, and it stays.
    reload_and_settle(first)
    expect(first.get_by_role("button", name="Sign in")).to_be_visible()
    expect(first.get_by_role("heading", name="My work")).to_have_count(0)
    expect(first.get_by_role("button", name="Sign out")).to_have_count(0)

    # Signing in again works as ever.
    sign_in(first, live_app, "practitioner")


def _toolbar_labels(page, table: int) -> list[str]:  # noqa: F811
    """Hover a table as a person would and read the labels of the toolbar it then shows."""
    target = grid(page, table)
    target.scroll_into_view_if_needed()
    target.hover()
    toolbar = target.locator('[data-testid="stElementToolbar"]')
    expect(toolbar.get_by_role("button", name="Fullscreen")).to_be_visible()  # the toolbar is shown
    return [button.get_attribute("aria-label") or button.inner_text()
            for button in toolbar.get_by_role("button").all()]


def _assert_no_download(page, tables: int) -> None:  # noqa: F811
    expect(grid(page, tables - 1)).to_be_visible()
    for table in range(tables):
        labels = _toolbar_labels(page, table)
        assert not [label for label in labels if "download" in label.lower() or "csv" in label.lower()], labels
        assert "Search" in labels  # what the toolbar does offer
    expect(page.get_by_role("button", name="Download as CSV")).to_have_count(0)


def test_no_table_offers_a_csv_download(page, live_app):  # noqa: F811
    person = make_person(live_app.engine, live_app.staff, given="Tomasz", family="Wiśniewski")
    logged = log_request(live_app, live_app.staff.practitioner, person_id=person.id)
    with db.writing(live_app.engine) as session:
        screening.start_from_request(session, live_app.staff.practitioner, logged.id)

    sign_in(page, live_app, "lead")
    page.get_by_role("link", name="Triage queue", exact=True).click()
    page.get_by_role("heading", name="Triage queue").wait_for()
    _assert_no_download(page, 1)
    choose_row(page, 1)  # a chosen row changes nothing in the toolbar
    _assert_no_download(page, 1)

    rerun(page, lambda: page.get_by_role("link", name=f"Open {logged.reference}").click())
    page.get_by_role("heading", name=f"Request {logged.reference}").wait_for()
    _assert_no_download(page, 1)  # the timeline

    page.goto(f"{live_app.url}/People?id={person.id}")  # resumes the tab's sign-in
    page.get_by_role("heading", name="Screenings (1)").wait_for()
    _assert_no_download(page, 1)  # the screenings table
