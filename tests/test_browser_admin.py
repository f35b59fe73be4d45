"""In real Chromium: an administrator adds a site; a practitioner then chooses it on a new record.

Twice: a custody suite chosen on a new request (pages/2_Log_request.py, skipped where that form is
not in the tree), and a prison chosen on a new prison release liaison on the Activities page.
"""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from models import Activity, Person, Request, Site
from services import clock, db, matching
from tests.browser import browser, choose, field, live_app, page, sign_in  # noqa: F401
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

SITE = "HMP Chelmsford (test)"


def test_administrator_adds_a_site_and_a_practitioner_uses_it(page, live_app):  # noqa: F811
    with db.writing(live_app.engine) as session:
        session.add(Person(team_id=live_app.staff.team.id, given_name="Siôn", family_name="O'Brien",
                           nhs_number_status="not_known", date_of_birth=date(1990, 5, 11),
                           given_name_key=matching.name_key("Siôn"), family_name_key=matching.name_key("O'Brien")))

    sign_in(page, live_app, "admin")
    page.get_by_role("link", name="Service settings").click()
    page.get_by_role("heading", name="Service settings").wait_for()
    field(page, "Site name").fill(SITE)
    choose(page, "Kind of site", "Prison")
    page.get_by_role("button", name="Add site").click()
    page.get_by_text("Site added.").wait_for()
    with db.reading(live_app.engine) as session:
        site = session.exec(select(Site).where(Site.name == SITE)).one()
    assert site.team_id == live_app.staff.team.id and site.kind == "prison" and site.active
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_app, "practitioner")
    page.get_by_role("link", name="Activities").click()
    page.get_by_role("heading", name="Activities", exact=True).wait_for()
    page.get_by_role("tab", name="Prison release liaison").click()
    search = field(page, "Find the person (name, date of birth or NHS number)")
    search.fill("obrien")
    search.press("Enter")
    choose(page, "Person", "Siôn O'Brien · born 11/05/1990")
    choose(page, "Prison", SITE)  # the administrator's new site is offered to the practitioner
    release_on = clock.today_in_london() + timedelta(days=7)
    # The date field is a group of day, month and year segments, typed in that order (dd/mm/yyyy).
    release = page.get_by_role("group", name="Release date", exact=True).locator("visible=true")
    release.get_by_role("spinbutton").first.click()
    page.keyboard.type(release_on.strftime("%d%m%Y"))
    page.get_by_role("button", name="Save prison release liaison").click()
    page.get_by_text("Saved.", exact=True).wait_for()

    with db.reading(live_app.engine) as session:
        saved = session.exec(select(Activity)).one()
    assert (saved.prison, saved.release_on, saved.practitioner_id) == (SITE, release_on, live_app.staff.practitioner.id)


def _add_site_as_administrator(page, live_app, name: str, kind: str) -> Site:  # noqa: F811
    sign_in(page, live_app, "admin")
    page.get_by_role("link", name="Service settings").click()
    page.get_by_role("heading", name="Service settings").wait_for()
    field(page, "Site name").fill(name)
    choose(page, "Kind of site", kind)
    page.get_by_role("button", name="Add site").click()
    page.get_by_text("Site added.").wait_for()
    page.get_by_role("button", name="Sign out").click()
    with db.reading(live_app.engine) as session:
        return session.exec(select(Site).where(Site.name == name)).one()


@pytest.mark.skipif(not (ROOT / "pages/2_Log_request.py").exists(), reason="the request form is not in this tree")
def test_a_new_site_is_chosen_on_a_new_request(page, live_app):  # noqa: F811
    site = _add_site_as_administrator(page, live_app, "Grays custody suite", "Custody suite")
    sign_in(page, live_app, "practitioner")
    page.get_by_role("link", name="Log a request").click()
    page.get_by_role("heading", name="Log a request").wait_for()
    page.get_by_text("No one: a general advice request").click()
    choose(page, "Who is asking (source of referral)", "Police")
    field(page, "Requester's name").fill("PC Patel")
    field(page, "Requester's phone").fill("01702 123456")
    choose(page, "Site", "Grays custody suite")  # the administrator's new site, offered to the practitioner
    choose(page, "Request type", "Advice or information")
    page.get_by_text("Routine (within").click()
    field(page, "Reason for the request").fill("Advice on a detained person's medication")
    page.get_by_role("button", name="Log request").click()
    page.get_by_text("It is in the triage queue.").wait_for()
    with db.reading(live_app.engine) as session:
        logged = session.exec(select(Request).where(Request.requester_name == "PC Patel")).one()
    assert logged.site_id == site.id and logged.team_id == live_app.staff.team.id
