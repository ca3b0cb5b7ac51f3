"""Batch mode: a run's items sent through the providers' batch APIs, at the batch price.

    submit:  items of each batch target, built as a synchronous request would be (the cache answers
             those it has: they are not bought again) -> batches within the provider's request and
             byte limits -> ``batches`` row + ``batch_items`` committed -> created at the provider
             (paced by its request limiter) -> the provider's id committed at once
    collect: poll the live batches (interval with backoff) -> an ended batch's lines matched to
             their items by custom_id -> result rows (via='batch', batch price), each send an
             attempt -> ok answers kept in the cache -> graded by the job's judges (the graders'
             lanes, as in a synchronous run) -> expired requests re-sent (by batch, or
             synchronously with --batch-fallback sync) up to the retry settings

Nothing is paid twice: a batch row is committed before the batch is created, so a crash between
the provider's answer and the commit leaves a row without an id, which the next ``--resume``
looks up at the provider (``BatchApi.find``) before anything else is created. An item in a live
batch is never sent again; an item a batch answered (ok or not) is final for ``--resume``
(``--retry-errors`` re-sends the failed ones).

The run-level flow lives here; a line's outcome is batchlines.py, the wire shapes are runner/protocols/,
the SQL is runner/store/batches.py.
"""

from __future__ import annotations

import datetime
import functools
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

import anyio

from ..config.jobs import Job, WorkItem
from ..errors import BatchUndecided, ErrorCode, ProviderError
from ..http.client import Answer
from ..protocols.batch import BatchEntry, BatchLine, BatchStatus, LineKind, refused_for_good
from ..store.batches import BatchStore
from ..store.cache import CachedAnswer
from ..store.database import RunStore
from ..store.records import AttemptRow, ResultRow, utcnow
from .attempt import max_tokens_of
from .batchlines import line_outcome, unix_time
from .batchtarget import BatchReport, BatchTarget, Fallback, custom_id
from .budget import Budget
from .caching import AnswerCache
from .costing import UNKNOWN, Cost, PriceBook, answer_cost
from .grading import Grading
from .progress import Progress
from .requests import chat_request
from .retry import with_retries
from .rows import attempt_row, result_row
from .usage import estimate_tokens

DEFAULT_POLL_S = 30.0
MAX_POLL_S = 600.0
POLL_BACKOFF = 1.5
# Test hook: SIGKILL this process right after a batch is created, before its id is committed.
CRASH_HOOK = "HANZO_RUN_CRASH_AFTER_BATCH_CREATE"
COLLECTED_AT_ONCE = 1000  # rows of a batch's results written to one transaction, as its results file is read
GRADED_AT_ONCE = 64  # answers of a collected batch graded at once (each grader's lane keeps its own limits)
NOTHING_BEFORE = (0, 0)


class BatchFlow:
    def __init__(self, job: Job, store: RunStore, targets: Sequence[BatchTarget], *, progress: Progress | None,
                 budget: Budget | None, fallback: Fallback = "batch", poll_interval: float | None = None,
                 retry_errors: bool = False, handle_signals: bool = False,
                 send_sync: Callable[[list[WorkItem]], Awaitable[None]] | None = None,
                 cache: AnswerCache | None = None, grading: Grading | None = None) -> None:
        self.job = job
        self.store = store
        self.batches = BatchStore(store.db, store.run_id)
        self.run_id = store.run_id
        self.cache = cache  # answers the cache has are not put into a batch; ok batch answers go into it
        self.grading = grading  # batch answers are graded by the job's judges like synchronous ones
        self.targets = {t.target.label: t for t in targets}
        self.progress = progress or Progress()
        self.budget = budget
        self.fallback = fallback
        self.poll_interval = poll_interval or DEFAULT_POLL_S
        self.retry_errors = retry_errors
        self.handle_signals = handle_signals
        self.send_sync = send_sync
        self.checks = job.compile_checks()
        self.prices = PriceBook()
        self.report = BatchReport()
        self._items: dict[str, dict[str, WorkItem]] = {}
        self._sync_later: list[WorkItem] = []
        self._reserved: dict[str, float] = {}  # item key -> its worst case, reserved at submission
        self._resend_by_batch = False
        self._undecided: set[int] = set()  # orphan rows already reported as not told apart yet

    # ------------------------------------------------------------ submitting

    async def submit(self) -> None:
        """Recover orphans, then put every item not yet answered nor in a live batch into new batches."""
        for bt in self.targets.values():
            await self._recover_orphans(bt)
        for bt in self.targets.values():
            await self._submit_target(bt)

    async def _submit_target(self, bt: BatchTarget) -> None:
        skip = self.batches.not_to_send(bt.target.label, retry_errors=self.retry_errors)
        assert bt.provider.batch is not None
        settings = bt.provider.batch
        chunk: list[tuple[WorkItem, BatchEntry]] = []
        size = 0
        pricing = self.prices.batch(bt.provider, bt.target.model) if self.budget else None
        earlier = self.store.earlier_attempts()  # items sent before (an expired batch, --retry-errors)
        unsent: list[tuple[WorkItem, ResultRow, list[AttemptRow]]] = []  # from the cache, or refused
        for item in bt.items():
            if item.item_key in skip:
                continue
            before = earlier.get(item.item_key, NOTHING_BEFORE)
            request = chat_request(item, False, bt.provider)  # the synchronous request, not streamed
            try:
                call = bt.calls.build(request)  # the same body (and dialect) a synchronous request gets
            except ProviderError as error:  # e.g. an image gone since validation: nothing is sent
                unsent.append((item, self._row(item, error, before[1], utcnow()), []))
                continue
            if self.cache is not None:
                key = self.cache.key_of(bt.provider, call.json, item)
                hit = self.cache.get(key)
                if hit is not None:  # answered before: not bought again
                    unsent.append((item, self.cache.row(self.run_id, item, hit, self.checks), []))
                    continue
            if self.budget is not None:
                try:
                    self._reserved[item.item_key] = self.budget.reserve(pricing, estimate_tokens(item.messages),
                                                                        max_tokens_of(request), bt.provider.id)
                except ProviderError as error:
                    unsent.append((item, self._row(item, error, before[1], utcnow()), []))
                    continue
            entry = BatchEntry(custom_id(item.item_key), call.json)
            entry_size = bt.api.entry_size(entry)
            if chunk and (len(chunk) >= settings.max_requests or size + entry_size > settings.max_bytes):
                await self._create(bt, chunk)
                chunk, size = [], 0
            chunk.append((item, entry))
            size += entry_size
        if chunk:
            await self._create(bt, chunk)
        await self._finish(unsent)

    async def _create(self, bt: BatchTarget, chunk: list[tuple[WorkItem, BatchEntry]]) -> None:
        tag = secrets.token_hex(8)
        created_at = utcnow()
        assert bt.provider.batch is not None
        # The row and its items first: a crash after create finds them.
        row_id = self.batches.add(target=bt.target.label, provider=bt.provider.id, model=bt.target.model,
                                  api=bt.provider.batch.api, tag=tag, created_at=created_at,
                                  items=[(item.item_key, entry.custom_id) for item, entry in chunk])
        metadata = {"hanzo_run": str(self.run_id), "job": self.job.name[:500]}
        try:
            status = await bt.paced(lambda: bt.api.create(bt.client, bt.target.model, [e for _, e in chunk], tag,
                                                          metadata))
        except ProviderError as error:
            found = None
            if error.code in (ErrorCode.TIMEOUT, ErrorCode.CONNECTION_FAILED, ErrorCode.SERVER_ERROR):
                try:
                    found = await self._find(bt, tag, created_at, len(chunk))  # the create may have gone through
                except BatchUndecided:
                    return  # the row waits as an orphan, polled until the provider can tell
            if found is None:
                await self._refused(row_id, [item for item, _ in chunk], error, created_at)
                return
            status = found
        if os.environ.get(CRASH_HOOK) == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        self.batches.created(row_id, status)
        self.report.created += 1
        self.progress.status(f"{bt.target.label}: batch {status.batch_id} created ({len(chunk)} requests)")

    async def _refused(self, row_id: int, items: list[WorkItem], error: ProviderError, sent_at: str) -> None:
        """The provider refused the batch: each of its items gets the error as its result, and the
        request that carried it as an attempt."""
        self.batches.refused(row_id, str(error), len(items))
        if self.budget is not None:  # nothing was bought
            for item in items:
                self.budget.settle(self._reserved.pop(item.item_key, 0.0), 0.0)
        before = self.batches.attempts_before(row_id)
        done = []
        for item in items:
            last, count = before.get(item.item_key, NOTHING_BEFORE)
            attempt = self._attempt(item.item_key, last + 1, sent_at, error)
            done.append((item, self._row(item, error, count + 1, sent_at), [attempt]))
        await self._finish(done)

    # ------------------------------------------------------------ orphans

    async def _find(self, bt: BatchTarget, tag: str, created_at: str, count: int) -> BatchStatus | None:
        known = self.batches.known_ids(bt.provider.id)
        after = unix_time(created_at)
        return await with_retries(bt.provider.retry, anyio.sleep, lambda: bt.api.find(
            bt.client, tag, created_after=after, count=count, known=known))

    async def _recover_orphans(self, bt: BatchTarget) -> None:
        """Rows committed before a create whose id never was: found at the provider, or forgotten."""
        for row in self.batches.orphans(bt.target.label):
            await self._recover_orphan(bt, row)

    async def _recover_orphan(self, bt: BatchTarget, row: dict[str, Any]) -> None:
        try:
            found = await self._find(bt, row["tag"], row["created_at"], row["request_count"])
        except BatchUndecided as undecided:  # live until told: its items are neither sent again nor failed
            if row["id"] not in self._undecided:
                self._undecided.add(row["id"])
                self.progress.notice(f"{bt.target.label}: {undecided}")
            return
        if found is not None:
            self.batches.created(row["id"], found)
            self.progress.notice(f"{bt.target.label}: found batch {found.batch_id} created before the last "
                                 "run stopped; collecting it instead of sending its items again")
            return
        self.batches.forget(row["id"])  # never created: its items are sent again like any unsent item
        self._resend_by_batch = True

    # ------------------------------------------------------------ polling and collecting

    def live(self) -> list[dict[str, Any]]:
        return self.batches.live(self.targets)

    async def collect(self, *, wait: bool) -> BatchReport:
        """Poll the live batches, collecting each as it ends; until none is left, or once when not ``wait``."""
        interval = self.poll_interval
        first = True
        async with anyio.create_task_group() as group:
            if self.handle_signals and wait:
                group.start_soon(self._watch_signals, group.cancel_scope)
            while True:
                if not first or not wait:
                    await self._poll_all()
                if self._sync_later and self.send_sync is not None:
                    items, self._sync_later = self._sync_later, []
                    await self.send_sync(items)
                if self._resend_by_batch:  # expired requests go out again (nothing else is new)
                    self._resend_by_batch = False
                    await self.submit()
                live = self.live()
                self.report.running = len(live)
                if not live or not wait:
                    break
                first = False
                await anyio.sleep(interval)
                interval = min(interval * POLL_BACKOFF, MAX_POLL_S)
            group.cancel_scope.cancel()
        self.report.running = len(self.live())
        return self.report

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.report.interrupted = True
                scope.cancel()
                return

    async def _poll_all(self) -> None:
        for row in self.live():
            bt = self.targets[row["target"]]
            if row["provider_batch_id"] is None:  # an orphan the provider could not tell apart yet
                await self._recover_orphan(bt, row)
                continue
            try:
                status = await with_retries(bt.provider.retry, anyio.sleep,
                                            functools.partial(bt.api.status, bt.client, row["provider_batch_id"]))
            except ProviderError as error:
                self.progress.notice(f"{row['target']}: batch {row['provider_batch_id']}: cannot read its status: "
                                     f"{error}; trying again at the next poll")
                continue
            self._update(row, status)
            if status.state != "running":
                await self._collect(bt, row, status)

    def _update(self, row: dict[str, Any], status: BatchStatus) -> None:
        state = {"running": row["status"] if row["status"] == "cancelling" else "running", "ended": "completed"}.get(
            status.state, status.state)
        self.batches.seen(row["id"], state, status)
        done = (status.ok or 0) + (status.failed or 0)
        self.progress.status(f"{row['target']}: batch {status.batch_id}: {status.provider_status}, {done}/"
                             f"{status.total if status.total is not None else row['request_count']} done, "
                             f"{status.failed or 0} failed")

    async def _collect(self, bt: BatchTarget, row: dict[str, Any], status: BatchStatus) -> None:
        """Write the results of an ended batch as its lines are read; decide what becomes of the requests
        without an answer.

        A results file is read as it downloads, never whole, and its rows are written COLLECTED_AT_ONCE
        to a transaction. A read cut short leaves the rows written so far: they are final, and reading
        again (a retry, the next poll, a resume) skips their items. Every request the batch carried is
        an attempt of its item, numbered after the item's earlier ones (sync or batch), whether it was
        answered, failed, or expired and is sent again."""
        members = self.batches.members(row["id"])
        items = self._items_of(bt)
        sent_before = self.batches.times_sent(row["id"])
        before = self.batches.attempts_before(row["id"])
        written = self.batches.answered_by(status.batch_id)  # item keys this batch's rows were written for
        pricing = self.prices.batch(bt.provider, bt.target.model)
        started = row["created_at"]
        priced_at = datetime.datetime.fromisoformat(started)  # the batch's answers are priced at its date
        cancel_asked = row["status"] == "cancelling" or (row["message"] or "").startswith("cancel requested")
        taken = set(written)  # item keys a line of the last read was matched to
        resent: list[AttemptRow] = []
        again: list[WorkItem] = []

        def answered(line: BatchLine, key: str) -> tuple[WorkItem, ResultRow, list[AttemptRow]] | None:
            """The item's rows from its line; None when it is to be sent again (decided after the read)."""
            outcome = line_outcome(line, bt.calls.adapter, bt.provider, status, cancel_asked, sent_before.get(key, 1))
            last, count = before.get(key, NOTHING_BEFORE)
            item = items[key]
            if outcome is None:  # to be sent again: this send was an attempt all the same
                why = ProviderError(ErrorCode.TIMEOUT if line.kind == "expired" else ErrorCode.CANCELLED,
                                    f"the batch {status.batch_id} {line.kind}", None, bt.provider.id)
                resent.append(self._attempt(key, last + 1, started, why))
                again.append(item)
                return None
            cost = answer_cost(pricing, outcome.completion, item.messages, priced_at) \
                if isinstance(outcome, Answer) else UNKNOWN
            return item, self._row(item, outcome, count + 1, started, cost, status.batch_id), [
                self._attempt(key, last + 1, started, outcome)]

        async def read() -> None:
            nonlocal taken
            taken = set(written)
            resent.clear()
            again.clear()
            done: list[tuple[WorkItem, ResultRow, list[AttemptRow]]] = []
            async with aclosing(bt.api.results(bt.client, status)) as lines:
                async for line in lines:
                    key = members.get(line.custom_id)
                    if key is None or key in taken or key not in items:
                        continue
                    taken.add(key)  # matched by id, never by position (and once)
                    if (rows := answered(line, key)) is not None:
                        done.append(rows)
                    if len(done) >= COLLECTED_AT_ONCE:
                        await self._write_collected(bt, done, written)
                        done = []
            await self._write_collected(bt, done, written)

        try:
            await with_retries(bt.provider.retry, anyio.sleep, read)
        except ProviderError as error:
            if not refused_for_good(error):
                self.progress.notice(f"{row['target']}: batch {status.batch_id}: cannot read its results: "
                                     f"{error}; trying again at the next poll")
                return
            # Asking again would be refused again: the items without a row get the error.
            taken, status.state, status.message = set(written), "failed", f"its results could not be read: {error}"
            resent.clear()
            again.clear()
        except ValueError as error:  # a results file that is not JSON lines
            taken, status.message = set(written), f"its results could not be read: {error}"
            resent.clear()
            again.clear()
        kind: LineKind = "expired" if status.state == "expired" else \
            "cancelled" if status.state == "cancelled" else "error"
        rest = [answered(BatchLine(cid, kind), key) for cid, key in members.items()
                if key in items and key not in taken]
        if resent:
            self.store.write((), resent)
        for item in again:
            self._resend(item)
        await self._write_collected(bt, [rows for rows in rest if rows is not None], written)
        self.batches.collected(row["id"], status.message)
        self.report.collected += 1

    async def _write_collected(self, bt: BatchTarget, done: list[tuple[WorkItem, ResultRow, list[AttemptRow]]],
                               written: set[str]) -> None:
        """Rows of a collected batch, settled against the budget, graded, written, then their ok answers cached."""
        kept: list[tuple[str, CachedAnswer]] = []
        for item, result, _ in done:
            if self.budget is not None:  # the answer's own cost; its judges settle theirs as they are asked
                self.budget.settle(self._reserved.pop(item.item_key, 0.0), result.cost_usd)
            if self.cache is not None and result.status == "ok":
                entry = self.cache.entry_of(bt.provider, bt.calls, item, result)
                if entry is not None:
                    kept.append(entry)
        await self._finish(done)
        written.update(item.item_key for item, _, _ in done)
        if self.cache is not None and kept:
            self.cache.keep(kept)

    def _resend(self, item: WorkItem) -> None:
        if self.budget is not None:  # reserved again when it goes out again
            self.budget.reserved -= self._reserved.pop(item.item_key, 0.0)
        if self.fallback == "sync" and self.send_sync is not None:
            self._sync_later.append(item)
        else:  # by batch: submit() picks it up, as it has no result and no live batch
            self._resend_by_batch = True

    def _items_of(self, bt: BatchTarget) -> dict[str, WorkItem]:
        label = bt.target.label
        if label not in self._items:
            self._items[label] = {item.item_key: item for item in bt.every()}
        return self._items[label]

    def _row(self, item: WorkItem, outcome: Answer | ProviderError, attempts: int, started_at: str,
             cost: Cost = UNKNOWN, batch_id: str | None = None) -> ResultRow:
        row = result_row(self.run_id, item, outcome, attempts=attempts, started_at=started_at, finished_at=utcnow(),
                         cost=cost, checks=self.checks)
        # A batch answer has no latency of its own: the batch's turnaround is not the model's speed.
        return row._replace(via="batch", batch_id=batch_id, latency_ms=None)

    def _attempt(self, item_key: str, number: int, sent_at: str, outcome: Answer | ProviderError) -> AttemptRow:
        """One request of a batch as an attempt of its item (no latency of its own)."""
        return attempt_row(self.run_id, item_key, number, sent_at, outcome, None)

    async def _finish(self, done: list[tuple[WorkItem, ResultRow, list[AttemptRow]]]) -> None:
        """Rows answered by batch (or from the cache), graded by the job's judges like synchronous
        ones (their requests go through the graders' lanes), then written."""
        if not done:
            return
        if self.grading is not None:
            grading = self.grading
            limiter = anyio.CapacityLimiter(GRADED_AT_ONCE)

            async def grade(i: int) -> None:
                item, row, attempts = done[i]
                async with limiter:
                    done[i] = (item, await grading.grade(item, row, attempts), attempts)

            async with anyio.create_task_group() as group:
                for i in range(len(done)):
                    group.start_soon(grade, i)
        results = [row for _, row, _ in done]
        self.store.write(results, [a for _, _, attempts in done for a in attempts])
        ok = sum(1 for r in results if r.status == "ok")
        self.progress.advance(ok, len(results) - ok)


__all__ = ["BatchFlow"]
