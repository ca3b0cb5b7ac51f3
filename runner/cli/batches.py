"""``hanzo-run batches [RUN]``: a run's provider batches and their state; ``batches cancel RUN``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .exits import ExitCode
from .options import providers_dir_option
from .where import db_option, find, pick_run

COLUMNS = ("id", "target", "provider_batch_id", "status", "provider_status", "request_count", "ok_count",
           "error_count", "created_at", "ended_at", "collected_at", "message")


class _ListByDefault(click.Group):
    """``hanzo-run batches [RUN]`` means ``hanzo-run batches list [RUN]``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ListByDefault)
def batches() -> None:
    """The provider batches of a run (batch mode): list them, or cancel the running ones.

    \b
    Example:
        hanzo-run batches --db jobs/compare.db          # the latest run's batches
        hanzo-run batches cancel 3 --db jobs/compare.db
    """


@batches.command("list")
@click.argument("run_id", type=int, required=False)
@db_option
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def list_batches(run_id: int | None, db: Path | None, as_json: bool) -> None:
    """List the batches of RUN_ID (default: the latest run) with their state and counts."""
    from rich.console import Console
    from rich.table import Table

    from ..store.queries import run_batches

    where = find(db, None)
    database = where.open()
    try:
        chosen = pick_run(database, where, run_id, None).id
        found = run_batches(database, chosen, COLUMNS)
    finally:
        database.close()
    if as_json:
        click.echo(json.dumps({"run_id": chosen, "batches": found}, indent=2))
        return
    if not found:
        click.echo(f"run {chosen} has no batches", err=True)
        return
    table = Table(show_edge=False, header_style="bold")
    for name in ("target", "batch", "status", "requests", "ok", "failed", "created", "ended"):
        table.add_column(name, justify="right" if name in ("requests", "ok", "failed") else "left")
    for b in found:
        status = b["status"] if b["collected_at"] or b["status"] in ("pending", "running", "cancelling") \
            else f"{b['status']} (not collected)"
        table.add_row(b["target"], b["provider_batch_id"] or "(not created)", status, str(b["request_count"]),
                      "-" if b["ok_count"] is None else str(b["ok_count"]),
                      "-" if b["error_count"] is None else str(b["error_count"]), b["created_at"] or "-",
                      b["ended_at"] or "-")
    Console(width=200).print(table)


@batches.command()
@click.argument("run_id", type=int)
@db_option
@providers_dir_option
def cancel(run_id: int, db: Path | None, providers_dirs: tuple[str, ...]) -> None:
    """Cancel the batches of RUN_ID still running; the next --resume records their unrun requests as CANCELLED."""
    import anyio

    from ..config.providers import ProviderRegistry, provider_dirs
    from ..engine.batchrun import cancel_run_batches
    where = find(db, None)
    database = where.open()
    try:
        chosen = pick_run(database, where, run_id, None).id
        registry = ProviderRegistry(provider_dirs(providers_dirs))
        done = anyio.run(cancel_run_batches, database, chosen, registry, backend="asyncio")
    finally:
        database.close()
    if not done:
        click.echo(f"run {chosen} has no batches running", err=True)
        return
    for target, batch_id, what in done:
        click.echo(f"{target}: {batch_id}: {what}")
    if any(what != "cancelling" for _, _, what in done):
        raise ExitCode(1)
