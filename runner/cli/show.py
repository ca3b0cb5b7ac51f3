"""``hanzo-run show``: the items of a run, answer by answer."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .where import db_option


@click.command()
@click.argument("args", nargs=-1, metavar="[JOB] [RUN_ID]")
@db_option
@click.option("--target", metavar="TARGET", help="Only this target (its label, e.g. openai/gpt-4o-mini).")
@click.option("--failed", "failed_only", is_flag=True, help="Only failed requests and answers that failed a check.")
@click.option("--item", "key_prefix", metavar="KEY", help="Only the item whose key starts with KEY (as shown).")
@click.option("--json", "as_json", is_flag=True, help="Every field of every item as JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Every field of every item as CSV on stdout.")
def show(args: tuple[str, ...], db: Path | None, target: str | None, failed_only: bool, key_prefix: str | None,
         as_json: bool, as_csv: bool) -> None:
    """Show a run's items (default: the latest run): prompt, answer, status, error,
    failed checks with reasons, latency, tokens, cost.

    The database is JOB's output, or --db, or the one found here. On a terminal long
    texts are cut; --json and --csv keep every character.

    \b
    Example:
        hanzo-run show jobs/nightly.yaml --failed
        hanzo-run show 7 --db jobs/nightly.db --target openai/gpt-4o-mini --json
    """
    from ..errors import UsageError
    from ..reports.items import items_renderable, iter_items, to_csv, to_json
    from ..store.runs import run_targets
    from .where import find, pick_run, split_args

    job, run_ids = split_args(args, 1, "show")
    if as_json and as_csv:
        raise UsageError("show: choose one of --json and --csv")
    where = find(db, job)
    database = where.open()
    try:
        run_id = pick_run(database, where, run_ids[0] if run_ids else None, job).id
        if target is not None:
            known = run_targets(database, run_id)
            if target not in known:
                raise UsageError(f"show: run {run_id} has no target {target!r}; its targets: "
                                 f"{', '.join(known) or 'none'}")
        items = iter_items(database, run_id, target=target, failed_only=failed_only, key_prefix=key_prefix)
        if as_json:
            click.echo(to_json(items))
        elif as_csv:
            click.echo(to_csv(items), nl=False)
        else:
            from rich.console import Console

            Console(width=None if sys.stdout.isatty() else 120).print(items_renderable(items))
            click.echo(f"run {run_id} in {where.shown}", err=True)
    finally:
        database.close()
