"""`manage.py backup` while three processes keep writing: the copy opens, passes SQLite's integrity
check, holds a consistent snapshot (between the row counts before and after), and restoring it
gives back exactly its rows. It never overwrites an existing file."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import SQLModel, func, select

from models import AuditEvent
from services import clock, db
from tests.conftest import ROOT

WRITERS = 3
WRITER = """
import os, sys
sys.path.insert(0, {root!r})
from services import audit, db

engine = db.create_database_engine(os.environ["DATABASE_URL"])
stop_file, name = sys.argv[1], sys.argv[2]
saved = 0
while not os.path.exists(stop_file):
    with db.writing(engine) as session:
        audit.record(session, None, "backup_test_write", username=name)
    saved += 1
print(saved)
"""


def _count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT count(*) FROM auditevent").fetchone()[0]
    finally:
        connection.close()


def _integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def _new_database(path: Path):
    engine = db.create_database_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    return engine


def _environment(database: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}


def _backup(database: Path, target: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "backup", str(target)], cwd=ROOT, env=_environment(database),
                          capture_output=True, text=True, timeout=timeout)


class Writers:
    """Writer processes saving one audit row per transaction until told to stop."""

    def __init__(self, database: Path, stop_file: Path):
        self.stop_file = stop_file
        script = WRITER.format(root=str(ROOT))
        self.processes = [
            subprocess.Popen([sys.executable, "-c", script, str(stop_file), f"writer{number}"],
                             env=_environment(database), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for number in range(WRITERS)
        ]

    def wait_for_rows(self, database: Path, rows: int, deadline_seconds: float = 60) -> None:
        deadline = time.monotonic() + deadline_seconds
        while _count(database) < rows:
            assert all(process.poll() is None for process in self.processes), self.errors()
            assert time.monotonic() < deadline, "the writers did not get going"
            time.sleep(0.05)

    def stop(self) -> list[int]:
        self.stop_file.touch()
        saved = []
        for process in self.processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            saved.append(int(out.strip()))
        return saved

    def errors(self) -> str:
        return "; ".join(process.stderr.read() for process in self.processes if process.poll() is not None)


def test_backup_while_three_processes_write_is_whole_and_restores_to_the_same_count(tmp_path):
    database, copy = tmp_path / "live.db", tmp_path / "backup.db"
    engine = _new_database(database)
    engine.dispose()
    writers = Writers(database, tmp_path / "stop")
    try:
        writers.wait_for_rows(database, 200)
        before = _count(database)
        result = _backup(database, copy)
        after = _count(database)
    finally:
        saved = writers.stop()
    assert result.returncode == 0, result.stderr
    final = _count(database)
    print(f"\nbackup during writes: {before} rows before, {_count(copy)} in the backup, {after} after; "
          f"writers saved {saved} = {sum(saved)}, table holds {final}")
    assert final == sum(saved), "a save the writers counted is missing"

    assert _integrity(copy) == "ok"
    in_backup = _count(copy)
    assert before <= in_backup <= after
    assert after > before, "no write happened during the backup, so it proved nothing; writers too slow?"

    # Restore: the backup becomes the database. The old WAL and shared-memory files must go too,
    # or SQLite could replay the old database's pages onto the restored one.
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(copy, database)
    restored = db.create_database_engine(f"sqlite:///{database}")
    with db.reading(restored) as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == in_backup
    restored.dispose()
    assert _integrity(database) == "ok"


def test_backup_refuses_to_overwrite_an_existing_file(tmp_path):
    database, target = tmp_path / "live.db", tmp_path / "precious.db"
    _new_database(database).dispose()
    target.write_bytes(b"an earlier backup")
    result = _backup(database, target)
    assert result.returncode != 0
    assert "exists already" in (result.stderr + result.stdout)
    assert target.read_bytes() == b"an earlier backup"


@pytest.mark.slow
def test_backup_of_a_larger_database_finishes_while_writers_run(tmp_path):
    database, copy = tmp_path / "live.db", tmp_path / "backup.db"
    engine = _new_database(database)
    detail = "x" * 900
    now = clock.now()
    with engine.begin() as connection:  # about 50 MB, far more than 1,024 pages of 4 KB
        connection.execute(insert(AuditEvent), [
            {"at": now, "action": "filler", "outcome": "success", "detail": detail} for _ in range(50_000)
        ])
    engine.dispose()
    writers = Writers(database, tmp_path / "stop")
    try:
        writers.wait_for_rows(database, 50_100)
        result = _backup(database, copy, timeout=20)
    finally:
        writers.stop()
    assert result.returncode == 0, result.stderr
    assert _integrity(copy) == "ok"
