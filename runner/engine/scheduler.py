"""Running work items: per-provider lanes of workers feeding one database writer.

    lane (provider A): items, lazily ─┐  N_A workers ─┐
    lane (provider B): items, lazily ─┤  N_B workers ─┼─> bounded stream ─> writer ─> SQLite
                                      ...             ┘

Each provider has its own lane, so a slow or failing provider never holds up the
others; its worker count is its ``limits.concurrency`` and every attempt waits for
its rate limiter. A global limiter caps requests in flight across all lanes.
Failures of one item become its result row; only fatal conditions (the database
failing) escape the task group.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..config.jobs import Job, WorkItem
from ..config.providers import Pricing, Provider
from ..errors import ErrorCode, ProviderError
from ..http.client import Answer, ProviderClient
from ..protocols import ChatRequest
from ..store.database import RunStore, utcnow
from ..store.records import AttemptRow, ResultRow, RunStatus
from .budget import Budget
from .limits import Holding, ProviderLimits
from .pricing import PriceBook
from .requests import chat_request
from .retry import RETRYABLE, with_retries
from .rows import attempt_row, result_row

# The output tokens a request that sets no max_tokens is assumed to use: its weight against
# token-rate limits and its worst case under a budget.
ASSUMED_MAX_TOKENS = 1024
FLUSH_SECONDS = 0.5  # a finished result is on disk within about this long
FLUSH_ROWS = 1000
GRACE_SECONDS = 5.0  # after Ctrl-C, in-flight requests get this long to finish


@dataclass
class Lane:
    """One provider's share of the run."""

    provider: Provider
    limits: ProviderLimits
    client: ProviderClient | None
    items: Iterator[WorkItem]
    key_problem: str | None = None  # set when the provider needs a key and has none


class Progress:
    """What the writer reports as rows land; the CLI renders it."""

    def start(self, total: int | None) -> None:
        """Before the first item: how many items the run has (None when unknown)."""

    def advance(self, ok: int, failed: int) -> None:
        pass


class Engine:
    def __init__(self, job: Job, lanes: list[Lane], store: RunStore, *, concurrency: int,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep, progress: Progress | None = None,
                 handle_signals: bool = False, skip: frozenset[str] = frozenset(),
                 budget: Budget | None = None) -> None:
        self.job = job
        self.checks = job.compile_checks()
        self.prices = PriceBook()
        self.lanes = lanes
        self.store = store
        self.sleep = sleep
        self.progress = progress or Progress()
        self.handle_signals = handle_signals
        self.skip = skip  # item keys already done (resume)
        self.budget = budget
        # The global cap matters only when the lanes' workers together could pass it; an
        # uncontended CapacityLimiter still costs two checkpoints per attempt.
        workers = sum(min(lane.provider.limits.concurrency, concurrency) for lane in lanes)
        self.in_flight: AbstractAsyncContextManager[Any] = (
            Holding(anyio.CapacityLimiter(concurrency)) if workers > concurrency else nullcontext())
        self.concurrency = concurrency
        self.stopping = False  # set on the first Ctrl-C / SIGTERM: take no new items
        self.interrupted = False

    async def run(self) -> RunStatus:
        """Run every lane to the end; the run's final status."""
        send, receive = anyio.create_memory_object_stream[tuple[ResultRow, list[AttemptRow]]](
            max_buffer_size=FLUSH_ROWS
        )
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._writer, receive)
            async with send, anyio.create_task_group() as control:
                if self.handle_signals:
                    control.start_soon(self._watch_signals)
                async with anyio.create_task_group() as workers:
                    self._workers = workers.cancel_scope
                    for lane in self.lanes:
                        for _ in range(min(lane.provider.limits.concurrency, self.concurrency)):
                            workers.start_soon(self._worker, lane, send)
                control.cancel_scope.cancel()
        return "interrupted" if self.interrupted else "completed"

    async def _worker(self, lane: Lane, send: MemoryObjectSendStream[Any]) -> None:
        while not self.stopping:
            item = next(lane.items, None)
            if item is None:
                return
            if item.item_key in self.skip:
                continue
            row = await self.send_item(lane, item)
            try:
                send.send_nowait(row)  # the writer usually has room: no cancel scope per row
            except anyio.WouldBlock:
                with anyio.CancelScope(shield=True):  # a finished result is never dropped
                    await send.send(row)

    async def send_item(self, lane: Lane, item: WorkItem) -> tuple[ResultRow, list[AttemptRow]]:
        """Send one item with retries; its result row and its attempt rows."""
        started_at = utcnow()
        attempts: list[AttemptRow] = []
        if lane.client is None:
            error = ProviderError(ErrorCode.API_KEY_REQUIRED, lane.key_problem or "no API key", None, lane.provider.id)
            return self._result(item, error, 0, started_at), attempts
        target = item.target
        request = chat_request(item, self.job.stream, lane.provider)
        input_estimate = estimate_tokens(item.messages)
        max_tokens = int(target.params.get("max_tokens") or ASSUMED_MAX_TOKENS)
        reserved = 0.0
        outcome: Answer | ProviderError
        try:
            if self.budget is not None:
                pricing = self._pricing(target.provider, target.model)
                reserved = self.budget.reserve(pricing, input_estimate, max_tokens, lane.provider.id)
            outcome = await with_retries(lane.provider.retry, self.sleep, lambda: self._attempt(
                lane, request, item, input_estimate + max_tokens, attempts))
        except ProviderError as error:
            if len(attempts) > 1 and error.code in RETRYABLE:
                error = ProviderError(ErrorCode.MAX_RETRIES_EXCEEDED, f"gave up after {len(attempts)} attempts; "
                                      f"last: {error}", error.status, error.provider)
            outcome = error
        row = self._result(item, outcome, len(attempts), started_at)
        if self.budget is not None and (reserved or attempts):
            self.budget.settle(reserved, row.cost_usd if attempts else 0.0)
        return row, attempts

    async def _attempt(self, lane: Lane, request: ChatRequest, item: WorkItem, weight: int,
                       attempts: list[AttemptRow]) -> Answer:
        assert lane.client is not None
        async with lane.limits.slot:
            reservation = await lane.limits.admit(weight)  # rate waits hold the provider's slot, not a global one
            async with self.in_flight:
                await lane.limits.start(reservation)
                started_at = utcnow()
                started = time.perf_counter()
                try:
                    answer = await lane.client.send(request)
                except ProviderError as e:
                    latency = round((time.perf_counter() - started) * 1000, 2)
                    attempts.append(attempt_row(self.store.run_id, item.item_key, len(attempts) + 1, started_at,
                                                e, latency))
                    raise
        attempts.append(attempt_row(self.store.run_id, item.item_key, len(attempts) + 1, started_at, answer,
                                    answer.latency_ms))
        return answer

    def _result(self, item: WorkItem, outcome: Answer | ProviderError, attempts: int, started_at: str) -> ResultRow:
        pricing = None if isinstance(outcome, ProviderError) else self._pricing(item.target.provider,
                                                                                item.target.model)
        return result_row(self.store.run_id, item, outcome, attempts=attempts, started_at=started_at,
                          finished_at=utcnow(), pricing=pricing, checks=self.checks)

    def _pricing(self, provider_id: str, model: str) -> Pricing | None:
        for lane in self.lanes:
            if lane.provider.id == provider_id:
                return self.prices.get(lane.provider, model)
        return None

    async def _writer(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        """The only task that writes: batches rows, one transaction per batch, at most FLUSH_SECONDS apart."""
        results: list[ResultRow] = []
        attempts: list[AttemptRow] = []
        ok = failed = 0

        def flush() -> None:
            nonlocal ok, failed
            if results:
                self.store.write(results, attempts)
                self.progress.advance(ok, failed)
                results.clear()
                attempts.clear()
                ok = failed = 0

        async with receive:
            deadline = math.inf
            while True:
                try:
                    row, rows = receive.receive_nowait()  # drain what is there without a cancel scope per row
                except anyio.WouldBlock:
                    with anyio.move_on_after(max(deadline - time.monotonic(), 0)) as waiting:
                        try:
                            row, rows = await receive.receive()
                        except anyio.EndOfStream:
                            break
                    if waiting.cancelled_caught:
                        flush()
                        deadline = math.inf
                        continue
                except anyio.EndOfStream:
                    break
                results.append(row)
                attempts.extend(rows)
                if row.status == "ok":
                    ok += 1
                else:
                    failed += 1
                if deadline == math.inf:
                    deadline = time.monotonic() + FLUSH_SECONDS
                if len(results) >= FLUSH_ROWS or time.monotonic() >= deadline:
                    flush()
                    deadline = math.inf
            flush()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.interrupted = True
                if self.stopping:
                    print("hanzo-run: stopping now", file=sys.stderr)
                    self._workers.cancel()
                    return
                self.stopping = True
                print(f"hanzo-run: interrupted; finishing requests in flight (up to {GRACE_SECONDS:g} s). "
                      "Press Ctrl-C again to stop now.", file=sys.stderr)
                self._workers.deadline = anyio.current_time() + GRACE_SECONDS


def estimate_tokens(messages: tuple[Any, ...]) -> int:
    """A rough input token count: about four characters a token for English text."""
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)

