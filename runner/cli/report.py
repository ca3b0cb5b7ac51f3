"""``hanzo-run runs`` and ``hanzo-run report``: what is in a results database."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .where import db_option

SORT_KEYS = ("target", "items", "ok_rate", "pass_rate", "p50_latency_ms", "p95_latency_ms", "p50_ttft_ms",
             "output_tokens_per_s", "cost_usd", "cost_per_1k_items")


@click.command()
@click.argument("job", required=False, type=click.Path(path_type=Path, dir_okay=False), metavar="[JOB]")
@db_option
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
def runs(job: Path | None, db: Path | None, as_json: bool, as_csv: bool) -> None:
    """List the runs in a results database (JOB's output, or --db): status, duration,
    counts, pass rate, cost.

    \b
    Example:
        hanzo-run runs jobs/compare.yaml
        hanzo-run runs --db jobs/compare.db --json
    """
    from ..reports.tables import runs_rows, runs_table, to_csv, to_json
    from .where import find

    database = find(db, job).open()
    try:
        rows = runs_rows(database)
    finally:
        database.close()
    _emit(rows, as_json, as_csv, lambda: runs_table(rows), to_csv, to_json)


@click.command()
@click.argument("args", nargs=-1, metavar="[JOB] [RUN_ID [RUN_ID_B]]")
@db_option
@click.option("--sort", type=click.Choice(SORT_KEYS), help="Order targets by this figure, best first.")
@click.option("--items", "items", is_flag=True, help="Every item of the run (prompt, answer, checks...), not totals.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write the run's page of hanzo-run view to FILE: one self-contained file that opens offline.")
def report(args: tuple[str, ...], db: Path | None, sort: str | None, items: bool, as_json: bool, as_csv: bool,
           html: Path | None) -> None:
    """Compare the targets of a run (default: the latest): rates, latency, throughput, tokens, cost.

    The database is JOB's output, or --db, or the one found here. With two run ids,
    show the change per target from the first to the second (item by item: hanzo-run
    diff). --items exports every item of the run. Pass rate counts a failed request as
    not passed; a cost is "unpriced" when some answer's model has no known price.

    \b
    Example:
        hanzo-run report jobs/compare.yaml --sort pass_rate
        hanzo-run report 3 --db jobs/compare.db --html report.html
        hanzo-run report jobs/compare.yaml --items --csv > items.csv
        hanzo-run report 3 4 --json
    """
    from ..errors import UsageError
    from ..reports.formats import FORMATS
    from ..reports.tables import change, change_table, to_csv, to_json
    from .where import find, pick_run, split_args

    job, run_ids = split_args(args, 2, "report")
    if as_json and as_csv:
        raise UsageError("report: choose one of --json and --csv")
    if html and len(run_ids) == 2:
        raise UsageError("--html reports one run; give one run id")
    if items and (len(run_ids) == 2 or html):
        raise UsageError("--items exports the items of one run; give one run id and no --html")
    where = find(db, job)
    database = where.open()
    try:
        ids = [pick_run(database, where, run_id, job).id for run_id in run_ids] if run_ids else \
            [pick_run(database, where, None, job).id]
        if len(ids) == 2:
            a, b = ids
            diff = change(database, a, b)
            _emit(diff, as_json, as_csv, lambda: change_table(diff, a, b), to_csv,
                  lambda rows: to_json({"a": a, "b": b, "targets": rows}))
            return
    finally:
        database.close()
    if html:
        from ..view.export import write_run_page

        write_run_page(where.path, ids[0], html)
        click.echo(f"wrote {html}", err=True)
        return
    name = "json" if as_json else "csv" if as_csv else "table"
    options = {} if items else {"sort": sort}
    database = where.open()
    try:
        FORMATS[f"items-{name}" if items else name].write(database, ids[0], sys.stdout, **options)
    finally:
        database.close()


def _emit(rows: list[dict[str, Any]], as_json: bool, as_csv: bool, table: Callable[[], Any],
          csv_of: Callable[[list[dict[str, Any]]], str], json_of: Callable[[list[dict[str, Any]]], str]) -> None:
    if as_json:
        click.echo(json_of(rows))
    elif as_csv:
        click.echo(csv_of(rows), nl=False)
    else:
        from rich.console import Console

        Console(width=200).print(table())
