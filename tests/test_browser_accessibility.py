"""In real Chromium: axe-core checks every page of the app, as the role that uses it.

Every page in pages/ and app.py's "My work" is opened at its address (with a record's id where the
page shows one record), signed in on that page as a person following a shared link would, and
checked with axe-core (bundled by axe-playwright-python; nothing is fetched at run time). A page
passes when axe finds no serious or critical violation in the app's own content. Moderate and
minor findings are printed (run with -s to see them) and, on the pages of this module's owner,
the heading order is held too.

The records the pages show are made through the services first: a request about a person, a
screening in draft, a completed screening with a scored instrument (so the person's record draws
its chart of scores over time).

Streamlit's own markup that the app cannot change is left out rule by rule, each with its reason
in FRAMEWORK_EXCLUSIONS; nothing is left out for a whole page.
"""

import re
import time
from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe

from services import db, requests
from tests.browser import browser, idle, live_app  # noqa: F401
from tests.conftest import ROOT
from tests.test_requests import new_request
from tests.test_screening import complete, start, valid_screening

pytestmark = pytest.mark.browser

BLOCKING = {"serious", "critical"}
# (rule id, CSS selector fragment of the node axe reports, why the app cannot change it). Empty
# while every finding has a cause in the app's own content; add an entry only for markup that
# Streamlit draws the same way whatever a page asks of it.
FRAMEWORK_EXCLUSIONS: tuple[tuple[str, str, str], ...] = ()

_AXE = Axe()


@dataclass(frozen=True)
class Visit:
    name: str
    role: str | None  # None: not signed in
    path: str  # after the app's address; "" is app.py
    heading: str | re.Pattern  # the page's h1, to be sure the page itself (not a refusal) was checked
    tab: str | None = None  # a tab to open before checking


@pytest.fixture(scope="module")
def records(live_app):  # noqa: F811
    """A request, a draft and a completed screening, made through the services."""
    engine, staff = live_app.engine, live_app.staff
    with db.writing(engine) as session:
        request = requests.log_request(session, staff.practitioner, new_request(staff))
    draft = start(engine, staff)
    completed = valid_screening(engine, staff)
    complete(engine, staff, completed)
    with db.reading(engine) as session:
        from models import Screening

        person_id = session.get(Screening, completed).person_id
    return {"request": request.id, "draft": draft.id, "screening": completed, "person": person_id}


def visits(records: dict[str, int]) -> list[Visit]:
    return [
        Visit("sign-in page", None, "", "Liaison and Diversion hub"),
        Visit("my work (practitioner)", "practitioner", "", "My work"),
        Visit("my work (team lead)", "lead", "", "My work"),
        Visit("my work (administrator)", "admin", "", "My work"),
        Visit("triage queue", "lead", "Triage_queue", "Triage queue"),
        Visit("log a request", "practitioner", "Log_request", "Log a request"),
        Visit("a request", "practitioner", f"Request?id={records['request']}", re.compile(r"^Request R")),
        Visit("people", "practitioner", "People", "People"),
        Visit("a person's record", "practitioner", f"People?id={records['person']}", "People"),
        Visit("screening", "practitioner", "Screening", "Screening"),
        Visit("a screening in draft", "practitioner", f"Screening?id={records['draft']}", "Screening"),
        Visit("a screening summary", "practitioner", f"Screening_summary?id={records['screening']}",
              "Liaison and Diversion screening summary"),
        Visit("caseload", "lead", "Caseload", "Caseload"),
        Visit("activities", "practitioner", "Activities", "Activities"),
        Visit("activities, prison release tab", "practitioner", "Activities", "Activities",
              tab="Prison release liaison"),
        Visit("export", "lead", "Export", "Export"),
        Visit("users", "admin", "Users", "Users"),
        Visit("service settings", "admin", "Service_settings", "Service settings"),
        Visit("service settings, code lists tab", "admin", "Service_settings", "Service settings", tab="Code lists"),
        Visit("service settings, settings tab", "admin", "Service_settings", "Service settings", tab="Settings"),
        Visit("service settings, teams tab", "admin", "Service_settings", "Service settings", tab="Teams"),
        Visit("audit log", "admin", "Audit_log", "Audit log"),
        Visit("retention review", "admin", "Retention", "Retention review"),
        Visit("my account", "practitioner", "My_account", "My account"),
    ]



# Pytest needs the ids before the records exist; the paths are filled in per test.
NO_RECORDS = dict.fromkeys(("request", "draft", "screening", "person"), 0)
VISIT_NAMES = [visit.name for visit in visits(NO_RECORDS)]


def test_every_page_file_is_visited():
    """A page added to pages/ is checked too: its address (the file name less its number) is visited."""
    addresses = {re.sub(r"^[0-9]+_", "", path.stem) for path in (ROOT / "pages").glob("*.py")}
    visited = {visit.path.split("?")[0] for visit in visits(NO_RECORDS)}
    assert addresses <= visited, f"not checked by axe: {sorted(addresses - visited)}"


def _open(context, live_app, visit: Visit):  # noqa: F811
    """Open the page at its address in a fresh tab and sign in there, as a shared link is followed."""
    page = context.new_page()
    page.goto(f"{live_app.url}/{visit.path}")
    if visit.role is not None:
        page.get_by_label("Username").fill(visit.role)
        page.get_by_label("Password", exact=True).fill(live_app.password)
        page.get_by_role("button", name="Sign in").click()
    else:
        page.get_by_role("button", name="Sign in").wait_for()
    exact = isinstance(visit.heading, str)
    page.get_by_role("heading", name=visit.heading, exact=exact, level=1).wait_for()
    if visit.tab:
        page.get_by_role("tab", name=visit.tab, exact=True).click()
    idle(page)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    for index in range(charts.count()):  # drawn after the script has finished
        charts.nth(index).locator("svg, canvas").first.wait_for()
    time.sleep(0.5)  # let late layout (toasts, fonts) settle before colours are measured
    return page


def _excluded(rule: str, target: str) -> bool:
    return any(rule == excluded and fragment in target for excluded, fragment, _why in FRAMEWORK_EXCLUSIONS)


def _findings(page) -> list[tuple[str, str, str, str]]:
    """(rule, impact, node, what axe says) for every node of every violation, framework ones left out."""
    found = []
    for violation in _AXE.run(page).response["violations"]:
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            if _excluded(violation["id"], target):
                continue
            says = "; ".join(check["message"] for kind in ("any", "all", "none") for check in node.get(kind, []))
            found.append((violation["id"], violation["impact"] or "", node["html"][:160], says))
    return found


@pytest.mark.parametrize("name", VISIT_NAMES)
def test_no_serious_or_critical_accessibility_violation(browser, live_app, records, name):  # noqa: F811
    visit = next(visit for visit in visits(records) if visit.name == name)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    try:
        page = _open(context, live_app, visit)
        found = _findings(page)
    finally:
        context.close()
    for rule, impact, html, says in found:
        print(f"{name}: {rule} ({impact}) {html} — {says}")
    blocking = [finding for finding in found if finding[1] in BLOCKING]
    assert not blocking, f"{name}: " + "\n".join(f"{rule} ({impact}) {html} — {says}"
                                                for rule, impact, html, says in blocking)
    # Heading levels too (a moderate finding, held on every page): h1 the page, h2 its sections.
    assert not [finding for finding in found if finding[0] == "heading-order"], found
