"""The benchmark's figures, bars, growth ratios and its three outputs: a printed table, JSON and Markdown.

A *figure* is one thing measured at every size (a page's run time, a query's time, an export's
peak memory…). Its result at one size on one database is a dict with at least `median`, `min`,
`max` and `runs` (or `error` / `skipped` saying why there is no number). Bars from
`../shared/docs/quality.md` are judged at 100k requests; growth is the ratio of medians between
consecutive sizes (100k/10k, 1M/100k), marked when it grows faster than the data did.
"""

import json
import os
import platform
import sqlite3
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BAR_SIZE = 100_000  # the bars in quality.md are set at 100k requests

PAGES = "Pages: server-side run (AppTest, warm)"
PAYLOAD = "Pages: payload to the browser"
CASELOAD = "Caseload measures (SQL)"
SEARCHES = "Lists and searches"
EXPORT = "Excel export (fresh process per run)"
DATABASE = "Database"


@dataclass(frozen=True)
class Figure:
    key: str
    group: str
    label: str
    unit: str  # "s", "bytes", "MiB", "rows/s", "ratio", "count"
    limit: float | None = None  # the bar: the median at BAR_SIZE must be at most this
    bar: str | None = None  # the bar in words
    growth_limit: float | None = None  # the bar on growth: ratio at most this × the data's growth


def summary(runs: Sequence[float], **extra) -> dict:
    """Median, min and max of the runs (and the runs themselves)."""
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": list(runs), **extra}


def size_label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def parse_sizes(text: str) -> list[int]:
    """"10k,100k,1m" → [10000, 100000, 1000000]."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        factor = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        number = part[:-1] if factor > 1 else part
        if not number.isdigit() or int(number) * factor < 1:
            raise ValueError(f"not a size: {part!r} (use e.g. 10k,100k,1m)")
        sizes.append(int(number) * factor)
    if not sizes:
        raise ValueError("no sizes given")
    return sorted(set(sizes))


# --- Growth and bars ----------------------------------------------------------------------------


def ratio_label(smaller: int, larger: int) -> str:
    return f"{size_label(larger)}/{size_label(smaller)}"


def growth(results_by_size: dict[int, dict], key: str, sizes: Sequence[int]) -> dict[str, float | None]:
    """Ratio of medians between each pair of consecutive sizes, e.g. {"100k/10k": 1.3}."""
    ratios: dict[str, float | None] = {}
    for smaller, larger in zip(sizes, sizes[1:], strict=False):
        low = results_by_size.get(smaller, {}).get(key, {}).get("median")
        high = results_by_size.get(larger, {}).get(key, {}).get("median")
        ratios[ratio_label(smaller, larger)] = high / low if low and high is not None else None
    return ratios


def worse_than_linear(ratio: float | None, smaller: int, larger: int) -> bool:
    return ratio is not None and ratio > larger / smaller


def judge(figure: Figure, by_size: dict[int, dict], sizes: Sequence[int]) -> dict | None:
    """The bar's verdict at BAR_SIZE (and on growth beyond it), or None when the figure has no bar."""
    if figure.limit is None and figure.growth_limit is None:
        return None
    verdict: dict = {"key": figure.key, "bar": figure.bar, "size": BAR_SIZE, "limit": figure.limit}
    result = by_size.get(BAR_SIZE, {}).get(figure.key)
    if BAR_SIZE not in sizes or result is None or result.get("median") is None:
        verdict.update(value=None, met=None, why="not measured at 100k")
        return verdict
    verdict["value"] = result["median"]
    met = True if figure.limit is None else result["median"] <= figure.limit
    if figure.growth_limit is not None:
        larger = [size for size in sizes if size > BAR_SIZE]
        if larger:
            top = by_size.get(larger[0], {}).get(figure.key, {}).get("median")
            if top is not None:
                growth_ratio = top / result["median"]
                verdict["growth"] = growth_ratio
                met = met and growth_ratio <= figure.growth_limit * larger[0] / BAR_SIZE
    verdict["met"] = met
    return verdict


# --- Formatting ---------------------------------------------------------------------------------


def format_value(unit: str, value: float | None) -> str:
    if value is None:
        return "—"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.1f} ms"
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return f"{value:.2f} s"
    if unit == "bytes":
        if value < 1024 * 1024:
            return f"{value / 1024:.1f} KiB"
        return f"{value / 2**20:.1f} MiB"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "rows/s":
        return f"{value:,.0f}/s"
    if unit == "ratio":
        return f"{value:.2f}×"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:g}"


def format_result(figure: Figure, result: dict | None, *, spread: bool = True) -> str:
    if result is None:
        return ""
    if "error" in result:
        return "error"
    if result.get("median") is None:
        return "skipped" if result.get("skipped") else "—"
    text = format_value(figure.unit, result["median"])
    if spread and len(result.get("runs", [])) > 1:
        text += f" ({format_value(figure.unit, result['min'])}–{format_value(figure.unit, result['max'])})"
    if result.get("rows") is not None:
        text += f" [{result['rows']:,} rows]"
    return text


def format_ratio(ratio: float | None, smaller: int, larger: int) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}" + (" ▲" if worse_than_linear(ratio, smaller, larger) else "")


def format_verdict(verdict: dict | None) -> str:
    if verdict is None:
        return ""
    if verdict["met"] is None:
        return "n/a"
    return "met" if verdict["met"] else "MISSED"


# --- The whole report ---------------------------------------------------------------------------


def rows_of(report: dict) -> list[dict]:
    """One row per figure and database: label, cells by size, ratios, bar and verdict."""
    sizes = report["settings"]["sizes"]
    rows = []
    for database in report["settings"]["databases"]:
        by_size = {int(size): values for size, values in report["results"].get(database, {}).items()}
        verdicts = {verdict["key"]: verdict for verdict in report["bars"] if verdict["database"] == database}
        for spec in report["figures"]:
            figure = Figure(**spec)
            cells = [format_result(figure, by_size.get(size, {}).get(figure.key)) for size in sizes]
            ratios = report["ratios"].get(database, {}).get(figure.key, {})
            rows.append({
                "group": figure.group,
                "label": figure.label,
                "database": database,
                "cells": cells,
                "ratios": [format_ratio(ratios.get(ratio_label(a, b)), a, b)
                           for a, b in zip(sizes, sizes[1:], strict=False)],
                "bar": figure.bar or "",
                "verdict": format_verdict(verdicts.get(figure.key)),
                "key": figure.key,
            })
    return rows


def headings(report: dict) -> list[str]:
    sizes = report["settings"]["sizes"]
    return (["Figure", "DB"] + [size_label(size) for size in sizes]
            + [ratio_label(a, b) for a, b in zip(sizes, sizes[1:], strict=False)] + ["Bar (at 100k)", "Met"])


def _cells(row: dict) -> list[str]:
    return [row["label"], row["database"], *row["cells"], *row["ratios"], row["bar"], row["verdict"]]


def text_table(report: dict) -> str:
    rows = rows_of(report)
    heads = headings(report)
    table = [heads] + [_cells(row) for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(heads))]
    lines = []
    group = None
    for row, cells in zip([None, *rows], table, strict=True):
        if row is not None and row["group"] != group:
            group = row["group"]
            lines.append(f"-- {group}")
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(report: dict) -> str:
    machine = report["machine"]
    settings = report["settings"]
    heads = headings(report)
    lines = [
        "<!-- Written by `python manage.py bench`; do not edit by hand. -->",
        f"Measured {report['date']} with `{report['command']}` on {machine['cpu_model']} "
        f"({machine['cores_usable']} usable cores of {machine['cores']}, {machine['memory_gib']:.0f} GiB), "
        f"Python {machine['python']}, SQLite {machine['sqlite']}"
        + (f", PostgreSQL {machine['postgresql']}" if machine.get("postgresql") else "")
        + f"; load average {machine['load_before'][0]:.1f} before and {machine['load_after'][0]:.1f} after "
        f"(the machine was shared). Git {machine['git']}.",
        "",
        f"Cells: median (min–max) of {settings['repeats']} runs after one warm-up run "
        f"({settings['export_repeats']} for exports, one fresh process each; demo data generated once per size). "
        "Ratios are of medians between sizes; ▲ marks growth faster than the data's. Bars are quality.md's, "
        "judged at 100k requests.",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(heads) - 4) + ["---", "---"]) + "|",
    ]
    group = None
    for row in rows_of(report):
        if row["group"] != group:
            group = row["group"]
            lines.append(f"| **{_escape(group)}** |" + " |" * (len(heads) - 1))
        lines.append("| " + " | ".join(_escape(cell) for cell in _cells(row)) + " |")
    if report.get("notes"):
        lines += ["", *[f"- {_escape(note)}" for note in report["notes"]]]
    return "\n".join(lines) + "\n"


def build_report(
    figures: Sequence[Figure],
    results: dict[str, dict[int, dict]],
    *,
    sizes: Sequence[int],
    databases: Sequence[str],
    repeats: int,
    export_repeats: int,
    command: str,
    machine: dict,
    notes: Sequence[str] = (),
) -> dict:
    """Everything the JSON holds: settings, machine, figures, results, growth ratios, bars."""
    sizes = sorted(sizes)
    ratios = {
        database: {figure.key: growth(results.get(database, {}), figure.key, sizes) for figure in figures}
        for database in databases
    }
    bars = []
    for database in databases:
        for figure in figures:
            verdict = judge(figure, results.get(database, {}), sizes)
            if verdict is not None:
                bars.append({"database": database, **verdict})
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "settings": {"sizes": list(sizes), "databases": list(databases), "repeats": repeats,
                     "export_repeats": export_repeats, "bar_size": BAR_SIZE},
        "figures": [asdict(figure) for figure in figures],
        "results": {database: {str(size): values for size, values in by_size.items()}
                    for database, by_size in results.items()},
        "ratios": ratios,
        "bars": bars,
        "notes": list(notes),
    }


def write(report: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown(report), encoding="utf-8")
    return json_path, markdown_path


# --- The machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path) -> str:
    def run(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    commit = run("rev-parse", "--short", "HEAD") or "unknown"
    # The previous run's own results files do not make the measured code differ from the commit.
    changed = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results.*")
    return commit + (" (with uncommitted changes)" if changed else "")


def describe_machine(root: Path, postgresql: Callable[[], str | None] | None = None) -> dict:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_before": list(os.getloadavg()),
        "load_after": list(os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql() if postgresql else None,
        "packages": {name: _version(name) for name in
                     ("streamlit", "sqlalchemy", "sqlmodel", "openpyxl", "xlsxwriter", "pandas", "psycopg")},
        "git": _git(root),
    }
