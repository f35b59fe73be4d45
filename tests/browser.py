"""Real-browser fixtures: the app served by Streamlit on a free port, driven in Debian's Chromium.

Import the fixtures in a test module with `from tests.browser import live_app, page  # noqa: F401`.
Playwright drives /usr/bin/chromium; no test tool ever downloads a browser.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine
from sqlmodel import SQLModel

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not become healthy within a minute")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> LiveApp:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    folder = tmp_path_factory.mktemp("live")
    engine = db.create_database_engine(f"sqlite:///{folder}/live.db")
    SQLModel.metadata.create_all(engine)
    with db.writing(engine) as session:
        schema.seed_code_lists(session)
    staff = make_staff(engine)
    port = _free_port()
    environment = {**os.environ, "DATABASE_URL": str(engine.url), "DEMO": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, server)
        yield LiveApp(url=url, engine=engine, staff=staff)
    finally:
        server.terminate()
        server.wait(timeout=20)
        engine.dispose()


@pytest.fixture(scope="module")
def browser(live_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()


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


def idle(page) -> None:
    """Wait until Streamlit has finished running the script: no status widget, no stale elements."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')",
        timeout=20_000,
    )


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
