"""The one owner of exit codes; nothing else calls ``sys.exit``.

0 all items ok; 1 the run finished but items failed (or fell under --fail-under), or
``diff`` found a regression;
2 usage error or invalid files (nothing was sent); 3 unexpected internal error;
75 (EX_TEMPFAIL) batches still running at the provider: run ``--resume`` again later;
130 interrupted (finished results kept).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Any

import click

from ..errors import HanzoError, UsageError

EX_TEMPFAIL = 75  # sysexits.h: try again later (a cron job's batches are still running)
INTERRUPTED = 130


class ExitCode(Exception):
    """Raised by a command to end with ``code`` after it has said what it had to say."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def run_main(cli: click.Group, argv: list[str] | None) -> Any:
    try:
        cli.main(args=argv, prog_name="hanzo-run", standalone_mode=False)
        code = 0
    except ExitCode as e:
        code = e.code
    except UsageError as e:
        click.echo(str(e), err=True)
        code = 2
    except HanzoError as e:  # the command ran and said no, e.g. a key that failed its check
        click.echo(str(e), err=True)
        code = 1
    except click.exceptions.Abort:
        click.echo("hanzo-run: aborted", err=True)
        code = 130
    except click.ClickException as e:
        e.show()
        code = 2
    except KeyboardInterrupt:
        click.echo("hanzo-run: interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 0  # stdout closed early (e.g. piped into head): nothing left to say
    except Exception:
        code = _crash()
    sys.stdout.flush()
    sys.exit(code)


def _crash() -> int:
    """An unexpected error: a short line on stderr, the traceback in a log file."""
    fd, path = tempfile.mkstemp(prefix="hanzo-run-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        traceback.print_exc(file=f)
    error = sys.exc_info()[1]
    click.echo(f"hanzo-run: internal error: {type(error).__name__}: {error}", err=True)
    click.echo(f"hanzo-run: the full traceback is in {path}; please report it", err=True)
    return 3
