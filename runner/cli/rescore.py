"""``hanzo-run rescore RUN``: a run's stored answers graded again with the job's current checks."""

from __future__ import annotations

from pathlib import Path

import click

from .exits import ExitCode
from .options import providers_dir_option


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("job", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False),
              help="Results database (default: JOB's output, else the one database found here).")
@providers_dir_option
@click.option("--fail-under", type=click.FloatRange(0, 1), metavar="RATE",
              help="Exit 1 when the new pass rate (0..1) is below RATE.")
@click.option("--cache/--no-cache", default=None,
              help="Ask graders through the response cache, so a verdict already bought is not paid again "
                   "(overrides the job's cache:).")
@click.option("--quiet", "-q", is_flag=True, help="No table; errors only.")
@click.option("--json", "as_json", is_flag=True, help="Print the new run's summary as JSON on stdout.")
def rescore(run_id: str, job: Path | None, db: Path | None, providers_dirs: tuple[str, ...],
            fail_under: float | None, cache: bool | None, quiet: bool, as_json: bool) -> None:
    """Apply the current checks of a job to the answers of run RUN (an id, or latest).

    Writes a new run linked to RUN (runs.source_run_id) and sends no request for the
    answers: only judge checks ask their grader models. The checks come from JOB, else
    from the job file RUN was made from. Compare the two runs with report or diff.

    \b
    Example:
        hanzo-run rescore 12 jobs/compare.yaml
        hanzo-run rescore latest --db jobs/compare.db
    """
    import anyio

    from ..engine.launch import RunOptions, prepare
    from ..engine.rescore import rescore_run, source_run
    from ..errors import UsageError
    from ..reports.outcome import failure_reason
    from ..store.database import open_db
    from ..store.locate import find_database
    from .output import render_outcome

    db_path = find_database(db, job, Path.cwd())
    if job is None:
        database = open_db(db_path)
        try:
            recorded = source_run(database, run_id, None).job_path
        finally:
            database.close()
        if not recorded or not Path(recorded).is_file():
            raise UsageError(f"rescore: run {run_id}'s job file {recorded or '(not recorded)'} is not there; "
                             "name the job file: hanzo-run rescore RUN JOB")
        job = Path(recorded)
    prepared, registry = prepare(job, RunOptions(providers_dirs=providers_dirs))
    done = anyio.run(lambda: rescore_run(prepared, registry, db_path, run_id, handle_signals=True,
                                                 cache=cache),
                     backend="asyncio")
    outcome, source_id = done.outcome, done.source_id
    figures = render_outcome(outcome, quiet=quiet, as_json=as_json, fail_under=fail_under)
    for note in done.notes:
        click.echo(f"hanzo-run: rescore: {note}", err=True)
    if not as_json:
        click.echo(f"run {outcome.run_id} rescored run {source_id} with the checks of {job}; compare them: "
                   f"hanzo-run report {source_id} {outcome.run_id} --db {db_path}", err=True)
    # A non-zero exit ends with one line saying why (as a run's does).
    if outcome.signalled:
        click.echo(f"hanzo-run: rescore interrupted: run {outcome.run_id} has {outcome.items} of the "
                   f"{done.source_items} answers of run {source_id} graded", err=True)
        raise ExitCode(130)
    if outcome.status != "completed":
        click.echo(f"hanzo-run: rescore: run {outcome.run_id} covers {outcome.items} of the {done.source_items} "
                   f"items of run {source_id}, which is {done.source_status}; its rates are over those "
                   f"{outcome.items} only", err=True)
        raise ExitCode(1)
    if figures.failed:
        click.echo(f"hanzo-run: {failure_reason(figures)}", err=True)
        raise ExitCode(1)
