"""The load benchmark's browser driver: each simulated person is a context of ONE headless Debian
chromium (Playwright), doing the daily mix with clicks and key presses.

**What is timed** (an interaction): from just before Playwright's click (or key press) to the
moment the tab has seen the script run that the action caused finish (its `script_finished`
message on the websocket) and the page is idle as tests/browser.py's `IDLE` defines it (no status
widget, no stale element, script not running), with what the step must show on screen (a heading,
the chosen request, the save's notice). The browser's drawing of the new elements is in it; the
drawing of charts after the run (Vega) and the think time are not. Timed by the driver's clock, so
Playwright's own round trips (a few ms on an idle machine) are in it too.

On a small machine the browsers take most of the cores the servers need (2 cores: the servers got
a fifth of one): bench/load_protocol.py is the light driver, and the default.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from playwright.async_api import Error as PlaywrightError

from bench.load import (
    INTERACTION_TIMEOUT,
    KINDS,
    NOTE_LABEL,
    SAVE_BUTTON,
    SAVED_NOTICE,
    Account,
    InteractionFailed,
    Person,
    Server,
)
from tests.browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    GRID_HEADER_HEIGHT,
    GRID_MARKER_X,
    GRID_ROW_HEIGHT,
    IDLE,
    LIVE_ELEMENT,
    WHOLE_RUN_DONE,
    finished_run,
)

ERROR_BOXES = """() => [...document.querySelectorAll(
    '[data-testid="stException"], [data-testid="stAlertContentError"]')]
    .filter(box => !box.closest('[data-stale="true"]'))
    .map(box => box.textContent.trim().slice(0, 160))"""


class BrowserPerson(Person):
    """One browser context, signed in as one account, on one server."""

    DRIVER_ERRORS = (PlaywrightError,)  # between timed steps: typing, finding the table

    def __init__(self, number: int, account: Account | None, username: str, password: str, server: Server,
                 think: tuple[float, float], context, page):
        super().__init__(number, account, username, password, server, think)
        self.context, self.page = context, page
        self.runs = 0
        self.run_seen = asyncio.Event()
        page.on("websocket", lambda websocket: websocket.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        # Whole script runs this tab has seen finish (as tests/browser.py counts them): a run stopped
        # early for a rerun and the idle guard's fragment runs are left out.
        if finished_run(payload) in WHOLE_RUN_DONE:
            self.runs += 1
            self.run_seen.set()

    async def close(self) -> None:
        await self.context.close()

    async def error_boxes(self) -> list[str]:
        return await self.page.evaluate(ERROR_BOXES)

    async def interact(self, kind: str, action: Callable, shows) -> float:
        """Do `action`; wait for the run it causes to finish, the page idle and `shows` visible; return the seconds.

        Raises InteractionFailed (not timed) on a time-out, an error box or an exception.
        """
        try:
            await self.page.evaluate("0")  # a round trip: frames already received are counted before `before`
            before = self.runs
            started = time.perf_counter()
            deadline = started + INTERACTION_TIMEOUT
            await action()
            while self.runs <= before:
                self.run_seen.clear()
                if self.runs > before:
                    break
                await asyncio.wait_for(self.run_seen.wait(), max(deadline - time.perf_counter(), 0.001))
            while True:
                await self.page.wait_for_function(IDLE, timeout=max(deadline - time.perf_counter(), 0.001) * 1000)
                if await shows.first.is_visible():
                    break
                if boxes := await self.error_boxes():
                    raise InteractionFailed("error_box", boxes[0])
                if time.perf_counter() > deadline:
                    raise TimeoutError
                await asyncio.sleep(0.05)  # a second run is on its way (a page switch, a rerun after a save)
            seconds = time.perf_counter() - started
            if boxes := await self.error_boxes():
                raise InteractionFailed("error_box", boxes[0])
        except TimeoutError as timed_out:
            raise InteractionFailed("timeout", f"{KINDS[kind]}: not done within {INTERACTION_TIMEOUT:.0f} s") \
                from timed_out
        except PlaywrightError as error:
            category = "timeout" if type(error).__name__ == "TimeoutError" else "exception"
            raise InteractionFailed(category, f"{KINDS[kind]}: {str(error).splitlines()[0][:160]}") from error
        self.tally.timings.append((kind, seconds))
        return seconds

    def heading(self, name: str):
        return self.page.get_by_role("heading", name=name, exact=True, level=1)

    async def _sign_in_once(self) -> None:
        try:
            await self.page.goto(self.server.url, timeout=INTERACTION_TIMEOUT * 1000)
            await self.page.get_by_label("Username").fill(self.username, timeout=INTERACTION_TIMEOUT * 1000)
            await self.page.get_by_label("Password", exact=True).fill(self.password)
        except PlaywrightError as error:
            shown = " ".join((await self.page.inner_text("body")).split())[:100] if not self.page.is_closed() else ""
            raise InteractionFailed("timeout" if type(error).__name__ == "TimeoutError" else "exception",
                                    f"sign-in form not shown (the page shows {shown!r}): "
                                    f"{str(error).splitlines()[0][:100]}") from error
        sign_in = self.page.get_by_role("button", name="Sign in", exact=True)
        await self.interact("sign_in", sign_in.click, self.heading("My work"))

    async def go_to(self, kind: str, link: str, heading: str) -> None:
        await self.interact(kind, self.page.get_by_role("link", name=link, exact=True).click, self.heading(heading))

    async def choose_own_request(self) -> None:
        chosen = self.page.get_by_text(f"Chosen: {self.account.reference}", exact=False)
        if await chosen.first.is_visible():
            return  # the queue remembers the choice for this session, as a person sees it
        grid = self.page.locator(f'{LIVE_ELEMENT} [data-testid="stDataFrame"]').first
        await grid.locator('table[role="grid"] tbody tr').first.wait_for(state="attached")
        box = {"x": GRID_MARKER_X, "y": GRID_HEADER_HEIGHT + GRID_ROW_HEIGHT / 2}  # row 1: their own request
        await self.interact("choose_request", lambda: grid.locator(".dvn-scroller").click(position=box), chosen)

    async def open_request(self) -> None:
        reference = self.account.reference
        await self.interact("open_request", self.page.get_by_role("link", name=f"Open {reference}").click,
                            self.heading(f"Request {reference}"))

    async def open_screening(self) -> None:
        button = self.page.get_by_role(
            "button", name=re.compile(rf"for {re.escape(self.account.reference)} \(opens their draft"))
        await self.interact("open_screening", button.click, self.heading("Screening"))

    async def type_a_note(self) -> None:
        note = self.page.locator(LIVE_ELEMENT).get_by_role("textbox", name=NOTE_LABEL, exact=True)
        await note.fill(self.note())
        await self.interact("leave_field", lambda: note.press("Tab"), note)

    async def press_save(self) -> None:
        await self.interact("save_section", self.page.get_by_role("button", name=SAVE_BUTTON, exact=True).click,
                            self.page.get_by_text(SAVED_NOTICE, exact=True))

    async def recover(self) -> None:
        """After a failed step: back to the home page, signing in again if the session was lost."""
        await self.page.goto(self.server.url, timeout=INTERACTION_TIMEOUT * 1000)
        signed_in, sign_in_form = self.heading("My work"), self.page.get_by_label("Username")
        await signed_in.or_(sign_in_form).first.wait_for(timeout=INTERACTION_TIMEOUT * 1000)
        if await sign_in_form.is_visible():
            await self.sign_in()


@asynccontextmanager
async def people(password: str, think: tuple[float, float]) -> AsyncIterator[Callable]:
    """Starts the one chromium for a run and makes people as contexts of it; closes it at the end."""
    from playwright.async_api import async_playwright

    # Loopback only: every host name but the servers' own address fails to resolve.
    flags = [*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)

        async def new_person(number: int, account: Account | None, username: str, server: Server) -> BrowserPerson:
            # Reduced motion: Streamlit's running indicator animates in every tab, and on 2 cores shared with
            # the servers each animation frame the browsers draw is time taken from what is measured.
            context = await browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
            context.set_default_timeout(INTERACTION_TIMEOUT * 1000)
            page = await context.new_page()
            return BrowserPerson(number, account, username, password, server, think, context, page)

        try:
            yield new_person
        finally:
            await browser.close()
