"""The benchmark's own code, run tiny: it runs, fills every row of its table, writes the JSON and Markdown.

No test here asserts a time: speed is what the benchmark reports, not what a unit test checks.
"""

import json
import os

import pytest
from sqlalchemy import text

import manage
from bench import benchmark, report
from bench.report import Figure
from services import db
from tests.conftest import postgres_url

TINY = 200


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real run at 200 requests, one timed run per figure, SQLite only."""
    folder = tmp_path_factory.mktemp("bench")
    lines: list[str] = []
    built = benchmark.run([TINY], repeats=1, export_repeats=1, results_folder=folder / "results",
                          work_folder=folder / "databases", command="test", report=lines.append)
    return built, folder, lines


def test_every_figure_has_a_number_or_says_why_not(tiny_run):
    built, _, _ = tiny_run
    measured = built["results"]["sqlite"][str(TINY)]
    keys = [figure["key"] for figure in built["figures"]]
    assert keys == [figure.key for figure in benchmark.figures()]
    assert len(keys) == len(set(keys))
    for key in keys:
        result = measured[key]
        assert "error" not in result, (key, result.get("error"))
        if "skipped" in result:  # only a page the app does not have yet
            assert key.endswith(".person_record") and benchmark._person_page() is None, key
            continue
        assert result["min"] <= result["median"] <= result["max"], key
        assert len(result["runs"]) >= 1, key
    # Exports at a tiny size are capped by it: every request, three ways.
    for writer in benchmark.EXPORT_WRITERS:
        assert measured[f"export.1000.{writer}.seconds"]["rows"] == TINY
    assert measured["database.rows"]["median"] > TINY
    assert measured["database.audit_rows"]["median"] >= 2 * TINY
    assert measured["database.size"]["median"] > 0
    assert all(measured[f"payload.{page.key}"].get("median", 1) > 0 for page in benchmark.PAGES_MEASURED)


def test_the_json_and_markdown_hold_the_table(tiny_run):
    built, folder, lines = tiny_run
    written = json.loads((folder / "results" / "results.json").read_text(encoding="utf-8"))
    assert set(written) == {"date", "command", "machine", "settings", "figures", "results", "ratios", "bars", "notes"}
    assert written["settings"]["sizes"] == [TINY]
    assert written["settings"]["databases"] == ["sqlite"]
    for key in ("cpu_model", "cores", "memory_gib", "python", "sqlite", "postgresql", "load_before", "load_after",
                "git"):
        assert key in written["machine"], key
    assert written["results"]["sqlite"][str(TINY)].keys() >= {figure["key"] for figure in written["figures"]}
    bar_keys = {verdict["key"] for verdict in written["bars"]}
    assert {"page.triage_queue", "page.caseload", "query.triage_first_page", "query.search_typing",
            "export.100000.app_to_xlsxwriter", "database.generate_seconds"} <= bar_keys
    assert all(verdict["met"] is None for verdict in written["bars"])  # no 100k in a tiny run

    markdown = (folder / "results" / "results.md").read_text(encoding="utf-8")
    table = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| **")]
    assert table[0].startswith("| Figure | DB | 200 |")
    assert len(table) == 1 + len(written["figures"])  # a heading, then one row per figure
    printed = "\n".join(lines)
    for figure in written["figures"]:
        assert figure["label"] in printed and figure["label"].replace("|", "\\|") in markdown


def test_the_tiny_run_keeps_its_databases_only_when_asked(tiny_run):
    _, folder, _ = tiny_run
    assert (folder / "databases" / f"bench-{TINY}.db").exists()


def test_growth_ratios_and_bars_are_judged_at_100k():
    figure = Figure("page.x", "Pages", "A page", "s", 0.3, "< 0.3 s")
    caseload = Figure("page.c", "Pages", "Caseload", "s", 0.5, "< 0.5 s", growth_limit=1.0)
    results = {"sqlite": {
        10_000: {"page.x": report.summary([0.1]), "page.c": report.summary([0.1])},
        100_000: {"page.x": report.summary([0.2, 0.25, 0.4]), "page.c": report.summary([0.4])},
        1_000_000: {"page.x": report.summary([0.9]), "page.c": report.summary([4.4])},
    }}
    built = report.build_report([figure, caseload], results, sizes=[1_000_000, 10_000, 100_000],
                                databases=["sqlite"], repeats=3, export_repeats=1, command="test",
                                machine=report.describe_machine(benchmark.ROOT))
    assert built["ratios"]["sqlite"]["page.x"] == {"100k/10k": pytest.approx(2.5), "1M/100k": pytest.approx(3.6)}
    verdicts = {verdict["key"]: verdict for verdict in built["bars"]}
    assert verdicts["page.x"]["met"] is True and verdicts["page.x"]["value"] == 0.25
    assert verdicts["page.c"]["met"] is False  # under 0.5 s at 100k, but 11× for 10× the data
    assert verdicts["page.c"]["growth"] == pytest.approx(11)
    row = next(row for row in report.rows_of(built) if row["key"] == "page.c")
    assert row["ratios"] == ["4.00", "11.00 ▲"] and row["verdict"] == "MISSED"
    assert "1M/100k" in report.text_table(built) and "| Figure | DB | 10k | 100k | 1M |" in report.markdown(built)


@pytest.mark.parametrize(("text", "sizes"), [("10k,100k,1m", [10_000, 100_000, 1_000_000]), ("200", [200]),
                                             ("100k, 10K", [10_000, 100_000])])
def test_sizes_are_read_as_written(text, sizes):
    assert report.parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "ten", "0", "1g", "-5k"])
def test_bad_sizes_are_refused_by_the_command_line(text, capsys):
    with pytest.raises(SystemExit):
        manage.main(["bench", "--sizes", text])
    assert "--sizes" in capsys.readouterr().err


def test_the_command_line_passes_its_choices_on(monkeypatch):
    seen = {}
    monkeypatch.setattr(benchmark, "run", lambda sizes, **options: seen.update(sizes=sizes, **options))
    manage.main(["bench", "--sizes", "10k,100k", "--repeats", "2", "--postgres"])
    assert seen["sizes"] == [10_000, 100_000]
    assert seen["repeats"] == 2 and seen["postgres"] is True and seen["export_repeats"] is None
    assert seen["command"] == "python manage.py bench --sizes 10k,100k --repeats 2 --postgres"



@pytest.mark.postgres
def test_with_postgres_both_databases_are_measured_in_schemas_of_their_own(tmp_path, monkeypatch):
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL half skipped: no PostgreSQL answers on 127.0.0.1:5432 and TEST_DATABASE_URL is unset")
    monkeypatch.setenv("TEST_DATABASE_URL", url)
    built = benchmark.run([TINY], repeats=1, export_repeats=1, postgres=True, results_folder=tmp_path,
                          work_folder=tmp_path / "databases", command="test", report=lambda _line: None)
    assert built["settings"]["databases"] == ["sqlite", "postgresql"] and built["machine"]["postgresql"]
    measured = built["results"]["postgresql"][str(TINY)]
    assert not {key: result["error"] for key, result in measured.items() if "error" in result}
    assert measured["export.1000.export_list.seconds"]["rows"] == TINY
    assert measured["database.size"]["median"] > 0
    engine = db.create_database_engine(url)
    try:
        with engine.connect() as connection:
            left = connection.execute(text("SELECT nspname FROM pg_namespace WHERE nspname = :name"),
                                      {"name": f"ldhub_bench_{TINY}_{os.getpid()}"}).all()
    finally:
        engine.dispose()
    assert left == []  # the benchmark's schema is dropped afterwards


def test_the_person_search_and_duplicate_finder_are_measured_alone(tmp_path):
    """`python -m bench.benchmark people`: its database is made once and reused by the next run."""
    first = benchmark.measure_people(TINY, tmp_path, repeats=1, report=lambda _line: None)
    for key in ("query.search_typing", "query.duplicates_with_birth_date", "query.duplicates_name_only"):
        assert "error" not in first[key], first[key]
        assert first[key]["min"] <= first[key]["median"] <= first[key]["max"]
    labelled = first["duplicates.labelled_pairs"]
    assert labelled["pairs"] >= 300 and 0 < labelled["precision"] <= 1 and 0 < labelled["recall"] <= 1
    lines: list[str] = []
    again = benchmark.measure_people(TINY, tmp_path, repeats=1, report=lines.append)
    assert not lines and "error" not in again["query.search_typing"]  # nothing generated the second time
