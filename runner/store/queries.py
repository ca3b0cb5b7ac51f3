"""Per-target and per-run figures, computed by SQL from the results table.

The per-target sums come from the ``target_summary`` view (runner/store.py), so the
report, the end-of-run table and Datasette agree; percentiles are added here.

Definitions: ok rate = ok answers / items; pass rate = items whose checks all passed /
items (a failed request counts as not passed; None when the run has no checks);
output tokens per second = output tokens / seconds of latency, over ok answers;
cost per 1,000 items = cost / items x 1000; a cost is None when any ok answer is unpriced.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import sqlite_utils

SUMMARY_COLUMNS = ("target", "provider", "model", "items", "ok", "errors", "ok_rate", "passed", "pass_rate",
                   "avg_latency_ms", "input_tokens", "output_tokens", "output_tokens_per_s", "unpriced",
                   "cost_usd", "cost_per_1k_items")


def percentile(db: sqlite_utils.Database, run_id: int, target: str, column: str, fraction: float) -> float | None:
    """Nearest-rank percentile of ``column`` over the target's ok results, without loading them all."""
    where = f"run_id = ? AND target = ? AND status = 'ok' AND {column} IS NOT NULL"
    (count,) = db.execute(f"SELECT count(*) FROM results WHERE {where}", [run_id, target]).fetchone()
    if not count:
        return None
    offset = max(math.ceil(fraction * count) - 1, 0)
    row = db.execute(f"SELECT {column} FROM results WHERE {where} ORDER BY {column} LIMIT 1 OFFSET ?",
                     [run_id, target, offset]).fetchone()
    return float(row[0])


def target_summary(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """One dict per target of the run, in the order the targets first finished."""
    rows = db.execute(f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM target_summary WHERE run_id = ?"
                      " ORDER BY first_result_id", [run_id]).fetchall()
    out = []
    for values in rows:
        row = dict(zip(SUMMARY_COLUMNS, values, strict=True))
        target = row["target"]
        errors = db.execute(
            "SELECT error_code, count(*), min(error_message) FROM results WHERE run_id = ? AND target = ?"
            " AND status != 'ok' GROUP BY error_code ORDER BY count(*) DESC", [run_id, target]).fetchall()
        row["error_codes"] = {code: count for code, count, _ in errors}
        row["error_examples"] = {code: example for code, _, example in errors}  # one message per code
        row["p50_latency_ms"] = percentile(db, run_id, target, "latency_ms", 0.5)
        row["p95_latency_ms"] = percentile(db, run_id, target, "latency_ms", 0.95)
        row["p50_ttft_ms"] = percentile(db, run_id, target, "ttft_ms", 0.5)
        out.append(row)
    return out


def run_rates(db: sqlite_utils.Database, run_id: int) -> tuple[int, float | None, float | None]:
    """(items, ok rate, pass rate) of a run; a rate is None when there are no items (pass: no checks)."""
    items, ok, passed, checked = db.execute(
        "SELECT count(*), coalesce(sum(status = 'ok'), 0), coalesce(sum(passed), 0), count(passed)"
        " FROM results WHERE run_id = ?", [run_id]).fetchone()
    if not items:
        return 0, None, None
    return items, ok / items, (passed / items if checked else None)


def list_runs(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every run in the database, oldest first, with counts taken from its results."""
    rows = db.execute(
        """SELECT runs.id, runs.job_name, runs.status, runs.started_at, runs.finished_at, runs.items_total,
                  coalesce(r.items, 0), coalesce(r.ok, 0), coalesce(r.errors, 0), r.passed, r.checked,
                  r.cost_usd, coalesce(r.unpriced, 0)
           FROM runs LEFT JOIN (
               SELECT run_id, count(*) AS items, sum(status = 'ok') AS ok, sum(status != 'ok') AS errors,
                      sum(passed) AS passed, count(passed) AS checked, sum(cost_usd) AS cost_usd,
                      sum(status = 'ok' AND cost_usd IS NULL) AS unpriced
               FROM results GROUP BY run_id) AS r ON r.run_id = runs.id
           ORDER BY runs.id"""
    ).fetchall()
    out = []
    for (run_id, job, status, started, finished, total, items, ok, errors, passed, checked, cost,
         unpriced) in rows:
        out.append({
            "id": run_id, "job": job, "status": status, "started_at": started, "finished_at": finished,
            "duration_s": duration_s(started, finished), "items_total": total, "items": items, "ok": ok,
            "errors": errors, "pass_rate": passed / items if checked and items else None,
            "cost_usd": cost if not unpriced and ok else None, "unpriced": unpriced,
        })
    return out


def duration_s(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    start, end = (datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (started, finished))
    return round((end - start).total_seconds(), 3)


def latest_run_id(db: sqlite_utils.Database) -> int | None:
    row = db.execute("SELECT max(id) FROM runs").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def run_exists(db: sqlite_utils.Database, run_id: int) -> bool:
    return db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is not None


def run_failed(db_path: Path, run_id: int, fail_under: float | None, *, checked: bool) -> bool:
    """Whether a finished run should exit 1.

    Without ``fail_under``: any failed item or failed check. With it: the pass rate (the ok
    rate when the job has no checks) is below ``fail_under``, so a nightly job can tolerate
    the odd transient error.
    """
    db = sqlite_utils.Database(db_path)
    try:
        items, ok_rate, pass_rate = run_rates(db, run_id)
    finally:
        db.close()
    if not items:
        return False
    rate = (pass_rate or 0.0) if checked else ok_rate
    assert rate is not None
    if fail_under is None:
        return rate < 1.0 or (ok_rate or 0.0) < 1.0
    return rate < fail_under
