"""Is a local model server up right now, and which models has it loaded?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import httpx

from ..config.providers import Provider
from ..errors import ProviderError
from ..http.client import ProviderClient

PROBE_TIMEOUT = 2.0  # seconds: a local server that takes longer is as good as down


@dataclass(frozen=True)
class LocalStatus:
    provider: str
    up: bool
    url: str
    detail: str
    loaded: tuple[str, ...] = ()  # models the server has loaded (or offers, when it cannot tell)


async def check_local(provider: Provider, key: str | None, *, within: float = PROBE_TIMEOUT,
                      with_models: bool = True, transport: httpx.AsyncBaseTransport | None = None) -> LocalStatus:
    """One GET of the provider's check endpoint, then (``with_models``) of what it has loaded."""
    path = provider.validate_path or provider.list_path
    if not path:  # e.g. echo: nothing runs on the other side, so nothing can be down
        return LocalStatus(provider.id, True, provider.base_url, "up (offline provider: no server to reach)")
    url = provider.base_url + path
    client = ProviderClient(provider, key, transport=transport)
    try:
        try:
            await client.get(path, within=within)
        except ProviderError as e:
            return LocalStatus(provider.id, False, url, f"{e.code}: {e.message}")
        loaded: tuple[str, ...] = ()
        if with_models:
            try:
                loaded = await client.adapter.loaded_models(client, provider, within)
            except ProviderError:
                loaded = ()
        return LocalStatus(provider.id, True, url, f"up ({url} answered)", loaded)
    finally:
        await client.aclose()


async def check_all_local(providers: Sequence[tuple[Provider, str | None]], *, within: float = PROBE_TIMEOUT,
                          with_models: bool = False) -> dict[str, LocalStatus]:
    """Every given provider probed at once, so a slow one costs ``within`` in all, not each."""
    results: dict[str, LocalStatus] = {}

    async def probe(provider: Provider, key: str | None) -> None:
        results[provider.id] = await check_local(provider, key, within=within, with_models=with_models)

    async with anyio.create_task_group() as tg:
        for provider, key in providers:
            tg.start_soon(probe, provider, key)
    return results
