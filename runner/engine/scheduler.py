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

import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..config.jobs import Job, WorkItem
from ..config.providers import Pricing, Provider
from ..errors import ErrorCode, ProviderError
from ..http.client import Answer, ProviderClient
from ..keys.lookup import find_key
from ..protocols import ChatRequest, adapter_for
from ..store.database import RunStore, utcnow
from ..store.records import AttemptRow, ResultRow, RunStatus
from .budget import Budget
from .caching import AnswerCache
from .grading import Grading
from .limits import Holding, ProviderLimits
from .offload import in_daemon_thread
from .pricing import PriceBook
from .requests import chat_request
from .retry import gave_up, with_retries
from .rows import attempt_row, result_row
from .stops import ProviderStopped, stop_for
from .usage import estimate_tokens

# The output tokens a request that sets no max_tokens is assumed to use: its weight against
# token-rate limits and its worst case under a budget.
ASSUMED_MAX_TOKENS = 1024
FLUSH_ROWS = 1000  # the most rows one transaction takes; the writer commits whenever it is free
GRACE_SECONDS = 5.0  # after Ctrl-C, in-flight requests get this long to finish


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

    @classmethod
    def open(cls, provider: Provider, items: Iterator[WorkItem]) -> Lane:
        """A provider's lane as a run makes it: its limits, and a client when its key is found."""
        lookup = find_key(provider)
        limits = ProviderLimits(provider.limits, adapter_for(provider.protocol).rate_limit_pause)
        client = None if lookup.problem else ProviderClient(provider, lookup.key, observe=limits.observe)
        return cls(provider, limits, client, items, lookup.problem)


class Progress:
    """What the writer reports as rows land; the CLI renders it."""

    def start(self, total: int | None) -> None:
        """Before the first item: how many items the run has (None when unknown)."""

    def advance(self, ok: int, failed: int) -> None:
        pass

    def written(self, rows: Sequence[ResultRow]) -> None:
        """The batch of rows just written, after ``advance``. Called per batch, not per request;
        the list is reused afterwards, so read it here and keep nothing of it."""


class Engine:
    def __init__(self, job: Job, lanes: list[Lane], store: RunStore, *, concurrency: int,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep, progress: Progress | None = None,
                 handle_signals: bool = False, skip: frozenset[str] = frozenset(),
                 budget: Budget | None = None, cache: AnswerCache | None = None,
                 earlier: dict[str, tuple[int, int]] | None = None) -> None:
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
        self.cache = cache
        self.grading = Grading(self, job.graders) if self.checks.judges else None
        # Resumed items: (last attempt number, attempts recorded), so attempt numbers continue
        # and results.attempts counts every attempt row of the item.
        self.earlier = earlier or {}
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
            row = await self.process_item(lane, item)
            try:
                send.send_nowait(row)  # the writer usually has room: no cancel scope per row
            except anyio.WouldBlock:
                with anyio.CancelScope(shield=True):  # a finished result is never dropped
                    await send.send(row)

    async def process_item(self, lane: Lane, item: WorkItem) -> tuple[ResultRow, list[AttemptRow]]:
        """One item's rows: from the response cache when it answered this request before, else sent;
        then graded by the job's judge checks (runner/engine/caching.py, grading.py)."""
        cache = self.cache
        key, hit = cache.lookup(lane, item) if cache is not None else (None, None)
        attempts: list[AttemptRow] = []
        if cache is not None and hit is not None:
            row = cache.row(self.store.run_id, item, hit, self.checks)
        else:
            row, attempts = await self.send_item(lane, item)
            if cache is not None and key is not None and row.status == "ok":
                cache.keep(key, row)
        if self.grading is not None:
            row = await self.grading.grade(item, row, attempts)
        return row, attempts

    async def send_item(self, lane: Lane, item: WorkItem) -> tuple[ResultRow, list[AttemptRow]]:
        """Send one item with retries; its result row and its attempt rows."""
        started_at = utcnow()
        attempts: list[AttemptRow] = []
        before = self.earlier.get(item.item_key, (0, 0)) if self.earlier else (0, 0)
        if lane.client is None:
            error = ProviderError(ErrorCode.API_KEY_REQUIRED, lane.key_problem or "no API key", None, lane.provider.id)
            return await self._result(item, error, before[1], started_at), attempts
        if lane.stopped is not None:
            return await self._result(item, lane.stopped, before[1], started_at), attempts
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
                lane, request, item, input_estimate + max_tokens, attempts, before[0]))
        except ProviderError as error:
            if lane.stopped is None and (stop := stop_for(error, attempts, answered=lane.answered)) is not None:
                lane.stopped = stop  # this lane's other items are not sent, nor retried
            if isinstance(error, ProviderStopped) and attempts:  # it was sent, then its retries were called off
                error = ProviderError(error.code, f"stopped after {len(attempts)} attempt"
                                      f"{'s' if len(attempts) > 1 else ''}; "
                                      f"{error.message.removeprefix('not sent: ')}", None, error.provider)
            else:
                error = gave_up(error, len(attempts))
            outcome = error
        row = await self._result(item, outcome, before[1] + len(attempts), started_at)
        if self.budget is not None and (reserved or attempts):
            self.budget.settle(reserved, row.cost_usd if attempts else 0.0)
        return row, attempts

    async def _attempt(self, lane: Lane, request: ChatRequest, item: WorkItem, weight: int,
                       attempts: list[AttemptRow], numbered_from: int) -> Answer:
        assert lane.client is not None
        if lane.stopped is not None:  # another item showed the provider cannot work: no retry either
            raise lane.stopped
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
                    attempts.append(attempt_row(self.store.run_id, item.item_key,
                                                numbered_from + len(attempts) + 1, started_at, e, latency))
                    raise
        attempts.append(attempt_row(self.store.run_id, item.item_key, numbered_from + len(attempts) + 1, started_at,
                                    answer, answer.latency_ms))
        lane.answered = True
        return answer

    async def _result(self, item: WorkItem, outcome: Answer | ProviderError, attempts: int,
                      started_at: str) -> ResultRow:
        pricing = None if isinstance(outcome, ProviderError) else self._pricing(item.target.provider,
                                                                                item.target.model)
        build = functools.partial(result_row, self.store.run_id, item, outcome, attempts=attempts,
                                  started_at=started_at, finished_at=utcnow(), pricing=pricing, checks=self.checks)
        if self.checks.wants_fields and not isinstance(outcome, ProviderError):
            return await in_daemon_thread(build)  # python checks are the job's own code: they may block
        return build()

    def _pricing(self, provider_id: str, model: str) -> Pricing | None:
        for lane in self.lanes:
            if lane.provider.id == provider_id:
                return self.prices.get(lane.provider, model)
        return None

    async def _writer(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        """The only task that writes: group commit, so a finished answer is on disk as soon as the writer is free.

        It takes every row waiting (at most FLUSH_ROWS), writes them in one transaction, and
        repeats; it waits only when nothing is waiting. Under load the batches grow by
        themselves, so commits stay few; a kill -9 loses at most the rows of one batch in
        progress, never answers that sat finished in a timer's window.
        """
        results: list[ResultRow] = []
        attempts: list[AttemptRow] = []
        async with receive:
            while True:
                try:
                    row, rows = await receive.receive()
                except anyio.EndOfStream:
                    return
                ok = failed = 0
                turned = False
                while True:
                    results.append(row)
                    attempts.extend(rows)
                    if row.status == "ok":
                        ok += 1
                    else:
                        failed += 1
                    if len(results) >= FLUSH_ROWS:
                        break
                    try:
                        row, rows = receive.receive_nowait()  # what is already waiting joins this batch
                    except anyio.WouldBlock:
                        if turned:
                            break
                        # One turn of the event loop first (shielded: these rows are never dropped):
                        # answers that finish in the same turn join this transaction instead of each
                        # paying for its own. It costs microseconds, not a timer's window.
                        turned = True
                        await anyio.lowlevel.cancel_shielded_checkpoint()
                        try:
                            row, rows = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    except anyio.EndOfStream:
                        break
                self.store.write(results, attempts)
                self.progress.advance(ok, failed)
                self.progress.written(results)
                results.clear()
                attempts.clear()

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

