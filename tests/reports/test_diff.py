"""Regressions between two hand-made runs: matching by stable key, every kind of change, totals."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from runner.reports.diff import CHANGES, Side, diff_renderable, diff_runs, regressed, to_dict, to_json
from runner.store.database import open_db
from runner.store.records import ResultRow

FAILED = [{"check": "contains", "reason": "answer does not contain 'Paris'"}]


def result(run_id: int, key: str, verdict: str, row_index: int, target: str = "openai/a", repeat: int = 0,
           answer: str = "Paris.") -> dict[str, Any]:
    """verdict: pass (checked), ok (nothing checked), fail, or error."""
    provider, _, model = target.partition("/")
    row: dict[str, Any] = dict.fromkeys(ResultRow._fields)
    row.update(run_id=run_id, item_key=key, target=target, provider=provider, model=model, prompt_id="capital",
               row_index=row_index, repeat_index=repeat, prompt=f"question {row_index}", attempts=1)
    if verdict == "error":
        row.update(status="error", error_code="SERVER_ERROR", error_message="HTTP 500")
    else:
        row.update(status="ok", response_text=answer, passed={"pass": 1, "ok": None, "fail": 0}[verdict],
                   failed_checks=json.dumps(FAILED) if verdict == "fail" else None)
    return row


RUN_A = [
    result(1, "a0", "pass", 0),
    result(1, "a1", "fail", 1, answer="Lyon."),
    result(1, "a2", "pass", 2),
    result(1, "a3", "error", 3),
    result(1, "a4", "pass", 4),
    result(1, "a5", "pass", 5),
    result(1, "b0", "ok", 0, target="local/b"),
]
# item keys differ from A's on purpose: B ran with new parameters, and items still match.
RUN_B = [
    result(2, "x0", "fail", 0, answer="Lyon."),
    result(2, "x1", "pass", 1),
    result(2, "x2", "error", 2),
    result(2, "x3", "ok", 3),
    result(2, "x4", "pass", 4),
    result(2, "x6", "pass", 5, repeat=1),
    result(2, "y0", "ok", 0, target="local/b"),
    result(2, "z0", "pass", 0, target="new/c"),
]


def make_db(path: Path, runs: dict[int, list[dict[str, Any]]]) -> sqlite_utils.Database:
    db = open_db(path)
    with db.atomic():
        for run_id, rows in runs.items():
            db["runs"].insert({"id": run_id, "job_name": "j", "status": "completed", "started_at": "2025-01-01"})
            db["results"].insert_all(rows)
    return db


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return make_db(tmp_path / "runs.db", {1: RUN_A, 2: RUN_B})


def test_every_kind_of_change_is_found_by_stable_key(db: sqlite_utils.Database) -> None:
    diff = diff_runs(db, 1, 2)
    assert [t.target for t in diff.targets] == ["openai/a", "local/b", "new/c"]
    a = diff.targets[0]
    assert [(c.change, c.row_index, c.repeat_index) for c in a.changes] == [
        ("pass_to_fail", 0, 0), ("ok_to_error", 2, 0), ("fail_to_pass", 1, 0), ("error_to_ok", 3, 0),
        ("only_in_a", 5, 0), ("only_in_b", 5, 1)]
    assert a.totals == {"items_a": 6, "items_b": 6, "unchanged": 1, "pass_to_fail": 1, "ok_to_error": 1,
                        "fail_to_pass": 1, "error_to_ok": 1, "only_in_a": 1, "only_in_b": 1}
    assert diff.targets[1].changes == [] and diff.targets[1].totals["unchanged"] == 1  # unchecked ok = pass
    assert [c.change for c in diff.targets[2].changes] == ["only_in_b"]
    assert diff.totals == {"items_a": 7, "items_b": 8, "unchanged": 2, "pass_to_fail": 1, "ok_to_error": 1,
                           "fail_to_pass": 1, "error_to_ok": 1, "only_in_a": 1, "only_in_b": 2}


def test_both_answers_are_kept_side_by_side(db: sqlite_utils.Database) -> None:
    changes = {c.change: c for c in diff_runs(db, 1, 2).targets[0].changes}
    assert changes["pass_to_fail"].a == Side("a0", "pass", "Paris.", [])
    assert changes["pass_to_fail"].b == Side("x0", "fail", "Lyon.", FAILED)
    assert changes["ok_to_error"].b == Side("x2", "error", "SERVER_ERROR: HTTP 500", [])
    assert changes["error_to_ok"].a == Side("a3", "error", "SERVER_ERROR: HTTP 500", [])
    assert changes["error_to_ok"].b == Side("x3", "pass", "Paris.", [])
    assert changes["only_in_a"].b is None and changes["only_in_b"].a is None


def test_regressed_decides_the_exit_code(db: sqlite_utils.Database, tmp_path: Path) -> None:
    assert regressed(diff_runs(db, 1, 2))
    assert not regressed(diff_runs(db, 1, 1))  # nothing changed
    # Only improvements and new items: not a regression.
    better = make_db(tmp_path / "better.db", {1: [result(1, "a", "fail", 0), result(1, "b", "error", 1)],
                                              2: [result(2, "a", "pass", 0), result(2, "b", "fail", 1),
                                                  result(2, "d", "pass", 3)]})
    diff = diff_runs(better, 1, 2)
    assert not regressed(diff)
    assert {name: diff.totals[name] for name in CHANGES} == {
        "pass_to_fail": 0, "ok_to_error": 0, "fail_to_pass": 1, "error_to_ok": 1, "only_in_a": 0, "only_in_b": 1}
    # An item of A without a result in B (B interrupted, a row removed) is (issue 17 item 7).
    fewer = make_db(tmp_path / "fewer.db", {1: [result(1, "a", "pass", 0), result(1, "c", "pass", 2)],
                                            2: [result(2, "a", "pass", 0)]})
    assert regressed(diff_runs(fewer, 1, 2))


def test_runs_from_two_databases(tmp_path: Path) -> None:
    old = make_db(tmp_path / "old.db", {1: RUN_A})
    new = make_db(tmp_path / "new.db", {7: [{**r, "run_id": 7} for r in RUN_B]})
    diff = diff_runs(old, 1, 7, db_b=new)
    assert (diff.run_a, diff.run_b) == (1, 7)
    assert diff.totals == diff_runs(make_db(tmp_path / "one.db", {1: RUN_A, 2: RUN_B}), 1, 2).totals


def test_json_is_plain_data(db: sqlite_utils.Database) -> None:
    data = json.loads(to_json(diff_runs(db, 1, 2)))
    assert data == to_dict(diff_runs(db, 1, 2))
    assert data["regressed"] is True and data["run_a"] == 1 and data["run_b"] == 2
    first = data["targets"][0]["changes"][0]
    assert first == {"change": "pass_to_fail", "target": "openai/a", "prompt_id": "capital", "row_index": 0,
                     "repeat_index": 0, "vars": None,
                     "a": {"item_key": "a0", "outcome": "pass", "answer": "Paris.", "failed_checks": []},
                     "b": {"item_key": "x0", "outcome": "fail", "answer": "Lyon.", "failed_checks": FAILED}}


def render(renderable: Any) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=140, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_the_terminal_shows_totals_and_both_answers(db: sqlite_utils.Database) -> None:
    out = render(diff_renderable(diff_runs(db, 1, 2)))
    assert "run 1 → run 2" in out
    assert "pass → fail" in out and "ok → error" in out and "only in B" in out
    assert "Lyon." in out and "SERVER_ERROR: HTTP 500" in out
    assert "✗ contains: answer does not contain 'Paris'" in out
    assert "no item changed" in render(diff_renderable(diff_runs(db, 2, 2)))
