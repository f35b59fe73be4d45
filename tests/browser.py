"""Real-browser fixtures: the app served by Streamlit on a free port, driven in Debian's Chromium.

Import the fixtures in a test module with `from tests.browser import live_app, page  # noqa: F401`.
Playwright drives /usr/bin/chromium; no test tool ever downloads a browser.

- `live_app`: one `streamlit run app.py` per test module, on a fresh SQLite database with the staff
  of tests/conftest.py. `serve(…, database_url=…)` serves another database (PostgreSQL), and with
  `staff=` a second process on a database already served (tests/test_scale_out.py). A module that
  needs the server's clock moved on defines its own `live_app` fixture as
  `yield from serve(tmp_path_factory, shifted_clock=True)` and calls
  `live_app.move_clock(timedelta(...))` (tests/shifted_clock_server.py; never production code).
- `page`: a fresh browser context (its own sessionStorage) per test; `new_tab(page)` opens another
  tab of the same person's browser, `new_browser_tab(browser)` a tab of another person's.
- Waiting: `idle(page)` once the script has stopped; `rerun(page, action)` when an action must have
  made the script run again (a script that has not started yet looks idle too); `wait_for_runs`
  counts whole runs, or the idle guard's fragment runs, from the server's own messages.
- The table grid: `choose_row(page, row)` clicks a row's box in an `st.dataframe` (a canvas) at
  computed coordinates; `grid_rows(page)` reads the rows drawn, from the grid's accessible table.
- `type_and_leave` types into a field and leaves it; `slow_saves` holds the database a moment so a
  double click's second click arrives while the first save waits; `log_request` makes a request
  through the services.
"""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlalchemy import Engine
from sqlmodel import SQLModel
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from services import db, schema
from tests.conftest import PASSWORD, ROOT, Staff, make_staff

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveApp:
    url: str
    engine: Engine
    staff: Staff
    password: str = PASSWORD
    clock_offset_file: Path | None = None  # a server started with shifted_clock=True reads its offset here

    def move_clock(self, by: timedelta) -> None:
        """Move the server's clock (services.clock.now) on by `by` from the real time; it reads this at every call."""
        if self.clock_offset_file is None:
            raise RuntimeError("this server was not started with shifted_clock=True")
        self.clock_offset_file.write_text(str(by.total_seconds()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, seconds: float = 60, log: Path | None = None) -> None:
    """Until Streamlit at `url` answers its health check; an error (with the end of `log`) if it exits or is slow."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = f": {log.read_text(errors='replace')[-2000:]}" if log else ""
            raise RuntimeError(f"streamlit exited with {server.returncode}{said}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy within {seconds:.0f} s")


def serve(tmp_path_factory, *, shifted_clock: bool = False, database_url: str | None = None,
          staff: Staff | None = None) -> Iterator[LiveApp]:
    """Serve the app until the generator is closed (the body of a `live_app` fixture).

    By default on a fresh SQLite database. `database_url` serves that database instead (an empty
    PostgreSQL schema, say, named by `?options=-csearch_path=…`): its tables are made and seeded
    here, unless `staff` is given, which says another app process already serves it with those
    staff (several processes on one database, as behind the proxy).

    `shifted_clock=True` starts it through tests/shifted_clock_server.py, whose `services.clock.now`
    adds the seconds written by `LiveApp.move_clock`: a time-out of minutes is passed in a moment.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    folder = tmp_path_factory.mktemp("live")
    database_url = database_url or f"sqlite:///{folder}/live.db"
    engine = db.create_database_engine(database_url)
    if staff is None:
        SQLModel.metadata.create_all(engine)
        with db.writing(engine) as session:
            schema.seed_code_lists(session)
        staff = make_staff(engine)
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "DEMO": "0"}
    offset_file = None
    launcher = ["-m", "streamlit"]
    if shifted_clock:
        offset_file = folder / "clock_offset_seconds"
        offset_file.write_text("0")
        launcher = ["-m", "tests.shifted_clock_server", str(offset_file)]
    server = subprocess.Popen(
        [sys.executable, *launcher, "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server)
        yield LiveApp(url=url, engine=engine, staff=staff, clock_offset_file=offset_file)
    finally:
        server.terminate()
        server.wait(timeout=20)
        engine.dispose()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> LiveApp:
    yield from serve(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(live_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


# Script runs a tab has seen finish, counted from the messages the server sends it (one ForwardMsg
# per websocket frame; each run ends with `script_finished`). Only whole runs that finished count:
# a run stopped early for a rerun, and the idle guard's fragment every 30 s, do not. (The app's
# `data-test-script-state` attribute is no use for this: a quick run can go from not running to
# running and back within one browser render, leaving no trace in the page.)
_RUNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_FRAGMENT_RUNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
WHOLE_RUN_DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


def finished_run(payload) -> int | None:
    """The script_finished status a websocket frame from the server carries; None for any other frame."""
    if not isinstance(payload, bytes):
        return None
    try:
        message = ForwardMsg.FromString(payload)
    except DecodeError:
        return None
    return message.script_finished if message.WhichOneof("type") == "script_finished" else None


def _count_runs(tab) -> None:
    _RUNS[tab] = _FRAGMENT_RUNS[tab] = 0

    def on_frame(payload) -> None:
        status = finished_run(payload)
        if status in WHOLE_RUN_DONE:
            _RUNS[tab] = _RUNS.get(tab, 0) + 1
        elif status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            _FRAGMENT_RUNS[tab] = _FRAGMENT_RUNS.get(tab, 0) + 1

    tab.on("websocket", lambda websocket: websocket.on("framereceived", on_frame))


def new_browser_tab(browser):
    """A tab of a browser of its own (its own cookies and sessionStorage); close its `.context` afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    _count_runs(tab)
    return tab


@pytest.fixture
def page(browser):
    tab = new_browser_tab(browser)
    yield tab
    tab.context.close()


def new_tab(page):
    """Another tab of the same browser (cookies shared; sessionStorage, as in Chromium, its own)."""
    tab = page.context.new_page()
    _count_runs(tab)
    return tab


def sign_in(page, live_app: LiveApp, username: str) -> None:
    """Sign in through the real form, as a person would, and wait for 'My work'."""
    page.goto(live_app.url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(live_app.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My work").wait_for()


# While a script reruns, Streamlit keeps the previous run's elements on screen, marked stale, until
# the run has drawn their replacements; a field that moved (the form above it changed) is briefly
# there twice. Only live elements are ever acted on.
LIVE_ELEMENT = '[data-testid="stElementContainer"]:not([data-stale="true"])'


IDLE = (
    "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " && !document.querySelector('[data-stale=\"true\"]')"
    " && ['notRunning', 'initial', null].includes(document.querySelector('[data-testid=\"stApp\"]')"
    "?.getAttribute('data-test-script-state') ?? null)"
)


def idle(page) -> None:
    """Wait until Streamlit has finished running the script: not running, no status widget, no stale elements.

    Straight after a click the script may not have started yet, and the page looks idle: when an
    action must cause a run, use `rerun(page, action)`, or wait for what the run shows.
    """
    page.wait_for_function(IDLE, timeout=20_000)


def reload_and_settle(tab) -> None:
    """Refresh, then wait until the tab has answered about its token and the page has settled: the first
    run only says "Checking your sign-in…" and can be cut short by the answer's rerun, so runs are not
    counted here."""
    tab.reload()
    tab.get_by_role("button", name="Sign in").or_(tab.get_by_role("button", name="Sign out")).first.wait_for()
    idle(tab)
    expect(tab.get_by_text("Checking your sign-in…")).to_have_count(0)


def runs(page) -> int:
    """How many whole script runs this tab has seen finish (refreshes included): see `_count_runs`."""
    return _RUNS.get(page, 0)


def fragment_runs(page) -> int:
    """How many fragment runs (the idle guard's check every 30 s) this tab has seen finish."""
    return _FRAGMENT_RUNS.get(page, 0)


def wait_for_runs(page, total: int, timeout: float = 20, *, counter: Callable = runs) -> None:
    """Wait until the tab has seen `total` whole script runs (or `counter=fragment_runs`) finish, then for idle."""
    deadline = time.monotonic() + timeout
    while counter(page) < total:
        if time.monotonic() > deadline:
            raise AssertionError(f"the script ran {counter(page)} times, not {total}, within {timeout:.0f} s")
        page.wait_for_timeout(50)  # lets Playwright deliver the websocket frames meanwhile
    idle(page)


def rerun(page, action: Callable[[], object], *, count: int = 1):
    """Do `action` (a click, a key press), then wait until `count` more script runs have finished and all is idle."""
    page.evaluate("0")  # a round trip: frames the browser had already received are counted before `before`
    before = runs(page)
    result = action()
    wait_for_runs(page, before + count)
    return result


def field(page, label: str):
    """The one live, visible input whose label is exactly `label` (hidden tabs and stale copies left out)."""
    return page.locator(LIVE_ELEMENT).get_by_label(label, exact=True).locator("visible=true")


def choose(page, label: str, option: str) -> None:
    """Open a Streamlit select box (or multiselect) by its visible label and pick an option by its text.

    A rerun finishing under the click (a choice just made, a field just left) can close the list as
    it opens, so this waits for the script to be idle and opens the list again, up to three times.
    """
    for _attempt in range(3):
        idle(page)
        try:
            field(page, label).click(timeout=5_000)
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def type_and_leave(page, label: str, text: str) -> None:
    """Type into a field outside a form and leave it (Tab), as a person would: the value reaches the server."""
    typed_into = field(page, label)
    typed_into.fill(text)
    rerun(page, lambda: typed_into.press("Tab"))


@contextmanager
def slow_saves(live_app: LiveApp, seconds: float = 1.0):
    """Hold the live app's SQLite database for a moment, so that a save started meanwhile waits for it.

    That is when people click again: a second click of a double click then reaches the server
    while the first click's save is still under way.
    """
    holder = sqlite3.connect(live_app.engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
        time.sleep(seconds)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- The table grid ---------------------------------------------------------------------------
# st.dataframe is Glide Data Grid: a canvas, with an accessible table of the rows drawn inside it
# (no geometry, but each row's text and whether it is selected). A row is chosen by a click on its
# box in the row-marker column at the left; a click on any other cell only outlines that cell.
# Rows are 35 px tall under a 35 px header (Streamlit's defaults for st.dataframe).

GRID_ROW_HEIGHT = 35
GRID_HEADER_HEIGHT = 35
GRID_MARKER_X = 16  # the middle of the row-marker column (its box)


def chart_under_heading(page, heading: str):
    """The first Vega chart in the bordered panel headed `heading`."""
    title = page.get_by_role("heading", name=heading, exact=True)
    return page.locator('[data-testid="stVerticalBlock"]', has=title).last.locator(
        '[data-testid="stVegaLiteChart"]').first


def drawn_rect_marks(chart) -> list[dict]:
    """A chart's bars or cells as drawn: each one's aria-label read into fields ("Title: value; …", what a
    screen reader hears), its box and its computed fill."""
    chart.scroll_into_view_if_needed()
    marks = chart.locator("g.mark-rect.role-mark > path")
    marks.first.wait_for(state="attached")
    drawn = marks.evaluate_all("""paths => paths.map(path => {
        const box = path.getBoundingClientRect();
        return {label: path.getAttribute('aria-label') || '', x: box.x, y: box.y, width: box.width,
                height: box.height, fill: getComputedStyle(path).fill};
    })""")
    for mark in drawn:
        mark["fields"] = dict(part.split(": ", 1) for part in mark["label"].split("; ") if ": " in part)
    return drawn


def grid(page, table: int = 0):
    """The `table`-th live st.dataframe on the page (0 is the first)."""
    return page.locator(f'{LIVE_ELEMENT} [data-testid="stDataFrame"]').nth(table)


# The grid writes its accessible table a moment after drawing the canvas: ready once it holds
# every row it counts (or, in a long table, the rows drawn so far).
_GRID_READY = """element => {
    const table = element.querySelector('table[role="grid"]');
    if (!table) return false;
    const drawn = table.querySelectorAll('tbody tr').length;
    return drawn === Number(table.getAttribute('aria-rowcount')) - 1 || drawn >= 10;
}"""


def grid_rows(page, table: int = 0) -> list[list[str]]:
    """The text of each row drawn in the grid, top to bottom (row 1 first), one string per column."""
    idle(page)
    target = grid(page, table)
    target.element_handle().wait_for_element_state("visible")
    page.wait_for_function(f"element => ({_GRID_READY})(element)", arg=target.element_handle(), timeout=20_000)
    return target.evaluate(
        """element => [...element.querySelectorAll('table[role="grid"] tbody tr')].map(
            row => [...row.querySelectorAll('td')].map(cell => cell.textContent.trim()))""")


def grid_row_number(page, text: str, table: int = 0) -> int:
    """The number (1 is the top row) of the one row drawn with a cell reading exactly `text`."""
    found = [number for number, cells in enumerate(grid_rows(page, table), start=1) if text in cells]
    assert len(found) == 1, f"{text!r} is in rows {found} of the table"
    return found[0]


def selected_grid_rows(page, table: int = 0) -> list[list[str]]:
    """The rows the grid shows as selected (their box ticked)."""
    return grid(page, table).evaluate(
        """element => [...element.querySelectorAll('table[role="grid"] tbody tr[aria-selected="true"]')].map(
            row => [...row.querySelectorAll('td')].map(cell => cell.textContent.trim()))""")


def click_grid(page, row: int, x: float, table: int = 0) -> list[str]:
    """Click row `row` (1 is the top row) of the `table`-th grid `x` pixels from its left edge; return its cells.

    The click lands at computed coordinates inside the grid's scrolling layer (the canvas under it
    takes no pointer events). Rows below the visible part of the grid are not supported.
    """
    idle(page)
    target = grid(page, table)
    target.scroll_into_view_if_needed()
    drawn = grid_rows(page, table)
    assert 1 <= row <= len(drawn), f"row {row} is not drawn; the table shows {len(drawn)} rows"
    scroller = target.locator(".dvn-scroller")
    y = GRID_HEADER_HEIGHT + (row - 0.5) * GRID_ROW_HEIGHT
    assert y < scroller.bounding_box()["height"], f"row {row} is below the visible part of the table"
    scroller.click(position={"x": x, "y": y})
    return drawn[row - 1]


def choose_row(page, row: int, table: int = 0) -> list[str]:
    """Choose row `row` (1 is the top row) of the `table`-th grid by a click on its box; return its cells.

    Waits for the script run the selection causes.
    """
    return rerun(page, lambda: click_grid(page, row, GRID_MARKER_X, table))


# --- Records made through the services, as the app would make them -----------------------------


def log_request(live_app: LiveApp, user, *, minutes_ago: int = 10, person_id: int | None = None, **changes):
    """A request logged by `user` through services.requests (an urgent screening at the first site by default)."""
    from services import clock, requests

    received = clock.to_london(clock.now() - timedelta(minutes=minutes_ago))
    values = dict(received_on=received.date(), received_time=received.time().replace(second=0, microsecond=0),
                  source_of_referral="police", requester_name="PC Dawn Jones", requester_phone="01702 123456",
                  site_id=live_app.staff.sites[0].id, request_type="screening", urgency="urgent",
                  reason="Detained person appears distressed.", person_id=person_id,
                  about_nobody=person_id is None)
    values.update(changes)
    with db.writing(live_app.engine) as session:
        return requests.log_request(session, user, requests.NewRequest(**values))
