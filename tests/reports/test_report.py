"""``runs`` and ``report`` against a small fixed database whose figures are computed by hand
(see the fixed_runs fixture), plus the Datasette view and the --fail-under rule."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import hanzo, write_job

# openai/a, run 1: ok 3 of 4; passed 2 of 4 (the error counts as not passed); ok latencies 100, 200, 300:
# p50 = nearest rank ceil(0.5 * 3) = 2nd = 200, p95 = ceil(0.95 * 3) = 3rd = 300; ttft p50 = 20;
# 100 output tokens in 0.6 s = 166.67/s; cost 0.006; per 1,000 items 0.006 / 4 * 1000 = 1.5.
A1 = {"target": "openai/a", "items": 4, "ok_rate": 0.75, "pass_rate": 0.5, "p50_latency_ms": 200.0,
      "p95_latency_ms": 300.0, "p50_ttft_ms": 20.0, "output_tokens_per_s": 166.67, "input_tokens": 30,
      "output_tokens": 100, "cost_usd": 0.006, "cost_per_1k_items": 1.5, "unpriced": 0,
      "unknown_input_tokens": 0, "unknown_output_tokens": 0, "answer_cost_usd": 0.006, "judge_cost_usd": None}
# local/b: 2 ok, both passing, latencies 50 and 150 (p95 = 2nd), 20 tokens in 0.2 s, no price.
B1 = {"target": "local/b", "items": 2, "ok_rate": 1.0, "pass_rate": 1.0, "p50_latency_ms": 50.0,
      "p95_latency_ms": 150.0, "p50_ttft_ms": None, "output_tokens_per_s": 100.0, "input_tokens": 10,
      "output_tokens": 20, "cost_usd": None, "cost_per_1k_items": None, "unpriced": 2,
      "unknown_input_tokens": 0, "unknown_output_tokens": 0, "answer_cost_usd": None, "judge_cost_usd": None}


def cells(line: str) -> list[str]:
    return [c for c in line.split() if c != "│"]


def approx(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def test_report_figures_match_hand_computed(fixed_runs: Path) -> None:
    done = hanzo("report", "1", "--db", fixed_runs, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"run_id": 1, "targets": approx([A1, B1])}


def test_report_sorts_best_first(fixed_runs: Path) -> None:
    by_pass = json.loads(hanzo("report", "1", "--db", fixed_runs, "--json", "--sort", "pass_rate").stdout)
    assert [t["target"] for t in by_pass["targets"]] == ["local/b", "openai/a"]
    by_cost = json.loads(hanzo("report", "1", "--db", fixed_runs, "--json", "--sort", "cost_per_1k_items").stdout)
    assert [t["target"] for t in by_cost["targets"]] == ["openai/a", "local/b"]  # unpriced last


def test_report_defaults_to_the_latest_run_and_prints_a_table(fixed_runs: Path) -> None:
    done = hanzo("report", "--db", fixed_runs)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].strip() == "run 2"
    assert cells(lines[3]) == ["openai/a", "2", "100.0%", "100.0%", "100", "100", "10", "200.0", "20", "40",
                                "0.0020", "1.0000"]


def test_report_table_says_unpriced(fixed_runs: Path) -> None:
    done = hanzo("report", "1", "--db", fixed_runs)
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("local/b"))
    assert cells(row)[-2:] == ["unpriced", "unpriced"]


def test_report_csv(fixed_runs: Path) -> None:
    done = hanzo("report", "1", "--db", fixed_runs, "--csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["target"] for r in rows] == ["openai/a", "local/b"]
    assert (rows[0]["pass_rate"], rows[0]["cost_per_1k_items"], rows[1]["cost_usd"]) == ("0.5", "1.5", "")


def test_report_change_between_two_runs(fixed_runs: Path) -> None:
    done = hanzo("report", "1", "2", "--db", fixed_runs, "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["a"], got["b"]) == (1, 2)
    a, b = got["targets"]
    assert a == approx([{
        "target": "openai/a", "items_a": 4, "items_b": 2, "items_change": -2, "ok_rate_a": 0.75, "ok_rate_b": 1.0,
        "ok_rate_change": 0.25, "pass_rate_a": 0.5, "pass_rate_b": 1.0, "pass_rate_change": 0.5,
        "p50_latency_ms_a": 200.0, "p50_latency_ms_b": 100.0, "p50_latency_ms_change": -100.0,
        "p95_latency_ms_a": 300.0, "p95_latency_ms_b": 100.0, "p95_latency_ms_change": -200.0,
        "cost_per_1k_items_a": 1.5, "cost_per_1k_items_b": 1.0, "cost_per_1k_items_change": -0.5}])[0]
    assert b["target"] == "local/b" and b["items_a"] == 2 and b["items_b"] is None and b["items_change"] is None
    table = hanzo("report", "1", "2", "--db", fixed_runs).stdout
    row = next(line for line in table.splitlines() if line.strip().startswith("openai/a"))
    assert cells(row) == ["openai/a", "2", "(-2)", "100.0%", "(+25.0)", "100.0%", "(+50.0)", "100", "(-100)",
                           "100", "(-200)", "1.0000", "(-0.5000)"]


def test_runs_lists_every_run(fixed_runs: Path) -> None:
    done = hanzo("runs", "--db", fixed_runs, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"id": 1, "job": "fixed", "status": "completed", "started_at": "2025-01-01T00:00:00.000Z",
         "finished_at": "2025-01-01T00:01:30.500Z", "duration_s": 90.5, "items_total": None, "items": 6, "ok": 5,
         "errors": 1, "pass_rate": pytest.approx(4 / 6), "cost_usd": None, "unpriced": 2},
        {"id": 2, "job": "fixed", "status": "completed", "started_at": "2025-01-02T00:00:00.000Z",
         "finished_at": "2025-01-02T00:00:10.000Z", "duration_s": 10.0, "items_total": None, "items": 2, "ok": 2,
         "errors": 0, "pass_rate": 1.0, "cost_usd": pytest.approx(0.002), "unpriced": 0},
    ]
    table = hanzo("runs", "--db", fixed_runs).stdout.splitlines()
    assert cells(table[2]) == ["1", "fixed", "completed", "2025-01-01T00:00:00.000Z", "90.5", "5", "1", "66.7%",
                                "unpriced"]


def test_report_errors(fixed_runs: Path) -> None:
    done = hanzo("report", "9", "--db", fixed_runs)
    assert (done.returncode, done.stderr.strip()) == (2, f"no run 9 in {fixed_runs}; see: hanzo-run runs --db "
                                                         f"{fixed_runs}")
    done = hanzo("report", "1", "2", "3", "--db", fixed_runs)
    assert done.returncode == 2


def test_target_summary_view_for_datasette(fixed_runs: Path) -> None:
    conn = sqlite3.connect(fixed_runs)
    try:
        cheapest = conn.execute("SELECT target, cost_per_1k_items FROM target_summary WHERE run_id = 1"
                                " AND pass_rate >= 0.5 AND cost_usd IS NOT NULL ORDER BY cost_per_1k_items").fetchall()
        indexes = {r[1] for r in conn.execute("SELECT * FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()
    assert cheapest == [("openai/a", pytest.approx(1.5))]
    assert {"results_run_status", "results_run_target", "results_run_passed", "results_target_run"} <= indexes


def test_fail_under_uses_the_pass_rate_when_the_job_has_checks(isolated: Path) -> None:
    # echo answers with the prompt: "say Paris" passes, "say Rome" fails; pass rate 0.5, ok rate 1.0.
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["say {{city}}"],
                               "data": [{"city": "Paris"}, {"city": "Rome"}], "checks": [{"contains": "Paris"}],
                               "output": "out.db"})
    assert hanzo(job, "-q").returncode == 1  # a failed check fails the run
    assert hanzo(job, "-q", "--fail-under", "0.5").returncode == 0
    assert hanzo(job, "-q", "--fail-under", "0.6").returncode == 1
    plain = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "output": "out.db"}, "plain.yaml")
    assert hanzo(plain, "-q", "--fail-under", "1").returncode == 0
