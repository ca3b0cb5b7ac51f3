"""``hanzo-run run JOB`` (also ``hanzo-run JOB.yaml``): run a job, render its outcome, set the exit code.

The engine is imported inside the command, so ``hanzo-run --help`` starts fast.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import click

from .exits import EX_TEMPFAIL, INTERRUPTED, ExitCode
from .options import providers_dir_option


@click.command()
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False),
              help="Results database (default: the job's output).")
@providers_dir_option
@click.option("--only", multiple=True, metavar="TARGET",
              help="Run only this target (provider or provider/model; repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="Run only the first N items of each target.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Most requests in flight at once (overrides the job).")
@click.option("--fail-under", type=click.FloatRange(0, 1), metavar="RATE",
              help="Exit 1 when the pass rate (0..1; the success rate when the job has no checks) is below RATE.")
@click.option("--resume", is_flag=False, flag_value="latest", metavar="[RUN_ID]",
              help="Continue an unfinished run (default: this job's latest), skipping its finished items.")
@click.option("--retry-errors", is_flag=False, flag_value="latest", metavar="[RUN_ID]",
              help="Re-send only the failed items of a run (default: this job's latest).")
@click.option("--force", is_flag=True, help="With --resume: continue even though the job's items changed.")
@click.option("--wait", is_flag=True, help="If this job is already running on this database, wait for it.")
@click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), metavar="USD",
              help="Budget: never start an item whose worst case could pass USD (overrides budget_usd).")
@click.option("--allow-unpriced", is_flag=True, help="Under a budget, send items whose model has no known price.")
@click.option("--cache/--no-cache", default=None,
              help="Answer items whose exact request was answered before from the response cache (overrides cache:).")
@click.option("--batch/--no-batch", default=None,
              help="Send through the providers' batch APIs (half price, results within 24 h) where they have one "
                   "(default: the job's batch).")
@click.option("--batch-fallback", type=click.Choice(["batch", "sync"]), default="batch", show_default=True,
              help="How requests of an expired batch are sent again.")
@click.option("--no-wait", is_flag=True,
              help="Batch mode: submit the batches and exit; collect later with --resume (exit 75 while running).")
@click.option("--poll-interval", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Batch mode: seconds between status polls at first, growing 1.5x up to 600 (default 30).")
@click.option("--shard", metavar="K/N", help="Run only shard K of N (K from 0) of the items, e.g. one machine's "
                                              "share; merge the shards' databases with hanzo-run merge.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bar and no table; errors only, and one line saying why on a non-zero exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--dry-run", is_flag=True, help="Validate, count items, estimate tokens and cost; send nothing.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Also write the results as JUnit XML (one test case per item) for CI.")
def run(job: Path, fail_under: float | None, quiet: bool, as_json: bool, dry_run: bool, junit: Path | None,
        **run_options: Any) -> None:
    """Run JOB (a job YAML file) and record every result in SQLite.

    Ctrl-C stops taking new items, lets requests in flight finish, keeps every result
    and prints how to resume. Exit codes: 0 all ok, 1 items failed, 2 invalid files,
    75 batches still running (run --resume again later), 130 interrupted.

    \b
    Example:
        hanzo-run jobs/compare.yaml --only openai --limit 5
        hanzo-run jobs/compare.yaml --resume
        hanzo-run jobs/compare.yaml --batch --no-wait     # then, from cron: --resume
    """
    # Imported here, not at the top: ``hanzo-run --help`` must not load the engine.
    from ..api import run_job
    from ..reports.outcome import failure_reason
    from .output import BarProgress, Notices, render_outcome

    if run_options["resume"] and run_options["retry_errors"]:
        raise click.UsageError("--resume and --retry-errors do not go together")
    if dry_run:
        from ..engine.estimate import estimate_job
        from ..engine.launch import RunOptions, prepare
        from ..reports.estimate import render_estimate

        options = RunOptions(**run_options)
        prepared, registry = prepare(job, options)
        batch = options.batch if options.batch is not None else prepared.batch
        render_estimate(estimate_job(prepared, registry, options.limit, batch=batch), as_json=as_json)
        return
    if run_options["shard"]:
        from ..engine.sharding import parse_shard

        parse_shard(run_options["shard"])  # a wrong K/N is a usage error before anything starts
    progress = BarProgress() if not quiet and not as_json and sys.stderr.isatty() else Notices()
    # What is loaded by now (modules) lives for the whole run: keep it out of the collector,
    # which otherwise walks it all each time the oldest generation fills.
    gc.freeze()
    try:
        outcome = run_job(job, progress=progress, handle_signals=True, **run_options)
    finally:
        if isinstance(progress, BarProgress):
            progress.close()
    from .hints import resume_command

    again = resume_command(job, outcome, run_options)
    if outcome.status == "submitted" and run_options["no_wait"] and outcome.batches_created \
            and not (run_options["resume"] or run_options["retry_errors"]):
        if outcome.failed:  # refused before sending (the budget): "submitted" alone would hide them
            errors = render_outcome(outcome, quiet=True, as_json=False).request_errors
            codes = ", ".join(f"{code} {n}" for code, n in errors.items())
            click.echo(f"hanzo-run: submitted {outcome.batches_created} batches (run {outcome.run_id}), but "
                       f"{outcome.failed} items were not sent ({codes}); collect the batches with: {again}", err=True)
            raise ExitCode(1)
        click.echo(f"submitted {outcome.batches_created} batches (run {outcome.run_id}); collect with: {again}")
        return
    if outcome.status == "submitted" and not outcome.batch_interrupted:
        click.echo(f"hanzo-run: {outcome.batches_running} batches still running (run {outcome.run_id}); "
                   f"{outcome.ok + outcome.failed} results so far; run again later: {again}", err=True)
        raise ExitCode(EX_TEMPFAIL)
    figures = render_outcome(outcome, quiet=quiet, as_json=as_json, fail_under=fail_under)
    if junit:
        from ..reports.formats import FORMATS

        FORMATS["junit"].write_path(outcome.db_path, outcome.run_id, junit)
    # Whatever else was (or, with --quiet, was not) printed, a non-zero exit ends with one line
    # on stderr saying why, so ``hanzo-run JOB -q || mail`` never sends an empty mail.
    if outcome.status == "interrupted":
        if outcome.signalled:
            click.echo(f"hanzo-run: run {outcome.run_id} interrupted: {outcome.items} results kept in "
                       f"{outcome.db_path}; resume with: {again}", err=True)
        else:  # e.g. --resume --only X: the other items of the run were never sent
            click.echo(f"hanzo-run: run {outcome.run_id} is not finished: {outcome.missing} of its items have no "
                       f"result yet (not selected by this --only or --limit); resume with: {again}", err=True)
        raise ExitCode(INTERRUPTED if outcome.signalled else 1)
    if outcome.status == "submitted":  # Ctrl-C while polling
        click.echo(f"hanzo-run: stopped polling; {outcome.batches_running} batches keep running at the "
                   f"provider (they are paid for). Collect with: {again}", err=True)
        raise ExitCode(INTERRUPTED)
    if figures.failed:
        click.echo(f"hanzo-run: {failure_reason(figures)}", err=True)
        raise ExitCode(1)
