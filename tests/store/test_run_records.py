"""The store owns the SQL: a run is read back as a typed ``RunRecord`` through one ``resolve_run``,
which every command that names a run uses; no SQL is written outside runner/store/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.store.database import RunStore, open_db
from runner.store.records import RunRecord
from runner.store.runs import previous_run, resolve_run
from tests.conftest import hanzo

RUNNER = Path(__file__).resolve().parents[2] / "runner"
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)")
# Modules the lifecycle work of issue 16 is rewriting: their SQL moves into the store there; each entry
# goes when its module has none left (a test below says when), and nothing is added.
STILL_TO_MOVE: set[str] = set()


def start(db_path: Path, job_path: str, status: str) -> int:
    db = open_db(db_path)
    store = RunStore.start(db, job_name="j", job_path=job_path, job_hash="h", items_total=None, version="0",
                           pid=1, options="{}")
    store.finish(status)  # type: ignore[arg-type]
    db.close()
    return store.run_id


def test_resolve_run_reads_a_typed_record_by_id_job_and_state(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    first = start(path, "/jobs/a.yaml", "completed")
    unfinished = start(path, "/jobs/a.yaml", "interrupted")
    finished = start(path, "/jobs/a.yaml", "completed")
    other = start(path, "/jobs/b.yaml", "completed")
    db = open_db(path)
    try:
        run = resolve_run(db, first)
        assert isinstance(run, RunRecord)
        assert (run.id, run.job_path, run.status, run.items_total, run.items_ok, run.source_run_id) == (
            first, "/jobs/a.yaml", "completed", 0, 0, None)
        assert resolve_run(db, 99) is None
        assert resolve_run(db, None).id == other  # type: ignore[union-attr]
        assert resolve_run(db, None, job_path="/jobs/a.yaml").id == finished  # type: ignore[union-attr]
        assert resolve_run(db, None, job_path="/jobs/a.yaml", unfinished=True).id == unfinished  # type: ignore[union-attr]
        assert resolve_run(db, None, job_path="/jobs/c.yaml") is None
        assert previous_run(db, resolve_run(db, finished)).id == unfinished  # type: ignore[arg-type,union-attr]
        assert previous_run(db, resolve_run(db, first)) is None  # type: ignore[arg-type]
        db.execute("ALTER TABLE runs ADD COLUMN from_a_newer_version TEXT")  # a column this code does not know
        assert resolve_run(db, first).id == first  # type: ignore[union-attr]
    finally:
        db.close()


def test_a_missing_run_is_named_with_its_database_by_every_command(fixed_runs: Path) -> None:
    wanted = f"no run 9 in {fixed_runs}; see: hanzo-run runs --db {fixed_runs}"
    for command in (["show", "9"], ["report", "9"], ["diff", "9", "1"], ["batches", "list", "9"],
                    ["batches", "cancel", "9"]):
        done = hanzo(*command, "--db", fixed_runs)
        assert (done.returncode, done.stderr.strip()) == (2, wanted), command


def test_no_sql_outside_the_store() -> None:
    found = sorted(str(p.relative_to(RUNNER)) for p in RUNNER.rglob("*.py")
                   if "store" not in p.relative_to(RUNNER).parts and SQL.search(p.read_text()))
    assert [m for m in found if m not in STILL_TO_MOVE] == []


@pytest.mark.parametrize("module", sorted(STILL_TO_MOVE))
def test_each_module_still_to_move_still_has_sql(module: str) -> None:
    assert SQL.search((RUNNER / module).read_text()), f"{module} has no SQL left: delete it from STILL_TO_MOVE"
