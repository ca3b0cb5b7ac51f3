"""What a person sees: a progress bar on stderr, and the per-target table at the end."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..engine.launch import RunOutcome
from ..engine.scheduler import Progress as EngineProgress
from ..store.database import open_db
from ..store.queries import target_summary


class BarProgress(EngineProgress):
    def __init__(self) -> None:
        self.bar = Progress(TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
        self.failed = 0

    def start(self, total: int | None) -> None:
        self.task = self.bar.add_task("run", total=total, failed=0)
        self.bar.start()

    def advance(self, ok: int, failed: int) -> None:
        self.failed += failed
        self.bar.update(self.task, advance=ok + failed, failed=self.failed)

    def close(self) -> None:
        self.bar.stop()


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_outcome(outcome: RunOutcome, *, quiet: bool, as_json: bool) -> None:
    db = open_db(outcome.db_path)
    try:
        rows = target_summary(db, outcome.run_id)
    finally:
        db.close()
    if as_json:
        print(json.dumps({"run_id": outcome.run_id, "db": str(outcome.db_path), "status": outcome.status,
                          "items": outcome.items, "ok": outcome.ok, "failed": outcome.failed,
                          "cost_usd": outcome.cost_usd, "targets": rows}, indent=2))
        return
    err = Console(stderr=True)
    if not quiet:
        Console(width=None if sys.stdout.isatty() else 200).print(summary_table(rows))
    if outcome.status == "interrupted":
        err.print(f"[yellow]interrupted[/]: {outcome.ok + outcome.failed} results kept in {outcome.db_path} "
                  f"(run {outcome.run_id})")
    elif not quiet or outcome.failed:
        err.print(f"run {outcome.run_id}: {outcome.ok} ok, {outcome.failed} failed; results in {outcome.db_path}")
    if outcome.failed:
        for row in rows:
            for code, count in row["error_codes"].items():
                example = _shorten(row["error_examples"][code] or "", 200)
                err.print(f"  {row['target']}: {count} x {code}: {example}", markup=False, highlight=False,
                          soft_wrap=True)


def summary_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for name in ("target", "ok", "errors", "p50 ms", "p95 ms", "p50 ttft ms", "tokens in", "tokens out", "cost $"):
        table.add_column(name, justify="left" if name == "target" else "right")
    # Shown only when some answer reported them (reasoning models, prompt caches).
    details = [k for k in ("reasoning_tokens", "cached_input_tokens") if any(r.get(k) is not None for r in rows)]
    for name in details:
        table.add_column({"reasoning_tokens": "reasoning", "cached_input_tokens": "cached in"}[name], justify="right")
    for r in rows:
        cost = "-" if not r["ok"] else "unpriced" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        table.add_row(r["target"], str(r["ok"]), f"[red]{r['errors']}[/]" if r["errors"] else "0",
                      _ms(r["p50_latency_ms"]), _ms(r["p95_latency_ms"]), _ms(r["p50_ttft_ms"]),
                      f"{r['input_tokens']:,}", f"{r['output_tokens']:,}", cost,
                      *("-" if r.get(k) is None else f"{r[k]:,}" for k in details))
    return table


