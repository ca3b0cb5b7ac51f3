"""The response cache in a run: an item whose exact request was answered ok before is
answered from runner/store/cache.py without being sent.

The lookup comes before the lane's limits and retries, so a hit takes no rate slot and
sends nothing. The key is the protocol's own request body (every field but streaming),
the provider's base URL and protocol, the model and the repeat index; the key in the
request's headers is never part of it. A hit is recorded with ``cached = 1``, its first
latency and tokens, and cost 0 for this run: what it first cost stays in
``cached_cost_usd``. A miss that ends ok is stored for the next run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..config.checks import Checks
from ..config.jobs import WorkItem
from ..http.client import Answer
from ..protocols import Completion, adapter_for
from ..store.cache import CachedAnswer, ResponseCache, request_key
from ..store.database import utcnow
from ..store.records import ResultRow
from .requests import chat_request
from .rows import result_row

if TYPE_CHECKING:  # the scheduler imports this module
    from .scheduler import Lane

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

    def key(self, lane: Lane, item: WorkItem) -> str:
        # The request as it would be sent (images, response schema and tools included): an item that asks
        # for something else is another request.
        body = adapter_for(lane.provider.protocol).build(chat_request(item, False, lane.provider)).json
        return request_key(lane.provider.base_url, lane.provider.protocol, item.target.model, body,
                           item.repeat_index)

    def lookup(self, lane: Lane, item: WorkItem) -> tuple[str, CachedAnswer | None]:
        key = self.key(lane, item)
        return key, self.cache.get(key, self.ttl_s)

    def keep(self, key: str, row: ResultRow) -> None:
        """Store an ok answer under ``key`` (its cost as this run paid it; judges' share left out)."""
        answer = CachedAnswer(row.response_text or "", row.finish_reason, row.input_tokens, row.output_tokens,
                              row.latency_ms, row.ttft_ms, row.http_status, _answer_cost(row), row.price_source,
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
        row = result_row(run_id, item, answer, attempts=0, started_at=now, finished_at=now, pricing=None,
                         checks=checks)
        return row._replace(latency_ms=hit.latency_ms, http_status=hit.http_status, cost_usd=0.0,
                            price_source=CACHED, cached=1, cached_cost_usd=hit.cost_usd)


def _answer_cost(row: ResultRow) -> float | None:
    if row.cached:
        return row.cached_cost_usd
    if row.cost_usd is None or row.judge_cost_usd is None:
        return row.cost_usd
    return row.cost_usd - row.judge_cost_usd
