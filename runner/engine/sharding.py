"""``--shard K/N``: one machine's share of a job's items.

An item belongs to shard ``int(item_key) mod N``: its key is already a hash of what the item
asks, so shards are even, every item is in exactly one, and the same item lands in the same
shard on every machine and every rerun. Each shard writes its own results database;
``hanzo-run merge`` joins them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..config.jobs import Job, Target, WorkItem
from ..errors import UsageError

_SPEC = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    index: int  # K, from 0
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, item_key: str) -> bool:
        return int(item_key[:15], 16) % self.count == self.index

    def filter(self, items: Iterable[WorkItem]) -> Iterator[WorkItem]:
        return (item for item in items if self.holds(item.item_key))


def parse_shard(spec: str) -> Shard:
    """``K/N`` with 0 <= K < N, or UsageError saying how to write it."""
    match = _SPEC.fullmatch(spec.strip())
    if not match:
        raise UsageError(f"--shard takes K/N (shard K of N, K from 0), e.g. --shard 0/4; not {spec!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise UsageError(f"--shard {spec}: N must be at least 1 (shard K of N, K from 0, e.g. --shard 0/2 and "
                         "--shard 1/2)")
    if index >= count:
        raise UsageError(f"--shard {spec}: K must be less than N: 0/{count} to {count - 1}/{count}")
    return Shard(index, count)


def target_items(job: Job, target: Target, limit: int | None, shard: Shard | None = None) -> Iterator[WorkItem]:
    """A target's items in this run: its shard's, the first ``limit``."""
    items = job.items_for(target)
    return itertools.islice(shard.filter(items) if shard else items, limit)
