"""``hanzo-run merge OUT.db A.db B.db ...``: the shards' results databases as one run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--allow-different-jobs", is_flag=True, help="Merge runs of different jobs (each keeps its own run).")
def merge(out: Path, sources: tuple[Path, ...], allow_different_jobs: bool) -> None:
    """Merge results databases (the shards of a job, run with --shard K/N) into OUT.

    The shards' runs of one job become one run in OUT; merging a shard again updates it.

    \b
    Example:
        hanzo-run merge all.db shard-0.db shard-1.db shard-2.db
    """
    from ..errors import UsageError
    from ..store.merge import MergeError, merge_databases

    try:
        summary = merge_databases(out, list(sources), allow_different_jobs=allow_different_jobs)
    except MergeError as error:  # the library's words, the command's flag
        raise UsageError(f"hanzo-run merge: {error}".replace("(allow different jobs to", "(pass "
                                                              "--allow-different-jobs to")) from None
    runs = ", ".join(f"run {r} ({summary.statuses.get(r, '?')})" for r in summary.run_ids)
    click.echo(f"merged {summary.source_runs} runs from {len(sources)} databases into {out}: {runs}; "
               f"{summary.results} results, {summary.attempts} attempts, {summary.batches} batches")
