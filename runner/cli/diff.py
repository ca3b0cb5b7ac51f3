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
    against the latest. Exit 1 when anything regressed (pass to fail, ok to error).

    \b
    Example:
        hanzo-run diff jobs/nightly.yaml
        hanzo-run diff 6 7 --db jobs/nightly.db --json
    """
    from ..reports.diff import diff_renderable, diff_runs, regressed, to_json
    from .where import check_run, find, split_args

    job, run_ids = split_args(args, 2, "diff")
    where_a = find(db, job)
    where_b = find(db_b, None) if db_b is not None else where_a
    database_a = where_a.open()
    database_b = where_b.open() if where_b is not where_a else database_a
    try:
        run_a, run_b = _pick(database_a, database_b, where_a, where_b, job, run_ids)
        check_run(database_a, where_a, run_a)
        check_run(database_b, where_b, run_b)
        if not force:
            _refuse_unrelated(database_a, database_b, run_a, run_b)
        changes = diff_runs(database_a, run_a, run_b, database_b)
    finally:
        database_a.close()
        if database_b is not database_a:
            database_b.close()
    if as_json:
        click.echo(to_json(changes))
    else:
        from rich.console import Console

        Console(width=None if sys.stdout.isatty() else 160).print(diff_renderable(changes))
    if regressed(changes):
        t = changes.totals
        said = " and ".join(f"{n} item{'s' if n != 1 else ''} went from {what}" for n, what in (
            (t["pass_to_fail"], "pass to fail"), (t["ok_to_error"], "ok to error")) if n)
        click.echo(f"hanzo-run: run {run_b} regressed against run {run_a}: {said}", err=True)
        raise ExitCode(1)


def _pick(db_a: sqlite_utils.Database, db_b: sqlite_utils.Database, where_a: Where, where_b: Where,
          job: Path | None, run_ids: list[int]) -> tuple[int, int]:
    """A and B as given. One id: it is A, against the latest run of its job. None: the latest
    run (of the job, when named) is B, against the run of the same job before it."""
    from ..errors import UsageError
    from .where import check_run, latest_run

    if len(run_ids) == 2:
        return run_ids[0], run_ids[1]
    if len(run_ids) == 1:
        run_a = run_ids[0]
        if db_b is not db_a:
            return run_a, latest_run(db_b, where_b, job)
        check_run(db_a, where_a, run_a)
        row = next(db_a.query("SELECT max(id) AS id FROM runs WHERE job_path IS (SELECT job_path FROM runs"
                              " WHERE id = ?)", [run_a]))
        return run_a, int(row["id"])
    run_b = latest_run(db_a, where_a, job)
    row = next(db_a.query("SELECT max(id) AS id FROM runs WHERE id < ? AND job_path IS (SELECT job_path FROM runs"
                          " WHERE id = ?)", [run_b, run_b]))
    if row["id"] is None:
        raise UsageError(f"diff: run {run_b} is the only run of its job in {where_a.shown}; "
                         "name the two runs to compare: hanzo-run diff A B")
    return int(row["id"]), run_b


def _refuse_unrelated(db_a: sqlite_utils.Database, db_b: sqlite_utils.Database, run_a: int, run_b: int) -> None:
    """Runs of one job, or of the same targets and prompts, compare item by item; others need --force."""
    from ..errors import UsageError

    a = next(db_a.query("SELECT job_name, job_path FROM runs WHERE id = ?", [run_a]))
    b = next(db_b.query("SELECT job_name, job_path FROM runs WHERE id = ?", [run_b]))
    if (a["job_path"] and a["job_path"] == b["job_path"]) or a["job_name"] == b["job_name"]:
        return
    shape = "SELECT DISTINCT target, prompt_id FROM results WHERE run_id = ?"
    if {tuple(r.values()) for r in db_a.query(shape, [run_a])} == {
            tuple(r.values()) for r in db_b.query(shape, [run_b])}:
        return
    raise UsageError(f"diff: run {run_a} (job {a['job_name']}) and run {run_b} (job {b['job_name']}) are different "
                     "jobs with different targets or prompts, so their items do not match; pass --force to compare "
                     "them anyway")
