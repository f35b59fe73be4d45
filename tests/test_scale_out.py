"""Two app processes on one PostgreSQL, as behind the proxy: what one process changes, the other
shows at its next rerun (issue #16, "Beyond one process").

Two `streamlit run app.py` processes, A and B, serve one PostgreSQL schema; people use each in
Chromium. A change made through A is seen on B's next click:

- a request logged on A is in B's triage queue, and in B's caseload charts: the Caseload page's
  cache (`st.cache_data`, one per process) is keyed by a stamp read from the database, so B's cached
  charts give way at once;
- a service setting changed on A (the idle time-out) is the one B's next click is judged by;
- an account disabled on A, a sign-out on A ("every session of the user") and a password changed
  on A each end that person's session on B at its next click.

Nothing else is shared between the processes: each keeps only its own engine and caches keyed by
the database (README, "Several app processes"). PostgreSQL only: SQLite is one machine's file.
"""

import os
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from models import Request, Setting, User
from services import db
from tests import conftest
from tests.browser import (  # noqa: F401
    browser,
    choose,
    field,
    grid_rows,
    idle,
    new_browser_tab,
    new_tab,
    page,
    rerun,
    serve,
    sign_in,
)

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

NEW_PASSWORD = "violet kettle hums at dawn"
SIGNED_OUT = "You have been signed out. Please sign in again."


@pytest.fixture(scope="module")
def database_url(worker_id):
    """An empty schema of the test PostgreSQL of its own, named in the address the processes are given."""
    url = conftest.postgres_url()
    if url is None:
        pytest.skip(f"two app processes share a PostgreSQL; skipped: {conftest._postgres_reason}")
    schema_name = f"ldhub_scale_{worker_id}_{os.getpid()}"
    base = db.create_database_engine(url)
    try:
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    except Exception as error:  # a server that answers but refuses us: skip, saying why
        pytest.skip(f"two app processes share a PostgreSQL; {url} refused: {str(error).splitlines()[0]}")
    address = make_url(url).update_query_dict({"options": f"-csearch_path={schema_name}"})
    yield address.render_as_string(hide_password=False)
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
    base.dispose()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, database_url):
    """Process A: makes the tables and the staff."""
    yield from serve(tmp_path_factory, database_url=database_url, shifted_clock=True)


@pytest.fixture(scope="module")
def second_app(tmp_path_factory, database_url, live_app):
    """Process B: the same database and staff, its own clock (moved on to pass an idle time-out)."""
    yield from serve(tmp_path_factory, database_url=database_url, staff=live_app.staff, shifted_clock=True)


@pytest.fixture
def second_page(browser):  # noqa: F811
    """Another person's browser, on process B."""
    tab = new_browser_tab(browser)
    yield tab
    tab.context.close()


def _open(tab, link: str, heading: str | None = None) -> None:
    rerun(tab, lambda: tab.get_by_role("link", name=link, exact=True).click())
    tab.get_by_role("heading", name=heading or link, exact=True).wait_for()


def _tile(tab, label: str) -> str:
    idle(tab)
    return tab.locator('[data-testid="stMetric"]').filter(has_text=label).locator(
        '[data-testid="stMetricValue"]').inner_text().strip()


def _signed_out_at_next_click(tab, notice: str = SIGNED_OUT) -> None:
    tab.get_by_role("link", name="People", exact=True).click()
    tab.get_by_text(notice).wait_for()
    idle(tab)
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible()
    expect(tab.get_by_role("heading", name="People")).to_have_count(0)


def _log_a_request(tab) -> None:
    """Log a request about a new person through the form, as a practitioner does."""
    _open(tab, "Log a request")
    tab.get_by_text("Record a new person").click()
    for label, value in (("Given name", "Ffion"), ("Family name", "Scale-Out"),
                         ("Date of birth (dd/mm/yyyy)", "05/11/1990")):
        typed_into = field(tab, label)
        typed_into.fill(value)
        typed_into.press("Tab")
    choose(tab, "Who is asking (source of referral)", "Police")
    field(tab, "Requester's name").fill("PC Dawn Jones")
    field(tab, "Requester's phone").fill("01702 123456")
    choose(tab, "Site", "Southend custody suite")
    choose(tab, "Request type", "Screening or assessment")
    tab.get_by_text("Urgent (within 4 hours)").click()
    field(tab, "Reason for the request").fill("Distressed in the cell.")
    tab.get_by_role("button", name="Log request").click()
    tab.get_by_text("It is in the triage queue.").wait_for()


def test_a_request_logged_on_one_process_is_in_the_other_ones_queue_and_caseload(
        page, second_page, live_app, second_app):  # noqa: F811
    lead_on_b = second_page
    sign_in(lead_on_b, second_app, "lead")
    _open(lead_on_b, "Caseload")
    received_before = int(_tile(lead_on_b, "Requests received"))  # B's cache now holds the charts
    _open(lead_on_b, "Triage queue")
    lead_on_b.get_by_text("No requests match these filters.").wait_for()

    sign_in(page, live_app, "practitioner")
    _log_a_request(page)
    with db.reading(live_app.engine) as session:
        reference = session.exec(select(Request.reference)).one()

    _open(lead_on_b, "Caseload")  # B's next rerun: its cached charts give way to the new data
    assert int(_tile(lead_on_b, "Requests received")) == received_before + 1
    _open(lead_on_b, "Triage queue")
    lead_on_b.get_by_text("1 request matches").wait_for()
    assert [row[2] for row in grid_rows(lead_on_b)] == [reference]


def test_a_setting_changed_on_one_process_judges_the_next_click_on_the_other(
        page, second_page, live_app, second_app):  # noqa: F811
    sign_in(second_page, second_app, "other")
    second_app.move_clock(timedelta(minutes=12))
    try:
        _open(second_page, "Triage queue")  # 12 minutes idle: within the default 30
        expect(second_page.get_by_text("Signed in as Olu Other")).to_be_visible()

        sign_in(page, live_app, "admin")
        _open(page, "Service settings")
        page.get_by_role("tab", name="Settings", exact=True).click()
        idle(page)
        shortest = field(page, "Sign out after idle (minutes)")
        shortest.fill("5")
        shortest.press("Tab")
        page.get_by_role("button", name="Save settings").click()
        page.get_by_text("Settings saved.").first.wait_for()

        second_app.move_clock(timedelta(minutes=24))  # 12 minutes since B's last click: past A's 5
        _signed_out_at_next_click(second_page)
    finally:
        second_app.move_clock(timedelta(0))
        with db.writing(live_app.engine) as session:
            session.exec(delete(Setting).where(Setting.key == "idle_timeout_minutes"))


def test_disabling_signing_out_or_a_new_password_on_one_process_ends_sessions_on_the_other(
        page, second_page, live_app, second_app):  # noqa: F811
    disabled, signing_out, changing = second_page, new_tab(second_page), new_tab(second_page)
    sign_in(disabled, second_app, "second")
    sign_in(signing_out, second_app, "practitioner")
    sign_in(changing, second_app, "otherlead")

    # An administrator on A disables Sam Second.
    sign_in(page, live_app, "admin")
    _open(page, "Users")
    choose(page, "Account", "Sam Second (second)")
    page.get_by_role("button", name="Disable account").click()
    page.get_by_role("button", name="Re-enable account").wait_for()
    _signed_out_at_next_click(disabled)

    # Priya signs out on A: her session on B ends too.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_app, "practitioner")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You have signed out.").wait_for()
    _signed_out_at_next_click(signing_out)

    # Orla changes her password on A: her session on B ends.
    sign_in(page, live_app, "otherlead")
    _open(page, "My account")
    field(page, "Current password").fill(live_app.password)
    field(page, "New password").fill(NEW_PASSWORD)
    field(page, "Confirm new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed. Sign in with your new password.").wait_for()
    _signed_out_at_next_click(changing)

    with db.reading(live_app.engine) as session:
        assert session.exec(select(User.active).where(User.username == "second")).one() is False
