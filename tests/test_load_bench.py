"""The load benchmark's own code: one person on one process for a few seconds, and its arithmetic.

No test here asserts a time: how fast the app answers under load is what the benchmark reports, not
what a unit test checks (quality.md: machines are noisy).
"""

import asyncio
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

import manage
from bench import load, load_report
from services import db
from tests.browser import CHROMIUM
from tests.conftest import postgres_url

SECONDS = 20  # long enough at a quick think time for the mix to reach its save on a busy machine


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.slow
def test_one_person_on_one_process_saves_and_nothing_is_lost(tmp_path):
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is unset")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    lines: list[str] = []
    built = load.run([1], [1], seconds=SECONDS, idle_tabs=0, requests=200, think=(0.1, 0.3), base_url=url,
                     results_folder=tmp_path, command="test", report=lines.append)

    written = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    assert set(written) == {"date", "command", "machine", "settings", "levels", "idle_sessions", "knee", "bars",
                            "notes"}
    assert written["idle_sessions"] is None  # not asked for
    (level,) = written["levels"]
    assert (level["processes"], level["staff"], level["signed_in"], level["sessions_by_process"]) == (1, 1, 1, [1])
    assert set(level["by_kind"]) == set(load.KINDS)
    assert level["by_kind"]["sign_in"]["count"] == 1
    assert level["interactions"] == sum(level["by_kind"][kind]["count"] for kind in load.MIX_KINDS) > 0
    assert level["p50"] <= level["p95"] and level["ratio"]["p95"] == 1.0  # its own 1-staff baseline
    assert level["errors"]["count"] == 0, level["errors"]["examples"]
    saves = level["saves"]
    assert saves["confirmed"] >= 1, "the person never reached a save"
    assert saves["stored"] == saves["audited"] == saves["confirmed"] and saves["lost"] == 0
    assert level["memory"]["per_session_mib"] > 0 and len(level["memory"]["rss_after_mib"]) == 1
    assert level["connections"]["samples"] > 0 and level["connections"]["open_max"] >= 1
    assert [verdict["met"] for verdict in written["bars"]] == [None, None, None]  # no 40 or 20 staff, no idle tabs
    assert "| Processes | Staff |" in (tmp_path / "load.md").read_text(encoding="utf-8")
    assert any(" s left · " in line for line in lines)  # progress while it ran
    assert built["levels"][0]["saves"] == saves

    engine = db.create_database_engine(url)
    try:
        with engine.connect() as connection:
            left = connection.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"),
                                      {"name": f"bench_load_{os.getpid()}"}).scalar_one()
    finally:
        engine.dispose()
    assert left == 0  # the run's schema is dropped afterwards


def _level(processes: int, staff: int, p95: float, *, errors: int = 0, lost: int = 0) -> dict:
    tally = SimpleNamespace(timings=[("triage_queue", p95)], errors=[{"category": "timeout"}] * errors,
                            saves_attempted=1, saves_confirmed=1)
    return load_report.level_result(
        processes=processes, staff=staff, seconds=60, worked=60, tallies=[tally],
        saves=[(1 + lost, (1, 0), (2, 1))], signed_in=staff, sessions_by_server=[staff], rss_before=[200.0],
        rss_after=[200.0 + 10 * staff], connections=load_report.connection_summary([(2, 1), (4, 0)]),
        server_cpu=[1.0], machine_busy=0.5, load_average=(1.0, 2.0))


def test_ratios_knee_and_bars_from_the_levels():
    levels = [_level(1, 1, 1.0), _level(1, 20, 1.8), _level(1, 40, 2.5, errors=1),
              _level(2, 1, 1.0), _level(2, 20, 1.4), _level(2, 40, 1.9, lost=2)]
    built = load_report.build(levels, load_report.idle_result(tabs=20, signed_in=20, rss_before=200, rss_after=500,
                                                                      rss_after_closing=480, errors=[]),
                              command="test", machine={"cores": 2}, settings={})
    assert [level["ratio"]["p95"] for level in built["levels"]] == pytest.approx([1, 1.8, 2.5, 1, 1.4, 1.9])
    assert built["levels"][1]["memory"]["per_session_mib"] == 10
    assert built["levels"][5]["saves"]["lost"] == 2
    one, two = built["knee"]
    assert (one["last_within"], one["first_doubled"], one["staff_per_core"]) == (20, 40, 10)
    assert (two["last_within"], two["first_doubled"]) == (40, None) and "not reached" in two["words"]
    no_errors, p95_bar, idle_bar = built["bars"]
    assert no_errors["met"] is False and "1 errors" in no_errors["value"] and "2 lost" in no_errors["value"]
    assert p95_bar["met"] is True and p95_bar["value"] == "1.40×"
    assert idle_bar["met"] is True and idle_bar["value"] == "15.0 MiB"
    assert built["idle_sessions"]["kept_after_closing_mib"] == 14  # (480 - 200) / 20
    assert built["levels"][0]["connections"] == {"samples": 2, "open_max": 4, "open_mean": 3, "busy_max": 1,
                                                 "busy_mean": 0.5}
    table = load_report.text_table(built)
    assert "2.50 s" in table and "Knee on 1 process(es), 2 cores: between 20 and 40 staff" in table


def test_percentiles_interpolate_between_ranks():
    assert load_report.percentile([], 0.95) is None
    assert load_report.percentile([3.0], 0.95) == 3.0
    assert load_report.percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert load_report.percentile(list(range(1, 101)), 0.95) == pytest.approx(95.05)


def test_the_command_line_passes_its_choices_on(monkeypatch):
    seen = {}
    monkeypatch.setattr(load, "run", lambda staff, processes, **options: seen.update(staff=staff,
                                                                                      processes=processes, **options))
    manage.main(["bench", "--load", "--staff", "5,1", "--processes", "2", "--seconds", "20", "--idle-tabs", "5"])
    assert seen == {"staff": [1, 5], "processes": [2], "seconds": 20, "idle_tabs": 5,
                    "command": "python manage.py bench --load --staff 5,1 --processes 2 --seconds 20 --idle-tabs 5"}
    manage.main(["bench", "--load"])
    assert (list(seen["staff"]), list(seen["processes"]), seen["seconds"], seen["idle_tabs"]) == (
        list(load.DEFAULT_STAFF), list(load.DEFAULT_PROCESSES), load.DEFAULT_SECONDS, load.DEFAULT_IDLE_TABS)


@pytest.mark.parametrize("arguments", [["--staff", "41"], ["--staff", "0"], ["--processes", "3"], ["--seconds", "0"],
                                       ["--seconds", "601"], ["--idle-tabs", "41"], ["--staff", "a"]])
def test_the_bounds_are_refused_by_the_command_line(arguments, capsys):
    with pytest.raises(SystemExit):
        manage.main(["bench", "--load", *arguments])
    assert arguments[0] in capsys.readouterr().err


def test_load_options_need_load():
    with pytest.raises(SystemExit, match="--staff: only with --load"):
        manage.main(["bench", "--staff", "5"])


def test_whoever_is_still_going_at_the_limit_is_stopped_and_counted():
    stopped = []
    quick, slow = (SimpleNamespace(seconds=seconds, failed=lambda failure, at: stopped.append((failure.category, at)))
                   for seconds in (0.0, 30.0))

    async def work(person):
        await asyncio.sleep(person.seconds)
        return person.seconds

    assert asyncio.run(load.bounded([quick, slow], work, 0.2, "working")) == [0.0, None]
    assert stopped == [("timeout", 0.2)]
