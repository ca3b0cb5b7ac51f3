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
from ..reports.outcome import RunFigures, checks_table, pct, run_figures, summary_line
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


def render_outcome(outcome: RunOutcome, *, quiet: bool, as_json: bool,
                   fail_under: float | None = None) -> RunFigures:
    """Print the run's table and summary line (unless quiet); the figures that decide its exit."""
    db = open_db(outcome.db_path)
    try:
        rows = target_summary(db, outcome.run_id)
        figures = run_figures(db, outcome.run_id, outcome.db_path, checked=outcome.checked, fail_under=fail_under)
    finally:
        db.close()
    if as_json:
        print(json.dumps({"run_id": outcome.run_id, "db": str(outcome.db_path), "status": outcome.status,
                          "items": outcome.items, "ok": outcome.ok, "failed": outcome.failed,
                          "cost_usd": outcome.cost_usd, **figures.as_json(), "targets": rows}, indent=2))
        return figures
    if quiet:
        return figures
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(summary_table(rows, checked=outcome.checked))
    if figures.checks_failed:
        out.print(checks_table(figures))
    err = Console(stderr=True)
    for row in rows:
        for code, count in row["error_codes"].items():
            example = _shorten(row["error_examples"][code] or "", 200)
            err.print(f"  {row['target']}: {count} x {code}: {example}", markup=False, highlight=False,
                      soft_wrap=True)
    if outcome.status != "interrupted":  # an interrupted run says so in its one line (cli/run.py)
        err.print(f"{summary_line(figures)}; results in {outcome.db_path}", markup=False, highlight=False,
                  soft_wrap=True)
    return figures


def summary_table(rows: list[dict[str, Any]], *, checked: bool = False) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for name in ("target", "ok", "errors", *(("pass",) if checked else ()), "p50 ms", "p95 ms", "p50 ttft ms",
                 "tokens in", "tokens out", "cost $"):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in rows:
        cost = "-" if not r["ok"] else "unpriced" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        table.add_row(r["target"], str(r["ok"]), f"[red]{r['errors']}[/]" if r["errors"] else "0",
                      *((pct(r["pass_rate"]),) if checked else ()),
                      _ms(r["p50_latency_ms"]), _ms(r["p95_latency_ms"]), _ms(r["p50_ttft_ms"]),
                      f"{r['input_tokens']:,}", f"{r['output_tokens']:,}", cost)
    return table


