"""Per-provider rate limits and concurrency.

Requests are paced evenly, one every ``window / requests`` seconds (an aiolimiter
bucket of size one). That keeps every window of ``window`` seconds at or under
``requests``, which a bucket allowing bursts of ``requests`` cannot promise (it
lets through up to twice the limit across a window boundary), and it is how
providers enforce per-minute limits in practice: in short sub-windows.
"""

from __future__ import annotations

import anyio
from aiolimiter import AsyncLimiter

from .providers import Limits

# Spacing a hair wider than the limit, so clock jitter at the server can never
# put requests + 1 into one of its windows.
PACING_MARGIN = 1.005


class ProviderLimits:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.requests = AsyncLimiter(1, limits.window / limits.requests * PACING_MARGIN)
        self.tokens = AsyncLimiter(limits.tokens, limits.window) if limits.tokens else None
        self.slots = anyio.CapacityLimiter(limits.concurrency)

    async def admit(self, tokens: int) -> None:
        """Wait until one request weighing ``tokens`` may start (caller holds a slot)."""
        if self.tokens is not None:
            # aiolimiter refuses an acquire larger than the bucket: a request that big
            # waits for a whole empty window instead.
            await self.tokens.acquire(min(tokens, self.tokens.max_rate))
        await self.requests.acquire()
