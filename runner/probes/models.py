"""Model discovery from each provider's own listing API, merged with the provider
file's known metadata (the file wins where it sets a value) and cached per provider.

Listings differ by protocol; the OpenAI-compatible ones (OpenAI, Groq, OpenRouter,
SambaNova, LM Studio) share one entry reader that picks up whichever optional fields
a provider adds (context length, output limit, per-token prices).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from ..config.providers import ModelInfo, Pricing, Provider
from ..errors import ErrorCode, ProviderError, UsageError
from ..http.client import ProviderClient
from ..keys.store import host_of, read_private_json, write_private_json
from ..paths import config_dir

CACHE_TTL = 24 * 3600.0  # seconds a listing is reused before it is fetched again
PAGE_SIZE = 1000  # the largest page Anthropic and Gemini serve
MAX_PAGES = 100  # a listing that never ends is a broken server, not a big catalogue
SHOW_CONCURRENCY = 4  # Ollama /api/show requests in flight at once

Lister = Callable[[ProviderClient, Provider], Awaitable[list[ModelInfo]]]


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
        found = await LISTERS[_style(provider)](client, provider)
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


# ---------------------------------------------------------------- listers, per protocol


def _style(provider: Provider) -> str:
    if provider.protocol in ("anthropic", "gemini", "ollama"):
        return provider.protocol
    return "local_openai" if provider.kind == "local" else "openai"


async def _list_openai(client: ProviderClient, provider: Provider) -> list[ModelInfo]:
    assert provider.list_path
    body = await client.get(provider.list_path)
    source = f"discovered via {provider.id} {provider.list_path}"
    return [_openai_entry(e, source) for e in _entries(body, "data") if isinstance(e.get("id"), str)]


async def _list_local_openai(client: ProviderClient, provider: Provider) -> list[ModelInfo]:
    """LM Studio's native /api/v0/models carries context lengths; other servers fall back to /models."""
    try:
        body = await client.get(server_root(provider) + "/api/v0/models")
        entries = _entries(body, "data")
    except ProviderError:
        return await _list_openai(client, provider)
    source = f"discovered via {provider.id} /api/v0/models"
    return [_openai_entry(e, source) for e in entries if isinstance(e.get("id"), str)]


async def _list_anthropic(client: ProviderClient, provider: Provider) -> list[ModelInfo]:
    assert provider.list_path
    found: list[ModelInfo] = []
    query = {"limit": str(PAGE_SIZE)}
    for _ in range(MAX_PAGES):
        page = await client.get(provider.list_path, query)
        for e in _entries(page, "data"):
            if isinstance(e.get("id"), str):
                found.append(ModelInfo(e["id"], _int(e.get("max_input_tokens")), _int(e.get("max_tokens")),
                                       capabilities=_flags(e.get("capabilities"))))
        last = page.get("last_id")
        if not page.get("has_more") or not isinstance(last, str) or last == query.get("after_id"):
            break
        query["after_id"] = last
    return found


async def _list_gemini(client: ProviderClient, provider: Provider) -> list[ModelInfo]:
    assert provider.list_path
    found: list[ModelInfo] = []
    query = {"pageSize": str(PAGE_SIZE)}
    for _ in range(MAX_PAGES):
        page = await client.get(provider.list_path, query)
        for e in _entries(page, "models"):
            if "generateContent" not in (e.get("supportedGenerationMethods") or ()):
                continue  # embedding and other non-chat models
            name = str(e.get("name", "")).removeprefix("models/")
            caps = ("reasoning",) if e.get("thinking") else ()
            found.append(ModelInfo(name, _int(e.get("inputTokenLimit")), _int(e.get("outputTokenLimit")),
                                   capabilities=caps))
        token = page.get("nextPageToken")
        if not token or token == query.get("pageToken"):
            break
        query["pageToken"] = str(token)
    return found


async def _list_ollama(client: ProviderClient, provider: Provider) -> list[ModelInfo]:
    """Names from /api/tags; context lengths from /api/show, one request per model."""
    assert provider.list_path
    names = [str(e["name"]) for e in _entries(await client.get(provider.list_path), "models") if e.get("name")]
    details: dict[str, ModelInfo] = {}
    limiter = anyio.CapacityLimiter(SHOW_CONCURRENCY)

    async def show(name: str) -> None:
        async with limiter:
            try:
                info = await client.fetch("POST", "/api/show", body={"model": name})
            except ProviderError:
                details[name] = ModelInfo(name)  # listed but not described: still worth showing
                return
        model_info = info.get("model_info") if isinstance(info, dict) else None
        context = next((_int(v) for k, v in (model_info or {}).items() if k.endswith(".context_length")), None)
        caps = info.get("capabilities") if isinstance(info, dict) else None
        details[name] = ModelInfo(name, context, capabilities=tuple(
            sorted(str(c) for c in caps or () if c != "completion")))

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(show, name)
    return [details[n] for n in names]


LISTERS: Mapping[str, Lister] = {
    "openai": _list_openai,
    "local_openai": _list_local_openai,
    "anthropic": _list_anthropic,
    "gemini": _list_gemini,
    "ollama": _list_ollama,
}


# ---------------------------------------------------------------- reading entries


def _openai_entry(e: Mapping[str, Any], source: str) -> ModelInfo:
    top: Mapping[str, Any] = e.get("top_provider") or {}
    context = _first_int(e.get("context_length"), e.get("context_window"), e.get("max_context_length"),
                         top.get("context_length"))
    output = _first_int(e.get("max_completion_tokens"), top.get("max_completion_tokens"))
    caps: set[str] = set(_flags(e.get("capabilities")))
    if "tools" in (e.get("supported_parameters") or ()):
        caps.add("tools")
    arch: Mapping[str, Any] = e.get("architecture") or {}
    if "image" in (arch.get("input_modalities") or ()) or e.get("type") == "vlm":
        caps.add("vision")
    if e.get("type") in ("embeddings", "embedding"):
        caps.add("embeddings")
    return ModelInfo(str(e["id"]), context, output, _per_token_pricing(e.get("pricing"), source),
                     tuple(sorted(caps)))


def _per_token_pricing(pricing: Any, source: str) -> Pricing | None:
    """USD per token (OpenRouter: strings, SambaNova: floats) -> USD per 1M tokens."""
    if not isinstance(pricing, dict):
        return None
    try:
        per_input, per_output = float(pricing["prompt"]), float(pricing["completion"])
    except (KeyError, TypeError, ValueError):
        return None
    if per_input < 0 or per_output < 0:  # OpenRouter marks variable-priced routers with -1
        return None
    return Pricing(round(per_input * 1e6, 6), round(per_output * 1e6, 6), source)


def _flags(value: Any) -> tuple[str, ...]:
    """Capabilities given as a list of names or a mapping of name -> bool / {supported: bool}."""
    if isinstance(value, list):
        return tuple(sorted({"tools" if v in ("tool_use", "trained_for_tool_use") else str(v) for v in value}))
    if isinstance(value, dict):
        on = [k for k, v in value.items() if v is True or (isinstance(v, dict) and v.get("supported"))]
        return tuple(sorted({"tools" if k in ("tool_use", "trained_for_tool_use") else k for k in on}))
    return ()


def _entries(body: Any, key: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ProviderError(ErrorCode.INVALID_RESPONSE, f"the model list has no '{key}' array")
    return [i for i in items if isinstance(i, dict)]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _first_int(*values: Any) -> int | None:
    return next((v for v in map(_int, values) if v is not None), None)


def server_root(provider: Provider) -> str:
    """The server's own root for native endpoints: the base URL without its OpenAI-style ``/v1``."""
    if provider.base_url.endswith("/v1"):
        return provider.base_url.removesuffix("/v1")
    parts = urlsplit(provider.base_url)
    return f"{parts.scheme}://{parts.netloc}"


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
