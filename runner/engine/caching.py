"""The response cache in a run: an item whose exact request was answered ok before is
answered from runner/store/cache.py without being sent.

The lookup comes before the lane's limits and retries, so a hit takes no rate slot and
sends nothing. The key is the request body as sent (the provider's dialect applied; every
field but streaming), the provider's base URL and protocol, the model and the repeat index;
the key in the request's headers is never part of it. A request that cannot be built has no
key: it is sent (and fails) like any other, never crashing the run. A hit is recorded with ``cached = 1``, its first
latency and tokens, and cost 0 for this run: what it first cost stays in
``cached_cost_usd``. A miss that ends ok is stored for the next run.
"""

from __future__ import annotations

import json
from typing import Any

from ..config.checks import Checks
from ..config.jobs import WorkItem
from ..config.providers import Provider
from ..errors import ProviderError
from ..http.client import Answer, CallBuilder
from ..protocols import Completion, HttpCall
from ..store.cache import CachedAnswer, ResponseCache, request_key
from ..store.database import utcnow
from ..store.records import ResultRow
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

    def keep_answer(self, provider: Provider, calls: CallBuilder, item: WorkItem, row: ResultRow) -> None:
        """Store the item's ok answer under the key of its request (a batch's: it was not streamed)."""
        call = self.built(provider, calls, item, False)
        if call is not None:
            self.keep(self.key_of(provider, call.json, item), row)

    def keep(self, key: str, row: ResultRow) -> None:
        """Store an ok answer under ``key`` at what it cost (a cached one's first cost; judges left out)."""
        answer = CachedAnswer(row.response_text or "", row.finish_reason, row.input_tokens, row.output_tokens,
                              row.latency_ms, row.ttft_ms, row.http_status, row.answer_cost_usd, row.price_source,
                              row.tool_calls, row.reasoning_tokens, row.cached_input_tokens, row.cache_write_tokens)
        self.cache.put(key, answer)

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
