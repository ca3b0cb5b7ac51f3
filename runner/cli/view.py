"""``hanzo-run view``: a local web app over a results database."""

from __future__ import annotations

from pathlib import Path

import click

from .options import providers_dir_option
from .where import db_option


@click.command()
@click.argument("job", required=False, type=click.Path(path_type=Path, dir_okay=False), metavar="[JOB]")
@db_option
@click.option("--port", type=click.IntRange(0, 65535), metavar="N",
              help="Port to listen on (default 8642, or a free one when that is taken).")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="H",
              help="Address to listen on; anything but loopback needs --read-only or --allow-remote.")
@click.option("--no-open", is_flag=True, help="Print the URL; do not open a browser.")
@click.option("--read-only", is_flag=True, help="Show results only; refuse every change (keys, default model).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host without --read-only.")
@providers_dir_option
def view(job: Path | None, db: Path | None, port: int | None, host: str, no_open: bool, read_only: bool,
         allow_remote: bool, providers_dirs: tuple[str, ...]) -> None:
    """Browse runs in a local web app: runs, a run's targets side by side and every item,
    one item's requests and answers, two runs compared.

    Serves JOB's output, or --db, or the one database found here, on 127.0.0.1. The URL it
    prints carries a secret token; every request needs it (as Jupyter does).

    \b
    Example:
        hanzo-run view jobs/compare.yaml
        hanzo-run view --db jobs/compare.db --port 9000 --no-open
    """
    from ..view.server import check_host, serve
    from .where import find

    check_host(host, read_only, allow_remote)
    where = find(db, job)
    serve(where.path, where.shown, host=host, port=port, open_browser=not no_open, read_only=read_only,
          allow_remote=allow_remote, providers_dirs=providers_dirs)
