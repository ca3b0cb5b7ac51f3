"""Batch mode: a run's items sent through the providers' batch APIs, at the batch price.

    submit:  items of each batch target -> batches within the provider's request and byte limits
             -> ``batches`` row + ``batch_items`` committed -> created at the provider (paced by its
             request limiter) -> the provider's id committed at once
    collect: poll the live batches (interval with backoff) -> an ended batch's lines matched to
             their items by custom_id -> result rows (via='batch', batch price) -> expired requests
             re-sent (by batch, or synchronously with --batch-fallback sync) up to the retry settings

Nothing is paid twice: a batch row is committed before the batch is created, so a crash between
the provider's answer and the commit leaves a row without an id, which the next ``--resume``
looks up at the provider (``BatchApi.find``) before anything else is created. An item in a live
batch is never sent again; an item a batch answered (ok or not) is final for ``--resume``
(``--retry-errors`` re-sends the failed ones).

The run-level flow lives here; the wire shapes are runner/protocols/batch.py.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from sqlite_utils import Database

from ..config.jobs import Job, Target, WorkItem
from ..config.providers import Provider
from ..errors import BatchUndecided, ErrorCode, ProviderError
from ..http.client import Answer, CallBuilder, ProviderClient, read_answer
from ..protocols import Adapter, batch_api
from ..protocols.batch import BatchApi, BatchEntry, BatchLine, BatchStatus, LineKind, refused_for_good
from ..store.database import RunStore, utcnow
from ..store.records import AttemptRow, ResultRow
from .attempt import max_tokens_of
from .budget import Budget
from .costing import Cost, PriceBook, answer_cost
from .limits import ProviderLimits
from .progress import Progress
from .requests import chat_request
from .retry import with_retries
from .rows import result_row
from .usage import estimate_tokens

Fallback = Literal["batch", "sync"]
DEFAULT_POLL_S = 30.0
MAX_POLL_S = 600.0
POLL_BACKOFF = 1.5
LIVE = ("pending", "running", "cancelling")
# Test hook: SIGKILL this process right after a batch is created, before its id is committed.
CRASH_HOOK = "HANZO_RUN_CRASH_AFTER_BATCH_CREATE"


def custom_id(item_key: str) -> str:
    """The id a batch request carries: the item key (24 hex digits), stable across runs; it fits
    Anthropic's ``^[a-zA-Z0-9_-]{1,64}$``."""
    return item_key


@dataclass
class BatchTarget:
    """One target whose items go by batch, with its provider's client and limiter."""

    target: Target
    provider: Provider
    client: ProviderClient
    limits: ProviderLimits
    items: Callable[[], Iterator[WorkItem]]  # the target's items in this run (limit and shard applied)
    api: BatchApi = field(init=False)
    calls: CallBuilder = field(init=False)

    def __post_init__(self) -> None:
        assert self.provider.batch is not None
        self.api = batch_api(self.provider.batch)
        self.calls = self.client.calls


@dataclass
class BatchReport:
    """What the batch phase did, for the end-of-run message."""

    created: int = 0  # batches created by this invocation
    running: int = 0  # batches still running at the provider when it returned
    collected: int = 0
    interrupted: bool = False  # Ctrl-C while polling: the batches run on


class BatchFlow:
    def __init__(self, job: Job, store: RunStore, targets: Sequence[BatchTarget], *, progress: Progress | None,
                 budget: Budget | None, fallback: Fallback = "batch", poll_interval: float | None = None,
                 retry_errors: bool = False, handle_signals: bool = False,
                 send_sync: Callable[[list[WorkItem]], Awaitable[None]] | None = None) -> None:
        self.job = job
        self.store = store
        self.db: Database = store.db
        self.run_id = store.run_id
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
        self.tty = sys.stderr.isatty()
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

    def _skip(self, label: str) -> set[str]:
        """Item keys of the target that must not be sent by batch now."""
        answered = "status = 'ok'" if self.retry_errors else "(status = 'ok' OR via = 'batch')"
        keys = {r["item_key"] for r in self.db.query(
            f"SELECT item_key FROM results WHERE run_id = ? AND target = ? AND {answered}", [self.run_id, label])}
        keys.update(r["item_key"] for r in self.db.query(
            "SELECT i.item_key FROM batch_items i JOIN batches b ON b.id = i.batch"
            " WHERE b.run_id = ? AND b.target = ? AND b.collected_at IS NULL", [self.run_id, label]))
        return keys

    async def _submit_target(self, bt: BatchTarget) -> None:
        skip = self._skip(bt.target.label)
        assert bt.provider.batch is not None
        settings = bt.provider.batch
        chunk: list[tuple[WorkItem, BatchEntry]] = []
        size = 0
        pricing = self.prices.batch(bt.provider, bt.target.model) if self.budget else None
        refused: list[tuple[ResultRow, list[AttemptRow]]] = []
        for item in bt.items():
            if item.item_key in skip:
                continue
            request = chat_request(item, False, bt.provider)  # the synchronous request, not streamed
            try:
                call = bt.calls.build(request)  # the same body (and dialect) a synchronous request gets
            except ProviderError as error:  # e.g. an image gone since validation: nothing is sent
                refused.append((self._row(item, error, Cost(None, None), utcnow(), None)._replace(attempts=0), []))
                continue
            if self.budget is not None:
                try:
                    self._reserved[item.item_key] = self.budget.reserve(pricing, estimate_tokens(item.messages),
                                                                        max_tokens_of(request), bt.provider.id)
                except ProviderError as error:
                    refused.append((self._row(item, error, Cost(None, None), utcnow(), None), []))
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
        if refused:
            self._write([r for r, _ in refused], [])

    async def _create(self, bt: BatchTarget, chunk: list[tuple[WorkItem, BatchEntry]]) -> None:
        tag = secrets.token_hex(8)
        created_at = utcnow()
        with self.db.atomic():  # the row and its items first: a crash after create finds them
            row_id: int = self.db.execute(
                "INSERT INTO batches (run_id, target, provider, model, api, tag, status, request_count, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                [self.run_id, bt.target.label, bt.provider.id, bt.target.model, settings_api(bt.provider), tag,
                 len(chunk), created_at]).lastrowid or 0
            self.db.conn.executemany("INSERT INTO batch_items (batch, item_key, custom_id) VALUES (?, ?, ?)",
                                     [(row_id, item.item_key, entry.custom_id) for item, entry in chunk])
        metadata = {"hanzo_run": str(self.run_id), "job": self.job.name[:500]}
        try:
            status = await self._paced(bt, lambda: bt.api.create(bt.client, bt.target.model,
                                                                 [e for _, e in chunk], tag, metadata))
        except ProviderError as error:
            found = None
            if error.code in (ErrorCode.TIMEOUT, ErrorCode.CONNECTION_FAILED, ErrorCode.SERVER_ERROR):
                try:
                    found = await self._find(bt, tag, created_at, len(chunk))  # the create may have gone through
                except BatchUndecided:
                    return  # the row waits as an orphan, polled until the provider can tell
            if found is None:
                self._fail_batch(row_id, bt, [item for item, _ in chunk], error)
                return
            status = found
        if os.environ.get(CRASH_HOOK) == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        self._record_created(row_id, status)
        self.report.created += 1
        if self.tty:
            print(f"hanzo-run: {bt.target.label}: batch {status.batch_id} created ({len(chunk)} requests)",
                  file=sys.stderr)

    def _record_created(self, row_id: int, status: BatchStatus) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE batches SET provider_batch_id = ?, status = 'running', provider_status = ?,"
                            " input_file_id = ? WHERE id = ?",
                            [status.batch_id, status.provider_status, status.input_file_id, row_id])

    async def _paced(self, bt: BatchTarget, call: Callable[[], Awaitable[BatchStatus]]) -> BatchStatus:
        """A create call under the provider's request limiter; retried only when refused for rate
        (a create that timed out may have gone through, so it is looked up rather than repeated)."""
        policy = bt.provider.retry
        delay = policy.initial_delay
        for attempt in range(policy.max_retries + 1):
            async with bt.limits.slot:
                await bt.limits.start(await bt.limits.admit(1))
                try:
                    return await call()
                except ProviderError as error:
                    if error.code != ErrorCode.RATE_LIMIT_EXCEEDED or attempt == policy.max_retries:
                        raise
                    wait = error.retry_after if error.retry_after is not None else delay
            await anyio.sleep(min(wait, policy.max_delay))
            delay = min(delay * policy.multiplier, policy.max_delay)
        raise AssertionError("unreachable")

    def _fail_batch(self, row_id: int, bt: BatchTarget, items: list[WorkItem], error: ProviderError) -> None:
        """The provider refused the batch: each of its items gets the error as its result."""
        now = utcnow()
        with self.db.atomic():
            self.db.execute("UPDATE batches SET status = 'failed', message = ?, ended_at = ?, collected_at = ?,"
                            " error_count = ? WHERE id = ?", [str(error), now, now, len(items), row_id])
        self._write([self._row(item, error, Cost(None, None), now, None) for item in items], [])

    # ------------------------------------------------------------ orphans

    async def _find(self, bt: BatchTarget, tag: str, created_at: str, count: int) -> BatchStatus | None:
        known = frozenset(r["provider_batch_id"] for r in self.db.query(
            "SELECT provider_batch_id FROM batches WHERE provider = ? AND provider_batch_id IS NOT NULL",
            [bt.provider.id]))
        after = _unix(created_at)
        return await with_retries(bt.provider.retry, anyio.sleep, lambda: bt.api.find(
            bt.client, tag, created_after=after, count=count, known=known))

    async def _recover_orphans(self, bt: BatchTarget) -> None:
        """Rows committed before a create whose id never was: found at the provider, or forgotten."""
        rows = list(self.db.query(
            "SELECT * FROM batches WHERE run_id = ? AND target = ? AND provider_batch_id IS NULL"
            " AND collected_at IS NULL ORDER BY id", [self.run_id, bt.target.label]))
        for row in rows:
            await self._recover_orphan(bt, row)

    async def _recover_orphan(self, bt: BatchTarget, row: dict[str, Any]) -> None:
        try:
            found = await self._find(bt, row["tag"], row["created_at"], row["request_count"])
        except BatchUndecided as undecided:  # live until told: its items are neither sent again nor failed
            if row["id"] not in self._undecided:
                self._undecided.add(row["id"])
                print(f"hanzo-run: {bt.target.label}: {undecided}", file=sys.stderr)
            return
        if found is not None:
            self._record_created(row["id"], found)
            print(f"hanzo-run: {bt.target.label}: found batch {found.batch_id} created before the last "
                  "run stopped; collecting it instead of sending its items again", file=sys.stderr)
            return
        with self.db.atomic():  # never created: its items are sent again like any unsent item
            self.db.execute("DELETE FROM batch_items WHERE batch = ?", [row["id"]])
            self.db.execute("DELETE FROM batches WHERE id = ?", [row["id"]])
        self._resend_by_batch = True

    # ------------------------------------------------------------ polling and collecting

    def live(self) -> list[dict[str, Any]]:
        labels = list(self.targets)
        marks = ", ".join("?" for _ in labels)
        return list(self.db.query(
            f"SELECT * FROM batches WHERE run_id = ? AND collected_at IS NULL"
            f" AND target IN ({marks}) ORDER BY id", [self.run_id, *labels]))

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
                print(f"hanzo-run: {row['target']}: batch {row['provider_batch_id']}: cannot read its status: "
                      f"{error}; trying again at the next poll", file=sys.stderr)
                continue
            self._update(row, status)
            if status.state != "running":
                await self._collect(bt, row, status)

    def _update(self, row: dict[str, Any], status: BatchStatus) -> None:
        state = {"running": row["status"] if row["status"] == "cancelling" else "running", "ended": "completed"}.get(
            status.state, status.state)
        with self.db.atomic():
            self.db.execute("UPDATE batches SET status = ?, provider_status = ?, ok_count = ?, error_count = ?,"
                            " output_file_id = ?, error_file_id = ?, message = coalesce(?, message),"
                            " ended_at = CASE WHEN ? THEN coalesce(ended_at, ?) END WHERE id = ?",
                            [state, status.provider_status, status.ok, status.failed, status.output_file_id,
                             status.error_file_id, status.message, status.state != "running", utcnow(), row["id"]])
        if self.tty:
            done = (status.ok or 0) + (status.failed or 0)
            print(f"hanzo-run: {row['target']}: batch {status.batch_id}: {status.provider_status}, {done}/"
                  f"{status.total if status.total is not None else row['request_count']} done, "
                  f"{status.failed or 0} failed", file=sys.stderr)

    async def _collect(self, bt: BatchTarget, row: dict[str, Any], status: BatchStatus) -> None:
        """Write the results of an ended batch; decide what becomes of the requests without an answer."""
        try:
            lines = await with_retries(bt.provider.retry, anyio.sleep,
                                       functools.partial(bt.api.results, bt.client, status))
        except ProviderError as error:
            if not refused_for_good(error):
                print(f"hanzo-run: {row['target']}: batch {status.batch_id}: cannot read its results: {error}; "
                      "trying again at the next poll", file=sys.stderr)
                return
            lines = []  # asking again would be refused again: its items get the error
            status.state, status.message = "failed", f"its results could not be read: {error}"
        except ValueError as error:  # a results file that is not JSON lines
            lines = []
            status.message = f"its results could not be read: {error}"
        members = {r["custom_id"]: r["item_key"] for r in self.db.query(
            "SELECT custom_id, item_key FROM batch_items WHERE batch = ?", [row["id"]])}
        items = self._items_of(bt)
        sent_before = self._times_sent(row["target"])
        adapter = bt.calls.adapter
        pricing = self.prices.batch(bt.provider, bt.target.model)
        started = row["created_at"]
        results: list[ResultRow] = []
        attempts: list[AttemptRow] = []
        answered: set[str] = set()
        cancel_asked = row["status"] == "cancelling" or (row["message"] or "").startswith("cancel requested")
        for line in lines:
            key = members.get(line.custom_id)
            if key is None or key in answered or key not in items:
                continue  # not ours (or twice): matched by id, never by position
            answered.add(key)
            outcome = self._outcome(line, adapter, bt, status, cancel_asked, sent_before.get(key, 1))
            if outcome is None:
                self._resend(items[key])
                continue
            cost = answer_cost(pricing, outcome.completion, items[key].messages) if isinstance(outcome, Answer) \
                else Cost(None, None)
            result = self._row(items[key], outcome, cost, started, status.batch_id)
            results.append(result)
            attempts.append(AttemptRow(self.run_id, key, sent_before.get(key, 1), started, None,
                                       None if isinstance(outcome, ProviderError) else outcome.http_status,
                                       outcome.code if isinstance(outcome, ProviderError) else None, None))
        for cid, key in members.items():
            if key in answered or key not in items:
                continue
            kind: LineKind = "expired" if status.state == "expired" else \
                "cancelled" if status.state == "cancelled" else "error"
            missing = BatchLine(cid, kind)
            outcome = self._outcome(missing, adapter, bt, status, cancel_asked, sent_before.get(key, 1))
            if outcome is None:
                self._resend(items[key])
                continue
            results.append(self._row(items[key], outcome, Cost(None, None), started, status.batch_id))
        self._write(results, attempts)
        with self.db.atomic():
            self.db.execute("UPDATE batches SET collected_at = ?, message = coalesce(?, message) WHERE id = ?",
                            [utcnow(), status.message, row["id"]])
        self.report.collected += 1

    def _outcome(self, line: BatchLine, adapter: Adapter, bt: BatchTarget, status: BatchStatus, cancel_asked: bool,
                 times_sent: int) -> Answer | ProviderError | None:
        """The line as an answer or an error; None when the request is to be sent again."""
        provider = bt.provider.id
        if line.kind == "ok":
            try:
                return read_answer(adapter, bt.provider.protocol, line.body, line.status or 200, 0.0)
            except ProviderError as error:
                error.provider = provider
                return error
        if line.kind == "error":
            if status.state == "failed" and line.body is None:
                return ProviderError(ErrorCode.REQUEST_FAILED, f"the batch {status.batch_id} failed: "
                                     f"{status.message or status.provider_status}", None, provider)
            if line.body is None:
                return ProviderError(ErrorCode.INVALID_RESPONSE, f"the batch {status.batch_id} ended without a "
                                     "result for this request", None, provider)
            info = adapter.error_info(line.body)
            if line.status is None:
                return ProviderError(ErrorCode.REQUEST_FAILED, info.message, None, provider)
            code = adapter.classify(line.status, info)
            return ProviderError(code, f"HTTP {line.status}: {info.message or 'error'}", line.status, provider)
        if line.kind == "cancelled" and cancel_asked:
            return ProviderError(ErrorCode.CANCELLED, f"the batch {status.batch_id} was cancelled before this "
                                 "request ran", None, provider)
        # Expired (or cancelled by the provider): sent again while the retry settings allow.
        if times_sent <= bt.provider.retry.max_retries:
            return None
        what = "expired" if line.kind == "expired" else "was cancelled"
        code = ErrorCode.TIMEOUT if line.kind == "expired" else ErrorCode.CANCELLED
        return ProviderError(code, f"the batch {status.batch_id} {what} before this request ran "
                             f"(sent {times_sent} times by batch)", None, provider)

    def _resend(self, item: WorkItem) -> None:
        if self.budget is not None:  # reserved again when it goes out again
            self.budget.reserved -= self._reserved.pop(item.item_key, 0.0)
        if self.fallback == "sync" and self.send_sync is not None:
            self._sync_later.append(item)
        else:  # by batch: submit() picks it up, as it has no result and no live batch
            self._resend_by_batch = True

    def _times_sent(self, label: str) -> dict[str, int]:
        return {r["item_key"]: r["n"] for r in self.db.query(
            "SELECT i.item_key, count(*) AS n FROM batch_items i JOIN batches b ON b.id = i.batch"
            " WHERE b.run_id = ? AND b.target = ? GROUP BY i.item_key", [self.run_id, label])}

    def _items_of(self, bt: BatchTarget) -> dict[str, WorkItem]:
        label = bt.target.label
        if label not in self._items:
            self._items[label] = {item.item_key: item for item in bt.items()}
        return self._items[label]

    def _row(self, item: WorkItem, outcome: Answer | ProviderError, cost: Cost, started_at: str,
             batch_id: str | None) -> ResultRow:
        row = result_row(self.run_id, item, outcome, attempts=1, started_at=started_at, finished_at=utcnow(),
                         cost=cost, checks=self.checks)
        # A batch answer has no latency of its own: the batch's turnaround is not the model's speed.
        return row._replace(via="batch", batch_id=batch_id, latency_ms=None)

    def _write(self, results: list[ResultRow], attempts: list[AttemptRow]) -> None:
        if not results:
            return
        self.store.write(results, attempts)
        ok = sum(1 for r in results if r.status == "ok")
        if self.budget is not None:
            for r in results:
                self.budget.settle(self._reserved.pop(r.item_key, 0.0), r.cost_usd)
        self.progress.advance(ok, len(results) - ok)


def settings_api(provider: Provider) -> str:
    assert provider.batch is not None
    return provider.batch.api


def _unix(stamp: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def live_batches(db: Database, run_id: int) -> list[dict[str, Any]]:
    """The run's batches still running at the provider."""
    return list(db.query("SELECT * FROM batches WHERE run_id = ? AND collected_at IS NULL"
                         " AND provider_batch_id IS NOT NULL AND status IN ('pending', 'running', 'cancelling')",
                         [run_id]))


def mark_cancelling(db: Database, row_id: int) -> None:
    with db.atomic():
        db.execute("UPDATE batches SET status = 'cancelling', message = 'cancel requested' WHERE id = ?", [row_id])


__all__ = ["BatchFlow", "BatchReport", "BatchTarget", "custom_id"]
