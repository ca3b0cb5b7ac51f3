"""What a person sees: a progress bar on stderr, and the per-target table at the end."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..engine.launch import RunOutcome
from ..engine.progress import Progress as EngineProgress
from ..reports.outcome import RunFigures, checks_table, pct, run_figures, summary_line
from ..reports.tables import cost_split, tokens_cell
from ..store.database import open_db
from ..store.queries import target_summary
from ..store.records import ResultRow


class _Tally:
    """Counts of one progress line: all items, or one target's."""

    __slots__ = ("done", "errors", "checked", "passed", "cost", "unpriced")

    def __init__(self) -> None:
        self.done = self.errors = self.checked = self.passed = self.unpriced = 0
        self.cost = 0.0

    def add(self, row: ResultRow) -> None:
        self.done += 1
        if row.status != "ok":
            self.errors += 1
        elif row.cost_usd is None:
            self.unpriced += 1
        if row.passed is not None:
            self.checked += 1
            self.passed += row.passed
        if row.cost_usd is not None:
            self.cost += row.cost_usd

    def figures(self, elapsed: float | None, overall: bool) -> Text:
        text = Text()
        if self.checked:
            text.append(f"pass {self.passed / self.done * 100:.1f}%  ", style="green" if self.passed == self.done
                        else "yellow")
        text.append(f"{self.errors} error{'s' if self.errors != 1 else ''}  ", style="red" if self.errors else "")
        if overall and elapsed:
            text.append(f"{self.done / elapsed:,.1f} req/s  ")
        if self.unpriced and not self.cost:
            text.append("unpriced")
        else:
            text.append(f"${self.cost:.4f}" + (" + unpriced" if self.unpriced else ""))
        return text


class _Figures(ProgressColumn):
    def render(self, task: Task) -> Text:
        tally: _Tally = task.fields["tally"]
        return tally.figures(task.elapsed, overall=not task.fields["target"])


class _Bar(BarColumn):
    """Only the overall line has a bar, and an ETA; a target's line has its counts."""

    def render(self, task: Task) -> Any:
        return Text("") if task.fields["target"] else super().render(task)


class _Count(MofNCompleteColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):,} done") if task.fields["target"] else super().render(task)


class _Elapsed(TimeElapsedColumn):
    def render(self, task: Task) -> Text:
        return Text("") if task.fields["target"] else super().render(task)


class _Eta(TimeRemainingColumn):
    def render(self, task: Task) -> Text:
        return Text("") if task.fields["target"] or task.total is None else Text("ETA ") + super().render(task)


class Notices(EngineProgress):
    """The engine's notices on stderr; its passing states too when stderr is a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def notice(self, text: str) -> None:
        click.echo(f"hanzo-run: {text}", err=True)

    def status(self, text: str) -> None:
        if self.tty:
            self.notice(text)


class BarProgress(Notices):
    """On a terminal: overall and per-target counts, pass rate so far, requests/s, ETA and cost so far."""

    def __init__(self) -> None:
        super().__init__()
        self.bar = Progress(TextColumn("{task.description}"), _Bar(), _Count(), _Figures(), _Eta(), _Elapsed(),
                            console=Console(stderr=True), transient=True)
        self.tally = _Tally()
        self.targets: dict[str, tuple[TaskID, _Tally]] = {}

    def start(self, total: int | None) -> None:
        self.task = self.bar.add_task("[bold]running", total=total, tally=self.tally, target="")
        self.bar.start()

    def written(self, rows: Sequence[ResultRow]) -> None:
        for row in rows:
            self.tally.add(row)
            line = self.targets.get(row.target)
            if line is None:
                tally = _Tally()
                line = self.targets[row.target] = (
                    self.bar.add_task(f"  {escape(row.target)}", total=None, tally=tally, target=row.target), tally)
            line[1].add(row)
        for task_id, tally in self.targets.values():
            self.bar.update(task_id, completed=tally.done)
        self.bar.update(self.task, completed=self.tally.done)

    def notice(self, text: str) -> None:
        self.bar.console.print(f"hanzo-run: {text}", markup=False, highlight=False)

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
    """The run's table per target: what it paid, and with judges or cached answers the answers' and the judges'
    cost apart (a cached one at what it first cost, so a cached run still compares models)."""
    split = cost_split(rows)
    table = Table(show_edge=False, header_style="bold")
    for name in ("target", "ok", "errors", *(("pass",) if checked else ()), "p50 ms", "p95 ms", "p50 ttft ms",
                 "tokens in", "tokens out", "cost $", *(("answer $", "judge $") if split else ())):
        table.add_column(name, justify="left" if name == "target" else "right")
    # Shown only when some answer reported them (reasoning models, prompt caches).
    details = [k for k in ("reasoning_tokens", "cached_input_tokens") if any(r.get(k) is not None for r in rows)]
    for name in details:
        table.add_column({"reasoning_tokens": "reasoning", "cached_input_tokens": "cached in"}[name], justify="right")
    for r in rows:
        cost, answers = ("-" if not r["ok"] else "unpriced" if usd is None else f"{usd:.4f}"
                         for usd in (r["cost_usd"], r["answer_cost_usd"]))
        judges = "-" if r["judge_cost_usd"] is None else f"{r['judge_cost_usd']:.4f}"
        table.add_row(r["target"], str(r["ok"]), f"[red]{r['errors']}[/]" if r["errors"] else "0",
                      *((pct(r["pass_rate"]),) if checked else ()),
                      _ms(r["p50_latency_ms"]), _ms(r["p95_latency_ms"]), _ms(r["p50_ttft_ms"]),
                      tokens_cell(r["input_tokens"], r["unknown_input_tokens"]),
                      tokens_cell(r["output_tokens"], r["unknown_output_tokens"]), cost,
                      *((answers, judges) if split else ()),
                      *("-" if r.get(k) is None else f"{r[k]:,}" for k in details))
    return table
