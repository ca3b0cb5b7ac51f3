"""``hanzo-run cache stats|clear``: the response cache that ``cache: true`` jobs answer from."""

from __future__ import annotations

import json

import click


@click.group()
def cache() -> None:
    """The response cache: answers already paid for, reused by jobs with cache: true (or --cache).

    It lives in the user's cache folder (HANZO_RUN_CACHE_DIR overrides) and holds
    answers only, never keys.

    \b
    Example:
        hanzo-run cache stats
        hanzo-run cache clear --older-than 30d
    """


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def stats(as_json: bool) -> None:
    """How many answers the cache holds, its size, its oldest and newest entry.

    \b
    Example:
        hanzo-run cache stats --json
    """
    from ..store.cache import ResponseCache

    with ResponseCache.open() as responses:
        figures = {"path": str(responses.path), **responses.stats()}
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    for name, value in figures.items():
        click.echo(f"{name}: {'-' if value is None else value}")


@cache.command()
@click.option("--older-than", metavar="DURATION", help="Only entries older than this (e.g. 12h, 14d, 2w).")
def clear(older_than: str | None) -> None:
    """Delete cached answers: all of them, or those older than DURATION.

    \b
    Example:
        hanzo-run cache clear --older-than 14d
    """
    from ..config.durations import parse_duration
    from ..store.cache import ResponseCache

    try:
        seconds = None if older_than is None else parse_duration(older_than)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--older-than") from None
    with ResponseCache.open() as responses:
        removed = responses.clear(seconds)
    click.echo(f"removed {removed} cached answer(s)", err=True)
