"""Per-target and per-run figures, computed by SQL from the results table.

The per-target sums come from the ``target_summary`` view (runner/store.py), so the
report, the end-of-run table and Datasette agree; percentiles are added here.

Definitions: ok rate = ok answers / items; pass rate = items whose checks all passed /
items (a failed request counts as not passed; None when the run has no checks);
output tokens per second = output tokens / seconds of latency, over ok answers;
cost per 1,000 items = cost / items x 1000; a cost is None when any ok answer is unpriced.
Cost is what the run paid; answer cost what the answers cost (a cached one at its first cost) and
judge cost what the verdicts cost (likewise), so a cached run's figures still compare models.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

SUMMARY_COLUMNS = ("target", "provider", "model", "items", "ok", "errors", "ok_rate", "passed", "pass_rate",
                   "avg_latency_ms", "input_tokens", "output_tokens", "output_tokens_per_s", "unpriced",
                   "cost_usd", "cost_per_1k_items", "answer_cost_usd", "judge_cost_usd")


def percentiles(db: sqlite_utils.Database, run_id: int, target: str, column: str,
                fractions: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles of ``column`` over the target's ok results, without loading them all
    (counted once; each is one row read at its offset, in index order for latency, m011)."""
    where = f"run_id = ? AND target = ? AND status = 'ok' AND {column} IS NOT NULL"
    count = next(db.query(f"SELECT count(*) AS n FROM results WHERE {where}", [run_id, target]))["n"]
    if not count:
        return [None for _ in fractions]
    out: list[float | None] = []
    for fraction in fractions:
        offset = max(math.ceil(fraction * count) - 1, 0)
        row = next(db.query(f"SELECT {column} AS value FROM results WHERE {where} ORDER BY {column} LIMIT 1 OFFSET ?",
                            [run_id, target, offset]))
        out.append(float(row["value"]))
    return out


def percentile(db: sqlite_utils.Database, run_id: int, target: str, column: str, fraction: float) -> float | None:
    return percentiles(db, run_id, target, column, [fraction])[0]


def target_summary(db: sqlite_utils.Database, run_id: int, *, details: bool = True) -> list[dict[str, Any]]:
    """One dict per target of the run, in the order the targets first finished.

    Without ``details`` (the web view's first screen), no error codes and no reasoning or cached token
    counts: each of those reads every row of the target, the rest comes from indexes alone (m011).
    """
    rows = list(db.query(f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM target_summary WHERE run_id = ?"
                         " ORDER BY first_result_id", [run_id]))
    out = []
    for row in rows:
        target = row["target"]
        row["p50_latency_ms"], row["p95_latency_ms"] = percentiles(db, run_id, target, "latency_ms", (0.5, 0.95))
        row["p50_ttft_ms"] = percentile(db, run_id, target, "ttft_ms", 0.5)
        # Ok answers that reported no usage: their tokens are unknown, not 0, so a total with them is partial.
        unknown = next(db.query(
            "SELECT coalesce(sum(input_tokens IS NULL), 0) AS input, coalesce(sum(output_tokens IS NULL), 0) AS output"
            " FROM results WHERE run_id = ? AND target = ? AND status = 'ok'", [run_id, target]))
        row["unknown_input_tokens"], row["unknown_output_tokens"] = unknown["input"], unknown["output"]
        out.append(row)
        if not details:
            continue
        errors = list(db.query(
            "SELECT error_code, count(*) AS n, min(error_message) AS example FROM results"
            " WHERE run_id = ? AND target = ? AND status != 'ok' GROUP BY error_code ORDER BY count(*) DESC",
            [run_id, target]))
        row["error_codes"] = {e["error_code"]: e["n"] for e in errors}
        row["error_examples"] = {e["error_code"]: e["example"] for e in errors}  # one message per code
        row.update(token_details(db, run_id, target))
        row["price_source"] = price_sources(db, run_id, target)
    return out


def save_target_figures(db: sqlite_utils.Database, run_id: int, finished_at: str) -> None:
    """Keep the finished run's ``target_summary`` (without details) for ``saved_target_figures``."""
    figures = json.dumps(target_summary(db, run_id, details=False))
    db.execute("INSERT OR REPLACE INTO run_figures (run_id, finished_at, targets) VALUES (?, ?, ?)",
               [run_id, finished_at, figures])


def saved_target_figures(db: sqlite_utils.Database, run_id: int,
                         finished_at: str | None) -> list[dict[str, Any]] | None:
    """The figures saved when the run finished at ``finished_at``; None when it has none saved for that
    finish (running again since, or finished by a hanzo-run that did not save them)."""
    row = next(db.query("SELECT finished_at, targets FROM run_figures WHERE run_id = ?", [run_id]), None)
    if row is None or finished_at is None or row["finished_at"] != finished_at:
        return None
    figures: list[dict[str, Any]] = json.loads(row["targets"])
    return figures


def token_details(db: sqlite_utils.Database, run_id: int, target: str) -> dict[str, int | None]:
    """Reasoning and cached input tokens of a target's results; None where no answer reported them."""
    return dict(next(db.query(
        "SELECT sum(reasoning_tokens) AS reasoning_tokens, sum(cached_input_tokens) AS cached_input_tokens"
        " FROM results WHERE run_id = ? AND target = ?", [run_id, target])))


def price_sources(db: sqlite_utils.Database, run_id: int, target: str) -> str | None:
    """What priced a target's answers (``genai-prices 0.2.5``, ``provider file sambanova.yaml``, ...), joined
    by ", "; None when nothing did."""
    rows = db.query("SELECT DISTINCT price_source FROM results WHERE run_id = ? AND target = ?"
                    " AND price_source IS NOT NULL ORDER BY price_source", [run_id, target])
    return ", ".join(r["price_source"] for r in rows) or None


def run_rates(db: sqlite_utils.Database, run_id: int) -> tuple[int, float | None, float | None]:
    """(items, ok rate, pass rate) of a run; a rate is None when there are no items (pass: no checks)."""
    row = next(db.query(
        "SELECT count(*) AS items, coalesce(sum(status = 'ok'), 0) AS ok, coalesce(sum(passed), 0) AS passed,"
        " count(passed) AS checked FROM results WHERE run_id = ?", [run_id]))
    items, ok, passed, checked = row["items"], row["ok"], row["passed"], row["checked"]
    if not items:
        return 0, None, None
    return items, ok / items, (passed / items if checked else None)


def list_runs(db: sqlite_utils.Database, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Every run in the database (or those of ``ids``), oldest first, with counts taken from its results."""
    marks = ", ".join("?" for _ in ids or ())
    rows = db.query(
        f"""SELECT runs.id, runs.job_name, runs.status, runs.started_at, runs.finished_at, runs.items_total,
                  coalesce(r.items, 0) AS items, coalesce(r.ok, 0) AS ok, coalesce(r.errors, 0) AS errors,
                  r.passed, r.checked, r.cost_usd, coalesce(r.unpriced, 0) AS unpriced
           FROM runs LEFT JOIN (
               SELECT run_id, count(*) AS items, sum(status = 'ok') AS ok, sum(status != 'ok') AS errors,
                      sum(passed) AS passed, count(passed) AS checked, sum(cost_usd) AS cost_usd,
                      sum(status = 'ok' AND cost_usd IS NULL) AS unpriced
               FROM results {f"WHERE run_id IN ({marks})" if ids is not None else ""} GROUP BY run_id
           ) AS r ON r.run_id = runs.id
           {f"WHERE runs.id IN ({marks})" if ids is not None else ""}
           ORDER BY runs.id""", [*(ids or ()), *(ids or ())]
    )
    out = []
    for r in rows:
        items, ok, unpriced = r["items"], r["ok"], r["unpriced"]
        out.append({
            "id": r["id"], "job": r["job_name"], "status": r["status"], "started_at": r["started_at"],
            "finished_at": r["finished_at"], "duration_s": duration_s(r["started_at"], r["finished_at"]),
            "items_total": r["items_total"], "items": items, "ok": ok, "errors": r["errors"],
            "pass_rate": r["passed"] / items if r["checked"] and items else None,
            "cost_usd": r["cost_usd"] if not unpriced and ok else None, "unpriced": unpriced,
        })
    return out


def duration_s(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    start, end = (datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (started, finished))
    return round((end - start).total_seconds(), 3)


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


def batch_states(db: sqlite_utils.Database) -> dict[int, dict[str, int]]:
    """Per run that sent batches: how many of its batches are in each state."""
    states: dict[int, dict[str, int]] = {}
    for r in db.query("SELECT run_id, status, count(*) AS n FROM batches GROUP BY run_id, status ORDER BY status"):
        states.setdefault(r["run_id"], {})[r["status"]] = r["n"]
    return states


def run_batches(db: sqlite_utils.Database, run_id: int, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The run's provider batches (``columns`` of each), in the order they were made."""
    return list(db.query(f"SELECT {', '.join(columns)} FROM batches WHERE run_id = ? ORDER BY id", [run_id]))
