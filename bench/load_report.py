"""The load benchmark's figures, ratios, knee and bars, and its three outputs: a printed table,
`bench/load.json` and `bench/load.md` (the table for the README).

p50 and p95 are over the interactions every role does (bench.load.MIX_KINDS); opening Caseload is
reported in a column of its own, since only team leads do it and a level's mix of leads differs.
Each level's p95 is compared with the 1-staff level on the same number of processes (on 1 process
when that was not measured). The knee is the most staff whose p95 stays within twice the 1-staff
figure, per core. The bars are the issue's: no error and no lost save at 40 staff; p95 at 20 staff
on 2 processes at most 1.5 × the 1-staff figure; memory per idle session under 20 MiB.
"""

import json
import os
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import report as reporting

DOUBLED = 2.0
P95_BAR_RATIO = 1.5
IDLE_BAR_MIB = 20.0
BAR_STAFF = 40
P95_BAR_STAFF, P95_BAR_PROCESSES = 20, 2
EXAMPLES = 5

# What is timed and what the load generator costs, by client (bench/load_protocol.py, bench/load_browser.py).
CLIENT_NOTES = {
    "protocol": (
        "Interaction time: from just before the client sends the click (a rerun_script BackMsg on Streamlit's "
        "websocket, with every widget value it holds) to the script_finished of the whole run it caused (after any "
        "run the app chained to it with st.rerun or st.switch_page) with the step's result among the elements "
        "received. Nothing is drawn: a browser would add its drawing on top.",
        "The protocol client (one Python process, no browser) shares the machine with the servers and PostgreSQL; "
        "its own CPU time is the client CPU column. It runs no JavaScript: it never answers the sign-in page's "
        "question about a kept sign-in (that page waits 3 s, before the level's window) and does not run the idle "
        "guard's fragment every 30 s as an open tab does.",
    ),
    "browser": (
        "Interaction time: from just before Playwright's click or key press to the tab having seen the script run it "
        "caused finish (script_finished on the websocket), the page idle (no status widget, no stale element) and "
        "the step's result on screen. Chart drawing after the run and think time are not in it; Playwright's own "
        "round trips are.",
        "One headless chromium drives every session on the same machine as the servers and PostgreSQL: at many staff "
        "the browser's own drawing competes with the servers for the cores (the client CPU column and machine busy % "
        "say how much).",
    ),
}
STAFF_SPLIT = (
    "Staff are split evenly between the processes (person i on process i mod P): what the proxy's sticky hash does "
    "on average. The load goes straight to each streamlit process, not through nginx, so TLS costs nothing here.")
NOTES = (
    "Memory per session: the servers' RSS with the level's sessions open, less their RSS after a warm-up session "
    "(every page of the mix once) was closed and dropped, over the sessions. Argon2's 19 MiB per sign-in may stay "
    "in the allocator, so this is an upper bound on what the sessions themselves hold: the idle-session line "
    "says how much the process still held per tab once the idle tabs were closed and their sessions dropped.",
    "PostgreSQL connections: pg_stat_activity every 0.5 s, counting the servers' connections by their "
    "application_name (the sampler's own has another name and is left out); busy = not idle (running a query or "
    "inside a transaction). Each process keeps up to DATABASE_POOL_SIZE (5) open and DATABASE_MAX_OVERFLOW (5) "
    "more for a while.",
    "Lost saves: saves a person saw confirmed (the notice, no error box) less the version increments of their own "
    "draft screening (each section save raises it by one; its audit rows are counted too).",
    "Client CPU: the load generator's CPU time in the level's window, this process and every process it started "
    "(the browser and its helpers) except the servers.",
)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Linear interpolation between closest ranks (as statistics.quantiles' inclusive method)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float]) -> dict:
    return {"count": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "max": max(values) if values else None}


def connection_summary(samples: Sequence[tuple[int, int]]) -> dict:
    opened = [sample[0] for sample in samples]
    busy = [sample[1] for sample in samples]
    return {"samples": len(samples),
            "open_max": max(opened, default=None), "open_mean": statistics.fmean(opened) if opened else None,
            "busy_max": max(busy, default=None), "busy_mean": statistics.fmean(busy) if busy else None}


def level_result(*, processes: int, staff: int, seconds: float, worked: float, tallies: Sequence, saves: Sequence,
                 signed_in: int, sessions_by_server: Sequence[int], rss_before: Sequence[float],
                 rss_after: Sequence[float], connections: dict, server_cpu: Sequence[float], client_cpu: float,
                 machine_busy: float, load_average: tuple[float, float]) -> dict:
    """One level's figures from each person's tally and the measurements around it.

    `saves` holds, per person, (saves they saw confirmed, (version, audit rows) before, the same after).
    """
    from bench.load import KINDS, MIX_KINDS

    timings = [timing for tally in tallies for timing in tally.timings]
    errors = [error for tally in tallies for error in tally.errors]
    by_kind = {kind: spread([seconds for done, seconds in timings if done == kind]) for kind in KINDS}
    mix = [seconds for kind, seconds in timings if kind in MIX_KINDS]
    worked_timings = [seconds for kind, seconds in timings if kind != "sign_in"]  # signing in is before the CPU count
    stored = [after[0] - before[0] for _, before, after in saves]
    confirmed = [count for count, _, _ in saves]
    return {
        "processes": processes,
        "staff": staff,
        "signed_in": signed_in,
        "sessions_by_process": list(sessions_by_server),
        "seconds": seconds,
        "worked_seconds": round(worked, 1),
        "interactions": len(mix),
        "interactions_per_second": len(mix) / worked if worked else None,
        "p50": percentile(mix, 0.5),
        "p95": percentile(mix, 0.95),
        "by_kind": by_kind,
        "errors": {
            "count": len(errors),
            **{category: sum(1 for error in errors if error["category"] == category)
               for category in ("timeout", "error_box", "exception")},
            "examples": errors[:EXAMPLES],
        },
        "saves": {
            "attempted": sum(tally.saves_attempted for tally in tallies),
            "confirmed": sum(confirmed),
            "stored": sum(stored),
            "audited": sum(after[1] - before[1] for _, before, after in saves),
            "lost": sum(max(count - kept, 0) for count, kept in zip(confirmed, stored, strict=True)),
            "stored_unconfirmed": sum(max(kept - count, 0) for count, kept in zip(confirmed, stored, strict=True)),
        },
        "memory": {
            "rss_before_mib": [round(value, 1) for value in rss_before],
            "rss_after_mib": [round(value, 1) for value in rss_after],
            "per_session_mib": (sum(rss_after) - sum(rss_before)) / signed_in if signed_in else None,
        },
        "connections": connections,
        "server_cpu_seconds": [round(value, 1) for value in server_cpu],
        # The servers' own cost of one interaction, whatever the browsers on the same cores cost:
        # what a capacity plan multiplies by the clicks a region makes.
        "server_cpu_per_interaction": sum(server_cpu) / len(worked_timings) if worked_timings else None,
        "client_cpu_seconds": round(client_cpu, 1),
        "machine_busy_percent": round(100 * machine_busy, 1),
        "load_average": [round(value, 2) for value in load_average],
    }


def idle_result(*, tabs: int, signed_in: int, rss_before: float, rss_after: float, rss_after_closing: float,
                errors: Sequence[dict]) -> dict:
    return {"tabs": tabs, "signed_in": signed_in, "errors": len(errors), "examples": list(errors[:EXAMPLES]),
            "rss_before_mib": round(rss_before, 1), "rss_after_mib": round(rss_after, 1),
            "rss_after_closing_mib": round(rss_after_closing, 1),
            "per_session_mib": (rss_after - rss_before) / signed_in if signed_in else None,
            "kept_after_closing_mib": (rss_after_closing - rss_before) / signed_in if signed_in else None}


def baseline(levels: Sequence[dict], processes: int) -> dict | None:
    """The 1-staff level on `processes` processes, else on 1 process."""
    for wanted in (processes, 1):
        for level in levels:
            if level["staff"] == 1 and level["processes"] == wanted and level["p95"]:
                return level
    return None


def add_ratios(levels: Sequence[dict]) -> None:
    for level in levels:
        base = baseline(levels, level["processes"])
        caseload, base_caseload = level["by_kind"]["caseload"]["p95"], base and base["by_kind"]["caseload"]["p95"]
        level["ratio"] = {
            "baseline": f"1 staff on {base['processes']} process(es)" if base else None,
            "p95": level["p95"] / base["p95"] if base and level["p95"] else None,
            "caseload_p95": caseload / base_caseload if caseload and base_caseload else None,
        }


def knees(levels: Sequence[dict], cores: int) -> list[dict]:
    """Per process count: the most staff whose p95 stays within twice the 1-staff figure, per core."""
    found = []
    for processes in sorted({level["processes"] for level in levels}):
        measured = sorted((level for level in levels if level["processes"] == processes
                           and level["ratio"]["p95"] is not None), key=lambda level: level["staff"])
        within = [level["staff"] for level in measured if level["ratio"]["p95"] <= DOUBLED]
        beyond = [level["staff"] for level in measured if level["ratio"]["p95"] > DOUBLED]
        first_doubled = beyond[0] if beyond else None
        last_within = max((staff for staff in within if first_doubled is None or staff < first_doubled), default=None)
        if last_within is None:
            words = "no level measured"
        elif first_doubled is None:
            words = (f"not reached: p95 within {DOUBLED:.0f}× up to {last_within} staff, the most measured "
                     f"({last_within / cores:.1f} per core or more)")
        else:
            words = (f"between {last_within} and {first_doubled} staff: {last_within / cores:.1f} staff per core "
                     f"before p95 doubles")
        found.append({"processes": processes, "last_within": last_within, "first_doubled": first_doubled,
                      "staff_per_core": last_within / cores if last_within else None, "cores": cores,
                      "words": words})
    return found


def bars(levels: Sequence[dict], idle: dict | None) -> list[dict]:
    at_bar_staff = [level for level in levels if level["staff"] == BAR_STAFF]
    p95_level = next((level for level in levels
                      if level["staff"] == P95_BAR_STAFF and level["processes"] == P95_BAR_PROCESSES), None)
    idle_mib = idle and idle["per_session_mib"]
    return [
        {"bar": f"No error and no lost save at {BAR_STAFF} staff",
         "value": "; ".join(f"{level['processes']} process(es): {level['errors']['count']} errors, "
                            f"{level['saves']['lost']} lost" for level in at_bar_staff) or "not measured",
         "met": all(level["errors"]["count"] == 0 and level["saves"]["lost"] == 0 for level in at_bar_staff)
         if at_bar_staff else None},
        {"bar": f"p95 at {P95_BAR_STAFF} staff on {P95_BAR_PROCESSES} processes ≤ {P95_BAR_RATIO} × the 1-staff figure",
         "value": f"{p95_level['ratio']['p95']:.2f}×" if p95_level and p95_level["ratio"]["p95"] else "not measured",
         "met": p95_level["ratio"]["p95"] <= P95_BAR_RATIO if p95_level and p95_level["ratio"]["p95"] else None},
        {"bar": f"Memory per idle session < {IDLE_BAR_MIB:.0f} MiB",
         "value": f"{idle_mib:.1f} MiB" if idle_mib is not None else "not measured",
         "met": idle_mib < IDLE_BAR_MIB if idle_mib is not None else None},
    ]


def describe_machine(base_url: str) -> dict:
    from bench.benchmark import ROOT, _postgres_version

    return reporting.describe_machine(ROOT, lambda: _postgres_version(base_url))


def build(levels: list[dict], idle: dict | None, *, command: str, machine: dict, settings: dict) -> dict:
    """Everything the run reports; `settings["client"]` names the driver (its notes say what is timed)."""
    add_ratios(levels)
    cores = machine.get("cores_usable") or machine.get("cores") or os.cpu_count() or 1
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "command": command, "machine": machine,
            "settings": settings, "levels": levels, "idle_sessions": idle, "knee": knees(levels, cores),
            "bars": bars(levels, idle), "notes": [*CLIENT_NOTES[settings["client"]], STAFF_SPLIT, *NOTES]}


# --- Text and Markdown ------------------------------------------------------------------------------

HEADINGS = ("Processes", "Staff", "Interactions", "p50", "p95", "p95 ÷ 1 staff", "Caseload p95 (÷ 1 staff)",
            "Sign-in p95", "Errors", "Saves confirmed / stored", "Lost saves", "MiB per session",
            "PG connections open max / mean", "PG busy max / mean", "Server CPU s", "Server CPU per interaction",
            "Client CPU s", "Machine busy", "Load")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def cells(level: dict) -> list[str]:
    errors, saves, connections = level["errors"], level["saves"], level["connections"]
    caseload = level["by_kind"]["caseload"]["p95"]
    return [
        str(level["processes"]),
        str(level["staff"]) + ("" if level["signed_in"] == level["staff"] else f" ({level['signed_in']} signed in)"),
        str(level["interactions"]),
        _seconds(level["p50"]),
        _seconds(level["p95"]),
        _ratio(level["ratio"]["p95"]),
        "–" if caseload is None else f"{_seconds(caseload)} ({_ratio(level['ratio']['caseload_p95'])})",
        _seconds(level["by_kind"]["sign_in"]["p95"]),
        str(errors["count"]) + (f" ({errors['timeout']} time-outs)" if errors["timeout"] else ""),
        f"{saves['confirmed']} / {saves['stored']}",
        str(saves["lost"]),
        _number(level["memory"]["per_session_mib"]),
        f"{_number(connections['open_max'], 0)} / {_number(connections['open_mean'])}",
        f"{_number(connections['busy_max'], 0)} / {_number(connections['busy_mean'])}",
        " + ".join(_number(value) for value in level["server_cpu_seconds"]),
        _seconds(level["server_cpu_per_interaction"]),
        _number(level["client_cpu_seconds"]),
        f"{level['machine_busy_percent']:.0f}%",
        f"{level['load_average'][0]:.1f}→{level['load_average'][1]:.1f}",
    ]


def level_line(level: dict) -> str:
    """One line as each level ends."""
    return (f"[{level['processes']} × {level['staff']}] p50 {_seconds(level['p50'])}, p95 {_seconds(level['p95'])} "
            f"over {level['interactions']} interactions; {level['errors']['count']} errors; saves "
            f"{level['saves']['confirmed']} confirmed, {level['saves']['stored']} stored, {level['saves']['lost']} "
            f"lost; {_number(level['memory']['per_session_mib'])} MiB per session; PostgreSQL connections max "
            f"{_number(level['connections']['open_max'], 0)} ({_number(level['connections']['busy_max'], 0)} busy)")


def _summary_lines(built: dict) -> list[str]:
    idle = built["idle_sessions"]
    lines = []
    if idle:
        lines.append(f"Idle sessions: {idle['signed_in']} signed-in tabs on 1 process added "
                     f"{idle['rss_after_mib'] - idle['rss_before_mib']:.1f} MiB "
                     f"({_number(idle['per_session_mib'])} MiB each); {idle['errors']} errors signing them in. "
                     f"Once they were closed and dropped the process still held "
                     f"{_number(idle['kept_after_closing_mib'])} MiB per tab.")
    for knee in built["knee"]:
        lines.append(f"Knee on {knee['processes']} process(es), {knee['cores']} cores: {knee['words']}.")
    for verdict in built["bars"]:
        met = {True: "MET", False: "MISSED", None: "not judged"}[verdict["met"]]
        lines.append(f"Bar — {verdict['bar']}: {verdict['value']} → {met}.")
    return lines


def text_table(built: dict) -> str:
    table = [list(HEADINGS)] + [cells(level) for level in built["levels"]]
    widths = [max(len(row[column]) for row in table) for column in range(len(HEADINGS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, "", *_summary_lines(built), STAFF_SPLIT])


def markdown(built: dict) -> str:
    machine, settings = built["machine"], built["settings"]
    lines = [
        f"# Load: many staff at once ({settings['client']} client)",
        "",
        f"`{built['command']}` on {built['date']}: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{machine['memory_gib']:.0f} GiB; PostgreSQL {machine.get('postgresql')}; commit {machine['git']}. "
        f"{settings['seconds']:.0f} s per level after everyone signed in, think time "
        f"{settings['think_seconds'][0]:g}–{settings['think_seconds'][1]:g} s, one team lead in "
        f"{settings['lead_every']}; {settings['requests']:,} demo requests. The run took {settings['minutes']} min.",
        "",
        "| " + " | ".join(HEADINGS) + " |",
        "|" + "---|" * len(HEADINGS),
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in cells(level)) + " |" for level in built["levels"]),
        "",
        *(f"- {line}" for line in _summary_lines(built)),
        "",
        "Notes:",
        "",
        *(f"- {note}" for note in built["notes"]),
        "",
    ]
    return "\n".join(lines)


def write(built: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / "load.json", folder / "load.md"
    json_path.write_text(json.dumps(built, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown(built), encoding="utf-8")
    return json_path, markdown_path
