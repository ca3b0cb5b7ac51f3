"""The parts of batch mode a run is wired with: the targets that go by batch, the ids their requests
carry, and what the batch phase reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import anyio

from ..config.jobs import Target, WorkItem
from ..config.providers import Provider
from ..errors import ErrorCode, ProviderError
from ..http.client import CallBuilder, ProviderClient
from ..protocols import batch_api
from ..protocols.batch import BatchApi, BatchStatus
from .limits import ProviderLimits

Fallback = Literal["batch", "sync"]  # how expired batch requests are sent again


def custom_id(item_key: str) -> str:
    """The id a batch request carries: the item key (24 hex digits), stable across runs; it fits
    Anthropic's ``^[a-zA-Z0-9_-]{1,64}$``."""
    return item_key


@dataclass
class BatchTarget:
    """One target whose items go by batch, with its provider's client and limiter."""

    target: Target
    provider: Provider
    client: ProviderClient
    limits: ProviderLimits
    items: Callable[[], Iterator[WorkItem]]  # the target's items in this run (limit and shard applied)
    # Every item of the target in the run's shard, whatever --limit: a batch's answers are all collected, never
    # thrown away because this invocation's scope is smaller than the one that sent them.
    every: Callable[[], Iterator[WorkItem]]
    api: BatchApi = field(init=False)
    calls: CallBuilder = field(init=False)

    def __post_init__(self) -> None:
        assert self.provider.batch is not None
        self.api = batch_api(self.provider.batch)
        self.calls = self.client.calls

    async def paced(self, call: Callable[[], Awaitable[BatchStatus]]) -> BatchStatus:
        """A create call under the provider's request limiter; retried only when refused for rate
        (a create that timed out may have gone through, so it is looked up rather than repeated)."""
        policy = self.provider.retry
        delay = policy.initial_delay
        for attempt in range(policy.max_retries + 1):
            async with self.limits.slot:
                await self.limits.start(await self.limits.admit(1))
                try:
                    return await call()
                except ProviderError as error:
                    if error.code != ErrorCode.RATE_LIMIT_EXCEEDED or attempt == policy.max_retries:
                        raise
                    wait = error.retry_after if error.retry_after is not None else delay
            await anyio.sleep(min(wait, policy.max_delay))
            delay = min(delay * policy.multiplier, policy.max_delay)
        raise AssertionError("unreachable")


@dataclass
class BatchReport:
    """What the batch phase did, for the end-of-run message."""

    created: int = 0  # batches created by this invocation
    running: int = 0  # batches still running at the provider when it returned
    collected: int = 0
    interrupted: bool = False  # Ctrl-C while polling: the batches run on


__all__ = ["BatchReport", "BatchTarget", "Fallback", "custom_id"]
