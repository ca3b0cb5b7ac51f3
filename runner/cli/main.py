"""The ``hanzo-run`` command line. Commands are thin: parse, call, render.

Heavy modules are imported inside the commands so ``--help`` and ``validate`` start fast.
"""

from __future__ import annotations

from typing import Any

import click

from ..version import __version__
from .exits import run_main

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


# Every command lives in a module of its own and registers here. Those modules import only
# click at the top, so --help stays fast.
from .ask import ask  # noqa: E402
from .batches import batches  # noqa: E402
from .cache import cache  # noqa: E402
from .diff import diff  # noqa: E402
from .keys import keys  # noqa: E402
from .merge import merge  # noqa: E402
from .models import models, ping, use  # noqa: E402
from .providers import providers  # noqa: E402
from .report import report, runs  # noqa: E402
from .rescore import rescore  # noqa: E402
from .run import run  # noqa: E402
from .show import show  # noqa: E402
from .validate import validate  # noqa: E402
from .view import view  # noqa: E402

cli.add_command(run)
cli.add_command(validate)
cli.add_command(keys)
cli.add_command(providers)
cli.add_command(models)
cli.add_command(ping)
cli.add_command(use)
cli.add_command(runs)
cli.add_command(report)
cli.add_command(show)
cli.add_command(diff)
cli.add_command(rescore)
cli.add_command(cache)
cli.add_command(batches)
cli.add_command(merge)
cli.add_command(ask)
cli.add_command(view)


def main(argv: list[str] | None = None) -> Any:
    return run_main(cli, argv)
