"""How batch mode joins a run: which targets go by batch, and the order of the phases.

    submit the batch targets' items  ->  run the other targets synchronously (the Engine)
    ->  poll and collect the batches (once with --no-wait on a resume; not at all on the
        --no-wait submission itself)  ->  "submitted" while any batch still runs

A target goes by batch when batch mode is on (``--batch``/``--no-batch``, else the job's
``batch``; a resumed run keeps what it was started with) and its provider has a ``batch``
block and a key. A target with batches still running is collected whatever the mode.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from ..config.jobs import Job, Target, WorkItem
from ..config.providers import Provider, ProviderRegistry, display_path
from ..errors import ProviderError, UsageError
from ..http.client import ProviderClient
from ..keys.lookup import find_key
from ..protocols import batch_api
from ..store.batches import BatchStore
from ..store.database import RunStore
from ..store.records import RunStatus
from .batching import BatchFlow
from .batchtarget import BatchReport, BatchTarget
from .budget import Budget
from .grading import grader_providers
from .limits import ProviderLimits
from .options import RunOptions
from .scheduler import Engine, Lane, Progress
from .sharding import Shard, parse_shard, target_items


def batch_run_options(options: RunOptions, job: Job) -> dict[str, Any]:
    """What a new run records about batch mode and sharding, for its resumes (and merge)."""
    recorded: dict[str, Any] = {}
    batch = options.batch if options.batch is not None else job.batch
    if batch:
        recorded["batch"] = True
        recorded["batch_fallback"] = options.batch_fallback
    if options.no_wait:
        recorded["no_wait"] = True
    if options.shard:
        recorded["shard"] = str(parse_shard(options.shard))
    return recorded


class BatchPlan:
    def __init__(self, job: Job, options: RunOptions, store: RunStore) -> None:
        self.job = job
        self.options = options
        self.store = store
        stored = store.options()
        self.resuming = bool(options.resume or options.retry_errors)
        self.enabled = bool(options.batch if options.batch is not None else stored.get("batch", job.batch))
        self.no_wait = options.no_wait or bool(stored.get("no_wait"))
        self.fallback = options.batch_fallback if options.batch_fallback != "batch" else \
            stored.get("batch_fallback", "batch")
        spec = options.shard or stored.get("shard")
        self.shard: Shard | None = parse_shard(spec) if spec else None
        self.live_labels = BatchStore(store.db, store.run_id).live_targets()
        self.targets: list[BatchTarget] = []

    def take(self, provider: Provider, targets: Sequence[Target], client: ProviderClient | None,
             limits: ProviderLimits) -> list[Target]:
        """Keep the provider's targets that go by batch; the ones left run synchronously."""
        if provider.batch is None or client is None:
            self._refuse_uncollectable(provider, targets, "no batch: block" if provider.batch is None else "no key")
            return list(targets)
        sync: list[Target] = []
        for target in targets:
            if self.enabled or target.label in self.live_labels:
                items = functools.partial(target_items, self.job, target, self.options.limit, self.shard)
                every = functools.partial(target_items, self.job, target, None, self.shard)
                self.targets.append(BatchTarget(target, provider, client, limits, items, every))
            else:
                sync.append(target)
        return sync

    def _refuse_uncollectable(self, provider: Provider, targets: Sequence[Target], lacking: str) -> None:
        """Batches still running for a provider that can no longer collect them: sending their items again
        would buy them twice, failing them would throw paid answers away. Nothing is sent; the user decides."""
        live = [t.label for t in targets if t.label in self.live_labels]
        if live:
            raise UsageError(
                f"run {self.store.run_id} has batches still running for {', '.join(live)}, but "
                f"{display_path(provider.source)} now has {lacking}, which collecting them needs; restore it and "
                f"resume again (or cancel them at the provider)")

    async def run(self, engine: Engine, *, progress: Progress | None, budget: Budget | None,
                  handle_signals: bool, report: BatchReport) -> RunStatus:
        options = self.options

        async def send_sync(items: list[WorkItem]) -> None:
            """Expired batch requests sent one by one (--batch-fallback sync)."""
            by_label = {bt.target.label: bt for bt in self.targets}
            groups: dict[str, list[WorkItem]] = {}
            for item in items:
                groups.setdefault(item.target.label, []).append(item)
            fallback_lanes = [Lane(by_label[label].provider, by_label[label].limits, by_label[label].client,
                                   iter(group)) for label, group in groups.items()]
            # Numbered after the batch sends of the items, cached and graded like any synchronous answer.
            await Engine(self.job, [*fallback_lanes, *graders], self.store,
                         concurrency=options.concurrency or self.job.concurrency, progress=progress, budget=budget,
                         cache=engine.cache, earlier=self.store.earlier_attempts()).run()

        graders = [lane for lane in engine.lanes if lane.provider.id in grader_providers(self.job)]
        flow = BatchFlow(self.job, self.store, self.targets, progress=progress, budget=budget,
                         fallback="sync" if self.fallback == "sync" else "batch", poll_interval=options.poll_interval,
                         retry_errors=bool(options.retry_errors), handle_signals=handle_signals, send_sync=send_sync,
                         cache=engine.cache, grading=engine.grading)
        await flow.submit()
        status = await engine.run()  # the other targets, synchronously, while the batches run
        if status == "completed" and (self.resuming or not self.no_wait):
            await flow.collect(wait=not self.no_wait)
        flow.report.running = len(flow.live())
        report.created, report.running = flow.report.created, flow.report.running
        report.collected, report.interrupted = flow.report.collected, flow.report.interrupted
        if status == "completed" and report.running:
            return "submitted"
        return status


async def cancel_run_batches(db: Database, run_id: int, registry: ProviderRegistry) -> list[tuple[str, str, str]]:
    """Ask the provider to cancel each batch of the run still running; (target, batch id, what happened).

    A cancelled batch's requests that had not run become CANCELLED results when the run is next
    resumed (requests that finished before the cancel keep their answers).
    """
    done: list[tuple[str, str, str]] = []
    clients: dict[str, ProviderClient] = {}
    batches = BatchStore(db, run_id)
    try:
        for row in batches.running():
            provider = registry.get(row["provider"])
            if provider.batch is None:
                done.append((row["target"], row["provider_batch_id"], "its provider file has no batch block now"))
                continue
            if provider.id not in clients:
                lookup = find_key(provider)
                if lookup.problem:
                    done.append((row["target"], row["provider_batch_id"], lookup.problem))
                    continue
                clients[provider.id] = ProviderClient(provider, lookup.key)
            try:
                await batch_api(provider.batch).cancel(clients[provider.id], row["provider_batch_id"])
            except ProviderError as error:
                done.append((row["target"], row["provider_batch_id"], f"not cancelled: {error}"))
                continue
            batches.cancelling(row["id"])
            done.append((row["target"], row["provider_batch_id"], "cancelling"))
    finally:
        for client in clients.values():
            await client.aclose()
    return done
