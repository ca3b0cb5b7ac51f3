"""The Run page: the targets side by side (figures and small charts), then the item grid, one
row per prompt x data row x repeat and one column per target, a page at a time.

``run_context`` gathers everything the page shows from the database, with no request in sight:
the app renders it (``run_page``) and ``report --html`` writes it to a file (runner/view/export.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlite_utils
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..reports.items import answer_text, clip, parse_checks, parse_failed_checks, parse_vars, verdict
from ..store.grid import CellKey, GridFilter, grid_page
from ..store.queries import batch_states, duration_s, saved_target_figures, target_summary
from ..store.records import RunRecord
from ..store.runs import previous_run, resolve_run
from .pages import database, int_param, render
from .runs import LIVE_STATUSES, shown

PAGE_SIZE = 50
CELL_TEXT = 600  # characters of an answer in a grid cell; the item page has all of it
VAR_TEXT = 80


@dataclass(frozen=True)
class Bar:
    label: str
    fraction: float  # of the chart's widest bar
    shown: str
    behind: float | None = None  # a second, lighter bar under it (p95 under p50)


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]


def run_context(db: sqlite_utils.Database, run: RunRecord, grid_filter: GridFilter, *, size: int = PAGE_SIZE,
                after: CellKey | None = None, before: CellKey | None = None,
                figures: list[dict[str, Any]] | None = None, batches: dict[str, int] | None = None) -> dict[str, Any]:
    """What the Run page shows. ``figures``: the targets' figures when the caller has them already;
    ``batches``: how many of the run's provider batches are in each state."""
    targets = figures if figures is not None else target_summary(db, run.id, details=False)
    shown_targets = [t["target"] for t in targets if grid_filter.target in (None, t["target"])]
    page = grid_page(db, run.id, grid_filter, size=size, after=after, before=before)
    return {
        "run": run, "shown": shown(totals(run, targets), batches), "live": run.status in LIVE_STATUSES,
        "targets": targets, "charts": charts(targets), "filter": grid_filter,
        "columns": shown_targets, "rows": [grid_row(key, page.cells[key], shown_targets) for key in page.keys],
        "before": encode_key(page.before), "after": encode_key(page.after), "paged": after is not None,
        "size": size, "default_size": PAGE_SIZE,
    }


def totals(run: RunRecord, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's figures summed over its targets, shaped as a row of the Runs page."""
    items, ok = sum(t["items"] for t in targets), sum(t["ok"] for t in targets)
    checked = any(t["pass_rate"] is not None for t in targets)
    unpriced = sum(t["unpriced"] for t in targets)
    cost = None if unpriced or not ok else sum(t["cost_usd"] or 0.0 for t in targets)
    return {"status": run.status, "items": items, "items_total": run.items_total, "ok": ok, "errors": items - ok,
            "pass_rate": sum(t["passed"] for t in targets) / items if checked and items else None,
            "cost_usd": cost, "unpriced": unpriced, "duration_s": duration_s(run.started_at, run.finished_at)}


def charts(targets: list[dict[str, Any]]) -> list[Chart]:
    """Latency (p50 over p95), pass rate (ok rate without checks) and cost per 1,000 items, per target."""
    ms = _chart("Latency, ms (p50; lighter: p95)", targets, "p50_latency_ms", lambda v: f"{v:,.0f}",
                behind="p95_latency_ms")
    rate_key = "pass_rate" if any(t["pass_rate"] is not None for t in targets) else "ok_rate"
    rate = _chart("Pass rate" if rate_key == "pass_rate" else "Ok rate", targets, rate_key,
                  lambda v: f"{v * 100:.1f}%", top=1.0)
    cost = _chart("Cost per 1,000 items, $", targets, "cost_per_1k_items", lambda v: f"{v:.4f}")
    return [c for c in (ms, rate, cost) if c is not None]


def _chart(title: str, targets: list[dict[str, Any]], key: str, fmt: Any, *, behind: str | None = None,
           top: float | None = None) -> Chart | None:
    values = [t[key] for t in targets if t[key] is not None] + [t[behind] for t in targets if behind and t[behind]]
    if not values:
        return None
    top = top or max(values) or 1.0
    bars = [Bar(t["target"], (t[key] or 0) / top, "-" if t[key] is None else fmt(t[key]),
                (t[behind] or 0) / top if behind and t[behind] is not None else None) for t in targets]
    return Chart(title, bars)


def grid_row(key: CellKey, results: dict[str, dict[str, Any]], targets: list[str]) -> dict[str, Any]:
    """One row of the grid: the item by its variables (else its prompt), then each target's cell."""
    row_index, prompt_id, repeat_index = key
    first = next(iter(results.values()), {})
    return {
        "key": key, "prompt_id": prompt_id, "row_index": None if row_index < 0 else row_index,
        "repeat_index": repeat_index, "vars": variables(first.get("vars")),
        "prompt": clip(str(first.get("prompt") or ""), CELL_TEXT),
        "query": urlencode({"row": row_index, "prompt": prompt_id, "repeat": repeat_index}),
        "cells": [cell(results[t]) if t in results else None for t in targets],
    }


def cell(result: dict[str, Any]) -> dict[str, Any]:
    """One target's answer to an item, as a grid cell shows it."""
    state = verdict(result)
    return {
        "verdict": state, "answer": clip(str(result["response_text"] or ""), CELL_TEXT),
        "error": answer_text(result) if state == "error" else None,
        "failed_checks": parse_failed_checks(result["failed_checks"]), "judged": judged(result.get("checks")),
        "latency_ms": result["latency_ms"], "cost_usd": result["cost_usd"],
    }


def variables(raw: str | None) -> list[tuple[str, str]]:
    """The data row's variables (``results.vars``, a JSON object), each value cut short."""
    return [(str(k), clip(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False), VAR_TEXT))
            for k, v in (parse_vars(raw) or {}).items()]


def judged(raw: str | None) -> list[dict[str, Any]]:
    """The checks a grader judged, or that gave a score, from ``results.checks`` (m009): name, passed,
    score, reason."""
    return [{"name": str(c.get("name", "?")), "passed": c.get("passed"), "score": c.get("score"),
             "reason": str(c.get("reason") or "")}
            for c in parse_checks(raw) if c.get("score") is not None or "grader" in c]


def encode_key(key: CellKey | None) -> str | None:
    """A cell key as one query parameter: "row.repeat.prompt" (the prompt id last: it may hold dots)."""
    return None if key is None else f"{key[0]}.{key[2]}.{key[1]}"


def decode_key(raw: str | None) -> CellKey | None:
    if not raw:
        return None
    parts = raw.split(".", 2)
    try:
        return (int(parts[0]), parts[2], int(parts[1])) if len(parts) == 3 else None
    except ValueError:
        return None


def grid_filter_of(request: Request) -> GridFilter:
    q = request.query_params
    return GridFilter(failed_only=q.get("failed") == "1", target=q.get("target") or None,
                      text=(q.get("q") or "").strip() or None)


def find_run(db: sqlite_utils.Database, run_id: int) -> RunRecord:
    run = resolve_run(db, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id} in this database")
    return run


def run_page(request: Request) -> Response:
    run_id = int(request.path_params["run_id"])
    grid_filter = grid_filter_of(request)
    size = min(max(int_param(request, "size") or PAGE_SIZE, 1), 200)
    view = request.app.state.view
    with database(request) as db:
        run = find_run(db, run_id)
        memo_key = (run.id, run.status, run.finished_at)
        figures = view.figures.get(memo_key)
        if figures is None and run.status != "running":
            figures = saved_target_figures(db, run.id, run.finished_at)
        context = run_context(db, run, grid_filter, size=size, after=decode_key(request.query_params.get("after")),
                              before=decode_key(request.query_params.get("before")), figures=figures,
                              batches=batch_states(db).get(run.id))
        if run.status != "running":  # a finished run's figures no longer change: summed once
            view.figures[memo_key] = context["targets"]
        before = previous_run(db, run)
    if grid_filter.target is not None and grid_filter.target not in [t["target"] for t in context["targets"]]:
        raise HTTPException(404, f"run {run_id} has no target {grid_filter.target}")
    return render(request, "run.html", previous=before.id if before else None, **context)


routes = [Route("/runs/{run_id:int}", run_page)]
