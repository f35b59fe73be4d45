"""In real Chromium: an administrator adds a site; a practitioner then chooses it on a new record.

The request form (pages/2_Log_request.py) was not in the tree when this was written, so the site
added is a prison and the practitioner uses it where a site choice of theirs exists: the Prison
of a new prison release liaison on the Activities page.
"""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from models import Activity, Person, Site
from services import clock, db, matching
from tests.browser import browser, live_app, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser

SITE = "HMP Chelmsford (test)"


def _choose(page, label: str, option: str) -> None:  # noqa: F811
    """Open a Streamlit select box by its visible label and pick an option by its text."""
    page.get_by_label(label, exact=True).locator("visible=true").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_administrator_adds_a_site_and_a_practitioner_uses_it(page, live_app):  # noqa: F811
    with db.writing(live_app.engine) as session:
        session.add(Person(team_id=live_app.staff.team.id, given_name="Siôn", family_name="O'Brien",
                           nhs_number_status="not_known", date_of_birth=date(1990, 5, 11),
                           given_name_key=matching.name_key("Siôn"), family_name_key=matching.name_key("O'Brien")))

    sign_in(page, live_app, "admin")
    page.get_by_role("link", name="Service settings").click()
    page.get_by_role("heading", name="Service settings").wait_for()
    page.get_by_label("Site name", exact=True).fill(SITE)
    _choose(page, "Kind of site", "Prison")
    page.get_by_role("button", name="Add site").click()
    page.get_by_text(f"Added the site {SITE}.").wait_for()
    with db.reading(live_app.engine) as session:
        site = session.exec(select(Site).where(Site.name == SITE)).one()
    assert site.team_id == live_app.staff.team.id and site.kind == "prison" and site.active
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_app, "practitioner")
    page.get_by_role("link", name="Activities").click()
    page.get_by_role("heading", name="Activities", exact=True).wait_for()
    page.get_by_role("tab", name="Prison release liaison").click()
    search = page.get_by_label("Find the person (name, date of birth or NHS number)").locator("visible=true")
    search.fill("obrien")
    search.press("Enter")
    _choose(page, "Person", "Siôn O'Brien · born 11/05/1990")
    _choose(page, "Prison", SITE)  # the administrator's new site is offered to the practitioner
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
