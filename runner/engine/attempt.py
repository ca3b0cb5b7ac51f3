"""Sending one request of a run: the only code that does.

    build the call as sent -> reserve its worst case under the budget -> attempts, each under the
    lane's slot, rate limiter and the run's in-flight cap, each an ``attempts`` row -> retries
    -> what the answer cost -> the reservation settled at that cost

The job's answers (runner/engine/scheduler.py), the graders' verdicts (grading.py) and a batch's
synchronous fallback all send through a ``Sender``; the batch path reserves and prices with the
same functions (costing.py, budget.py). An attempt cancelled in flight (a second Ctrl-C) is still
recorded, as CANCELLED: the server saw it, so a resumed item's attempts keep counting it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from ..errors import ErrorCode, ProviderError
from ..http.client import Answer
from ..protocols import ChatRequest, HttpCall
from ..store.records import AttemptRow, utcnow
from .budget import Budget
from .costing import UNKNOWN, Cost, PriceBook, answer_cost
from .lanes import Lane
from .retry import gave_up, with_retries
from .rows import attempt_row
from .stops import ProviderStopped, stop_for
from .usage import estimate_tokens

# The output tokens a request that sets no max_tokens is assumed to use: its weight against
# token-rate limits and its worst case under a budget.
ASSUMED_MAX_TOKENS = 1024
ANSWER = "answer"  # attempts.purpose of a request for the item's own answer


def max_tokens_of(request: ChatRequest) -> int:
    return int(request.params.get("max_tokens") or ASSUMED_MAX_TOKENS)


class Sender:
    """Sends requests for one run: limits, retries, attempt rows, budget and cost, in one place."""

    def __init__(self, run_id: int, prices: PriceBook, *, sleep: Callable[[float], Awaitable[None]],
                 budget: Budget | None, in_flight: AbstractAsyncContextManager[Any]) -> None:
        self.run_id = run_id
        self.prices = prices
        self.sleep = sleep
        self.budget = budget
        self.in_flight = in_flight  # the run's global cap on requests in flight

    async def send(self, lane: Lane, request: ChatRequest, item_key: str, attempts: list[AttemptRow], *,
                   numbered_from: int = 0, purpose: str = ANSWER, messages: tuple[Any, ...] | None = None,
                   call: HttpCall | None = None) -> tuple[Answer | ProviderError, Cost]:
        """Send ``request`` for the item with retries; its answer and what it cost, or why there is none.

        Each attempt is appended to ``attempts``, numbered after ``numbered_from`` and what the list
        holds. ``messages``: what an answer without usage is estimated from (the request's by default).
        ``call``: the request already built as sent (by the cache's lookup), so it is not built twice.
        """
        if lane.client is None:
            return ProviderError(ErrorCode.API_KEY_REQUIRED, lane.key_problem or "no API key", None,
                                 lane.provider.id), UNKNOWN
        if lane.stopped is not None:
            return lane.stopped, UNKNOWN
        if call is None:
            try:
                call = lane.calls.build(request)
            except ProviderError as error:
                return error, UNKNOWN
        pricing = self.prices.get(lane.provider, request.model)
        input_estimate = estimate_tokens(request.messages)
        max_tokens = max_tokens_of(request)
        sent_before = len(attempts)
        reserved = 0.0
        outcome: Answer | ProviderError
        cost = UNKNOWN
        try:
            if self.budget is not None:
                reserved = self.budget.reserve(pricing, input_estimate, max_tokens, lane.provider.id)
            outcome = await with_retries(lane.provider.retry, self.sleep, lambda: self._attempt(
                lane, call, request.stream, item_key, input_estimate + max_tokens, attempts, numbered_from, purpose))
            cost = answer_cost(pricing, outcome.completion, request.messages if messages is None else messages)
        except ProviderError as error:
            outcome = self._failed(lane, error, attempts[sent_before:])
        sent = len(attempts) > sent_before
        if self.budget is not None and (reserved or sent):
            # An answer at its cost; a request sent that failed may still have been billed: its worst case stays.
            self.budget.settle(reserved, cost.usd if isinstance(outcome, Answer) else None if sent else 0.0)
        return outcome, cost

    @staticmethod
    def _failed(lane: Lane, error: ProviderError, sent: list[AttemptRow]) -> ProviderError:
        """The error the request ends with; the lane stopped when the error shows the provider cannot work."""
        if lane.stopped is None and (stop := stop_for(error, sent, answered=lane.answered)) is not None:
            lane.stopped = stop  # this lane's other requests are not sent, nor retried
        if isinstance(error, ProviderStopped) and sent:  # it was sent, then its retries were called off
            return ProviderError(error.code, f"stopped after {len(sent)} attempt{'s' if len(sent) > 1 else ''}; "
                                 f"{error.message.removeprefix('not sent: ')}", None, error.provider)
        return gave_up(error, len(sent))

    async def _attempt(self, lane: Lane, call: HttpCall, stream: bool, item_key: str, weight: int,
                       attempts: list[AttemptRow], numbered_from: int, purpose: str) -> Answer:
        assert lane.client is not None
        if lane.stopped is not None:  # another request showed the provider cannot work: no retry either
            raise lane.stopped
        async with lane.limits.slot:
            reservation = await lane.limits.admit(weight)  # rate waits hold the provider's slot, not a global one
            async with self.in_flight:
                await lane.limits.start(reservation)
                started_at = utcnow()
                started = time.perf_counter()
                try:
                    answer = await lane.client.send_call(call, stream)
                except ProviderError as e:
                    self._record(attempts, item_key, numbered_from, purpose, started_at, e, _ms_since(started))
                    raise
                except anyio.get_cancelled_exc_class():
                    # Cancelled in flight: the server has the request (and may bill it) though no answer is kept.
                    cancelled = ProviderError(ErrorCode.CANCELLED, "cancelled in flight", None, lane.provider.id)
                    self._record(attempts, item_key, numbered_from, purpose, started_at, cancelled, _ms_since(started))
                    raise
        self._record(attempts, item_key, numbered_from, purpose, started_at, answer, answer.latency_ms)
        lane.answered = True
        return answer

    def _record(self, attempts: list[AttemptRow], item_key: str, numbered_from: int, purpose: str, started_at: str,
                outcome: Answer | ProviderError, latency_ms: float) -> None:
        """One attempt's row, numbered after ``numbered_from`` and those ``attempts`` holds."""
        row = attempt_row(self.run_id, item_key, numbered_from + len(attempts) + 1, started_at, outcome, latency_ms)
        attempts.append(row if purpose == ANSWER else row._replace(purpose=purpose))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


__all__ = ["ANSWER", "ASSUMED_MAX_TOKENS", "Sender", "max_tokens_of"]
