"""The response cache in a run: an item whose exact request was answered ok before is
answered from runner/store/cache.py without being sent.

The lookup comes before the lane's limits and retries, so a hit takes no rate slot and
sends nothing. The key is the request body as sent (the provider's dialect applied; every
field but streaming), the provider's base URL and protocol, the model and the repeat index;
the key in the request's headers is never part of it. A request that cannot be built has no
key: it is sent (and fails) like any other, never crashing the run. A hit is recorded with ``cached = 1``, its first
latency and tokens, and cost 0 for this run: what it first cost stays in
``cached_cost_usd``. A miss that ends ok is stored for the next run: by the run's writer, right after
the transaction that commits its result (scheduler.py), many answers to one cache commit. A crash between
the two loses cache entries, never a result; an entry is never written for a result that is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..config.checks import Checks
from ..config.jobs import WorkItem
from ..config.providers import Provider
from ..errors import ProviderError
from ..http.client import Answer, CallBuilder
from ..protocols import Completion, HttpCall
from ..store.cache import CachedAnswer, ResponseCache, request_key
from ..store.records import ResultRow, utcnow
from .requests import chat_request
from .rows import result_row

CACHED = "cached"  # price_source of an answer taken from the cache (its cost this run is 0)


class AnswerCache:
    def __init__(self, cache: ResponseCache, ttl_s: float | None) -> None:
        self.cache = cache
        self.ttl_s = ttl_s
        self.hits = 0

    @classmethod
    def open(cls, ttl_s: float | None) -> AnswerCache:
        return cls(ResponseCache.open(), ttl_s)

    def close(self) -> None:
        self.cache.close()

    @staticmethod
    def key_of(provider: Provider, body: dict[str, Any], item: WorkItem) -> str:
        """The key of the item's request whose body, as sent, is ``body``."""
        return request_key(provider.base_url, provider.protocol, item.target.model, body, item.repeat_index)

    @staticmethod
    def built(provider: Provider, calls: CallBuilder, item: WorkItem, stream: bool) -> HttpCall | None:
        """The item's request as it is sent (images, response schema, tools and the provider's dialect
        included), so an item that asks for something else has another key; None when the request cannot
        be built (sending it reports why)."""
        try:
            return calls.build(chat_request(item, stream, provider))
        except ProviderError:
            return None

    def get(self, key: str) -> CachedAnswer | None:
        return self.cache.get(key, self.ttl_s)

    def lookup(self, provider: Provider, calls: CallBuilder, item: WorkItem,
               stream: bool) -> tuple[HttpCall | None, str | None, CachedAnswer | None]:
        """The item's request as built (sent as it is on a miss), its key and the answer cached under it."""
        call = self.built(provider, calls, item, stream)
        if call is None:
            return None, None, None
        key = self.key_of(provider, call.json, item)
        return call, key, self.get(key)

    def entry_of(self, provider: Provider, calls: CallBuilder, item: WorkItem,
                 row: ResultRow) -> tuple[str, CachedAnswer] | None:
        """The cache entry of the item's ok answer, under the key of its request (a batch's: not streamed)."""
        call = self.built(provider, calls, item, False)
        return None if call is None else self.entry(self.key_of(provider, call.json, item), row)

    @staticmethod
    def entry(key: str, row: ResultRow) -> tuple[str, CachedAnswer]:
        """An ok answer as the entry stored under ``key`` (what it cost: a cached one's first cost; judges left out)."""
        return key, CachedAnswer(row.response_text or "", row.finish_reason, row.input_tokens, row.output_tokens,
                                 row.latency_ms, row.ttft_ms, row.http_status, row.answer_cost_usd, row.price_source,
                                 row.tool_calls, row.reasoning_tokens, row.cached_input_tokens, row.cache_write_tokens)

    def keep(self, entries: Iterable[tuple[str, CachedAnswer]]) -> None:
        """Store the entries in one transaction; call it once their results are committed."""
        self.cache.put_many(entries)

    def row(self, run_id: int, item: WorkItem, hit: CachedAnswer, checks: Checks) -> ResultRow:
        """The item's result from a cached answer, checked like a fresh one."""
        self.hits += 1
        completion = Completion(hit.response_text, hit.finish_reason, hit.input_tokens, hit.output_tokens, None,
                                json.loads(hit.tool_calls) if hit.tool_calls else None, hit.reasoning_tokens,
                                hit.cached_input_tokens, hit.cache_write_tokens)
        answer = Answer(completion, hit.http_status or 200, hit.latency_ms or 0.0, hit.ttft_ms)
        now = utcnow()
        row = result_row(run_id, item, answer, attempts=0, started_at=now, finished_at=now, checks=checks)
        return row._replace(latency_ms=hit.latency_ms, http_status=hit.http_status, cost_usd=0.0,
                            price_source=CACHED, cached=1, cached_cost_usd=hit.cost_usd, answer_cost_usd=hit.cost_usd)
