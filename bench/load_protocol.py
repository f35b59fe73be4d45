"""The load benchmark's light client: simulated staff speaking Streamlit's own websocket protocol.

A person here is one websocket to `/_stcore/stream` (subprotocol "streamlit"), as a browser tab
opens, carrying the protobuf messages of the installed `streamlit.proto`: BackMsg from the client,
ForwardMsg from the server. Nothing is drawn, so the load generator costs little next to the
servers it measures (one Chromium filled both cores and left the servers a fifth of one).

What a browser tab keeps, `Tab` keeps too, as Streamlit's frontend does:
- the screen: the elements of the last whole script run, by their delta path (a new element or
  block at a path replaces what was there, and everything inside it);
- the page (`page_script_hash`, from each run's `new_session`) and the address's query string
  (from `page_info_changed`, or from the page link followed);
- the widget values the person has set, sent with every rerun; a widget no longer on the screen
  after a whole run is forgotten (the frontend's widget manager drops inactive widgets too). A
  button press is a trigger, sent once.

A click is a `rerun_script` BackMsg: ClientState(query_string, widget_states, page_script_hash). A
page link sends the link's own page hash and query string. Widgets are found by their label in
the received deltas (the label as shown: markdown's backslash escapes removed) and named by the id
the server gave them (`new_element.<type>.id`).

What it does not do: run any JavaScript. So it never answers the session keeper's question about
a sign-in kept in the tab (ui/session_keeper.py): the sign-in page's first run waits its
TAB_WAIT_SECONDS for the answer, then shows the form (sign-in is not in a level's window). Nor
does it run the idle guard's fragment every 30 s (the frontend's timer starts those), so a person
costs the server a little less than a tab left open.
"""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import WebSocketException

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

STREAM = "/_stcore/stream"
SUBPROTOCOL = "streamlit"
WHOLE_RUN = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)
# The text an element shows, by its kind (headings, markdown and captions, st.text, alert boxes).
TEXT_KINDS = ("heading", "markdown", "text", "alert")

Path = tuple[int, ...]
Shows = Callable[["Tab"], bool]


def shown(label: str) -> str:
    """A label or text as the browser shows it: markdown's backslash escapes (ui.format.plain) removed."""
    return re.sub(r"\\(.)", r"\1", label)


def contents(element: Element):
    """The element's own message (its Button, TextArea, Heading…)."""
    return getattr(element, element.WhichOneof("type"))


class Tab:
    """What a browser tab holds between runs, without drawing it: see the module's docstring."""

    def __init__(self) -> None:
        self.page_script_hash = ""  # "" asks for the main page
        self.query_string = ""
        self.widgets: dict[str, WidgetState] = {}
        self.drawing: dict[Path, Element] = {}  # the run under way
        self.screen: dict[Path, Element] = {}  # the last whole run's
        self.runs_started = 0

    # --- From the server ---

    def receive(self, message: ForwardMsg) -> bool:
        """Take in one message; True when it ends a whole run (its elements are then `screen`).

        A run stopped early for a rerun (st.rerun, st.switch_page) is not whole: the one it started
        ends the chain.
        """
        kind = message.WhichOneof("type")
        if kind == "new_session":  # sent as every run starts
            self.runs_started += 1
            self.page_script_hash = message.new_session.page_script_hash
            self.drawing = {}
        elif kind == "delta":
            self._draw(tuple(message.metadata.delta_path), message.delta)
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "script_finished" and message.script_finished in WHOLE_RUN:
            self.screen = self.drawing
            shown_ids = {getattr(contents(element), "id", None) for element in self.screen.values()}
            self.widgets = {key: state for key, state in self.widgets.items() if key in shown_ids}
            return True
        return False

    def _draw(self, path: Path, delta) -> None:
        # What was at this path, and everything inside it, gives way (st.empty, a container redrawn).
        for drawn in [drawn for drawn in self.drawing if drawn[:len(path)] == path]:
            del self.drawing[drawn]
        if delta.WhichOneof("type") == "new_element":
            self.drawing[path] = delta.new_element

    # --- What the screen shows ---

    def elements(self, kind: str | None = None) -> Iterator[Element]:
        """The screen's elements in page order (main area, then sidebar), of one kind if given."""
        for path in sorted(self.screen):
            element = self.screen[path]
            if kind is None or element.WhichOneof("type") == kind:
                yield element

    def find(self, kind: str, label: str | re.Pattern | None = None):
        """The first `kind` element (its own message) whose label as shown is `label`, or matches it
        when a pattern; the first of its kind when no label is given. LookupError when there is none."""
        for element in self.elements(kind):
            found = contents(element)
            text = shown(found.label) if label is not None else ""
            if label is None or (label.search(text) if isinstance(label, re.Pattern) else text == label):
                return found
        raise LookupError(f"no {kind} {label.pattern if isinstance(label, re.Pattern) else label!r} "
                          f"on the page (headings: {self.headings()})")

    def headings(self) -> list[str]:
        return [shown(element.heading.body) for element in self.elements("heading")]

    def texts(self) -> Iterator[str]:
        for element in self.elements():
            if element.WhichOneof("type") in TEXT_KINDS:
                yield shown(contents(element).body)

    def errors(self) -> list[str]:
        """What exceptions and error boxes on the screen say (as the browser driver's ERROR_BOXES)."""
        found = []
        for element in self.elements():
            kind = element.WhichOneof("type")
            if kind == "exception":
                found.append(f"{element.exception.type}: {element.exception.message}"[:160])
            elif kind == "alert" and element.alert.format == Alert.ERROR:
                found.append(shown(element.alert.body)[:160])
        return found

    # --- To the server ---

    def set_string(self, widget_id: str, value: str) -> None:
        """A text typed, or a table row chosen: kept and sent with every rerun from now on."""
        self.widgets[widget_id] = WidgetState(id=widget_id, string_value=value)

    def rerun(self, *, pressed: str | None = None, link=None) -> BackMsg:
        """The rerun a click sends: every value kept, the pressed button's trigger (this once), and
        the page and address; following a page link, the link's, which become the tab's address."""
        if link is not None:
            self.query_string = link.query_string
        message = BackMsg()
        state = message.rerun_script
        state.page_script_hash = link.page_script_hash if link is not None else self.page_script_hash
        state.query_string = self.query_string
        state.widget_states.widgets.extend(self.widgets.values())
        if pressed is not None:
            state.widget_states.widgets.add(id=pressed, trigger_value=True)
        return message


# --- What a step waits to see (as the browser driver's locators) ------------------------------------


def heading(name: str) -> Shows:
    """The page's title (st.title: an h1) reads `name`."""
    return lambda tab: any(element.heading.tag == "h1" and shown(element.heading.body) == name
                           for element in tab.elements("heading"))


def text(words: str, *, exact: bool) -> Shows:
    """Some text on the screen is `words` (or, not exact, holds them)."""
    return lambda tab: any(words == found if exact else words in found for found in tab.texts())


def widget(kind: str, label: str) -> Shows:
    return lambda tab: any(shown(contents(element).label) == label for element in tab.elements(kind))


def row_chosen(row: int) -> str:
    """A dataframe's selection state as the frontend sends it (st.dataframe, selection_mode="single-row")."""
    return json.dumps({"selection": {"rows": [row], "columns": [], "cells": []}})


def stream_url(server_url: str) -> str:
    return server_url.replace("http://", "ws://", 1) + STREAM


# --- One simulated person ---------------------------------------------------------------------------


class ProtocolPerson(Person):
    """One websocket, signed in as one account, on one server."""

    DRIVER_ERRORS = (WebSocketException, OSError, LookupError)  # a dropped connection, a widget not there

    def __init__(self, number: int, account: Account | None, username: str, password: str, server: Server,
                 think: tuple[float, float]):
        super().__init__(number, account, username, password, server, think)
        self.tab = Tab()
        self.connection = None

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def _open(self) -> None:
        """A new connection is a new session, as a refreshed tab is (same Origin as the page's)."""
        await self.close()
        self.tab = Tab()
        self.connection = await websockets.connect(
            stream_url(self.server.url), subprotocols=[SUBPROTOCOL], origin=self.server.url, max_size=None,
            open_timeout=INTERACTION_TIMEOUT)

    async def _send(self, message: BackMsg) -> int:
        """Send `message`; return how many runs had started before it (only a later run answers it)."""
        before = self.tab.runs_started
        await self.connection.send(message.SerializeToString())
        return before

    async def _until_whole_run(self, after: int, deadline: float) -> None:
        """Read until a whole run begun after the first `after` has finished: the run a click caused,
        or the last of a chain it began with st.rerun or st.switch_page."""
        async with asyncio.timeout(max(deadline - time.perf_counter(), 0.001)):
            while True:
                data = await self.connection.recv()
                if self.tab.receive(ForwardMsg.FromString(data)) and self.tab.runs_started > after:
                    return

    async def interact(self, kind: str, shows: Shows, *, pressed: str | None = None, link=None) -> float:
        """Send the click; wait for its run to finish with `shows` on the screen; return the seconds.

        Raises InteractionFailed (not timed) on a time-out, an error box or a dropped connection.
        """
        message = self.tab.rerun(pressed=pressed, link=link)
        started = time.perf_counter()
        deadline = started + INTERACTION_TIMEOUT
        try:
            await self._until_whole_run(await self._send(message), deadline)
            while not shows(self.tab):
                if boxes := self.tab.errors():
                    raise InteractionFailed("error_box", boxes[0])
                # Not shown yet: wait for another run until the deadline, as the browser driver does.
                await self._until_whole_run(self.tab.runs_started, deadline)
            seconds = time.perf_counter() - started
            if boxes := self.tab.errors():
                raise InteractionFailed("error_box", boxes[0])
        except TimeoutError as timed_out:
            raise InteractionFailed("timeout", f"{KINDS[kind]}: not done within {INTERACTION_TIMEOUT:.0f} s") \
                from timed_out
        except self.DRIVER_ERRORS as error:
            raise InteractionFailed("exception", f"{KINDS[kind]}: {str(error)[:160]}") from error
        self.tally.timings.append((kind, seconds))
        return seconds

    async def _sign_in_once(self) -> None:
        try:
            await self._open()
            # The first run waits for the tab's answer about a kept sign-in, which never comes here.
            first_run = await self._send(self.tab.rerun())
            await self._until_whole_run(first_run, time.perf_counter() + 2 * INTERACTION_TIMEOUT)
            self.tab.set_string(self.tab.find("text_input", "Username").id, self.username)
            self.tab.set_string(self.tab.find("text_input", "Password").id, self.password)
            sign_in = self.tab.find("button", "Sign in")
        except TimeoutError as timed_out:
            raise InteractionFailed("timeout", "sign-in form not shown within "
                                               f"{2 * INTERACTION_TIMEOUT:.0f} s") from timed_out
        except self.DRIVER_ERRORS as error:
            raise InteractionFailed("exception", f"sign-in form not shown: {str(error)[:160]}") from error
        await self.interact("sign_in", heading("My work"), pressed=sign_in.id)

    async def go_to(self, kind: str, link: str, title: str) -> None:
        await self.interact(kind, heading(title), link=self.tab.find("page_link", link))

    async def choose_own_request(self) -> None:
        chosen = text(f"Chosen: {self.account.reference}", exact=False)
        if chosen(self.tab):
            return  # the queue remembers the choice for this session, as a person sees it
        self.tab.set_string(self.tab.find("dataframe").id, row_chosen(0))  # row 0: their own request
        await self.interact("choose_request", chosen)

    async def open_request(self) -> None:
        reference = self.account.reference
        await self.interact("open_request", heading(f"Request {reference}"),
                            link=self.tab.find("page_link", f"Open {reference}"))

    async def open_screening(self) -> None:
        button = self.tab.find("button", re.compile(rf"for {re.escape(self.account.reference)} \(opens their draft"))
        await self.interact("open_screening", heading("Screening"), pressed=button.id)

    async def type_a_note(self) -> None:
        self.tab.set_string(self.tab.find("text_area", NOTE_LABEL).id, self.note())  # typed, then the field left
        await self.interact("leave_field", widget("text_area", NOTE_LABEL))

    async def press_save(self) -> None:
        await self.interact("save_section", text(SAVED_NOTICE, exact=True),
                            pressed=self.tab.find("button", SAVE_BUTTON).id)

    async def recover(self) -> None:
        """After a failed step: a new session, signed in afresh (its home page is My work)."""
        await self.sign_in()


@asynccontextmanager
async def people(password: str, think: tuple[float, float]) -> AsyncIterator[Callable]:
    """Makes people for a run: nothing to start, each opens its own connection when signing in."""

    async def new_person(number: int, account: Account | None, username: str, server: Server) -> ProtocolPerson:
        return ProtocolPerson(number, account, username, password, server, think)

    yield new_person
