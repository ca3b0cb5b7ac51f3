"""Per-target figures of a run, computed by SQL from the results table."""

from __future__ import annotations

import math
from typing import Any

import sqlite_utils


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
    rows = db.execute(
        """SELECT target, count(*), sum(status = 'ok'), sum(status != 'ok'), sum(input_tokens),
                  sum(output_tokens), sum(cost_usd), count(cost_usd)
           FROM results WHERE run_id = ? GROUP BY target ORDER BY min(id)""",
        [run_id],
    ).fetchall()
    out = []
    for target, items, ok, failed, tokens_in, tokens_out, cost, priced in rows:
        errors = dict(db.execute(
            "SELECT error_code, count(*) FROM results WHERE run_id = ? AND target = ? AND status != 'ok'"
            " GROUP BY error_code ORDER BY count(*) DESC", [run_id, target]).fetchall())
        out.append({
            "target": target,
            "items": items,
            "ok": ok or 0,
            "errors": failed or 0,
            "error_codes": errors,
            "p50_latency_ms": percentile(db, run_id, target, "latency_ms", 0.5),
            "p95_latency_ms": percentile(db, run_id, target, "latency_ms", 0.95),
            "p50_ttft_ms": percentile(db, run_id, target, "ttft_ms", 0.5),
            "input_tokens": tokens_in or 0,
            "output_tokens": tokens_out or 0,
            "cost_usd": cost if priced == (ok or 0) and ok else None,
        })
    return out
