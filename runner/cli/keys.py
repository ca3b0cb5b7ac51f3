"""``hanzo-run keys ...``: the key store and where each provider's key comes from."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .exits import ExitCode
from .options import providers_dir_option


@click.group("keys")
def keys() -> None:
    """Save, check and list API keys (bring your own key).

    A provider's key comes from HANZO_API_KEY_<ID>, then the provider's own
    variables (e.g. OPENAI_API_KEY), then the key store (see: keys path). A stored
    key is sent only to the host it was saved for.

    \b
    Example:
        hanzo-run keys set openai
    """


@keys.command("set")
@click.argument("provider")
@click.option("--value", help="The key (else read from a hidden prompt, or from stdin when piped).")
@click.option("--no-validate", is_flag=True, help="Save without checking the key against the provider.")
@providers_dir_option
def set_key(provider: str, value: str | None, no_validate: bool, providers_dirs: tuple[str, ...]) -> None:
    """Check PROVIDER's key against the provider, then save it in the key store.

    A key that is refused, or that cannot be checked now, is not saved.

    \b
    Example:
        echo "$GROQ_KEY" | hanzo-run keys set groq
    """
    from ..api import get_provider, set_api_key

    get_provider(provider, providers_dirs)  # an unknown id fails before the user types a secret
    if value is None:
        if sys.stdin.isatty():
            value = str(click.prompt(f"{provider} API key", hide_input=True))
        else:
            value = sys.stdin.readline()
    check = set_api_key(provider, value or "", validate=not no_validate, providers_dirs=providers_dirs)
    verdict = "checked and saved" if check else "saved without checking"
    click.echo(f"{provider}: key {verdict} (…{value.strip()[-4:]})" if len(value.strip()) >= 12
               else f"{provider}: key {verdict}", err=True)


@keys.command("get")
@click.argument("provider")
@click.option("--reveal", is_flag=True, help="Print the whole key instead of its last 4 characters.")
@providers_dir_option
def get_key(provider: str, reveal: bool, providers_dirs: tuple[str, ...]) -> None:
    """Print the key a run would use for PROVIDER (masked unless --reveal).

    \b
    Example:
        hanzo-run keys get anthropic --reveal | pbcopy
    """
    from ..api import find_provider_key
    from ..keys.lookup import mask

    _, lookup = find_provider_key(provider, providers_dirs)
    if lookup.key is None:
        click.echo(f"{provider}: {lookup.problem or 'no key (' + lookup.source + ')'}", err=True)
        raise ExitCode(1)
    click.echo(lookup.key if reveal else mask(lookup.key))
    click.echo(f"{provider}: key from {lookup.source}", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@providers_dir_option
def list_keys(as_json: bool, providers_dirs: tuple[str, ...]) -> None:
    """List every provider, where its key comes from, and the key's last 4 characters.

    \b
    Example:
        hanzo-run keys list
    """
    import json

    from ..api import get_all_providers
    from ..keys.lookup import key_status
    from ..keys.store import KeyStore

    providers, _ = get_all_providers(providers_dirs)
    stored = KeyStore().all()
    statuses = [key_status(provider, stored) for provider in providers]
    rows = [{"provider": s.provider, "source": s.where, "key": s.shown} for s in statuses]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max((len(r["provider"]) for r in rows), default=8)
    for r in rows:
        click.echo(f"{r['provider']:<{width}}  {r['key']:<6}  {r['source']}".rstrip())


@keys.command("remove")
@click.argument("provider")
def remove_key(provider: str) -> None:
    """Remove PROVIDER's key from the key store (environment variables are untouched).

    \b
    Example:
        hanzo-run keys remove groq
    """
    from ..api import remove_api_key

    if not remove_api_key(provider):
        click.echo(f"{provider}: no key in the store", err=True)
        raise ExitCode(1)
    click.echo(f"{provider}: key removed from the store", err=True)


@keys.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_keys(yes: bool) -> None:
    """Remove every key from the key store.

    \b
    Example:
        hanzo-run keys clear --yes
    """
    from ..keys.store import KeyStore

    store = KeyStore()
    if not yes:
        click.confirm(f"Remove all {len(store.all())} key(s) from {store.path}?", abort=True, err=True)
    click.echo(f"removed {store.clear()} key(s)", err=True)


@keys.command("validate")
@click.argument("provider", required=False)
@click.option("--all", "check_all", is_flag=True, help="Check every provider that has a key.")
@providers_dir_option
def validate_keys(provider: str | None, check_all: bool, providers_dirs: tuple[str, ...]) -> None:
    """Check keys against their providers without spending tokens; exit 1 if any fails.

    Says whether a key is valid, refused, rate-limited or out of quota, or could not be
    checked (server error, cannot connect).

    \b
    Example:
        hanzo-run keys validate --all
    """
    from ..api import get_provider, validate_all_keys, validate_api_key
    from ..errors import UsageError

    if bool(provider) == check_all:
        raise UsageError("hanzo-run: name one PROVIDER, or --all")
    if provider:
        get_provider(provider, providers_dirs)
        checks = [validate_api_key(provider, providers_dirs=providers_dirs)]
    else:
        checks = validate_all_keys(providers_dirs)
        if not checks:
            click.echo("no provider has a key; save one with: hanzo-run keys set PROVIDER", err=True)
    for check in checks:
        click.echo(f"{check.provider}: {check.status}: {check.detail}")
    if not all(c.ok for c in checks):
        raise ExitCode(1)


@keys.command("path")
def key_path() -> None:
    """Print where the key store is.

    \b
    Example:
        hanzo-run keys path
    """
    from ..keys.store import keys_path

    click.echo(str(keys_path()))


@keys.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def export_keys(file: Path) -> None:
    """Write settings and stored keys to FILE (mode 0600). FILE holds secrets.

    \b
    Example:
        hanzo-run keys export ~/hanzo-backup.json
    """
    from ..api import export_settings

    count = export_settings(file)
    click.echo(f"exported {count} key(s) and settings to {file}", err=True)
    click.echo(f"warning: {file} holds your API keys in plain text; keep it private and delete it when done",
               err=True)


@keys.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def import_keys(file: Path) -> None:
    """Read settings and keys from FILE (made by keys export); its keys replace stored ones.

    \b
    Example:
        hanzo-run keys import ~/hanzo-backup.json
    """
    from ..api import import_settings

    count = import_settings(file)
    click.echo(f"imported {count} key(s) and settings from {file}", err=True)

