"""Running work items: per-provider lanes of workers feeding one database writer.

    lane (provider A): items, lazily ─┐  N_A workers ─┐
    lane (provider B): items, lazily ─┤  N_B workers ─┼─> bounded stream ─> writer ─> SQLite
                                      ...             ┘                        └──> response cache

Each provider has its own lane, so a slow or failing provider never holds up the
others; its worker count is its ``limits.concurrency`` and every attempt waits for
its rate limiter. A global limiter caps requests in flight across all lanes.
Failures of one item become its result row; only fatal conditions (the database
failing) escape the task group.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..config.jobs import Job, WorkItem
from ..errors import ProviderError
from ..protocols import HttpCall
from ..store.cache import CachedAnswer
from ..store.database import RunStore
from ..store.records import AttemptRow, ResultRow, RunStatus, utcnow
from .attempt import Sender
from .budget import Budget
from .caching import AnswerCache
from .costing import PriceBook
from .grading import Grading
from .lanes import Lane
from .limits import Holding
from .offload import in_daemon_thread
from .progress import Progress
from .requests import chat_request
from .rows import result_row

FLUSH_ROWS = 1000  # the most rows one transaction takes; the writer commits whenever it is free
GRACE_SECONDS = 5.0  # after Ctrl-C, in-flight requests get this long to finish
NOTHING_BEFORE = (0, 0)
#: What a worker hands the writer for one item: its result row, its attempt rows, and the cache entry of
#: its answer when it is to be kept (an ok answer sent, not taken from the cache).
Finished = tuple[ResultRow, list[AttemptRow], tuple[str, CachedAnswer] | None]


class Engine:
    def __init__(self, job: Job, lanes: list[Lane], store: RunStore, *, concurrency: int,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep, progress: Progress | None = None,
                 handle_signals: bool = False, skip: frozenset[str] = frozenset(),
                 budget: Budget | None = None, cache: AnswerCache | None = None,
                 earlier: dict[str, tuple[int, int]] | None = None) -> None:
        self.job = job
        self.checks = job.compile_checks()
        self.lanes = lanes
        self.store = store
        self.sleep = sleep
        self.progress = progress or Progress()
        self.handle_signals = handle_signals
        self.skip = skip  # item keys already done (resume)
        self.budget = budget
        self.cache = cache
        # Resumed items: (last attempt number, attempts recorded), so attempt numbers continue
        # and results.attempts counts every attempt row of the item.
        self.earlier = earlier or {}
        # The global cap matters only when the lanes' workers together could pass it; an
        # uncontended CapacityLimiter still costs two checkpoints per attempt.
        workers = sum(min(lane.provider.limits.concurrency, concurrency) for lane in lanes)
        self.in_flight: AbstractAsyncContextManager[Any] = (
            Holding(anyio.CapacityLimiter(concurrency)) if workers > concurrency else nullcontext())
        self.concurrency = concurrency
        self.sender = Sender(store.run_id, PriceBook(), sleep=sleep, budget=budget, in_flight=self.in_flight)
        self.grading = Grading(self.sender, lanes, job.graders, self.checks, cache) if self.checks.judges else None
        # Attempts of items cancelled before their result (a second Ctrl-C): written at the end, so a
        # resumed item's attempts count every request the server saw.
        self.abandoned: list[AttemptRow] = []
        self.stopping = False  # set on the first Ctrl-C / SIGTERM: take no new items
        self.interrupted = False

    async def run(self) -> RunStatus:
        """Run every lane to the end; the run's final status."""
        send, receive = anyio.create_memory_object_stream[Finished](max_buffer_size=FLUSH_ROWS)
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
        if self.abandoned:
            self.store.write((), self.abandoned)
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

    async def process_item(self, lane: Lane, item: WorkItem) -> Finished:
        """One item's rows: from the response cache when it answered this request before, else sent (its
        ok answer's cache entry with them); then graded by the job's judge checks (caching.py, grading.py)."""
        cache = self.cache
        call, key, hit = cache.lookup(lane.provider, lane.calls, item, self.job.stream) if cache is not None \
            else (None, None, None)
        attempts: list[AttemptRow] = []
        entry = None
        if cache is not None and hit is not None:
            row = cache.row(self.store.run_id, item, hit, self.checks)
        else:
            row, attempts = await self.send_item(lane, item, call)
            if key is not None and row.status == "ok":
                entry = AnswerCache.entry(key, row)  # the answer as sent, before its judges' verdicts
        if self.grading is not None:
            try:
                row = await self.grading.grade(item, row, attempts)
            except anyio.get_cancelled_exc_class():
                self.abandoned.extend(attempts)
                raise
        return row, attempts, entry

    async def send_item(self, lane: Lane, item: WorkItem,
                        call: HttpCall | None = None) -> tuple[ResultRow, list[AttemptRow]]:
        """Send one item (runner/engine/attempt.py), as ``call`` when the cache lookup built it already;
        its result row and its attempt rows."""
        started_at = utcnow()
        before = self.earlier.get(item.item_key, NOTHING_BEFORE) if self.earlier else NOTHING_BEFORE
        attempts: list[AttemptRow] = []
        try:
            outcome, cost = await self.sender.send(lane, chat_request(item, self.job.stream, lane.provider),
                                                   item.item_key, attempts, numbered_from=before[0],
                                                   messages=item.messages, call=call)
        except anyio.get_cancelled_exc_class():
            self.abandoned.extend(attempts)
            raise
        build = functools.partial(result_row, self.store.run_id, item, outcome, attempts=before[1] + len(attempts),
                                  started_at=started_at, finished_at=utcnow(), cost=cost, checks=self.checks)
        if self.checks.wants_fields and not isinstance(outcome, ProviderError):
            return await in_daemon_thread(build), attempts  # python checks are the job's own code: they may block
        return build(), attempts

    async def _writer(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        """The only task that writes: group commit, so a finished answer is on disk as soon as the writer is free.

        It takes every row waiting (at most FLUSH_ROWS), writes them in one transaction, and
        repeats; it waits only when nothing is waiting. Under load the batches grow by
        themselves, so commits stay few; a kill -9 loses at most the rows of one batch in
        progress, never answers that sat finished in a timer's window. The batch's answers go
        to the response cache after their results are committed, in one cache transaction.
        """
        results: list[ResultRow] = []
        attempts: list[AttemptRow] = []
        entries: list[tuple[str, CachedAnswer]] = []
        async with receive:
            while True:
                try:
                    row, rows, entry = await receive.receive()
                except anyio.EndOfStream:
                    return
                ok = failed = 0
                turned = False
                while True:
                    results.append(row)
                    attempts.extend(rows)
                    if entry is not None:
                        entries.append(entry)
                    if row.status == "ok":
                        ok += 1
                    else:
                        failed += 1
                    if len(results) >= FLUSH_ROWS:
                        break
                    try:
                        row, rows, entry = receive.receive_nowait()  # what is already waiting joins this batch
                    except anyio.WouldBlock:
                        if turned:
                            break
                        # One turn of the event loop first (shielded: these rows are never dropped):
                        # answers that finish in the same turn join this transaction instead of each
                        # paying for its own. It costs microseconds, not a timer's window.
                        turned = True
                        await anyio.lowlevel.cancel_shielded_checkpoint()
                        try:
                            row, rows, entry = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    except anyio.EndOfStream:
                        break
                self.store.write(results, attempts)
                if entries and self.cache is not None:
                    self.cache.keep(entries)
                    entries.clear()
                self.progress.advance(ok, failed)
                self.progress.written(results)
                results.clear()
                attempts.clear()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.interrupted = True
                if self.stopping:
                    self.progress.notice("stopping now")
                    self._workers.cancel()
                    return
                self.stopping = True
                self.progress.notice(f"interrupted; finishing requests in flight (up to {GRACE_SECONDS:g} s). "
                                     "Press Ctrl-C again to stop now.")
                self._workers.deadline = anyio.current_time() + GRACE_SECONDS



__all__ = ["Engine", "Lane", "Progress"]
