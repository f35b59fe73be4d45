"""Many staff at once: `python manage.py bench --load`.

For each level of the matrix (staff × processes) this starts 1 or 2 `streamlit run app.py`
servers of their own on 127.0.0.1, all on ONE PostgreSQL schema made for the run (demo data from
the demo-data generator, plus one account per simulated person, each with a request allocated to
them and a draft screening of it, all made through services/), and drives N simulated staff. Staff
are split evenly between the servers (person i on server i mod P), which is what the proxy's sticky
hash does on average; the load does not go through nginx, so TLS costs nothing here.

Two drivers do the same daily mix (`--client`): `protocol` (the default, bench/load_protocol.py)
speaks Streamlit's own websocket protocol with the protobuf messages of the installed
`streamlit.proto` and draws nothing, so the servers, not the load generator, fill the cores;
`browser` (bench/load_browser.py) drives each person as a context of ONE headless Debian chromium,
drawing every page, which on a small machine takes most of the cores. Everything else here — the
levels, the tallies, saves, memory, connections and the report — is the same for both.

Each person signs in, waits for everyone else to have signed in, then repeats the daily mix, with a
think time (uniform 2–5 s, from a seeded generator) before every step:
open the triage queue (sidebar link) → choose their own request (its row in the table; once per
session, since the queue remembers the choice) → open the request (its link) → open its screening
(the request's Screen button) → type a note into "Custody or court details" and leave the field →
save the section → team leads (one person in five, person 0 first) also open Caseload.
A level runs for `seconds` from the moment everyone has signed in; a step begun before the end is
finished, none is begun after it.

**What is timed** (an interaction): from just before the click (or the field left) to the end of
the script run it caused (its `script_finished`, after any run the app chains to it with st.rerun or
st.switch_page) with what the step must show (a heading, the chosen request, the save's notice);
the browser driver also waits for the page to be drawn and idle. Each driver's module says exactly.
Sign-in is timed too but reported apart: it is not part of the level's window.

**Errors**: a step not done within `INTERACTION_TIMEOUT` (a time-out), an exception in the driver
(a failed click, a crashed tab, a dropped connection, a widget not there), or a Streamlit error box
(an exception or `st.error`) on screen after a step. A failed step is not timed; the person goes back
to the home page and goes on. A sign-in form that does not come is refreshed, as a person would, up
to SIGN_IN_ATTEMPTS times; each time is an error.
**Lost saves**: after the level, the saves each person saw confirmed (the notice shown and no error
box) against what the database holds: every section save raises the screening's version by one
(optimistic locking) and writes one `save_screening_section` audit row.

Memory is each server's resident set (VmRSS in /proc/<pid>/status): after a warm-up session has
visited every page of the mix and been dropped by the server (`disconnectedSessionTTL`, 2 s here), then with
the level's sessions still open; the difference over the sessions is the memory per session.
Memory per *idle* session comes from a fresh server with M signed-in sessions doing nothing (and what it
still holds once they are closed and dropped: memory kept by the process, not by a session). PostgreSQL
connections are sampled every half second from pg_stat_activity by their application_name (each
server's address sets its own; the sampler's connection has another name and is left out by it).

The load generator shares the machine's cores with the servers: each level reports the servers' CPU
time, the client's (this process and the browser it started, servers left out), the load average
and the machine's busy share.
"""

import asyncio
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from bench import load_report
from bench.benchmark import ROOT

CLIENTS = ("protocol", "browser")  # bench/load_protocol.py, bench/load_browser.py
DEFAULT_CLIENT = "protocol"
MAX_STAFF = 40
MAX_PROCESSES = 2
MAX_SECONDS = 600
DEFAULT_STAFF = (1, 5, 10, 20, 40)
DEFAULT_PROCESSES = (1, 2)
DEFAULT_SECONDS = 60
DEFAULT_IDLE_TABS = 20
DEFAULT_REQUESTS = 6000  # as `manage.py seed-demo`
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # as the test suite's
THINK_SECONDS = (2.0, 5.0)
INTERACTION_TIMEOUT = 30.0
SERVER_START_TIMEOUT = 60.0
SIGN_INS_AT_ONCE = 4  # staff arrive over a few seconds, not all in one instant
SIGN_IN_ATTEMPTS = 3
WIND_DOWN = 2 * INTERACTION_TIMEOUT  # a step begun before a level's end, and a recovery, may finish
WARM_UP_LIMIT = (2 * SIGN_IN_ATTEMPTS + 3) * INTERACTION_TIMEOUT  # its sign-in tries and three pages, each bounded
LEAD_EVERY = 5  # person 0, 5, 10… is a team lead
SEED = 20261203
SAMPLE_EVERY = 0.5
PROGRESS_EVERY = 10.0
SETTLE_SECONDS = 3.0  # after the idle tabs are signed in, before their memory is read
# A closed tab's session is dropped after this many seconds (the app's config says 15, for tabs that
# lose their connection and come back): here only the warm-up's tab closes before the memory is
# read, so waiting 15 s for it at every level would buy nothing.
DROPPED_AFTER = 2
NOTE_LABEL = "Custody or court details"
SAVE_BUTTON = "Save person and context"
SAVED_NOTICE = "Person and context saved."
WARM_UP_ACCOUNT = "lead"  # the demo team lead (sample_data.generator.STAFF)

# Given and family names for the simulated staff's accounts (8 × 5 = 40 people).
GIVEN_NAMES = ("Amara", "Ben", "Chloe", "Dev", "Ella", "Femi", "Gita", "Harry")
FAMILY_NAMES = ("Ashworth", "Bello", "Carter", "Duffy", "Evans")

KINDS = {
    "triage_queue": "Open the triage queue",
    "choose_request": "Choose a request in the queue",
    "open_request": "Open the request",
    "open_screening": "Open its screening",
    "leave_field": "Type a note and leave the field",
    "save_section": "Save a screening section",
    "caseload": "Open Caseload (team leads)",
    "sign_in": "Sign in (before the level's window)",
}
MIX_KINDS = tuple(kind for kind in KINDS if kind not in ("caseload", "sign_in"))  # what every role does


def parse_levels(text_given: str, *, most: int, what: str) -> list[int]:
    """"1,5,10" → [1, 5, 10], each from 1 to `most`."""
    levels = []
    for part in text_given.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= most:
            raise ValueError(f"{what} must be whole numbers from 1 to {most}, not {part!r}")
        levels.append(int(part))
    if not levels:
        raise ValueError(f"no {what} given")
    return sorted(set(levels))


# --- The database ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    username: str
    full_name: str
    role: str
    request_id: int
    reference: str
    screening_id: int


@dataclass
class Setup:
    base_url: str
    schema: str
    url: str  # the schema's address, as the servers and the driver use it
    password: str
    accounts: list[Account]
    engine: Engine


def _schema_url(base_url: str, schema_name: str, application_name: str | None = None) -> str:
    query = {"options": f"-csearch_path={schema_name}"}
    if application_name:
        query["application_name"] = application_name
    return make_url(base_url).update_query_dict(query).render_as_string(hide_password=False)


def _password(usernames: Sequence[str]) -> str:
    from services import passwords

    password = secrets.token_urlsafe(12)
    while any(passwords.policy_problem(password, username) for username in usernames):
        password = secrets.token_urlsafe(12)
    return password


def prepare_database(base_url: str, staff: int, requests: int, report: Callable[[str], None]) -> Setup:
    """A schema of its own with the demo data, and `staff` accounts each with a request and a draft."""
    from sample_data.generator import STAFF, generate
    from services import db, schema

    schema_name = f"bench_load_{os.getpid()}"
    drop_schema(base_url, schema_name)
    base = db.create_database_engine(base_url)
    with base.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    base.dispose()
    url = _schema_url(base_url, schema_name)
    engine = db.create_database_engine(url, search_path=None)
    usernames = [f"load.{number:02d}" for number in range(1, staff + 1)]
    password = _password([*usernames, *(username for username, _, _ in STAFF)])
    report(f"Preparing schema {schema_name}: migrations, {requests:,} demo requests, {staff} accounts…")
    schema.upgrade(engine)
    generate(engine, requests=requests, demo_password=password)
    schema.refresh_statistics(engine)
    accounts = [_make_account(engine, number, username, password) for number, username in enumerate(usernames)]
    return Setup(base_url, schema_name, url, password, accounts, engine)


def _make_account(engine: Engine, number: int, username: str, password: str) -> Account:
    """One simulated person's account (through services.accounts, as an administrator), a request
    allocated to them and not yet answered (so it is the first row of their queue) and its draft."""
    from models import Person, User
    from models.codes import Role
    from services import accounts, clock, db, organisation, requests, screening

    role = Role.TEAM_LEAD if number % LEAD_EVERY == 0 else Role.PRACTITIONER
    full_name = f"{GIVEN_NAMES[number % len(GIVEN_NAMES)]} {FAMILY_NAMES[number // len(GIVEN_NAMES)]}"
    with db.writing(engine) as session:
        admin = session.execute(select(User).where(User.username == "admin")).scalar_one()
        new = accounts.NewUser(username, full_name, role, admin.team_id, password)
        user = accounts.create_user(session, admin, new, must_change_password=False)
        adults_before = clock.today_in_london() - timedelta(days=365 * 25)
        person_id = session.execute(
            select(Person.id).where(Person.team_id == user.team_id, Person.date_of_birth < adults_before)
            .order_by(Person.id).offset(number).limit(1)).scalar_one()
        received = clock.to_london(clock.now() - timedelta(minutes=10))
        site_id = organisation.active_sites(session, user)[0].id
        request = requests.log_request(session, user, requests.NewRequest(
            received_on=received.date(), received_time=received.time().replace(second=0, microsecond=0),
            source_of_referral="police", requester_name="PC Dawn Jones", requester_phone="01702 123456",
            site_id=site_id, request_type="screening", urgency="routine",
            reason="Load benchmark: a request for this person's own queue.", person_id=person_id))
        requests.allocate_to_me(session, user, request.id, request.version)
        draft = screening.start_from_request(session, user, request.id)
        return Account(username, full_name, role, request.id, request.reference, draft.id)


def drop_schema(base_url: str, schema_name: str) -> None:
    from services import db

    base = db.create_database_engine(base_url)
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
    base.dispose()


def save_counts(engine: Engine, accounts: Sequence[Account], since: datetime) -> dict[int, tuple[int, int]]:
    """Each draft's version now and its section saves audited since `since`, by screening id."""
    from models import AuditEvent, Screening
    from services import db

    ids = [account.screening_id for account in accounts]
    with db.reading(engine) as session:
        versions = dict(session.execute(select(Screening.id, Screening.version).where(Screening.id.in_(ids))).all())
        audited = dict(session.execute(
            select(AuditEvent.entity_id, func.count()).where(
                AuditEvent.action == "save_screening_section", AuditEvent.entity == "screening",
                AuditEvent.entity_id.in_(ids), AuditEvent.at >= since)
            .group_by(AuditEvent.entity_id)).all())
    return {screening_id: (versions[screening_id], audited.get(screening_id, 0)) for screening_id in ids}


# --- The servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    index: int
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def application_name(index: int) -> str:
    """How server `index` of this run names its PostgreSQL connections (the sampler counts these)."""
    return f"ldhub-load-{os.getpid()}-{index}"


def start_server(setup: Setup, index: int, folder: Path) -> Server:
    from tests.browser import free_port, wait_until_healthy

    port = free_port()
    log = folder / f"server-{index}.log"
    environment = {**os.environ, "DATABASE_URL": _schema_url(setup.base_url, setup.schema, application_name(index)),
                   "DEMO": "0"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none",
             "--server.disconnectedSessionTTL", str(DROPPED_AFTER)],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    server = Server(index, f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_healthy(server.url, process, SERVER_START_TIMEOUT, log)
    except RuntimeError:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _process_status(pid: int) -> tuple[int, float]:
    """(parent pid, user and system CPU seconds so far) of one process: /proc/<pid>/stat, fields 4, 14 and 15."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    return _process_status(pid)[1]


def client_cpu_seconds(servers: Sequence[Server]) -> float:
    """CPU time so far of the load generator: this process and every process under it (the browser
    and its helpers, with the browser driver) except the servers and theirs."""
    parents, spent = {}, {}
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit():
            continue
        try:
            parents[int(folder.name)], spent[int(folder.name)] = _process_status(int(folder.name))
        except OSError:  # ended since the folder was listed
            continue
    servers_pids = {server.pid for server in servers}
    total, waiting = 0.0, [os.getpid()]
    while waiting:
        pid = waiting.pop()
        total += spent.get(pid, 0.0)
        waiting.extend(child for child, parent in parents.items() if parent == pid and child not in servers_pids)
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat; idle and iowait are not busy)."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # guest time is counted inside user time already
    return total - values[3] - values[4], total


class ConnectionSampler(threading.Thread):
    """Counts the servers' PostgreSQL connections every SAMPLE_EVERY s, on a connection of its own."""

    def __init__(self, setup: Setup):
        super().__init__(daemon=True)
        from services import db

        self.engine = db.create_database_engine(_schema_url(setup.base_url, setup.schema, "ldhub-load-sampler"))
        self.pattern = f"ldhub-load-{os.getpid()}-%"
        self.samples: list[tuple[int, int]] = []  # (open, busy)
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stopping.is_set():
                opened, busy = connection.execute(text(
                    "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE :pattern "
                    "AND pid <> pg_backend_pid()"), {"pattern": self.pattern}).one()
                connection.rollback()  # each sample in its own snapshot: pg_stat_activity is fixed per transaction
                self.samples.append((opened, busy))
                self.stopping.wait(SAMPLE_EVERY)

    def finish(self) -> dict:
        self.stopping.set()
        self.join(timeout=10)
        self.engine.dispose()
        return load_report.connection_summary(self.samples)


# --- One simulated person -------------------------------------------------------------------------


class InteractionFailed(Exception):
    def __init__(self, category: str, detail: str):
        super().__init__(detail)
        self.category = category  # "timeout", "error_box" or "exception"
        self.detail = detail


@dataclass
class Tally:
    """What one person did: each timed interaction, each error, and their saves."""

    timings: list[tuple[str, float]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    saves_attempted: int = 0
    saves_confirmed: int = 0


class Person(ABC):
    """One simulated member of staff, signed in as one account, on one server: the daily mix, the
    think times, the tally and what happens after a failure. How a step is done (a click in a
    browser, a message on Streamlit's websocket) is the driver's: bench/load_browser.py,
    bench/load_protocol.py. A step raises InteractionFailed, or one of DRIVER_ERRORS between
    timed interactions (counted as an exception)."""

    DRIVER_ERRORS: tuple[type[Exception], ...] = ()

    def __init__(self, number: int, account: Account | None, username: str, password: str, server: Server,
                 think: tuple[float, float]):
        self.number, self.account, self.username, self.password = number, account, username, password
        self.server = server
        self.think_seconds = think
        self.random = random.Random(SEED + number)
        self.tally = Tally()

    async def think(self) -> None:
        await asyncio.sleep(self.random.uniform(*self.think_seconds))

    def note(self) -> str:
        # Never the text the field holds already (saved, or kept as a draft by an earlier level): a
        # browser sends nothing when a field that did not change is left, and the step would wait in vain.
        return f"Load benchmark note by {self.username} at {time.time_ns()}"

    def failed(self, failure: InteractionFailed, at: float) -> None:
        self.tally.errors.append({"category": failure.category, "detail": failure.detail,
                                  "person": self.number, "at_second": round(at, 1)})

    async def sign_in(self) -> None:
        """Sign in through the form; a form that does not come is refreshed, as a person would, and
        counted as an error each time (SIGN_IN_ATTEMPTS in all)."""
        for attempt in range(1, SIGN_IN_ATTEMPTS + 1):
            try:
                await self._sign_in_once()
                return
            except InteractionFailed as failure:
                if attempt == SIGN_IN_ATTEMPTS:
                    raise
                self.failed(failure, 0.0)

    async def save(self) -> None:
        self.tally.saves_attempted += 1
        await self.press_save()
        self.tally.saves_confirmed += 1  # the notice shown and no error box

    async def cycle(self, until: float) -> None:
        """The daily mix once, a think before each step; steps not begun once `until` has passed."""
        from models.codes import Role

        steps = [lambda: self.go_to("triage_queue", "Triage queue", "Triage queue"), self.choose_own_request,
                 self.open_request, self.open_screening, self.type_a_note, self.save]
        if self.account.role == Role.TEAM_LEAD:
            steps.append(lambda: self.go_to("caseload", "Caseload", "Caseload"))
        for step in steps:
            await self.think()
            if time.monotonic() >= until:
                return
            await step()

    async def work(self, start: float, until: float) -> None:
        """Cycles until `until` (time.monotonic()); each failure counted, then recovered from."""
        while time.monotonic() < until:
            try:
                await self.cycle(until)
            except (InteractionFailed, *self.DRIVER_ERRORS) as failure:
                if not isinstance(failure, InteractionFailed):  # between timed steps: typing, finding a widget
                    failure = InteractionFailed("exception", str(failure).splitlines()[0][:160])
                self.failed(failure, time.monotonic() - start)
                try:
                    await self.recover()
                except Exception as error:  # the tab is beyond help: this person stops
                    self.failed(InteractionFailed("exception", f"could not recover: {str(error)[:160]}"),
                                time.monotonic() - start)
                    return

    @abstractmethod
    async def _sign_in_once(self) -> None:
        """Open the app, fill in the sign-in form and press Sign in (timed as "sign_in")."""

    @abstractmethod
    async def go_to(self, kind: str, link: str, heading: str) -> None:
        """Follow the page link `link`; done when the page's title reads `heading`."""

    @abstractmethod
    async def choose_own_request(self) -> None:
        """Choose the queue's first row, their own request, unless the queue shows it chosen already."""

    @abstractmethod
    async def open_request(self) -> None:
        """Follow the chosen request's link to its page."""

    @abstractmethod
    async def open_screening(self) -> None:
        """Press the request's Screen button, which opens its draft."""

    @abstractmethod
    async def type_a_note(self) -> None:
        """Type self.note() into NOTE_LABEL and leave the field."""

    @abstractmethod
    async def press_save(self) -> None:
        """Press SAVE_BUTTON; done when SAVED_NOTICE shows."""

    @abstractmethod
    async def recover(self) -> None:
        """After a failed step: back to the home page, signed in."""

    @abstractmethod
    async def close(self) -> None:
        """Leave: the tab or connection closed (the server drops the session DROPPED_AFTER s later)."""


# --- A level --------------------------------------------------------------------------------------


@dataclass
class Run:
    """What every level shares: the schema, the driver's maker of people, the folder, the progress line.

    `new_person(number, account, username, server)` makes a Person of the run's driver (signed out).
    """

    setup: Setup
    new_person: Callable
    folder: Path
    report: Callable[[str], None]


async def bounded(people: Sequence[Person], work: Callable, limit: float, what: str) -> list:
    """Run `work(person)` for everyone at once for at most `limit` seconds; whoever is still going
    then is stopped and counted as an error (so that a level, and the run, ends in bounded time)."""
    tasks = [asyncio.create_task(work(person)) for person in people]
    _, pending = await asyncio.wait(tasks, timeout=limit)
    for task, person in zip(tasks, people, strict=True):
        if task in pending:
            task.cancel()
            person.failed(InteractionFailed("timeout", f"{what}: still going after {limit:.0f} s; stopped"), limit)
    await asyncio.gather(*pending, return_exceptions=True)
    return [None if task in pending else task.result() for task in tasks]


async def sign_in_all(run: Run, people: Sequence[Person], label: str) -> list[Person]:
    """Sign everyone in, SIGN_INS_AT_ONCE at a time; those who could not are reported and left out."""
    gate = asyncio.Semaphore(SIGN_INS_AT_ONCE)
    done = 0

    async def one(person: Person) -> bool:
        nonlocal done
        async with gate:
            try:
                await person.sign_in()
            except InteractionFailed as failure:
                person.failed(failure, 0.0)
                return False
            done += 1
            if done % 5 == 0 or done == len(people):
                run.report(f"{label} signed in {done} of {len(people)}")
            return True

    signed = await bounded(people, one, sign_in_limit(len(people)), "signing in")
    return [person for person, ok in zip(people, signed, strict=True) if ok]


def sign_in_limit(staff: int) -> float:
    """Long enough for everyone's sign-in, SIGN_INS_AT_ONCE at a time, on a busy machine."""
    return 2 * INTERACTION_TIMEOUT + 4 * staff


async def warm_up(run: Run, servers: Sequence[Server]) -> None:
    """Each server runs every page of the mix once, in a session then closed and dropped: the memory
    a first visit adds (imports, compiled pages, caches) is in the baseline, not in the sessions."""
    for server in servers:
        person = await run.new_person(-1, None, WARM_UP_ACCOUNT, server)
        try:
            await person.sign_in()
            await person.go_to("triage_queue", "Triage queue", "Triage queue")
            await person.go_to("open_screening", "Screening", "Screening")
            await person.go_to("caseload", "Caseload", "Caseload")
        except InteractionFailed as failure:
            raise RuntimeError(f"the warm-up on server {server.index} failed: {failure.detail}") from failure
        finally:
            await person.close()
    await asyncio.sleep(DROPPED_AFTER + 2)


async def progress(run: Run, label: str, people: Sequence[Person], until: float) -> None:
    while (left := until - time.monotonic()) > 0:
        await asyncio.sleep(min(PROGRESS_EVERY, left))
        interactions = sum(len(person.tally.timings) for person in people)
        errors = sum(len(person.tally.errors) for person in people)
        run.report(f"{label} {max(until - time.monotonic(), 0):.0f} s left · {interactions} interactions · "
                   f"{errors} errors")


async def run_level(run: Run, processes: int, staff: int, seconds: float) -> dict:
    label = f"[{processes} process{'es' if processes > 1 else ''} × {staff} staff]"
    run.report(f"{label} starting {processes} server(s)…")
    servers = [await asyncio.to_thread(start_server, run.setup, index, run.folder) for index in range(processes)]
    sampler = None
    people: list[Person] = []
    try:
        run.report(f"{label} warm-up, then {DROPPED_AFTER + 2:.0f} s for its session to be dropped…")
        await warm_up(run, servers)
        rss_before = [rss_mib(server.pid) for server in servers]
        sampler = ConnectionSampler(run.setup)
        sampler.start()
        accounts = run.setup.accounts[:staff]
        people = [await run.new_person(number, account, account.username, servers[number % processes])
                  for number, account in enumerate(accounts)]
        signed_in = await sign_in_all(run, people, label)
        since = datetime.now(UTC)
        counts_before = await asyncio.to_thread(save_counts, run.setup.engine, accounts, since)
        cpu_before = [cpu_seconds(server.pid) for server in servers]
        client_before = client_cpu_seconds(servers)
        ticks_before, load_before = machine_ticks(), os.getloadavg()[0]
        start = time.monotonic()
        until = start + seconds
        run.report(f"{label} all signed in; working for {seconds:.0f} s")
        reporter = asyncio.create_task(progress(run, label, signed_in, until))
        await bounded(signed_in, lambda person: person.work(start, until), seconds + WIND_DOWN, "the level's work")
        worked = time.monotonic() - start
        reporter.cancel()
        rss_after = [rss_mib(server.pid) for server in servers]  # the sessions still open
        cpu_after = [cpu_seconds(server.pid) for server in servers]
        client_after = client_cpu_seconds(servers)
        ticks_after = machine_ticks()
        connections = sampler.finish()
        sampler = None
        counts_after = await asyncio.to_thread(save_counts, run.setup.engine, accounts, since)
    finally:
        if sampler is not None:
            sampler.finish()
        for person in people:
            await person.close()
        for server in servers:
            await asyncio.to_thread(stop_server, server)
    sessions_by_server = [sum(1 for person in signed_in if person.server is server) for server in servers]
    return load_report.level_result(
        processes=processes, staff=staff, seconds=seconds, worked=worked,
        tallies=[person.tally for person in people],
        saves=[(person.tally.saves_confirmed, counts_before[person.account.screening_id],
                counts_after[person.account.screening_id]) for person in people],
        signed_in=len(signed_in), sessions_by_server=sessions_by_server, rss_before=rss_before, rss_after=rss_after,
        connections=connections, server_cpu=[after - before for before, after in zip(cpu_before, cpu_after,
                                                                                     strict=True)],
        client_cpu=client_after - client_before,
        machine_busy=(ticks_after[0] - ticks_before[0]) / max(ticks_after[1] - ticks_before[1], 1),
        load_average=(load_before, os.getloadavg()[0]))


async def idle_sessions(run: Run, tabs: int) -> dict:
    """Memory per signed-in tab doing nothing, on a fresh server of its own; then what the server
    still holds once those tabs are closed and their sessions dropped (memory the process kept, not
    memory a session needs)."""
    label = f"[idle: {tabs} tabs on 1 process]"
    run.report(f"{label} starting a server…")
    server = await asyncio.to_thread(start_server, run.setup, 0, run.folder)
    people: list[Person] = []
    still_open: list[Person] = []
    try:
        await warm_up(run, [server])
        before = rss_mib(server.pid)
        accounts = run.setup.accounts
        people = [await run.new_person(number, None, accounts[number % len(accounts)].username, server)
                  for number in range(tabs)]
        still_open = list(people)
        signed_in = await sign_in_all(run, people, label)
        await asyncio.sleep(SETTLE_SECONDS)
        after = rss_mib(server.pid)
        while still_open:
            await still_open.pop().close()
        await asyncio.sleep(DROPPED_AFTER + 2)
        after_closing = rss_mib(server.pid)
    finally:
        for person in still_open:
            await person.close()
        await asyncio.to_thread(stop_server, server)
    return load_report.idle_result(tabs=tabs, signed_in=len(signed_in), rss_before=before, rss_after=after,
                                   rss_after_closing=after_closing,
                                   errors=[error for person in people for error in person.tally.errors])


# --- The whole run --------------------------------------------------------------------------------


def expected_minutes(staff: Sequence[int], processes: Sequence[int], seconds: float, idle_tabs: int) -> tuple[float,
                                                                                                             float]:
    """(about, at most) minutes for the run: the fixed costs seen on a busy 2-core machine, and the bounds."""
    fixed = 50  # two servers started and warmed up, the warm-up session dropped, the level closed
    about = len(processes) * sum(fixed + seconds + 4 * level / SIGN_INS_AT_ONCE for level in staff)
    about += (fixed + 4 * idle_tabs / SIGN_INS_AT_ONCE) if idle_tabs else 0
    about += 40  # the schema and its demo data
    worst_fixed = SERVER_START_TIMEOUT * MAX_PROCESSES + WARM_UP_LIMIT * MAX_PROCESSES + DROPPED_AFTER + 30
    at_most = len(processes) * sum(worst_fixed + sign_in_limit(level) + seconds + WIND_DOWN for level in staff)
    at_most += (worst_fixed + sign_in_limit(idle_tabs)) if idle_tabs else 0
    return about / 60, (at_most + 120) / 60


def driver(client: str) -> Callable:
    """The driver module's `people(password, think)`: an async context making that client's people."""
    if client == "browser":
        from bench import load_browser

        return load_browser.people
    from bench import load_protocol

    return load_protocol.people


async def _run_levels(setup: Setup, folder: Path, client: str, staff: Sequence[int], processes: Sequence[int],
                      seconds: float, idle_tabs: int, think: tuple[float, float],
                      report: Callable[[str], None]) -> tuple[list, dict]:
    async with driver(client)(setup.password, think) as new_person:
        run = Run(setup, new_person, folder, report)
        idle = await idle_sessions(run, idle_tabs) if idle_tabs else None
        levels = []
        for process_count in processes:
            for staff_count in staff:
                levels.append(await run_level(run, process_count, staff_count, seconds))
                report(load_report.level_line(levels[-1]))
    return levels, idle


def run(
    staff: Sequence[int] = DEFAULT_STAFF,
    processes: Sequence[int] = DEFAULT_PROCESSES,
    *,
    seconds: float = DEFAULT_SECONDS,
    idle_tabs: int = DEFAULT_IDLE_TABS,
    client: str = DEFAULT_CLIENT,
    requests: int = DEFAULT_REQUESTS,
    think: tuple[float, float] = THINK_SECONDS,
    base_url: str | None = None,
    results_folder: Path | None = ROOT / "bench",
    command: str = "python manage.py bench --load",
    report: Callable[[str], None] = print,
) -> dict:
    """Run the matrix, print the table and (unless results_folder is None) write load.json and load.md."""
    if client not in CLIENTS:
        raise ValueError(f"the client is one of {', '.join(CLIENTS)}, not {client!r}")
    staff, processes = sorted(set(staff)), sorted(set(processes))
    if not (staff[0] >= 1 and staff[-1] <= MAX_STAFF and processes[0] >= 1 and processes[-1] <= MAX_PROCESSES
            and 0 < seconds <= MAX_SECONDS and 0 <= idle_tabs <= MAX_STAFF):
        raise ValueError(f"staff 1–{MAX_STAFF}, processes 1–{MAX_PROCESSES}, seconds up to {MAX_SECONDS} and idle "
                         f"tabs up to {MAX_STAFF}")
    if client == "browser":
        from tests.browser import CHROMIUM

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"Debian's chromium is needed at {CHROMIUM} (this benchmark never downloads a browser)")
    base_url = base_url or os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    about, at_most = expected_minutes(staff, processes, seconds, idle_tabs)
    started = time.monotonic()

    def say(line: str) -> None:  # progress lines say how long the run has taken so far
        elapsed = int(time.monotonic() - started)
        report(f"{elapsed // 60:02d}:{elapsed % 60:02d} {line}")

    say(f"Load benchmark ({client} client): staff {staff} × processes {processes}, {seconds:.0f} s a level, "
        f"{idle_tabs} idle tabs; about {about:.0f} min (at most {at_most:.0f}).")
    machine = load_report.describe_machine(base_url)
    setup = prepare_database(base_url, staff[-1], requests, say)
    try:
        with tempfile.TemporaryDirectory(prefix="ldhub-load-") as folder:
            levels, idle = asyncio.run(_run_levels(setup, Path(folder), client, staff, processes, seconds, idle_tabs,
                                                   think, say))
    finally:
        setup.engine.dispose()
        drop_schema(base_url, setup.schema)
    machine["load_after"] = list(os.getloadavg())
    built = load_report.build(levels, idle, command=command, machine=machine, settings={
        "client": client, "staff": staff, "processes": processes, "seconds": seconds, "idle_tabs": idle_tabs,
        "requests": requests, "think_seconds": list(think), "interaction_timeout": INTERACTION_TIMEOUT,
        "lead_every": LEAD_EVERY, "sign_ins_at_once": SIGN_INS_AT_ONCE,
        "minutes": round((time.monotonic() - started) / 60, 1)})
    report(load_report.text_table(built))
    if results_folder is not None:
        json_path, markdown_path = load_report.write(built, results_folder)
        report(f"Wrote {json_path} and {markdown_path}.")
    return built
