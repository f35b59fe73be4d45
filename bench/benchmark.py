"""The app's speed and memory at 10k, 100k and 1M requests: `python manage.py bench`.

For each size, a fresh database (a temporary SQLite file; also a private PostgreSQL schema with
`--postgres` when TEST_DATABASE_URL is set) is migrated and filled by the demo-data generator,
which is itself measured. Then, in this one warm process:

- every page is run as the role that uses it through Streamlit's AppTest (one warm-up run, then
  `repeats` timed runs; the payload is the serialised size of the messages the run produced);
- each caseload measure's query, the triage queue's first page, the person search while typing
  and the likely-duplicate finder are timed directly against services/;
- the Excel export of 1k, 10k and 100k rows (capped by the size) is timed beside xlsxwriter
  constant-memory and CSV of the same rows, each run in a fresh process (`bench.export_bench`,
  the export engineer's comparison, reused), with its peak resident memory;
- the database's size on disk is taken after the data is written.

`bench.report` turns the results into the printed table, `bench/results.json` and
`bench/results.md`. Nothing here asserts a time: the tests run it tiny, for its shape.
"""

import argparse
import json
import logging
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, func, insert, literal, select, text
from sqlalchemy.engine import make_url

from bench import report as reporting
from bench.report import CASELOAD, DATABASE, EXPORT, PAGES, PAYLOAD, SEARCHES, Figure, summary

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FOLDER = ROOT / "bench"
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_REPEATS = 5
EXPORT_ROWS = (1_000, 10_000, 100_000)
PAGE_TIMEOUT = 300.0
PAGE_BAR = 0.3
CASELOAD_PAGE_BAR = 0.5
QUERY_BAR = 0.1
PAYLOAD_BAR = 1_000_000
GENERATOR_BAR = 60.0
EXPORT_RATIO_BAR = 1.2
EXPORT_WRITERS = ("export_list", "xlsxwriter", "csv")
WRITER_NAMES = {"export_list": "app (openpyxl write-only)", "xlsxwriter": "xlsxwriter constant-memory",
                "csv": "CSV"}


# --- What is measured ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    path: str  # relative to the repository root
    username: str  # the demo account (sample_data.generator.STAFF) whose role uses the page
    query: Callable[["Subjects"], dict[str, str]] = lambda _subjects: {}
    clear_cache: bool = False  # st.cache_data cleared before each timed run: a first visit's cost
    bar: float = PAGE_BAR


PAGES_MEASURED = (
    Page("home_practitioner", "Home: My work (practitioner)", "app.py", "practitioner"),
    Page("home_team_lead", "Home: My work (team lead)", "app.py", "lead"),
    Page("triage_queue", "Triage queue (team lead)", "pages/1_Triage_queue.py", "lead"),
    Page("log_request", "Log a request form (practitioner)", "pages/2_Log_request.py", "practitioner"),
    Page("request", "A request, its timeline (practitioner)", "pages/3_Request.py", "practitioner",
         lambda subjects: {"id": str(subjects.request_id)}),
    Page("person_record", "Person record, longest history (practitioner)", "pages/4_People.py", "practitioner",
         lambda subjects: {"id": str(subjects.person_id)}),
    Page("screening_form", "Screening form, a saved draft (its practitioner)", "pages/5_Screening.py",
         "practitioner", lambda subjects: {"id": str(subjects.draft_screening_id)}),
    Page("screening_summary", "Screening summary (practitioner)", "pages/6_Screening_summary.py", "practitioner",
         lambda subjects: {"id": str(subjects.complete_screening_id)}),
    Page("caseload", "Caseload, default filters, first visit (team lead)", "pages/7_Caseload.py", "lead",
         clear_cache=True, bar=CASELOAD_PAGE_BAR),
    Page("caseload_cached", "Caseload, default filters, rerun from cache (team lead)", "pages/7_Caseload.py", "lead",
         bar=CASELOAD_PAGE_BAR),
    Page("activities", "Activities (practitioner)", "pages/8_Activities.py", "practitioner"),
    Page("export", "Export page (team lead)", "pages/9_Export.py", "lead"),
    Page("audit_log", "Audit log (administrator)", "pages/22_Audit_log.py", "admin"),
    Page("users", "Users (administrator)", "pages/20_Users.py", "admin"),
    Page("service_settings", "Service settings (administrator)", "pages/21_Service_settings.py", "admin"),
    Page("retention", "Retention review (administrator)", "pages/23_Retention.py", "admin"),
)


def _caseload_measures() -> list[str]:
    from services.caseload import MEASURES

    return list(MEASURES)


def figures(export_rows: Sequence[int] = EXPORT_ROWS) -> list[Figure]:
    """Every row of the table, in order."""
    page_bar = f"< {PAGE_BAR} s"
    rows = [
        Figure("database.generate_seconds", DATABASE, "Demo data: generator time", "s", GENERATOR_BAR,
               f"< {GENERATOR_BAR:.0f} s"),
        Figure("database.generate_rows_per_second", DATABASE, "Demo data: rows written per second", "rows/s"),
        Figure("database.generate_rss", DATABASE, "Demo data: generator peak RSS", "MiB"),
        Figure("database.rows", DATABASE, "Rows written by the generator (all tables)", "count"),
        Figure("database.audit_rows", DATABASE, "Audit history added for the audit log", "count"),
        Figure("database.statistics_seconds", DATABASE, "Planner statistics (ANALYZE, as init-db and seed-demo)",
               "s"),
        Figure("database.size", DATABASE, "Database size on disk", "bytes"),
    ]
    for page in PAGES_MEASURED:
        bar = f"< {page.bar} s" + (", growth ≤ linear" if page.key == "caseload" else "")
        rows.append(Figure(f"page.{page.key}", PAGES, page.label, "s", page.bar, bar if page.bar != PAGE_BAR
                           else page_bar, growth_limit=1.0 if page.key == "caseload" else None))
    for page in PAGES_MEASURED:
        rows.append(Figure(f"payload.{page.key}", PAYLOAD, page.label, "bytes", PAYLOAD_BAR, "< 1 MB"))
    query_bar = f"< {QUERY_BAR * 1000:.0f} ms"
    rows += [
        Figure("query.triage_first_page", SEARCHES, "Triage queue: first page (open requests)", "s", QUERY_BAR,
               query_bar),
        Figure("query.triage_first_page_any_status", SEARCHES, "Triage queue: first page, any status", "s"),
        Figure("query.triage_count", SEARCHES, "Triage queue: count of open requests", "s"),
        Figure("query.search_typing", SEARCHES, "Person search while typing (per keystroke)", "s", QUERY_BAR,
               query_bar),
        Figure("query.duplicates_with_birth_date", SEARCHES, "Likely duplicates: name and date of birth", "s",
               QUERY_BAR, query_bar),
        Figure("query.duplicates_name_only", SEARCHES, "Likely duplicates: name only", "s", QUERY_BAR, query_bar),
        Figure("query.person_record", SEARCHES, "Person record service, longest history", "s"),
    ]
    rows += [Figure("caseload.all", CASELOAD, "All measures (what the page computes)", "s")]
    rows += [Figure("caseload.filter_choices", CASELOAD, "filter_choices", "s"),
             Figure("caseload.data_stamp", CASELOAD, "data_stamp (cache key)", "s")]
    rows += [Figure(f"caseload.{key}", CASELOAD, key, "s") for key in _caseload_measures()]
    rows += [Figure("national.quality_by_month", CASELOAD, "National return: data quality, 12 months (its chart)",
                    "s"),
             Figure("national.workbook", EXPORT, "National return, last complete month: workbook", "s"),
             Figure("national.csv_zip", EXPORT, "National return, last complete month: CSV files (zip)", "s")]
    for rows_wanted in export_rows:
        label = f"{reporting.size_label(rows_wanted)} rows"
        for writer in EXPORT_WRITERS:
            rows.append(Figure(f"export.{rows_wanted}.{writer}.seconds", EXPORT,
                               f"{label}: {WRITER_NAMES[writer]} time", "s"))
        for writer in EXPORT_WRITERS:
            rows.append(Figure(f"export.{rows_wanted}.{writer}.rss", EXPORT,
                               f"{label}: {WRITER_NAMES[writer]} peak RSS", "MiB"))
        rows.append(Figure(f"export.{rows_wanted}.app_to_xlsxwriter", EXPORT, f"{label}: app ÷ xlsxwriter time",
                           "ratio", EXPORT_RATIO_BAR, f"≤ {EXPORT_RATIO_BAR}×"))
        rows.append(Figure(f"export.{rows_wanted}.app_to_csv", EXPORT, f"{label}: app ÷ CSV time", "ratio"))
    return rows


# --- The database -------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    size: int
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema
    base_url: str | None = None


def sqlite_database(folder: Path, size: int) -> Database:
    path = folder / f"bench-{size}.db"
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return Database("sqlite", f"sqlite:///{path}", size, path=path)


def postgres_database(base_url: str, size: int) -> Database:
    """A private schema in the given database, reached through search_path (as the tests do)."""
    from services import db

    schema_name = f"ldhub_bench_{size}_{os.getpid()}"
    base = db.create_database_engine(base_url)
    with base.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    base.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema_name}"})
    return Database("postgresql", url.render_as_string(hide_password=False), size, schema=schema_name,
                    base_url=base_url)


def drop(database: Database) -> None:
    from services import db

    if database.kind == "postgresql":
        base = db.create_database_engine(database.base_url)
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE'))
        base.dispose()
    elif database.path is not None:
        for path in (database.path, database.path.with_name(database.path.name + "-wal"),
                     database.path.with_name(database.path.name + "-shm")):
            path.unlink(missing_ok=True)


def create_missing_tables(engine: Engine) -> list[str]:
    """Tables the models have but the migrations did not create; created here so pages can run."""
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    import models  # noqa: F401  every table registered

    present = set(inspect(engine).get_table_names())
    missing = [table for table in SQLModel.metadata.sorted_tables if table.name not in present]
    if missing:
        SQLModel.metadata.create_all(engine, tables=missing)
    return [table.name for table in missing]


def index_drift(engine: Engine) -> list[str]:
    """Indexes the models declare that the migrated database lacks or has on other columns.

    They are reported, not made: the figures are those of the schema the migrations give.
    """
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    inspector = inspect(engine)
    drift = []
    for table in SQLModel.metadata.sorted_tables:
        present = {index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            wanted = [column.name for column in index.columns]
            if index.name not in present:
                drift.append(f"{index.name} ({', '.join(wanted)}) is missing")
            elif present[index.name] != wanted:
                drift.append(f"{index.name} is on ({', '.join(present[index.name])}), the model says "
                             f"({', '.join(wanted)})")
    return drift


def size_on_disk(engine: Engine, database: Database) -> int:
    with engine.connect() as connection:
        if database.kind == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            return int(connection.execute(text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind IN ('r', 'm')"
            ), {"schema": database.schema}).scalar_one())
    files = [database.path, database.path.with_name(database.path.name + "-wal")]
    return sum(path.stat().st_size for path in files if path.exists())


def add_audit_history(engine: Engine) -> int:
    """Audit rows such a history would have left (logged, viewed, closed), so the audit log has volume.

    The generator writes the records but only the accounts' own audit rows; a real trail grows
    with every view and change. INSERT … SELECT keeps this in the database, in one transaction.
    """
    from models import AuditEvent, Request, User
    from services import db

    audit, request, user = AuditEvent.__table__, Request.__table__, User.__table__
    columns = ["at", "user_id", "username", "action", "entity", "entity_id", "outcome"]

    def rows(at, user_id, action: str, entity: str, entity_id, *conditions):
        return insert(audit).from_select(columns, select(
            at, user_id, user.c.username, literal(action), literal(entity), entity_id, literal("success"),
        ).select_from(request).join(user, user.c.id == user_id).where(*conditions))

    statements = [
        rows(request.c.received_at, request.c.created_by_id, "log_request", "request", request.c.id),
        rows(func.coalesce(request.c.first_response_at, request.c.received_at), request.c.allocated_to_id,
             "view_request", "request", request.c.id),
        rows(func.coalesce(request.c.first_response_at, request.c.received_at), request.c.allocated_to_id,
             "view_person", "person", request.c.person_id, request.c.person_id.is_not(None)),
        rows(request.c.closed_at, request.c.allocated_to_id, "close_request", "request", request.c.id,
             request.c.closed_at.is_not(None)),
    ]
    # Counted, not summed from rowcount: PostgreSQL's driver gave -1 for INSERT … SELECT here.
    counted = select(func.count()).select_from(audit)
    with db.writing(engine) as session:
        before = session.execute(counted).scalar_one()
        for statement in statements:
            session.execute(statement)
        return session.execute(counted).scalar_one() - before


# --- Subprocesses: the generator and each export run in a fresh process ----------------------------


def _python_module(*arguments: str) -> dict:
    """Run `python -m bench.benchmark …` from the repository root; its last stdout line is JSON."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    finished = subprocess.run([sys.executable, "-m", "bench.benchmark", *arguments], cwd=ROOT, env=environment,
                              stdout=subprocess.PIPE, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"bench.benchmark {arguments[0]} failed with exit code {finished.returncode}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def _resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


def generate_here(url: str, requests: int, now: datetime) -> dict:
    """Fill the migrated, empty database; the generator's time, rows and peak RSS above the start."""
    from sample_data.generator import generate
    from services import db

    engine = db.create_database_engine(url)
    before = _resident_kib()

    def progress(stage: str, done: int, total: int) -> None:
        print(f"\r    {stage}: {done:,} of {total:,}", end="", file=sys.stderr, flush=True)

    # Nobody signs in to a benchmark database (pages are run with a signed-in session).
    password = secrets.token_urlsafe(16)
    generated = generate(engine, requests=requests, demo_password=password, now=now, progress=progress)
    print(file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    return {"seconds": generated.seconds, "rows": generated.rows, "requests": generated.requests,
            "rss_mib": max(peak - before, 0) / 1024, "summary": str(generated)}


@contextmanager
def _export_filters(received_from: date | None, schema_name: str | None) -> Iterator[None]:
    """Point export_bench at this benchmark's rows: the requests received since a date, in its schema.

    export_bench exports the whole triage queue from its own PostgreSQL schema; the row count is
    capped here by the date the newest N requests begin, so all three writers stream exactly the
    same select, and on PostgreSQL it reads the schema this benchmark filled.
    """
    from bench import export_bench
    from services.requests import RequestFilters

    saved = export_bench.EVERY_REQUEST, export_bench.BENCH_SCHEMA
    export_bench.EVERY_REQUEST = RequestFilters(statuses=(), received_from=received_from)
    export_bench.BENCH_SCHEMA = schema_name or export_bench.BENCH_SCHEMA
    try:
        yield
    finally:
        export_bench.EVERY_REQUEST, export_bench.BENCH_SCHEMA = saved


def export_here(url: str, writer: str, received_from: date | None, schema_name: str | None = None) -> dict:
    from bench import export_bench

    with _export_filters(received_from, schema_name):
        return export_bench.measure_once(url, writer, traced=False)


# --- In this process: pages and queries -----------------------------------------------------------


@dataclass
class Subjects:
    """The records the pages and queries open, chosen from the generated data."""

    users: dict[str, object]  # username → User
    person_id: int
    person_requests: int
    request_id: int
    draft_screening_id: int | None
    draft_owner: str | None
    complete_screening_id: int | None
    typed_name: str
    given_name: str
    family_name: str
    date_of_birth: date | None
    notes: list[str] = field(default_factory=list)


def find_subjects(engine: Engine) -> Subjects:
    from models import Person, Request, Screening, User
    from models.codes import ScreeningStatus
    from services import db

    with db.reading(engine) as session:
        users = {user.username: user for user in session.execute(select(User)).scalars()}
        by_id = {user.id: user.username for user in users.values()}
        person_id, person_requests = session.execute(
            select(Request.person_id, func.count().label("requests")).where(Request.person_id.is_not(None))
            .group_by(Request.person_id).order_by(func.count().desc(), Request.person_id).limit(1)
        ).one()
        request_id = session.execute(
            select(Request.id).where(Request.person_id == person_id).order_by(Request.received_at.desc()).limit(1)
        ).scalar_one()
        draft = session.execute(
            select(Screening.id, Screening.practitioner_id).where(Screening.status == ScreeningStatus.DRAFT)
            .order_by((Screening.practitioner_id == users["practitioner"].id).desc(), Screening.id.desc()).limit(1)
        ).first()
        complete = session.execute(
            select(Screening.id).where(Screening.status == ScreeningStatus.COMPLETE).order_by(Screening.id.desc())
            .limit(1)
        ).scalar()
        common_family = session.execute(
            select(Person.family_name_key).group_by(Person.family_name_key)
            .order_by(func.count().desc(), Person.family_name_key).limit(1)
        ).scalar_one()
        given, family, born = session.execute(
            select(Person.given_name, Person.family_name, Person.date_of_birth)
            .where(Person.family_name_key == common_family, Person.date_of_birth.is_not(None))
            .order_by(Person.id).limit(1)
        ).one()
    return Subjects(
        users=users, person_id=person_id, person_requests=person_requests, request_id=request_id,
        draft_screening_id=draft.id if draft else None, draft_owner=by_id.get(draft.practitioner_id) if draft else None,
        complete_screening_id=complete, typed_name=f"{given} {family}", given_name=given, family_name=family,
        date_of_birth=born,
    )


def start_a_draft(engine: Engine, subjects: Subjects) -> tuple[int, str]:
    """A draft screening started by the practitioner for a request waiting for one (as the app does)."""
    from services import db, screening

    practitioner = subjects.users["practitioner"]
    with db.reading(engine) as session:
        waiting = screening.requests_awaiting_screening(session, practitioner, limit=1)
    with db.writing(engine) as session:
        if waiting:
            draft = screening.start_from_request(session, practitioner, waiting[0].request_id)
        else:
            draft = screening.start_for_person(session, practitioner, subjects.person_id)
        return draft.id, practitioner.username


def timed(call: Callable[[], object], repeats: int) -> dict:
    """One warm-up call, then `repeats` timed calls."""
    call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return summary(runs)


def guarded(call: Callable[[], dict]) -> dict:
    """A measurement, or the error that stopped it (the rest of the benchmark goes on)."""
    try:
        return call()
    except Exception as error:  # reported in the table as "error", with the message in the JSON
        return {"error": f"{type(error).__name__}: {error}"[:500]}


@contextmanager
def recording_payload() -> Iterator[list[int]]:
    """The serialised size of each AppTest run's forward messages: what the browser would be sent.

    AppTest parses the run's ForwardMsg queue into its element tree; wrapping that step sees the
    same messages a browser session would receive (deltas, Arrow tables, chart specs), before any
    compression on the websocket. Media served by URL (downloads, images) is not in them.
    """
    from streamlit.testing.v1 import local_script_runner

    original = local_script_runner.parse_tree_from_messages
    sizes: list[int] = []

    def recording(messages):
        sizes.append(sum(message.ByteSize() for message in messages))
        return original(messages)

    local_script_runner.parse_tree_from_messages = recording
    try:
        yield sizes
    finally:
        local_script_runner.parse_tree_from_messages = original


@contextmanager
def compiled_once() -> Iterator[None]:
    """Keep each page's compiled script between AppTest runs, as a running server does.

    AppTest builds a new ScriptCache for every run, so every run would parse the page, add
    Streamlit's "magic" and compile it again (tens of milliseconds for a large page); the server
    keeps one cache for the process. One shared cache makes the timed runs the server's work.
    """
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    saved = app_test.ScriptCache, local_script_runner.ScriptCache
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared
    try:
        yield
    finally:
        app_test.ScriptCache, local_script_runner.ScriptCache = saved


REFUSALS = ("You do not have permission", "Please sign in", "No such", "The app cannot start", "could not be reached")


def _check_page(test) -> None:
    if test.exception:
        raise RuntimeError(f"the page raised: {test.exception[0].value}")
    for element in (*test.error, *test.info):
        if any(refusal in str(element.value) for refusal in REFUSALS):
            raise RuntimeError(f"the page refused: {element.value}")


def time_page(page: Page, subjects: Subjects, repeats: int) -> tuple[dict, dict]:
    """(seconds, payload bytes) of a page run by its role: one warm-up run, then `repeats` runs."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from services.accounts import SignedIn

    username = subjects.draft_owner if page.key == "screening_form" and subjects.draft_owner else page.username
    user = subjects.users[username]
    query = page.query(subjects)
    if any(value == "None" for value in query.values()):
        skipped = {"skipped": "no record to open in this data"}
        return skipped, skipped
    test = AppTest.from_file(str(ROOT / "app.py"), default_timeout=PAGE_TIMEOUT)
    if page.path != "app.py":
        test.switch_page(page.path)
    test.session_state["signed_in"] = SignedIn(user_id=user.id, session_epoch=user.session_epoch)
    for name, value in query.items():
        test.query_params[name] = value
    runs = []
    with recording_payload() as payloads, compiled_once():
        if page.clear_cache:
            st.cache_data.clear()
        test.run()
        _check_page(test)
        for _ in range(repeats):
            if page.clear_cache:
                st.cache_data.clear()
            started = time.perf_counter()
            test.run()
            runs.append(time.perf_counter() - started)
            _check_page(test)
    return summary(runs), summary(payloads[1:] or payloads)


def time_queries(engine: Engine, subjects: Subjects, repeats: int) -> dict[str, dict]:
    from services import caseload, db, person_record, requests
    from services.caseload import MEASURES, CaseloadFilters
    from services.requests import RequestFilters

    lead, practitioner = subjects.users["lead"], subjects.users["practitioner"]
    results: dict[str, dict] = {}

    def reading(call: Callable) -> Callable[[], object]:
        def run():
            with db.reading(engine) as session:
                return call(session)

        return run

    results["query.triage_first_page"] = guarded(lambda: timed(
        reading(lambda session: requests.triage_page(session, lead, RequestFilters())), repeats))
    results["query.triage_first_page_any_status"] = guarded(lambda: timed(
        reading(lambda session: requests.triage_page(session, lead, RequestFilters(statuses=()))), repeats))
    results["query.triage_count"] = guarded(lambda: timed(
        reading(lambda session: requests.count_requests(session, lead, RequestFilters())), repeats))

    results.update(time_people(engine, subjects, repeats))

    def open_record():
        with db.writing(engine) as session:  # the view is audited
            return person_record.open_record(session, practitioner, subjects.person_id)

    results["query.person_record"] = guarded(lambda: {**timed(open_record, repeats),
                                                      "requests": subjects.person_requests})

    filters = CaseloadFilters.default()
    results["caseload.all"] = guarded(lambda: timed(
        reading(lambda session: caseload.all_measures(session, lead, filters)), repeats))
    results["caseload.filter_choices"] = guarded(lambda: timed(
        reading(lambda session: caseload.filter_choices(session, lead)), repeats))
    results["caseload.data_stamp"] = guarded(lambda: timed(
        reading(lambda session: caseload.data_stamp(session, lead)), repeats))
    for key, info in MEASURES.items():
        results[f"caseload.{key}"] = guarded(lambda info=info: timed(
            reading(lambda session: info.function(session, lead, filters)), repeats))
    results.update(time_national_return(lead, reading, repeats))
    return results


def time_national_return(lead, reading: Callable, repeats: int) -> dict[str, dict]:
    """The Caseload page's 12 months of data quality, and the last complete month's files (each audited)."""
    import io

    from services import national_return

    month = national_return.ReturnMonth.recent(2)[1]
    return {
        "national.quality_by_month": guarded(lambda: timed(
            reading(lambda session: national_return.quality_by_month(session, lead)), repeats)),
        "national.workbook": guarded(lambda: timed(reading(
            lambda session: national_return.write_workbook(session, lead, month, target=io.BytesIO())), repeats)),
        "national.csv_zip": guarded(lambda: timed(reading(
            lambda session: national_return.write_csv_zip(session, lead, month, target=io.BytesIO())), repeats)),
    }


def time_people(engine: Engine, subjects: Subjects, repeats: int) -> dict[str, dict]:
    """The person search while typing (each keystroke of the subject's name) and the duplicate finder."""
    from services import db, people

    practitioner = subjects.users["practitioner"]

    def reading(call: Callable) -> Callable[[], object]:
        def run():
            with db.reading(engine) as session:
                return call(session)

        return run

    def typing() -> dict:
        keystrokes = [subjects.typed_name[:end] for end in range(people.MINIMUM_SEARCH_LENGTH,
                                                                 len(subjects.typed_name) + 1)]
        for typed in keystrokes:  # warm-up
            reading(lambda session, typed=typed: people.search_people(session, practitioner, typed))()
        runs = []
        for _ in range(repeats):
            for typed in keystrokes:
                started = time.perf_counter()
                reading(lambda session, typed=typed: people.search_people(session, practitioner, typed))()
                runs.append(time.perf_counter() - started)
        return summary(runs, typed=subjects.typed_name, keystrokes=len(keystrokes))

    return {
        "query.search_typing": guarded(typing),
        "query.duplicates_with_birth_date": guarded(lambda: timed(reading(
            lambda session: people.find_likely_duplicates(session, practitioner, subjects.given_name,
                                                          subjects.family_name, subjects.date_of_birth)), repeats)),
        "query.duplicates_name_only": guarded(lambda: timed(reading(
            lambda session: people.find_likely_duplicates(session, practitioner, subjects.given_name,
                                                          subjects.family_name)), repeats)),
    }


def duplicate_finder_accuracy() -> dict:
    """Precision and recall of the likely-duplicate finder on the labelled name pairs (tests/data)."""
    from bench.name_pairs import evaluate_finder, load_pairs

    return evaluate_finder(load_pairs()).as_dict()


def measure_people(size: int, folder: Path, *, repeats: int = DEFAULT_REPEATS,
                   report: Callable[[str], None] = print) -> dict:
    """The person search and duplicate finder alone, on a SQLite database of `size` requests.

    The database is kept in `folder` and reused by the next run of the same size, so a change to
    the search can be measured before and after on the same data without generating it again.
    """
    from services import clock, db, schema

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"people-{size}.db"
    database = Database("sqlite", f"sqlite:///{path}", size, path=path)
    ready = path.with_name(path.name + ".ready")
    if not ready.exists():
        drop(database)
        engine = db.create_database_engine(database.url)
        schema.upgrade(engine)
        create_missing_tables(engine)
        report(f"generating {size:,} requests into {path}…")
        generated = _python_module("generate", "--url", database.url, "--requests", str(size),
                                   "--now", clock.now().isoformat())
        report(generated["summary"])
        schema.refresh_statistics(engine)
        engine.dispose()
        ready.write_text(json.dumps(generated), encoding="utf-8")
    engine = db.create_database_engine(database.url)
    try:
        subjects = find_subjects(engine)
        results = time_people(engine, subjects, repeats)
    finally:
        engine.dispose()
    results["duplicates.labelled_pairs"] = guarded(duplicate_finder_accuracy)
    results["subject"] = {"typed": subjects.typed_name, "size": size}
    return results


# --- Export: the same rows three ways, each in a fresh process --------------------------------------


def export_start_date(engine: Engine, rows: int) -> date | None:
    """The London date from which at least `rows` of the newest requests were received (None: all)."""
    from models import Request
    from services import clock, db

    with db.reading(engine) as session:
        total = session.execute(select(func.count()).select_from(Request)).scalar_one()
        if rows >= total:
            return None
        moment = session.execute(
            select(Request.received_at).order_by(Request.received_at.desc()).offset(rows - 1).limit(1)
        ).scalar_one()
    return clock.to_london(moment).date()


def time_exports(engine: Engine, database: Database, repeats: int, report: Callable[[str], None]) -> dict[str, dict]:
    size = database.size
    results: dict[str, dict] = {}
    measured: dict[int, dict[str, dict]] = {}  # by rows actually wanted, so tiny sizes measure once
    for rows_wanted in EXPORT_ROWS:
        capped = min(rows_wanted, size)
        if capped not in measured:
            received_from = export_start_date(engine, capped)
            runs: dict[str, list[dict]] = {writer: [] for writer in EXPORT_WRITERS}
            for _ in range(repeats):  # interleaved, so that a busy moment hits every writer alike
                for writer in EXPORT_WRITERS:
                    arguments = ["export-one", "--url", database.url, "--writer", writer]
                    if database.schema:
                        arguments += ["--schema", database.schema]
                    if received_from is not None:
                        arguments += ["--received-from", received_from.isoformat()]
                    runs[writer].append(_python_module(*arguments))
            found = {}
            for writer in EXPORT_WRITERS:
                rows = runs[writer][-1]["rows"]
                found[f"{writer}.seconds"] = summary([run["seconds"] for run in runs[writer]], rows=rows)
                found[f"{writer}.rss"] = summary([run["rss_mib"] for run in runs[writer]], rows=rows)
            found["app_to_xlsxwriter"] = summary([
                app["seconds"] / other["seconds"] for app, other in zip(runs["export_list"], runs["xlsxwriter"],
                                                                          strict=True)])
            found["app_to_csv"] = summary([
                app["seconds"] / other["seconds"] for app, other in zip(runs["export_list"], runs["csv"], strict=True)])
            measured[capped] = found
            report(f"    export of {found['export_list.seconds']['rows']:,} rows: app "
                   f"{found['export_list.seconds']['median']:.2f} s, xlsxwriter "
                   f"{found['xlsxwriter.seconds']['median']:.2f} s, CSV {found['csv.seconds']['median']:.2f} s")
        for name, value in measured[capped].items():
            results[f"export.{rows_wanted}.{name}"] = value
    return results


# --- One size on one database -------------------------------------------------------------------------


@contextmanager
def app_environment(url: str) -> Iterator[None]:
    """Pages read DATABASE_URL; demo mode off; caches from the previous database dropped."""
    import streamlit as st

    from services import db

    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "DEMO")}
    # Said for every cache call made outside a script run (clearing the caches between runs).
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
                 "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).addFilter(lambda record: record.levelno > logging.WARNING)
    os.environ["DATABASE_URL"] = url
    os.environ.pop("DEMO", None)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        db.engine_for(url).dispose()
        db.engine_for.cache_clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_size(database: Database, *, repeats: int, export_repeats: int, now: datetime,
                 report: Callable[[str], None]) -> tuple[dict[str, dict], list[str]]:
    from services import db, schema

    name = f"[{database.kind} {reporting.size_label(database.size)}]"
    results: dict[str, dict] = {}
    notes: list[str] = []
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    engine = db.create_database_engine(database.url)
    try:
        schema.upgrade(engine)
        missing = create_missing_tables(engine)
        if missing:
            notes.append(f"{name} the migrations do not create {', '.join(missing)}, which the models have: "
                         "created from the models for the benchmark (a migration is needed).")
        drift = index_drift(engine)
        if drift:
            notes.append(f"{name} migrations behind the models (measured as migrated): {'; '.join(drift)}.")
        report(f"{name} generating {database.size:,} requests…")
        generated = _python_module("generate", "--url", database.url, "--requests", str(database.size),
                                   "--now", now.isoformat())
        report(f"{name} {generated['summary']}")
        results["database.generate_seconds"] = summary([generated["seconds"]])
        results["database.generate_rows_per_second"] = summary([generated["rows"] / generated["seconds"]])
        results["database.generate_rss"] = summary([generated["rss_mib"]])
        results["database.rows"] = summary([generated["rows"]])
        results["database.audit_rows"] = summary([add_audit_history(engine)])
        # As `manage.py init-db` and `seed-demo` leave a database: measured without statistics,
        # SQLite's planner picks other indexes than it does in use.
        analysing = time.perf_counter()
        schema.refresh_statistics(engine)
        results["database.statistics_seconds"] = summary([time.perf_counter() - analysing])
        results["database.size"] = summary([size_on_disk(engine, database)])
        subjects = find_subjects(engine)
        if subjects.draft_screening_id is None:
            subjects.draft_screening_id, subjects.draft_owner = start_a_draft(engine, subjects)
            notes.append(f"{name} the data had no draft screening: one was started through the screening service.")
        notes.append(f"{name} person record: person {subjects.person_id} with {subjects.person_requests} requests; "
                     f"person search typed {subjects.typed_name!r} one keystroke at a time.")

        with app_environment(database.url):
            for page in PAGES_MEASURED:
                report(f"{name} page {page.key}…")
                try:
                    seconds, payload = time_page(page, subjects, repeats)
                except Exception as error:
                    seconds = payload = {"error": f"{type(error).__name__}: {error}"[:500]}
                results[f"page.{page.key}"], results[f"payload.{page.key}"] = seconds, payload
            report(f"{name} queries…")
            results.update(time_queries(engine, subjects, repeats))
        report(f"{name} exports…")
        results.update(time_exports(engine, database, export_repeats, report))
    finally:
        engine.dispose()
    # Others share the machine: the load says how far to trust this size's times.
    notes.append(f"{name} load average (1 min) {load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at "
                 f"the end; {time.perf_counter() - started:.0f} s for this size.")
    return results, notes


# --- The whole run ------------------------------------------------------------------------------------


STANDING_NOTES = (
    "Page times are AppTest script runs in one warm process (the server side only: no browser drawing, "
    "which adds about 1.5 s of fixed front-end cost). Compiled page scripts are kept between runs as "
    "the server keeps them; each run still includes AppTest's own overhead (a new script runner and "
    "parsing the messages into its element tree).",
    "Payload = serialised size of the ForwardMsgs a run produces (what the websocket carries before "
    "compression); downloads served by URL are not included.",
    "The caseload page's first visit clears st.cache_data before each run; its rerun keeps the cache, "
    "as a user changing nothing sees.",
    "Exports: the triage queue, every status, of the newest N requests (N capped by the size; the "
    "count can exceed N by part of a day), written by the app's export_list, by xlsxwriter "
    "constant-memory from the same select and as CSV (bench/export_bench.py). Peak RSS is above the "
    "process's size just before the export, each run in a fresh process.",
    "The generator is run once per size in its own process; its figures are that single run.",
    "The audit log's volume comes from INSERT … SELECT of four audit rows per request (logged, viewed, "
    "person viewed, closed), since the generator writes only the accounts' audit rows.",
)


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    repeats: int = DEFAULT_REPEATS,
    export_repeats: int | None = None,
    postgres: bool = False,
    work_folder: Path | None = None,
    results_folder: Path | None = RESULTS_FOLDER,
    command: str = "python manage.py bench",
    report: Callable[[str], None] = print,
) -> dict:
    """Measure every figure at every size; print the table and (unless results_folder is None) write it."""
    from services import clock

    sizes = sorted(sizes)
    export_repeats = export_repeats or min(repeats, 3)
    postgres_url = os.environ.get("TEST_DATABASE_URL") if postgres else None
    if postgres and not postgres_url:
        report("--postgres asks for TEST_DATABASE_URL, which is not set: SQLite only.")
    databases = ["sqlite"] + (["postgresql"] if postgres_url else [])
    machine = reporting.describe_machine(ROOT, (lambda: _postgres_version(postgres_url)) if postgres_url else None)
    now = clock.now()
    results: dict[str, dict[int, dict]] = {database: {} for database in databases}
    notes = list(STANDING_NOTES)
    scratch = Path(tempfile.mkdtemp(prefix="ldhub-bench-")) if work_folder is None else work_folder
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for size in sizes:
            for kind in databases:
                database = (sqlite_database(scratch, size) if kind == "sqlite"
                            else postgres_database(postgres_url, size))
                try:
                    results[kind][size], size_notes = measure_size(database, repeats=repeats,
                                                                   export_repeats=export_repeats, now=now,
                                                                   report=report)
                    notes += size_notes
                finally:
                    if work_folder is None or kind == "postgresql":
                        drop(database)
    finally:
        if work_folder is None:
            shutil.rmtree(scratch, ignore_errors=True)
    machine["load_after"] = list(os.getloadavg())
    built = reporting.build_report(figures(), results, sizes=sizes, databases=databases, repeats=repeats,
                                   export_repeats=export_repeats, command=command, machine=machine, notes=notes)
    report(reporting.text_table(built))
    if results_folder is not None:
        json_path, markdown_path = reporting.write(built, results_folder)
        report(f"Wrote {json_path} and {markdown_path}.")
    return built


def _postgres_version(url: str) -> str | None:
    from services import db

    engine = db.create_database_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


# --- Entry points for the subprocesses ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmark", description="one measured step, as JSON")
    steps = parser.add_subparsers(dest="step", required=True)
    generate_step = steps.add_parser("generate")
    generate_step.add_argument("--url", required=True)
    generate_step.add_argument("--requests", type=int, required=True)
    generate_step.add_argument("--now", required=True, type=datetime.fromisoformat)
    export_step = steps.add_parser("export-one")
    export_step.add_argument("--url", required=True)
    export_step.add_argument("--writer", choices=EXPORT_WRITERS, required=True)
    export_step.add_argument("--received-from", type=date.fromisoformat)
    export_step.add_argument("--schema", help="the PostgreSQL schema the benchmark filled")
    people_step = steps.add_parser("people", help="time the person search and duplicate finder alone")
    people_step.add_argument("--size", type=reporting.parse_sizes, default=[100_000])
    people_step.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "ldhub-bench-people")
    people_step.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    arguments = parser.parse_args(argv)
    if arguments.step == "people":
        result = {str(size): measure_people(size, arguments.folder, repeats=arguments.repeats,
                                            report=lambda line: print(line, file=sys.stderr))
                  for size in arguments.size}
    elif arguments.step == "generate":
        result = generate_here(arguments.url, arguments.requests, arguments.now.astimezone(UTC))
    else:
        result = export_here(arguments.url, arguments.writer, arguments.received_from, arguments.schema)
    print(json.dumps(result))


if __name__ == "__main__":
    import models  # noqa: F401  every table registered

    main()
