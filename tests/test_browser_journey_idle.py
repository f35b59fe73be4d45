"""Journey in real Chromium: a screen left alone clears itself once the idle time-out has passed.

A custody-suite PC is shared: a person's record left open must not be there for the next person.
The server's clock is moved on (tests/shifted_clock_server.py, this module's own server) rather
than waiting out the 5-minute minimum: 4 minutes after the last click the guard's check (every 30 s)
leaves the record on screen; 6 minutes after it, the screen shows only the sign-in form within
about 40 seconds, with nobody touching it.
"""

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from models import Person, Setting
from services import db, matching
from tests.browser import (  # noqa: F401
    browser,
    fragment_runs,
    idle,
    page,
    reload_and_settle,
    runs,
    serve,
    sign_in,
    wait_for_runs,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    yield from serve(tmp_path_factory, shifted_clock=True)


def test_an_open_record_clears_itself_after_the_idle_time_out_without_a_click(page, live_app):  # noqa: F811
    with db.writing(live_app.engine) as session:
        session.add(Setting(key="idle_timeout_minutes", value="5"))  # the shortest the setting allows
        person = Person(team_id=live_app.staff.team.id, given_name="Aoife", family_name="Ní Bhriain",
                        nhs_number_status="not_known", date_of_birth=date(1985, 3, 14),
                        given_name_key=matching.name_key("Aoife"), family_name_key=matching.name_key("Ní Bhriain"))
        session.add(person)
        session.flush()
        person_id = person.id

    sign_in(page, live_app, "practitioner")
    page.goto(f"{live_app.url}/People?id={person_id}")  # a new browser session: it resumes the tab's sign-in
    page.get_by_role("heading", name="Details").wait_for()
    expect(page.get_by_text("Aoife Ní Bhriain").first).to_be_visible()
    idle(page)

    # Four minutes on, under the time-out: the guard's check (every 30 s) leaves the record alone.
    live_app.move_clock(timedelta(minutes=4))
    wait_for_runs(page, fragment_runs(page) + 1, timeout=45, counter=fragment_runs)
    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)

    # Six minutes on: no click, no key; the guard's next check clears the screen.
    live_app.move_clock(timedelta(minutes=6))
    page.get_by_role("button", name="Sign in").wait_for(timeout=45_000)
    idle(page)
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_text("You have been signed out. Please sign in again.")).to_be_visible()
    for gone in ("Aoife", "Ní Bhriain", "14/03/1985"):  # nothing of the record is left on screen
        expect(page.get_by_text(gone)).to_have_count(0)
    expect(page.get_by_role("heading", name="Details")).to_have_count(0)
    expect(page.get_by_role("link", name="People")).to_have_count(0)  # nor the signed-in sidebar
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('ldhub.session')") is None  # the tab forgot its token

    # A refresh does not bring the record back.
    reload_and_settle(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Aoife")).to_have_count(0)
