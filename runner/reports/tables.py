"""The comparison per target of one run, the change between two runs, and the runs list,
as rich tables, CSV or JSON. The figures are runner/summary.py's."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import sqlite_utils

from ..store.queries import list_runs, target_summary

COLUMNS = ("target", "items", "ok_rate", "pass_rate", "p50_latency_ms", "p95_latency_ms", "p50_ttft_ms",
           "output_tokens_per_s", "input_tokens", "output_tokens", "cost_usd", "cost_per_1k_items", "unpriced",
           "unknown_input_tokens", "unknown_output_tokens", "answer_cost_usd", "judge_cost_usd")
# --sort keys, best first: rates and throughput high to low, latency and cost low to high.
SORTS = {"target": False, "items": True, "ok_rate": True, "pass_rate": True, "p50_latency_ms": False,
         "p95_latency_ms": False, "p50_ttft_ms": False, "output_tokens_per_s": True, "cost_usd": False,
         "cost_per_1k_items": False}
DIFF_FIELDS = ("items", "ok_rate", "pass_rate", "p50_latency_ms", "p95_latency_ms", "cost_per_1k_items")


def comparison(db: sqlite_utils.Database, run_id: int, sort: str | None = None) -> list[dict[str, Any]]:
    rows = [{c: r[c] for c in COLUMNS} for r in target_summary(db, run_id)]
    if sort:
        descending = SORTS[sort]
        present = [r for r in rows if r[sort] is not None]
        rows = sorted(present, key=lambda r: r[sort], reverse=descending) + [r for r in rows if r[sort] is None]
    return rows


def change(db: sqlite_utils.Database, a: int, b: int) -> list[dict[str, Any]]:
    """Per target of either run: its figures in A and B and B minus A (None where either lacks it)."""
    before = {r["target"]: r for r in comparison(db, a)}
    after = {r["target"]: r for r in comparison(db, b)}
    out = []
    for target in [*after, *(t for t in before if t not in after)]:
        old, new = before.get(target), after.get(target)
        row: dict[str, Any] = {"target": target}
        for f in DIFF_FIELDS:
            x, y = old.get(f) if old else None, new.get(f) if new else None
            row[f"{f}_a"], row[f"{f}_b"] = x, y
            row[f"{f}_change"] = None if x is None or y is None else round(y - x, 6)
        out.append(row)
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _usd(value: float | None, unpriced: int = 0) -> str:
    return "unpriced" if value is None and unpriced else "-" if value is None else f"{value:.4f}"


def tokens_cell(total: int, unknown: int) -> str:
    """A token total as shown: "?" when no answer reported usage, "1,234 + ?" when some did not (never 0)."""
    if not unknown:
        return f"{total:,}"
    return f"{total:,} + ?" if total else "?"


def cost_split(rows: list[dict[str, Any]]) -> bool:
    """Whether a table shows answer and judge cost apart from what the run paid: when it had judges, or answers
    from the cache (whose cost is what they first cost, not what this run paid)."""
    return any(r.get("judge_cost_usd") is not None or r.get("answer_cost_usd") != r["cost_usd"] for r in rows)


def comparison_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    split = cost_split(rows)
    table = Table(show_edge=False, header_style="bold", title=title, title_justify="left")
    for name in ("target", "items", "ok", "pass", "p50 ms", "p95 ms", "p50 ttft ms", "out tok/s", "tokens in",
                 "tokens out", "cost $", "$ / 1k items", *(("answer $", "judge $") if split else ())):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in rows:
        extra = (_usd(r["answer_cost_usd"], r["unpriced"]), _usd(r["judge_cost_usd"])) if split else ()
        table.add_row(r["target"], f"{r['items']:,}", _pct(r["ok_rate"]), _pct(r["pass_rate"]),
                      _num(r["p50_latency_ms"]), _num(r["p95_latency_ms"]), _num(r["p50_ttft_ms"]),
                      _num(r["output_tokens_per_s"], 1),
                      tokens_cell(r["input_tokens"], r["unknown_input_tokens"]),
                      tokens_cell(r["output_tokens"], r["unknown_output_tokens"]),
                      _usd(r["cost_usd"], r["unpriced"]), _usd(r["cost_per_1k_items"], r["unpriced"]), *extra)
    return table


def change_table(rows: list[dict[str, Any]], a: int, b: int) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold", title=f"run {b} against run {a}", title_justify="left")
    for name in ("target", "items", "ok", "pass", "p50 ms", "p95 ms", "$ / 1k items"):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in rows:
        cells = [r["target"]]
        for f in DIFF_FIELDS:
            x, y, d = r[f"{f}_a"], r[f"{f}_b"], r[f"{f}_change"]
            if f in ("ok_rate", "pass_rate"):
                shown = f"{_pct(y)} ({'-' if d is None else f'{d * 100:+.1f}'})"
            elif f == "cost_per_1k_items":
                shown = f"{_usd(y)} ({'-' if d is None else f'{d:+.4f}'})"
            else:
                shown = f"{_num(y)} ({'-' if d is None else f'{d:+,.0f}'})"
            cells.append(shown if x is not None or y is not None else "-")
        table.add_row(*cells)
    return table


def runs_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list_runs(db)


def runs_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for name in ("id", "job", "status", "started", "duration s", "ok", "errors", "pass", "cost $"):
        table.add_column(name, justify="left" if name in ("job", "status", "started") else "right")
    for r in rows:
        table.add_row(str(r["id"]), r["job"], r["status"], r["started_at"], _num(r["duration_s"], 1), str(r["ok"]),
                      str(r["errors"]), _pct(r["pass_rate"]), _usd(r["cost_usd"], r["unpriced"]))
    return table
