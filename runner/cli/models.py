"""``hanzo-run models``, ``ping`` and ``use``: what a provider offers, whether it
works now, and which one (and which model) to use by default."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .exits import ExitCode
from .options import providers_dir_option

if TYPE_CHECKING:
    from ..config.providers import Pricing


def _provider_or_default(provider: str | None) -> str:
    if provider:
        return provider
    from ..config.settings import load_settings
    from ..errors import UsageError

    chosen = load_settings().default_provider
    if not chosen:
        raise UsageError("hanzo-run: name a PROVIDER (or choose a default with: hanzo-run use PROVIDER)")
    return chosen


@click.command("models")
@click.argument("provider", required=False)
@click.option("--refresh", is_flag=True, help="Ask the provider again instead of using the 24 h cache.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@providers_dir_option
def models(provider: str | None, refresh: bool, as_json: bool, providers_dirs: tuple[str, ...]) -> None:
    """List PROVIDER's models from its own API: context length, price per 1M tokens and where
    the price comes from, capabilities. A price set in the provider file wins; else the
    genai-prices dataset shipped with hanzo-run; else the price the provider's listing gives.
    Runs and --dry-run use the same prices.

    \b
    Example:
        hanzo-run models openrouter --refresh
    """
    import json

    from ..api import fetch_models, get_provider
    from ..engine.costing import PriceBook
    from ..errors import ProviderError

    provider = _provider_or_default(provider)
    try:
        found = fetch_models(provider, refresh=refresh, providers_dirs=providers_dirs)
    except ProviderError as e:
        click.echo(f"hanzo-run: {e}", err=True)
        raise ExitCode(1) from None
    prices, config = PriceBook(), get_provider(provider, providers_dirs)
    priced = [(m, prices.get(config, m.id)) for m in found]
    if as_json:
        click.echo(json.dumps([{
            "id": m.id, "context_length": m.context_length, "max_output_tokens": m.max_output_tokens,
            "pricing": _pricing_json(p) if p else None, "capabilities": list(m.capabilities)} for m, p in priced],
            indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "context", "max output", "input $/1M", "output $/1M", "cached $/1M", "price source",
                  "capabilities", title=f"{provider}: {len(found)} model(s)", box=None)
    for m, p in priced:
        table.add_row(m.id, _num(m.context_length), _num(m.max_output_tokens), _usd(p.input if p else None),
                      _usd(p.output if p else None), _usd(p.cached_input if p else None),
                      (p.source + (" (tiered: long prompts cost more)" if _tiered(p) else "")) if p else "unpriced",
                      ", ".join(m.capabilities))
    Console(width=None if sys.stdout.isatty() else 250).print(table)


def _pricing_json(p: Pricing) -> dict[str, Any]:
    return {"input": p.input, "output": p.output, "cached_input": p.cached_input, "cache_write": p.cache_write,
            "tiered": _tiered(p), "source": p.source}


def _tiered(p: Pricing) -> bool:
    from ..engine.costing import DatasetPricing  # only the dataset's prices have prompt-size tiers

    return isinstance(p, DatasetPricing) and p.tiered


def _usd(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _num(value: int | None) -> str:
    return f"{value:,}" if value else ""


@click.command("ping")
@click.argument("provider", required=False)
@providers_dir_option
def ping(provider: str | None, providers_dirs: tuple[str, ...]) -> None:
    """Is PROVIDER usable now? A local server: is it up, which models are loaded.
    A cloud provider: does the key work. Exit 0 when usable, 1 when not.

    \b
    Example:
        hanzo-run ping ollama
    """
    from ..api import get_provider, test_local_connection, validate_api_key

    provider = _provider_or_default(provider)
    if get_provider(provider, providers_dirs).kind == "local":
        status = test_local_connection(provider, providers_dirs)
        if not status.up:
            click.echo(f"{provider}: down: {status.detail}")
            raise ExitCode(1)
        loaded = ", ".join(status.loaded) or "none"
        click.echo(f"{provider}: {status.detail}; models loaded: {loaded}")
        return
    check = validate_api_key(provider, providers_dirs=providers_dirs)
    click.echo(f"{provider}: {check.status}: {check.detail}")
    if not check.ok and check.status != "no_check":
        raise ExitCode(1)


@click.command("use")
@click.argument("target", metavar="PROVIDER[/MODEL]")
@providers_dir_option
def use(target: str, providers_dirs: tuple[str, ...]) -> None:
    """Make PROVIDER the default and, with /MODEL, the model a job target naming only
    PROVIDER runs (else the provider file's default).

    \b
    Example:
        hanzo-run use openrouter/meta-llama/llama-3.3-70b-instruct
    """
    from ..api import use as select

    provider, _, model = target.partition("/")
    settings = select(provider, model or None, providers_dirs)
    chosen = settings.models.get(provider)
    click.echo(f"default provider: {provider}" + (f"; model: {chosen}" if chosen else ""), err=True)
