"""The ``hanzo-run`` command line. Commands are thin: parse, call, render.

Heavy modules are imported inside the commands so ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from .exits import ExitCode, run_main

JOB_SUFFIXES = (".yaml", ".yml")


class JobGroup(click.Group):
    """``hanzo-run JOB.yaml`` means ``hanzo-run run JOB.yaml``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0].endswith(JOB_SUFFIXES):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=JobGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hanzo-run")
def cli() -> None:
    """Run batches of prompts across LLM providers and models; every result in SQLite.

    \b
    Example:
        hanzo-run jobs/hello.yaml
    """


@cli.command()
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False),
              help="Results database (default: the job's output).")
@click.option("--providers-dir", "providers_dirs", multiple=True, metavar="DIR",
              help="Extra provider folder, read last (repeatable; also HANZO_RUN_PROVIDERS_DIR).")
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table; errors only.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--dry-run", is_flag=True, help="Validate, count items, estimate tokens and cost; send nothing.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Also write the results as JUnit XML (one test case per item) for CI.")
def run(job: Path, fail_under: float | None, quiet: bool, as_json: bool, dry_run: bool, junit: Path | None,
        **run_options: Any) -> None:
    """Run JOB (a job YAML file) and record every result in SQLite.

    Ctrl-C stops taking new items, lets requests in flight finish, keeps every result
    and prints how to resume. Exit codes: 0 all ok, 1 items failed, 2 invalid files,
    130 interrupted.

    \b
    Example:
        hanzo-run jobs/compare.yaml --only openai --limit 5
        hanzo-run jobs/compare.yaml --resume
    """
    from ..engine.launch import RunOptions, execute, prepare
    from .output import render_outcome

    if run_options["resume"] and run_options["retry_errors"]:
        raise click.UsageError("--resume and --retry-errors do not go together")
    options = RunOptions(**run_options)
    limit = options.limit
    prepared, registry = prepare(job, options)
    if dry_run:
        from ..engine.estimate import estimate_job, render_estimate

        render_estimate(estimate_job(prepared, registry, limit), as_json=as_json)
        return
    progress = None
    if not quiet and not as_json and sys.stderr.isatty():
        from .output import BarProgress

        progress = BarProgress(None if limit else prepared.count_items())
    # What is loaded by now (modules, schemas, providers) lives for the whole run: keep it out of
    # the collector, which otherwise walks it all each time the oldest generation fills.
    gc.freeze()
    try:
        outcome = execute(prepared, registry, options, progress=progress)
    finally:
        if progress:
            progress.close()
    render_outcome(outcome, quiet=quiet, as_json=as_json)
    if junit:
        from ..reports.junit import write_junit

        write_junit(outcome.db_path, outcome.run_id, junit)
    if outcome.status == "interrupted":
        click.echo(f"resume with: hanzo-run {job} --resume {outcome.run_id}"
                   + (f" --db {options.db}" if options.db else ""), err=True)
        raise ExitCode(130)
    from ..store.queries import run_failed

    if run_failed(outcome.db_path, outcome.run_id, fail_under, checked=prepared.has_checks):
        raise ExitCode(1)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--providers-dir", "providers_dirs", multiple=True, metavar="DIR",
              help="Extra provider folder (repeatable).")
def validate(files: tuple[Path, ...], providers_dirs: tuple[str, ...]) -> None:
    """Check provider and job files; print every error as file:line:col.

    With no FILES, checks every provider folder and jobs/. Exits 2 when any file has errors.

    \b
    Example:
        hanzo-run validate providers.d/groq.yaml jobs/compare.yaml
    """
    from ..config.validation import validate_files

    problems, checked = validate_files(list(files), providers_dirs)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} file(s)", err=True)
        raise ExitCode(2)
    click.echo(f"{checked} file(s) OK", err=True)


# Other command groups live in their own modules (runner/cli_*.py) and register here.
# Those modules import only click at the top, so --help stays fast.
from .keys import keys  # noqa: E402
from .models import models, ping, use  # noqa: E402
from .providers import providers  # noqa: E402
from .report import report, runs  # noqa: E402

cli.add_command(keys)
cli.add_command(providers)
cli.add_command(models)
cli.add_command(ping)
cli.add_command(use)
cli.add_command(runs)
cli.add_command(report)


def main(argv: list[str] | None = None) -> Any:
    return run_main(cli, argv)
