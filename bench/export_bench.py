"""Export from a database: export_list against xlsxwriter constant-memory and CSV on the same query.

Run from the repository root:

    python -m bench.export_bench [ROWS ...]            (default 1000 10000 100000; SQLite)
    python -m bench.export_bench --database-url postgresql+psycopg://… 1000 10000
                                                        (in a schema of its own, dropped first)

For each size a fresh database gets that many requests from the demo generator
(sample_data.generator; a plain bulk insert when it is not there), and the whole triage queue
(every status) is exported three ways, each streaming the same Core select with yield_per:
- `export_list`: the app's own export (permission, About sheet, audit row included);
- `xlsxwriter`: the same select and the same cell conversions written by xlsxwriter in
  constant-memory mode (benchmark only: the app does not use it);
- `csv`: the same select and conversions as CSV (services.workbook.write_csv).

Every measurement runs in a fresh Python process, so that peak memory is that run's alone:
- seconds: the median of `--repeats` runs;
- RSS MiB: the process's peak resident size during the export (VmHWM, reset just before it through
  /proc/self/clear_refs) above its size just before it: this counts lxml's, zlib's and the
  database driver's C memory too, and not the imports' earlier peak;
- traced MiB: tracemalloc's peak (Python allocations only), from a separate run since tracing slows
  Python down.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import xlsxwriter
from sqlalchemy import Engine, insert, select, text
from sqlmodel import SQLModel

import models
from models import Request, Site, Team, User
from models.codes import Role, SiteKind
from services import clock, db, export, schema
from services.export_lists import TRIAGE_QUEUE
from services.requests import RequestFilters
from services.workbook import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    HOURS_FORMAT,
    ColumnKind,
    SafeText,
    column_width,
    convert_value,
    safe_text,
    write_csv,
)

LIST_NAME = TRIAGE_QUEUE.name
EVERY_REQUEST = RequestFilters(statuses=())
WRITERS = ("export_list", "xlsxwriter", "csv")
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEMO_PASSWORD = "benchmark demo password"  # noqa: S105 (a throw-away benchmark database)


# --- The database ---------------------------------------------------------------------------------


BENCH_SCHEMA = "ldhub_export_bench"  # on PostgreSQL the benchmark keeps to a schema of its own


def bench_engine(url: str) -> Engine:
    if url.startswith("postgresql"):
        return db.create_database_engine(url, search_path=BENCH_SCHEMA)
    return db.create_database_engine(url)


def prepare_database(url: str, requests: int) -> None:
    """An empty schema filled with `requests` requests (and their people, screenings, referrals)."""
    if url.startswith("postgresql"):
        base = db.create_database_engine(url)
        with base.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{BENCH_SCHEMA}"'))
        base.dispose()
    engine = bench_engine(url)
    SQLModel.metadata.create_all(engine)
    with db.writing(engine) as session:
        schema.seed_code_lists(session)
    try:
        from sample_data.generator import generate
    except ImportError:
        plain_requests(engine, requests)
    else:
        generate(engine, requests=requests, demo_password=DEMO_PASSWORD)
    engine.dispose()


def plain_requests(engine: Engine, count: int) -> None:
    """A stand-in for the demo generator: one team, one site, `count` requests (Core executemany)."""
    now = datetime.now(UTC)
    with db.writing(engine) as session:
        team = Team(name="Benchmark team")
        session.add(team)
        session.flush()
        site = Site(team_id=team.id, name="Benchmark custody suite", kind=SiteKind.CUSTODY_SUITE)
        lead = User(username="lead", full_name="Lee Lead", role=Role.TEAM_LEAD, team_id=team.id)
        session.add_all([site, lead])
        session.flush()
        rows = [
            {"received_at": now - timedelta(minutes=index), "source_of_referral": "police",
             "requester_name": f"PC {index}", "request_type": "screening", "urgency": "urgent",
             "reason": "Benchmark", "team_id": team.id, "site_id": site.id, "status": "new",
             "due_at": now + timedelta(hours=4) - timedelta(minutes=index), "created_by_id": lead.id,
             "reference": f"B{index:07d}", "version": 1, "created_at": now, "updated_at": now}
            for index in range(count)
        ]
        for start in range(0, count, 10_000):
            session.execute(insert(Request), rows[start:start + 10_000])


def team_lead(engine: Engine) -> User:
    with db.reading(engine) as session:
        query = select(User).where(User.role == Role.TEAM_LEAD.value, User.active).order_by(User.id).limit(1)
        return session.execute(query).scalar_one()


# --- The three writers, each streaming the same select ------------------------------------------


def run_export_list(engine: Engine, user: User, path: Path) -> int:
    with db.reading(engine) as session:
        return export.export_list(session, user, LIST_NAME, EVERY_REQUEST, target=path).rows


def streamed_rows(session, user: User):
    """The rows export_list streams, from its own helper: the list's select, yield_per 2,000, with
    the clock columns worked out per row as the export does."""
    return export._list_rows(session, user, TRIAGE_QUEUE, EVERY_REQUEST, TRIAGE_QUEUE.columns, clock.now(),
                             yield_per=export.YIELD_PER)


def run_xlsxwriter(engine: Engine, user: User, path: Path) -> int:
    """The same rows, conversions and layout, written by xlsxwriter in constant-memory mode."""
    columns = TRIAGE_QUEUE.columns
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet(TRIAGE_QUEUE.title)
    formats = {
        ColumnKind.datetime: workbook.add_format({"num_format": DATETIME_FORMAT}),
        ColumnKind.date: workbook.add_format({"num_format": DATE_FORMAT}),
        ColumnKind.hours: workbook.add_format({"num_format": HOURS_FORMAT}),
    }
    quoted = workbook.add_format({"quote_prefix": True})
    bold = workbook.add_format({"bold": True})
    for position, column in enumerate(columns):
        sheet.set_column(position, position, column_width(column))
        sheet.write_string(0, position, safe_text(column.heading).text, bold)
    sheet.freeze_panes(1, 0)
    row_number = 0
    with db.reading(engine) as session:
        for row_number, row in enumerate(streamed_rows(session, user), start=1):
            for position, (column, value) in enumerate(zip(columns, row, strict=True)):
                converted = convert_value(column, value)
                if converted is None:
                    continue
                if isinstance(converted, SafeText):
                    sheet.write_string(row_number, position, converted.text, quoted if converted.quote_prefix else None)
                elif column.kind in (ColumnKind.datetime, ColumnKind.date):
                    sheet.write_datetime(row_number, position, converted, formats[column.kind])
                else:
                    sheet.write_number(row_number, position, converted, formats.get(column.kind))
    sheet.autofilter(0, 0, row_number, len(columns) - 1)
    about = workbook.add_worksheet("About this export")
    about.write_string(0, 0, "Rows")
    about.write_number(0, 1, row_number)
    workbook.close()
    return row_number


def run_csv(engine: Engine, user: User, path: Path) -> int:
    with db.reading(engine) as session:
        return write_csv(path, TRIAGE_QUEUE.columns, streamed_rows(session, user))


RUNNERS = {"export_list": run_export_list, "xlsxwriter": run_xlsxwriter, "csv": run_csv}


def current_rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize() // 1024


def reset_peak_rss() -> None:
    """Start the kernel's peak-RSS count again from now (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def peak_rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def measure_once(url: str, writer: str, traced: bool) -> dict:
    """One export in this process: seconds, rows, peak RSS above the start, and (traced) Python peak."""
    engine = bench_engine(url)
    user = team_lead(engine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"export.{'csv' if writer == 'csv' else 'xlsx'}"
        reset_peak_rss()
        before = current_rss_kib()
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        rows = RUNNERS[writer](engine, user, path)
        seconds = time.perf_counter() - started
        traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
        if traced:
            tracemalloc.stop()
        peak = peak_rss_kib()
        size = path.stat().st_size
    engine.dispose()
    return {"writer": writer, "rows": rows, "seconds": seconds, "rss_mib": max(peak - before, 0) / 1024,
            "traced_mib": None if traced_peak is None else traced_peak / 2**20, "bytes": size}


def in_fresh_process(url: str, writer: str, traced: bool) -> dict:
    command = [sys.executable, "-m", "bench.export_bench", "--one", writer, "--database-url", url]
    if traced:
        command.append("--traced")
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def compare(sizes=DEFAULT_SIZES, *, database_url: str | None = None, repeats: int = 3, folder: Path | None = None,
            report=print) -> list[dict]:
    """One result per size: each writer's median seconds, RSS and traced peaks, and the ratios."""
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            url = database_url or f"sqlite:///{folder or scratch}/bench-{size}.db"
            started = time.perf_counter()
            prepare_database(url, size)
            report(f"  ({size:,} requests generated in {time.perf_counter() - started:.1f} s)")
            result: dict = {"requests": size}
            for _ in range(repeats):  # interleaved, so that a busy moment hits every writer alike
                for writer in WRITERS:
                    run = in_fresh_process(url, writer, traced=False)
                    result.setdefault(f"{writer}_runs", []).append(run["seconds"])
                    result.setdefault(f"{writer}_rss_runs", []).append(run["rss_mib"])
                    result[f"{writer}_rows"] = run["rows"]
            for writer in WRITERS:
                result[f"{writer}_seconds"] = statistics.median(result[f"{writer}_runs"])
                result[f"{writer}_rss_mib"] = max(result[f"{writer}_rss_runs"])
                result[f"{writer}_traced_mib"] = in_fresh_process(url, writer, traced=True)["traced_mib"]
            result["export_to_xlsxwriter"] = result["export_list_seconds"] / result["xlsxwriter_seconds"]
            result["export_to_csv"] = result["export_list_seconds"] / result["csv_seconds"]
            results.append(result)
            report(row_line(result))
    return results


HEADER = (f"{'requests':>9} {'rows':>8} | {'export_list s':>13} {'RSS':>6} {'traced':>6} | "
          f"{'xlsxwriter s':>12} {'RSS':>6} {'traced':>6} | {'csv s':>6} {'RSS':>6} {'traced':>6} | "
          f"{'export/xlsxw':>12} {'export/csv':>10}")


def row_line(result: dict) -> str:
    def cells(writer: str, width: int) -> str:
        return (f"{result[f'{writer}_seconds']:>{width}.2f} {result[f'{writer}_rss_mib']:>6.1f} "
                f"{result[f'{writer}_traced_mib']:>6.1f}")

    return (f"{result['requests']:>9,} {result['export_list_rows']:>8,} | {cells('export_list', 13)} | "
            f"{cells('xlsxwriter', 12)} | {cells('csv', 6)} | {result['export_to_xlsxwriter']:>11.2f}x "
            f"{result['export_to_csv']:>9.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument("--database-url", help="a database to fill and export from (default: SQLite files)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", choices=WRITERS, help=argparse.SUPPRESS)  # a single measurement, in this process
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(measure_once(arguments.database_url, arguments.one, arguments.traced)))
        return
    print("Peak memory in MiB: RSS above the process's size before the export; traced = tracemalloc.")
    print(HEADER)
    compare(arguments.sizes, database_url=arguments.database_url, repeats=arguments.repeats,
            report=lambda line: print(line, flush=True))


if __name__ == "__main__":
    assert models  # every table registered before create_all
    main()
