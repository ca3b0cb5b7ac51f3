"""The ``hanzo-run`` command line. Commands are thin: parse, call, render.

Heavy modules are imported inside the commands so ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
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
              help="Exit 1 when the success rate (0..1) is below RATE.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table; errors only.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
def run(job: Path, db: Path | None, providers_dirs: tuple[str, ...], only: tuple[str, ...], limit: int | None,
        concurrency: int | None, fail_under: float | None, quiet: bool, as_json: bool) -> None:
    """Run JOB (a job YAML file) and record every result in SQLite.

    \b
    Example:
        hanzo-run jobs/compare.yaml --only openai --limit 5
    """
    from .render import render_outcome
    from .run import RunOptions, execute, prepare

    options = RunOptions(db=db, providers_dirs=providers_dirs, only=only, limit=limit, concurrency=concurrency)
    prepared, registry = prepare(job, options)
    progress = None
    if not quiet and not as_json and sys.stderr.isatty():
        from .render import BarProgress

        progress = BarProgress(None if limit else prepared.count_items())
    try:
        outcome = execute(prepared, registry, options, progress=progress)
    finally:
        if progress:
            progress.close()
    render_outcome(outcome, quiet=quiet, as_json=as_json)
    if outcome.status == "interrupted":
        raise ExitCode(130)
    if outcome.failed or (fail_under is not None and outcome.items and outcome.ok / outcome.items < fail_under):
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
    from .validate import validate_files

    problems, checked = validate_files(list(files), providers_dirs)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} file(s)", err=True)
        raise ExitCode(2)
    click.echo(f"{checked} file(s) OK", err=True)


# Other command groups live in their own modules (runner/cli_*.py) and register here.
# Those modules import only click at the top, so --help stays fast.
from .cli_keys import keys  # noqa: E402
from .cli_models import models, ping, use  # noqa: E402
from .cli_providers import providers  # noqa: E402

cli.add_command(keys)
cli.add_command(providers)
cli.add_command(models)
cli.add_command(ping)
cli.add_command(use)


def main(argv: list[str] | None = None) -> Any:
    return run_main(cli, argv)
