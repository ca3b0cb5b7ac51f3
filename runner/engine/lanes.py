"""A provider's lane: its limits, its key and client, its items, and whether it can still work.

Every request of a run to a provider goes through its lane (runner/engine/attempt.py): the
job's answers, a grader's verdicts and a batch's synchronous fallback alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ..config.jobs import WorkItem
from ..config.providers import Limits, Provider
from ..http.client import CallBuilder, ProviderClient
from ..keys.lookup import find_key
from ..protocols import adapter_for
from .limits import ProviderLimits
from .stops import ProviderStopped


@dataclass
class Lane:
    """One provider's share of the run."""

    provider: Provider
    limits: ProviderLimits
    client: ProviderClient | None
    items: Iterator[WorkItem]
    key_problem: str | None = None  # set when the provider needs a key and has none
    stopped: ProviderStopped | None = None  # set when the provider cannot work: its items are no longer sent
    answered: bool = False  # some request of this run got an answer: the host is reachable
    calls: CallBuilder = field(init=False)  # its requests as sent (and as the cache keys them), key or not

    def __post_init__(self) -> None:
        self.calls = self.client.calls if self.client is not None else CallBuilder(self.provider)

    @classmethod
    def open(cls, provider: Provider, items: Iterator[WorkItem], tighter: Limits | None = None) -> Lane:
        """A provider's lane as a run makes it: its limits (``tighter``: the job's own), and a client when its
        key is found."""
        if tighter is not None:  # everything that reads the provider's limits (workers, connections) sees the job's
            provider = replace(provider, limits=tighter)
        lookup = find_key(provider)
        limits = ProviderLimits(provider.limits, adapter_for(provider.protocol).rate_limit_pause)
        client = None if lookup.problem else ProviderClient(provider, lookup.key, observe=limits.observe)
        return cls(provider, limits, client, items, lookup.problem)
