"""Checking that a key works without spending tokens: one authenticated GET of the
provider's ``validate_path`` (a model list, or OpenRouter's ``/key``).

The answer says what went wrong in the terms a user acts on. A network failure or a
server error is never reported as a bad key. Failures are classified by the
provider's protocol (``Adapter.classify``, through ``ProviderClient.error``), not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import httpx

from ..config.providers import Provider
from ..errors import ErrorCode, ProviderError
from ..http.client import ProviderClient

# ProviderError code -> (status, what it means for the key)
VERDICTS = {
    ErrorCode.INVALID_API_KEY: ("invalid", "the key was refused"),
    ErrorCode.RATE_LIMIT_EXCEEDED: ("rate_limited", "rate-limited; the key may be fine, try again later"),
    ErrorCode.QUOTA_EXHAUSTED: ("quota", "the key is out of quota or credit"),
    ErrorCode.SERVER_ERROR: ("server_error", "the provider had a server error; the key was not checked"),
    ErrorCode.CONNECTION_FAILED: ("unreachable", "cannot connect; the key was not checked"),
    ErrorCode.TIMEOUT: ("unreachable", "no answer in time; the key was not checked"),
}


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of checking one provider's key. ``detail`` never contains the key."""

    provider: str
    status: str  # valid | invalid | rate_limited | quota | server_error | unreachable | error | missing | no_check
    detail: str
    url: str

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    def __str__(self) -> str:
        return f"{self.provider}: {self.detail}"


async def check_key(provider: Provider, key: str | None, *,
                    transport: httpx.AsyncBaseTransport | None = None) -> KeyCheck:
    """Check ``key`` against ``provider`` with one GET; never raises for a provider failure."""
    path = provider.validate_path
    if not path:
        return KeyCheck(provider.id, "no_check", f"{provider.id} has no endpoint to check a key against "
                        "(validate_path is null)", "")
    url = provider.base_url + path
    client = ProviderClient(provider, key, transport=transport)
    try:
        # The smallest page where the check is a model list, so a valid key costs one tiny answer.
        await client.get(path, client.adapter.key_check_query)
    except ProviderError as e:
        status, meaning = VERDICTS.get(e.code, ("error", "the check failed; the key was not judged"))
        where = "" if url in e.message else f" (GET {url})"
        return KeyCheck(provider.id, status, f"{meaning}: {e.code}: {e.message}{where}", url)
    finally:
        await client.aclose()
    return KeyCheck(provider.id, "valid", f"key is valid (GET {url} answered)", url)


async def check_keys(pairs: Sequence[tuple[Provider, str | None]]) -> list[KeyCheck]:
    """Several checks at once, answered in the order asked."""
    results: list[KeyCheck | None] = [None] * len(pairs)

    async def one(i: int, provider: Provider, key: str | None) -> None:
        results[i] = await check_key(provider, key)

    async with anyio.create_task_group() as tg:
        for i, (provider, key) in enumerate(pairs):
            tg.start_soon(one, i, provider, key)
    return [r for r in results if r is not None]
