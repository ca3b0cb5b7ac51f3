"""Which results database and which runs ``runs``, ``report``, ``show`` and ``diff`` read.

Each takes ``--db PATH`` or a job file among its arguments (its ``output``), and with neither
the one database it can find (runner/store/locate.py). Heavy modules load inside the functions:
``--help`` stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import sqlite_utils

    from ..store.records import RunRecord

JOB_SUFFIXES = (".yaml", ".yml")

db_option = click.option(
    "--db", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH",
    help="Results database (default: the named job's output, else the one database found here: ./hanzo-runs.db"
         " or the output of a job in ./ or ./jobs).")


@dataclass(frozen=True)
class Where:
    path: Path  # the database file
    shown: str  # how to name it to the user: as given, or relative to here

    def open(self) -> sqlite_utils.Database:
        from ..store.database import open_db

        return open_db(self.path)


def split_args(args: tuple[str, ...], most_runs: int, command: str) -> tuple[Path | None, list[int]]:
    """A command's positional arguments: at most one job file (by its suffix) and up to ``most_runs`` run ids."""
    from ..errors import UsageError

    job: Path | None = None
    runs: list[int] = []
    for arg in args:
        if arg.endswith(JOB_SUFFIXES):
            if job is not None:
                raise UsageError(f"{command}: name one job file, not {job} and {arg}")
            job = Path(arg)
            continue
        try:
            runs.append(int(arg))
        except ValueError:
            raise UsageError(f"{command}: {arg!r} is neither a run id (a number) nor a job file (.yaml)") from None
    if len(runs) > most_runs:
        raise UsageError(f"{command} takes at most {most_runs} run id{'s' if most_runs > 1 else ''}, "
                         f"not {len(runs)}")
    return job, runs


def find(db: Path | None, job: Path | None) -> Where:
    """The database to read; a UsageError listing what exists when there is not exactly one."""
    from ..store.locate import find_database

    cwd = Path.cwd()
    path = find_database(db, job, cwd)
    if db is not None:
        return Where(path, str(db))
    try:
        shown = os.path.relpath(path, cwd)
    except ValueError:
        shown = str(path)
    return Where(path, shown)


def runs_hint(where: Where) -> str:
    return f"see: hanzo-run runs --db {where.shown}"


def pick_run(db: sqlite_utils.Database, where: Where, run_id: int | None, job: Path | None) -> RunRecord:
    """Run ``run_id``; without one the newest run of the job file when one is named (a database may
    hold several jobs), else of the database. A UsageError saying what to do when there is none."""
    from ..errors import UsageError
    from ..store.runs import resolve_run

    run = resolve_run(db, run_id, job_path=str(job.resolve()) if job is not None and run_id is None else None)
    if run is None and run_id is None and job is not None:
        run = resolve_run(db, None)
    if run is None:
        raise UsageError(f"no run {run_id} in {where.shown}; {runs_hint(where)}" if run_id is not None
                         else f"{where.shown} has no runs yet")
    return run
