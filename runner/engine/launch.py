"""The composition root of a run: load and check everything, wire the real HTTP
clients, database, clock and signals into the engine, and close it all after.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
from sqlite_utils import Database

from ..config.jobs import Job, Target, WorkItem, load_job
from ..config.providers import ProviderRegistry, provider_dirs
from ..config.settings import selected_model
from ..errors import ConfigError, UsageError
from ..store.database import RunStore, open_db
from ..store.records import RunStatus
from ..store.runs import resolve_run
from ..version import __version__
from .batchrun import BatchPlan, batch_run_options
from .batchtarget import BatchReport
from .budget import Budget
from .caching import AnswerCache
from .grading import grader_providers
from .identity import identity_changes, provider_identities
from .lock import RunLock
from .options import RunKwargs, RunOptions
from .output_path import check_database_path, database_error, unusable
from .preflight import grader_problems
from .scheduler import Engine, Lane, Progress
from .sharding import Shard, parse_shard, target_items


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    db_path: Path
    status: RunStatus
    items: int
    ok: int
    failed: int
    cost_usd: float | None
    checked: bool = False  # the job has checks, so its pass rate is what counts
    missing: int = 0  # items of the run's scope with no row yet (it stays resumable)
    only: tuple[str, ...] = ()  # the run's own scope, as it was started: what a resume should repeat
    limit: int | None = None
    signalled: bool = False  # stopped by Ctrl-C / SIGTERM, not merely left with items to send
    batches_created: int = 0  # by this invocation
    batches_running: int = 0  # still running at the provider ("submitted" runs)
    batch_interrupted: bool = False  # Ctrl-C while polling batches


def prepare(job_path: Path, options: RunOptions) -> tuple[Job, ProviderRegistry]:
    """Load the job and every provider it uses; ConfigError before anything is sent."""
    registry = ProviderRegistry(provider_dirs(options.providers_dirs))
    job = load_job(job_path, registry, selected_model=selected_model)
    if options.only:
        chosen = tuple(t for t in job.targets if _matches(t, options.only))
        if not chosen:
            names = ", ".join(t.label for t in job.targets)
            raise UsageError(f"--only {' '.join(options.only)} matches no target of {job_path}; targets: {names}")
        job = replace(job, targets=chosen)
    return job, registry


def _matches(target: Target, patterns: Sequence[str]) -> bool:
    return any(p in (target.label, target.provider, f"{target.provider}/{target.model}") for p in patterns)


def lane_items(job: Job, targets: Sequence[Target], limit: int | None,
               shard: Shard | None = None) -> Iterator[WorkItem]:
    """One provider's items, its targets interleaved so each model progresses evenly."""
    streams = [target_items(job, t, limit, shard) for t in targets]
    for group in itertools.zip_longest(*streams):
        yield from (item for item in group if item is not None)


async def run_prepared(job: Job, registry: ProviderRegistry, options: RunOptions, *,
                       progress: Progress | None = None, handle_signals: bool = False) -> RunOutcome:
    """Run a prepared job to the end in the running event loop; the run's outcome.

    ``handle_signals`` (the command line only) makes Ctrl-C and SIGTERM stop taking new
    items and let requests in flight finish; the run is then "interrupted".
    """
    problems = grader_problems(job, registry)  # before any answer is bought that could not be graded
    if problems:
        raise ConfigError(problems)
    db_path = options.db or job.output
    check_database_path(db_path)
    lock = RunLock(db_path, job.path)
    # With --wait the lock blocks until the running instance ends: not on the event loop.
    try:
        await anyio.to_thread.run_sync(functools.partial(lock.acquire, wait=options.wait))
    except OSError as e:
        raise unusable(db_path, f"cannot create its lock file {lock.path}: {e.strerror}",
                       "choose a writable folder in output: or --db") from None
    with lock:
        try:
            db = open_db(db_path)
        except sqlite3.Error as e:
            raise database_error(db_path, e) from None
        try:
            store = open_run(db, job, registry, options)
            limit = options.max_cost if options.max_cost is not None else job.budget_usd
            budget = Budget(limit, allow_unpriced=options.allow_unpriced, spent_usd=store.spent()) if limit else None
            if progress is not None:
                progress.start(None if options.limit or options.shard else job.count_items())
            report = BatchReport()
            try:
                status = await _run(job, registry, options, store, progress, handle_signals, budget, report)
            except BaseException:
                store.finish("failed")
                raise
            counts = store.finish(status)
            scope = run_scope(store)
        finally:
            db.close()
    return RunOutcome(store.run_id, db_path, store.status, counts["items"], counts["ok"], counts["failed"],
                      counts["cost_usd"], job.has_checks, counts["missing"], *scope,
                      signalled=status == "interrupted", batches_created=report.created,
                      batches_running=report.running, batch_interrupted=report.interrupted)


def scope_items(job: Job, limit: int | None, shard: Shard | None = None) -> int:
    """How many items a run of ``job`` (its targets already chosen by --only) has, each target cut to ``limit``
    (and, in a shard, those of the shard: counted by their keys)."""
    if not job.targets:
        return 0
    if shard is not None:
        return sum(1 for target in job.targets for _ in target_items(job, target, limit, shard))
    per_target = job.count_items() // len(job.targets)
    return len(job.targets) * (per_target if limit is None else min(limit, per_target))


def run_scope(store: RunStore) -> tuple[tuple[str, ...], int | None]:
    """The --only and --limit a run was started with."""
    options = store.options()
    return tuple(options.get("only") or ()), options.get("limit")


def open_run(db: Database, job: Job, registry: ProviderRegistry, options: RunOptions) -> RunStore:
    """A new run, or the earlier one that --resume / --retry-errors continues."""
    which = options.resume or options.retry_errors
    identities = provider_identities(job, registry)
    if which is None:
        return RunStore.start(db, job_name=job.name, job_path=str(job.path.resolve()), job_hash=job.hash,
                              items_total=scope_items(job, options.limit, parse_shard(options.shard)
                                                      if options.shard else None),
                              version=__version__, pid=os.getpid(),
                              options=json.dumps({"only": options.only, "limit": options.limit,
                                                  **batch_run_options(options, job)}),
                              providers=json.dumps(identities))
    flag = "--resume" if options.resume else "--retry-errors"
    run_id = None if which == "latest" else _run_id(which, flag)
    run = resolve_run(db, run_id, job_path=str(job.path.resolve()), unfinished=options.resume is not None,
                      sent=True)
    if run is None:
        unfinished = "unfinished " if options.resume else ""
        raise UsageError(f"{flag}: there is no run {run_id} in this database" if run_id is not None else
                         f"{flag}: there is no {unfinished}run of {job.path} in this database")
    if run.job_hash != job.hash and not options.force:
        raise UsageError(f"{flag}: {job.path} changed since run {run.id} (its targets, prompts, data or repeat), "
                         "so its items differ; pass --force to continue anyway, or start a new run")
    changes = identity_changes(run.providers, identities)
    if changes and not options.force:
        raise UsageError(f"{flag}: run {run.id} would now send its requests elsewhere: {'; '.join(changes)}. "
                         "Pass the same --providers-dir (and keys) as when it started, or --force to send them "
                         "to the new place anyway")
    return RunStore.reopen(db, run.id)


def _run_id(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{flag} takes a run id (a number), not {value!r}") from None


async def _run(job: Job, registry: ProviderRegistry, options: RunOptions, store: RunStore,
               progress: Progress | None, handle_signals: bool, budget: Budget | None,
               report: BatchReport) -> RunStatus:
    lanes: list[Lane] = []
    cache: AnswerCache | None = None
    plan = BatchPlan(job, options, store)
    try:
        # A grader's provider gets a lane even without targets: its requests keep its limits.
        for provider_id in dict.fromkeys([*(t.provider for t in job.targets), *grader_providers(job)]):
            provider = registry.get(provider_id)
            targets = [t for t in job.targets if t.provider == provider_id]
            lane = Lane.open(provider, iter(()), job.limits.get(provider_id))
            targets = plan.take(provider, targets, lane.client, lane.limits)  # those that go by batch are the plan's
            lane.items = lane_items(job, targets, options.limit, plan.shard)
            lanes.append(lane)
        cache = AnswerCache.open(job.cache_ttl_s) if (job.cache if options.cache is None else options.cache) else None
        engine = Engine(job, lanes, store, concurrency=options.concurrency or job.concurrency,
                        progress=progress, handle_signals=handle_signals, skip=store.done_keys(), budget=budget,
                        cache=cache,
                        earlier=store.earlier_attempts() if options.resume or options.retry_errors else None)
        if not plan.targets:
            return await engine.run()
        return await plan.run(engine, progress=progress, budget=budget, handle_signals=handle_signals,
                              report=report)
    finally:
        if cache is not None:
            cache.close()
        for lane in lanes:
            if lane.client:
                await lane.client.aclose()


__all__ = ["ConfigError", "RunKwargs", "RunOptions", "RunOutcome", "prepare", "run_prepared"]
