"""Model discovery from each provider's own listing API, merged with the provider
file's known metadata (the file wins where it sets a value) and cached per provider.

Listings differ by protocol: how to read one (and page through it) is the protocol
adapter's ``list_models``; this module does the I/O around it and the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import httpx

from ..config.providers import ModelInfo, Pricing, Provider
from ..errors import ErrorCode, ProviderError, UsageError
from ..http.client import ProviderClient
from ..keys.store import host_of
from ..paths import config_dir
from ..private_files import read_private_json, write_private_json

CACHE_TTL = 24 * 3600.0  # seconds a listing is reused before it is fetched again


def cache_path(provider_id: str) -> Path:
    return config_dir() / "models" / f"{provider_id}.json"


async def fetch_models(provider: Provider, key: str | None, *, refresh: bool = False, key_hint: str | None = None,
                       transport: httpx.AsyncBaseTransport | None = None) -> list[ModelInfo]:
    """The provider's models, from the cache when fresh, else from its API (then cached).

    Raises ProviderError FETCH_MODELS_FAILED naming the cause; ``key_hint`` (why no key was
    found) is added when the provider refused the request for want of a key.
    """
    if not provider.list_path:
        return list(provider.known.values())
    if not refresh:
        cached = _read_cache(provider, max_age=CACHE_TTL)
        if cached is not None:
            return _merged(provider, cached)
    client = ProviderClient(provider, key, transport=transport)
    try:
        found = await client.adapter.list_models(client, provider)
    except ProviderError as e:
        hint = f" ({key_hint})" if key_hint and e.code == ErrorCode.INVALID_API_KEY else ""
        raise ProviderError(ErrorCode.FETCH_MODELS_FAILED, f"cannot list the models of {provider.id} "
                            f"({provider.base_url}{provider.list_path}): {e.code}: {e.message}{hint}",
                            e.status, provider.id) from None
    finally:
        await client.aclose()
    _write_cache(provider, found)
    return _merged(provider, found)


def cached_models(provider: Provider) -> dict[str, ModelInfo]:
    """What the last discovery learned (merged with the provider file), without network; {} if none.

    Stale entries are returned too: a price learned a week ago beats no price.
    """
    found = _read_cache(provider, max_age=None) or []
    return {m.id: m for m in _merged(provider, found)}


# ---------------------------------------------------------------- merging


def _merged(provider: Provider, found: Iterable[ModelInfo]) -> list[ModelInfo]:
    """Discovered models with the provider file's known values on top where it sets them."""
    out = []
    for model in found:
        known = provider.known.get(model.id)
        if known:
            model = replace(
                model,
                context_length=known.context_length or model.context_length,
                max_output_tokens=known.max_output_tokens or model.max_output_tokens,
                pricing=known.pricing or model.pricing,
                capabilities=known.capabilities or model.capabilities,
            )
        out.append(model)
    return out


# ---------------------------------------------------------------- cache


def _write_cache(provider: Provider, models: list[ModelInfo]) -> None:
    write_private_json(cache_path(provider.id), {
        "version": 1, "host": host_of(provider.base_url), "fetched_at": time.time(),
        "models": [{"id": m.id, "context_length": m.context_length, "max_output_tokens": m.max_output_tokens,
                    "pricing": {"input": m.pricing.input, "output": m.pricing.output, "source": m.pricing.source}
                    if m.pricing else None, "capabilities": list(m.capabilities)} for m in models]})


def _read_cache(provider: Provider, max_age: float | None) -> list[ModelInfo] | None:
    try:
        data = read_private_json(cache_path(provider.id))
    except UsageError:
        return None  # an unreadable cache is only a missed shortcut
    if not data or data.get("host") != host_of(provider.base_url):
        return None
    if max_age is not None and time.time() - float(data.get("fetched_at", 0)) > max_age:
        return None
    models = []
    for m in data.get("models", []):
        p = m.get("pricing")
        models.append(ModelInfo(m["id"], m.get("context_length"), m.get("max_output_tokens"),
                                Pricing(p["input"], p["output"], p["source"]) if p else None,
                                tuple(m.get("capabilities", ()))))
    return models
