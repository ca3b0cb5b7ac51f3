"""``hanzo-run merge OUT.db A.db B.db ...``: the shards' results databases as one run."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--allow-different-jobs", is_flag=True, help="Merge runs of different jobs (each keeps its own run).")
@click.option("--run", "runs", type=int, multiple=True, metavar="ID",
              help="The run to take from each source (default: its latest); once for all, or once per source.")
def merge(out: Path, sources: tuple[Path, ...], allow_different_jobs: bool, runs: tuple[int, ...]) -> None:
    """Merge results databases (the shards of a job, run with --shard K/N) into OUT.

    One run of each source (its latest, or --run) joins one run of the job in OUT;
    merging a shard again updates it. The merged run is interrupted until every shard
    K/N is in.

    \b
    Example:
        hanzo-run merge all.db shard-0.db shard-1.db shard-2.db
    """
    from ..errors import UsageError
    from ..store.merge import MergeError, merge_databases

    try:
        summary = merge_databases(out, list(sources), allow_different_jobs=allow_different_jobs, runs=runs)
    except MergeError as error:  # the library's words, the command's flag
        raise UsageError(f"hanzo-run merge: {error}".replace("(allow different jobs to", "(pass "
                                                              "--allow-different-jobs to")) from None
    merged = ", ".join(f"run {r} ({summary.statuses[r]}, {summary.items[r]} results)" for r in summary.run_ids)
    databases = len({source.resolve() for source in sources})
    click.echo(f"merged {summary.source_runs} runs from {databases} databases into {out}: {merged}; "
               f"{summary.results} results written, {summary.attempts} attempts and {summary.batches} batches added")
    for run_id, missing in summary.missing_shards.items():
        click.echo(f"hanzo-run merge: run {run_id} is interrupted: shard{'s' if len(missing) != 1 else ''} "
                   f"{', '.join(missing)} {'are' if len(missing) != 1 else 'is'} missing; merge "
                   f"{'their databases' if len(missing) != 1 else 'its database'} into {out} too", err=True)
