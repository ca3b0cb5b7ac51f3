"""Issue 17 item 7: a rescore or diff of an interrupted run never looks like a complete one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import hanzo, query, write_job

ROWS = [{"country": "France"}, {"country": "Japan"}, {"country": "Peru"}, {"country": "Chile"}]


def job_with(folder: Path, check: str = "capital") -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"],
                              "prompts": [{"id": "cap", "text": "capital of {{country}}"}],
                              "data": ROWS, "checks": [{"contains": check}], "output": "out.db"})


def interrupt(db: Path, run_id: int, keep: int) -> None:
    """Leave run ``run_id`` as a Ctrl-C after ``keep`` results leaves it."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", [run_id])
        conn.execute("DELETE FROM results WHERE run_id = ? AND id NOT IN (SELECT id FROM results WHERE run_id = ?"
                     " ORDER BY id LIMIT ?)", [run_id, run_id, keep])
    conn.close()


def test_rescore_of_an_interrupted_run_stays_interrupted(fake: Any, keys: dict[str, str], isolated: Path,
                                                         fake_providers: Path) -> None:
    job = job_with(isolated)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    interrupt(isolated / "out.db", 1, keep=1)
    done = hanzo("rescore", "1", job, "--providers-dir", fake_providers)
    assert done.returncode == 1, done.stderr
    assert query(isolated / "out.db", "SELECT status, items_total, items_ok FROM runs WHERE id = 2") == [
        ("interrupted", 4, 1)]
    assert done.stderr.strip().splitlines()[-1] == (
        "hanzo-run: rescore: run 2 covers 1 of the 4 items of run 1, which is interrupted; "
        "its rates are over those 1 only")
    resumed = hanzo(job, "--providers-dir", fake_providers, "--resume")  # the run, not its rescore
    assert resumed.returncode == 0, resumed.stderr
    assert query(isolated / "out.db", "SELECT id, status, items_ok FROM runs ORDER BY id") == [
        (1, "completed", 4), (2, "interrupted", 1)]


def test_rescore_failing_says_why_in_one_line(fake: Any, keys: dict[str, str], isolated: Path,
                                              fake_providers: Path) -> None:
    job = job_with(isolated)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    job_with(isolated, "France")
    done = hanzo("rescore", "1", job, "--providers-dir", fake_providers, "--quiet")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "hanzo-run: run 2 failed: 3 of 4 answers failed checks")


def test_diff_against_an_interrupted_run_is_a_regression(fake: Any, keys: dict[str, str], isolated: Path,
                                                         fake_providers: Path) -> None:
    job = job_with(isolated)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    interrupt(isolated / "out.db", 2, keep=1)
    done = hanzo("diff", "1", "2", "--db", isolated / "out.db", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["totals"]["only_in_a"] == 3
    assert done.stderr.strip().splitlines()[-1] == (
        "hanzo-run: run 2 regressed against run 1: 3 items of run 1 have no result in run 2 (run 2 is interrupted)")
    reverse = hanzo("diff", "2", "1", "--db", isolated / "out.db")
    assert reverse.returncode == 0, reverse.stderr  # B answers more than A: nothing was lost
