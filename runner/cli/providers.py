"""``hanzo-run providers``: every provider, its key status and local reachability."""

from __future__ import annotations

import sys

import click

from .exits import ExitCode
from .options import providers_dir_option


@click.group("providers", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@providers_dir_option
@click.pass_context
def providers(ctx: click.Context, as_json: bool, providers_dirs: tuple[str, ...]) -> None:
    """List providers: name, kind, protocol, base URL, key status, and whether local
    servers answer right now. Where a key is missing, where to get one.

    \b
    Example:
        hanzo-run providers --json
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from ..api import get_provider_statuses

    statuses, problems = get_provider_statuses(providers_dirs)
    rows = []
    for status in statuses:
        p = status.provider
        row: dict[str, object] = {"id": p.id, "name": p.name, "kind": p.kind, "protocol": p.protocol,
                                  "base_url": p.base_url, "key": status.key.source}
        if status.local is not None:
            row["reachable"] = status.local.up
        if status.key.source == "missing":
            row["docs_url"] = p.docs_url
            row["key_problem"] = status.key.problem
        rows.append(row)
    for problem in problems:
        click.echo(str(problem), err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("id", "name", "kind", "protocol", "base URL", "key", "status", box=None)
        for r in rows:
            if "reachable" in r:
                state = "up" if r["reachable"] else "down"
            elif r["key"] == "missing":
                state = f"get a key: {r['docs_url']}" if r.get("docs_url") else "no key"
            else:
                state = ""
            table.add_row(*(str(r[k]) for k in ("id", "name", "kind", "protocol", "base_url", "key")), state)
        Console(width=None if sys.stdout.isatty() else 250).print(table)
    if problems:
        raise ExitCode(2)


@providers.command("show")
@click.argument("provider")
@providers_dir_option
def show(provider: str, providers_dirs: tuple[str, ...]) -> None:
    """Print PROVIDER's resolved file: where it came from, limits, retry settings (never the key).

    \b
    Example:
        hanzo-run providers show groq
    """
    from ..api import get_provider
    from ..config.providers import Provider, provider_dirs
    from ..keys.lookup import find_key

    p = get_provider(provider, providers_dirs)

    def _auth(p: Provider) -> str:
        if p.auth is None:
            return "none"
        return f"{p.auth.header} ({p.auth.scheme or 'bare key'}); key from {', '.join(p.key_env)} or the store"

    folders = [d for d in provider_dirs(providers_dirs) if (d / p.source.name).resolve() == p.source.resolve()]
    lookup = find_key(p)
    lines = [
        f"id:        {p.id}",
        f"name:      {p.name}",
        f"file:      {p.source}",
        f"folder:    {folders[0] if folders else p.source.parent}",
        f"kind:      {p.kind}",
        f"protocol:  {p.protocol}",
        f"base_url:  {p.base_url}",
        f"auth:      {_auth(p)}",
        f"key:       {lookup.source}" + (f" ({lookup.problem})" if lookup.problem else ""),
        f"limits:    {p.limits.requests} requests / {p.limits.window:g} s"
        + (f", {p.limits.tokens} tokens / window" if p.limits.tokens else "")
        + f", concurrency {p.limits.concurrency}" + (f" ({p.limits.tier} tier)" if p.limits.tier else ""),
        f"retry:     max_retries {p.retry.max_retries}, initial_delay {p.retry.initial_delay:g} s, "
        f"max_delay {p.retry.max_delay:g} s, multiplier {p.retry.multiplier:g}, max_elapsed {p.retry.max_elapsed:g} s",
        f"timeout:   {p.timeout:g} s",
        f"models:    list {p.list_path or 'none'}, default {p.default_model or 'none'}, {len(p.known)} known",
        f"validate:  {p.validate_path or 'none'}",
        f"docs_url:  {p.docs_url or 'none'}",
    ]
    click.echo("\n".join(lines))
