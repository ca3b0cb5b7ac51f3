"""``hanzo-run validate``: check provider and job files, every error at once."""

from __future__ import annotations

from pathlib import Path

import click

from .exits import ExitCode
from .options import providers_dir_option


@click.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@providers_dir_option
def validate(files: tuple[Path, ...], providers_dirs: tuple[str, ...]) -> None:
    """Check provider and job files; print every error as file:line:col.

    With no FILES, checks every provider folder and jobs/. Exits 2 when any file has errors.
    A judge check whose grader has no key is a warning: a run would refuse to start.

    \b
    Example:
        hanzo-run validate providers.d/groq.yaml jobs/compare.yaml
    """
    from ..config.jobs import Job
    from ..config.providers import ProviderRegistry
    from ..config.validation import validate_files
    from ..engine.preflight import grader_problems
    from ..errors import Problem

    # Not errors of the files: a key is set where the job runs, which may not be here (CI).
    warnings: list[Problem] = []
    notes: list[Problem] = []  # worth saying of a valid job (which system message wins)

    def check(job: Job, registry: ProviderRegistry) -> None:
        notes.extend(job.notes)
        warnings.extend(grader_problems(job, registry))

    problems, checked = validate_files(list(files), providers_dirs, check)
    for problem in [*notes, *problems]:
        click.echo(str(problem), err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} file(s)", err=True)
        raise ExitCode(2)
    click.echo(f"{checked} file(s) OK" + (f", {len(warnings)} warning(s)" if warnings else ""), err=True)
