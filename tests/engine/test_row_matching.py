"""Issue 17 item 6: rescore and diff find an item's data row by its content, wherever the row moved."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import hanzo, query, write_job

ROWS = [{"country": "France"}, {"country": "Japan"}, {"country": "Peru"}]


def job_with(folder: Path, rows: list[dict[str, Any]], checks: list[dict[str, Any]]) -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"],
                              "prompts": [{"id": "cap", "text": "capital of {{country}}"}],
                              "data": rows, "checks": checks, "output": "out.db"})


def test_rescore_grades_each_answer_against_its_own_row(fake: Any, keys: dict[str, str], isolated: Path,
                                                        fake_providers: Path) -> None:
    job = job_with(isolated, ROWS, [{"contains": "{{country}}"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    job_with(isolated, [{"country": "Chile"}, *reversed(ROWS)], [{"contains": "{{country}}"}])  # moved, one added
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr
    assert query(isolated / "out.db", "SELECT row_index, passed FROM results WHERE run_id = 2 ORDER BY row_index") \
        == [(0, 1), (1, 1), (2, 1)]


def test_rescore_says_which_rows_changed_and_does_not_grade_them(fake: Any, keys: dict[str, str], isolated: Path,
                                                                fake_providers: Path) -> None:
    job = job_with(isolated, ROWS, [{"contains": "{{country}}"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    job_with(isolated, [{"country": "Spain"}, *ROWS[1:]], [{"contains": "{{country}}"}])
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 1, done.stderr
    assert ("hanzo-run: rescore: 1 data row of run 1 is not in the job's data any more (changed or removed): "
            "its 1 answer is not graded") in done.stderr
    got = query(isolated / "out.db", "SELECT row_index, passed, failed_checks FROM results WHERE run_id = 2"
                                     " ORDER BY row_index")
    assert got[1:] == [(1, 1, None), (2, 1, None)]
    assert got[0][:2] == (0, None)
    assert json.loads(got[0][2]) == [{"check": "data row", "reason": "data row 0 of run 1 is not in the job's "
                                      "data any more (changed or removed); not graded"}]


def test_diff_matches_rows_that_moved(fake: Any, keys: dict[str, str], isolated: Path, fake_providers: Path) -> None:
    job = job_with(isolated, ROWS, [{"contains": "France"}])  # France passes, the others fail
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    job_with(isolated, [ROWS[1], ROWS[0], ROWS[2], {"country": "Chile"}], [{"contains": "France"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    done = hanzo("diff", "1", "2", "--db", isolated / "out.db", "--json")
    assert done.returncode == 0, done.stderr
    totals = json.loads(done.stdout)["totals"]
    assert (totals["unchanged"], totals["pass_to_fail"], totals["fail_to_pass"], totals["only_in_b"]) == (3, 0, 0, 1)
    assert ("data rows changed between run 1 and run 2: 0 edited, 1 added, 0 removed, 2 moved; items are matched "
            "by the row's content, an edited row by its position") in done.stderr


def test_diff_of_runs_without_row_hashes_matches_by_position(fake: Any, keys: dict[str, str], isolated: Path,
                                                            fake_providers: Path) -> None:
    job = job_with(isolated, ROWS, [{"contains": "France"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    conn = sqlite3.connect(isolated / "out.db")
    with conn:
        conn.execute("UPDATE results SET row_hash = NULL WHERE run_id = 1")  # as an older hanzo-run wrote it
    conn.close()
    done = hanzo("diff", "1", "2", "--db", isolated / "out.db", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["unchanged"] == 3
    assert "run 1 has no row hashes (written by an older hanzo-run): items are matched by row position" \
        in done.stderr


def test_rescore_of_a_run_without_row_hashes_matches_by_position(fake: Any, keys: dict[str, str], isolated: Path,
                                                                 fake_providers: Path) -> None:
    job = job_with(isolated, ROWS, [{"contains": "{{country}}"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    conn = sqlite3.connect(isolated / "out.db")
    with conn:
        conn.execute("UPDATE results SET row_hash = NULL")  # as an older hanzo-run wrote it
    conn.close()
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr
    assert ("hanzo-run: rescore: run 1 has no row hashes (written by an older hanzo-run): its answers are matched "
            "to data rows by position, so rows moved since then are graded against another row") in done.stderr
    assert query(isolated / "out.db", "SELECT passed FROM results WHERE run_id = 2") == [(1,), (1,), (1,)]
