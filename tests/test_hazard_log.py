"""docs/hazard-log.md names only tests and code that exist, and covers every hazard it must.

The log's table is read as Markdown: every row must name at least one control and one test; each
test (`tests/file.py::test_name`, a pytest node id) must be a test function defined in that file,
and each control (`file.py::name`) a function, class or assignment defined in that file. A renamed
or deleted test therefore fails here instead of leaving the log pointing at nothing.
"""

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "docs" / "hazard-log.md"
REFERENCE = re.compile(r"`([\w./-]+\.py)::(\w+)(?:\[[^\]`]*\])?`")
REQUIRED_HAZARDS = (
    "Wrong person matched",
    "Lost update",
    "Wrong age or appropriate-adult flag",
    "Silent export truncation",
    "Formula execution in exports",
    "Unauthorised access",
    "Lost draft",
    "Wrong score band",
    "Time shown in the wrong time zone",
    "Request never answered or overdue unseen",
    "Audit tampering",
)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def hazard_rows() -> list[dict[str, str]]:
    """The rows of the first table whose header has a Hazard column, as {header: cell}."""
    lines = LOG.read_text(encoding="utf-8").splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|") and "Hazard" in cells(line))
    header = cells(lines[start])
    assert set(cells(lines[start + 1])) <= {"---", ":---", "---:", ":---:"}, "the header's separator row"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        values = cells(line)
        assert len(values) == len(header), f"a row with {len(values)} cells, not {len(header)}: {line[:80]}"
        rows.append(dict(zip(header, values, strict=True)))
    return rows


def column(name: str) -> str:
    """The header that starts with `name` (so the wording of a header can grow)."""
    headers = list(hazard_rows()[0])
    return next(header for header in headers if header.startswith(name))


@cache
def defined_names(path: str) -> tuple[frozenset[str], frozenset[str]]:
    """(every name defined anywhere in the file, the test functions in it)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names, tests = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if not isinstance(node, ast.ClassDef) and node.name.startswith("test_"):
                tests.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return frozenset(names), frozenset(tests)


def test_the_log_has_every_required_hazard_once():
    rows = hazard_rows()
    hazards = [row["Hazard"] for row in rows]
    assert [hazard for hazard in REQUIRED_HAZARDS if hazard not in hazards] == []
    assert len(set(hazards)) == len(hazards)
    identifiers = [row["ID"] for row in rows]
    assert len(set(identifiers)) == len(identifiers)
    for row in rows:
        assert row["Cause"] and row[column("Possible harm")], row["ID"]


def test_every_row_names_a_control_and_a_test():
    for row in hazard_rows():
        assert REFERENCE.findall(row[column("Controls")]), f"{row['ID']} names no control in the code"
        assert REFERENCE.findall(row[column("Tests")]), f"{row['ID']} names no test"


def _references(header: str) -> list[tuple[str, str, str]]:
    return [(row["ID"], path, name) for row in hazard_rows() for path, name in REFERENCE.findall(row[column(header)])]


@pytest.mark.parametrize("hazard, path, name", _references("Tests"))
def test_every_named_test_exists(hazard, path, name):
    assert path.startswith("tests/") and name.startswith("test_"), f"{hazard}: {path}::{name} is not a test"
    assert (ROOT / path).is_file(), f"{hazard}: no file {path}"
    assert name in defined_names(path)[1], f"{hazard}: {path} has no test {name}"


@pytest.mark.parametrize("hazard, path, name", _references("Controls"))
def test_every_named_control_exists(hazard, path, name):
    assert (ROOT / path).is_file(), f"{hazard}: no file {path}"
    assert name in defined_names(path)[0], f"{hazard}: {path} defines no {name}"


def test_a_missing_test_would_be_caught():
    """The checker itself: a made-up node id is not found."""
    assert "test_that_does_not_exist" not in defined_names("tests/test_db.py")[1]
    assert "test_write_sessions_begin_immediate_and_reads_do_not" in defined_names("tests/test_db.py")[1]
