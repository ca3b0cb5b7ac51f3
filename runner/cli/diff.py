"""``hanzo-run diff A B``: what changed item by item between two runs; exit 1 on a regression."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .exits import ExitCode
from .where import Where, db_option

if TYPE_CHECKING:
    import sqlite_utils

    from ..store.records import RunRecord


@click.command()
@click.argument("args", nargs=-1, metavar="[JOB] [RUN_A] [RUN_B]")
@db_option
@click.option("--db-b", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH",
              help="Run B's database, when it is not run A's.")
@click.option("--force", is_flag=True, help="Compare runs of different jobs with different targets or prompts.")
@click.option("--json", "as_json", is_flag=True, help="Every change with both answers as JSON on stdout.")
def diff(args: tuple[str, ...], db: Path | None, db_b: Path | None, force: bool, as_json: bool) -> None:
    """Show what changed from run A to run B, per target: items that went from pass to
    fail, ok to error, fail to pass, error to ok, with both answers side by side.

    Items are matched by target, prompt, data row and repeat. Without run ids: the
    latest run of the job (or database) against the run before it; with one: that run
    against the latest. Exit 1 when anything regressed (pass to fail, ok to error, or an
    item of A without a result in B), with a one-line reason.

    \b
    Example:
        hanzo-run diff jobs/nightly.yaml
        hanzo-run diff 6 7 --db jobs/nightly.db --json
    """
    from ..reports.diff import diff_renderable, diff_runs, regressed, regression_reason, to_json
    from .where import find, split_args

    job, run_ids = split_args(args, 2, "diff")
    where_a = find(db, job)
    where_b = find(db_b, None) if db_b is not None else where_a
    database_a = where_a.open()
    database_b = where_b.open() if where_b is not where_a else database_a
    try:
        run_a, run_b = _pick(database_a, database_b, where_a, where_b, job, run_ids)
        if not force:
            _refuse_unrelated(database_a, database_b, run_a, run_b)
        changes = diff_runs(database_a, run_a.id, run_b.id, database_b)
    finally:
        database_a.close()
        if database_b is not database_a:
            database_b.close()
    if as_json:
        click.echo(to_json(changes))
    else:
        from rich.console import Console

        Console(width=None if sys.stdout.isatty() else 160).print(diff_renderable(changes))
    for note in changes.notes:
        click.echo(f"hanzo-run: diff: {note}", err=True)
    if regressed(changes):
        click.echo(f"hanzo-run: {regression_reason(changes)}", err=True)
        raise ExitCode(1)


def _pick(db_a: sqlite_utils.Database, db_b: sqlite_utils.Database, where_a: Where, where_b: Where,
          job: Path | None, run_ids: list[int]) -> tuple[RunRecord, RunRecord]:
    """A and B as given. One id: it is A, against the latest run of its job. None: the latest
    run (of the job, when named) is B, against the run of the same job before it."""
    from ..errors import UsageError
    from ..store.runs import previous_run, resolve_run
    from .where import pick_run

    if len(run_ids) == 2:
        return pick_run(db_a, where_a, run_ids[0], job), pick_run(db_b, where_b, run_ids[1], job)
    if len(run_ids) == 1:
        run_a = pick_run(db_a, where_a, run_ids[0], job)
        if db_b is not db_a:
            return run_a, pick_run(db_b, where_b, None, job)
        return run_a, resolve_run(db_a, None, job_path=run_a.job_path) or run_a
    run_b = pick_run(db_a, where_a, None, job)
    before = previous_run(db_a, run_b)
    if before is None:
        raise UsageError(f"diff: run {run_b.id} is the only run of its job in {where_a.shown}; "
                         "name the two runs to compare: hanzo-run diff A B")
    return before, run_b


def _refuse_unrelated(db_a: sqlite_utils.Database, db_b: sqlite_utils.Database, a: RunRecord, b: RunRecord) -> None:
    """Runs of one job, or of the same targets and prompts, compare item by item; others need --force."""
    from ..errors import UsageError
    from ..store.runs import run_shape

    if (a.job_path and a.job_path == b.job_path) or a.job_name == b.job_name:
        return
    if run_shape(db_a, a.id) == run_shape(db_b, b.id):
        return
    raise UsageError(f"diff: run {a.id} (job {a.job_name}) and run {b.id} (job {b.job_name}) are different "
                     "jobs with different targets or prompts, so their items do not match; pass --force to compare "
                     "them anyway")
