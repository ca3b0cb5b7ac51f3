"""``hanzo-run runs`` and ``hanzo-run report``: what is in a results database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

SORT_KEYS = ("target", "items", "ok_rate", "pass_rate", "p50_latency_ms", "p95_latency_ms", "p50_ttft_ms",
             "output_tokens_per_s", "cost_usd", "cost_per_1k_items")
DEFAULT_DB = "hanzo-runs.db"

db_option = click.option("--db", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=DEFAULT_DB,
                         show_default=True, help="Results database.")


@click.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
def runs(db: Path, as_json: bool, as_csv: bool) -> None:
    """List the runs in a results database: status, duration, counts, pass rate, cost.

    \b
    Example:
        hanzo-run runs --db jobs/compare.db
    """
    from ..reports.tables import runs_rows, runs_table, to_csv, to_json
    from ..store.database import open_db

    database = open_db(db)
    try:
        rows = runs_rows(database)
    finally:
        database.close()
    _emit(rows, as_json, as_csv, lambda: runs_table(rows), to_csv, to_json)


@click.command()
@click.argument("run_ids", nargs=-1, type=int, metavar="[RUN_ID [RUN_ID_B]]")
@db_option
@click.option("--sort", type=click.Choice(SORT_KEYS), help="Order targets by this figure, best first.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write a self-contained HTML report (charts, failed items) to FILE.")
def report(run_ids: tuple[int, ...], db: Path, sort: str | None, as_json: bool, as_csv: bool,
           html: Path | None) -> None:
    """Compare the targets of a run (default: the latest): rates, latency, throughput, tokens, cost.

    With two run ids, show the change per target from the first to the second
    (for nightly regressions). Pass rate counts a failed request as not passed;
    a cost is "unpriced" when some answer's model has no known price.

    \b
    Example:
        hanzo-run report --db jobs/compare.db --sort pass_rate
        hanzo-run report 3 --html report.html
        hanzo-run report 3 4 --json
    """
    from ..errors import UsageError
    from ..reports.tables import change, change_table, comparison, comparison_table, to_csv, to_json
    from ..store.database import open_db
    from ..store.queries import latest_run_id, run_exists

    if len(run_ids) > 2:
        raise UsageError("report takes at most two run ids: report A B shows the change from A to B")
    if html and len(run_ids) == 2:
        raise UsageError("--html reports one run; give one run id")
    database = open_db(db)
    try:
        latest = latest_run_id(database)
        if latest is None:
            raise UsageError(f"{db} has no runs yet")
        ids = list(run_ids) or [latest]
        for run_id in ids:
            if not run_exists(database, run_id):
                raise UsageError(f"no run {run_id} in {db}; see: hanzo-run runs --db {db}")
        if html:
            from ..reports.html import write_html

            write_html(database, ids[0], html)
            click.echo(f"wrote {html}", err=True)
            return
        if len(ids) == 2:
            a, b = ids
            diff = change(database, a, b)
            _emit(diff, as_json, as_csv, lambda: change_table(diff, a, b), to_csv,
                  lambda rows: to_json({"a": a, "b": b, "targets": rows}))
            return
        rows = comparison(database, ids[0], sort)
    finally:
        database.close()
    _emit(rows, as_json, as_csv, lambda: comparison_table(rows, f"run {ids[0]}"), to_csv,
          lambda r: to_json({"run_id": ids[0], "targets": r}))


def _emit(rows: list[dict[str, Any]], as_json: bool, as_csv: bool, table: Callable[[], Any],
          csv_of: Callable[[list[dict[str, Any]]], str], json_of: Callable[[list[dict[str, Any]]], str]) -> None:
    if as_json:
        click.echo(json_of(rows))
    elif as_csv:
        click.echo(csv_of(rows), nl=False)
    else:
        from rich.console import Console

        Console(width=200).print(table())
