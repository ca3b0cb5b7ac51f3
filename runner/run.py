"""The composition root of a run: load and check everything, wire the real HTTP
clients, database, clock and signals into the engine, and close it all after.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from . import __version__
from .client import ProviderClient
from .engine import Engine, Lane, Progress
from .errors import ConfigError, UsageError
from .jobs import Job, Target, WorkItem, load_job
from .keys import find_key
from .providers import ProviderRegistry, provider_dirs
from .settings import selected_model
from .store import RunStore, open_db


@dataclass(frozen=True)
class RunOptions:
    db: Path | None = None
    providers_dirs: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    limit: int | None = None
    concurrency: int | None = None


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    db_path: Path
    status: str
    items: int
    ok: int
    failed: int
    cost_usd: float | None


def prepare(job_path: Path, options: RunOptions) -> tuple[Job, ProviderRegistry]:
    """Load the job and every provider it uses; ConfigError before anything is sent."""
    registry = ProviderRegistry(provider_dirs(options.providers_dirs))
    job = load_job(job_path, registry, selected_model=selected_model)
    if options.only:
        chosen = tuple(t for t in job.targets if _matches(t, options.only))
        if not chosen:
            names = ", ".join(t.label for t in job.targets)
            raise UsageError(f"--only {' '.join(options.only)} matches no target of {job_path}; targets: {names}")
        job = _with_targets(job, chosen)
    return job, registry


def _matches(target: Target, patterns: Sequence[str]) -> bool:
    return any(p in (target.label, target.provider, f"{target.provider}/{target.model}") for p in patterns)


def _with_targets(job: Job, targets: tuple[Target, ...]) -> Job:
    from dataclasses import replace

    return replace(job, targets=targets)


def lane_items(job: Job, targets: Sequence[Target], limit: int | None) -> Iterator[WorkItem]:
    """One provider's items, its targets interleaved so each model progresses evenly."""
    streams = [itertools.islice(job.items_for(t), limit) for t in targets]
    for group in itertools.zip_longest(*streams):
        yield from (item for item in group if item is not None)


def execute(job: Job, registry: ProviderRegistry, options: RunOptions, *, progress: Progress | None = None,
            handle_signals: bool = True) -> RunOutcome:
    db_path = options.db or job.output
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(db_path)
    try:
        total = job.count_items() if options.limit is None else None
        store = RunStore.start(db, job_name=job.name, job_path=str(job.path), job_hash=job.hash,
                               items_total=total, version=__version__, pid=os.getpid(),
                               options=json.dumps({"only": options.only, "limit": options.limit}))
        status = anyio.run(_run, job, registry, options, store, progress, handle_signals, backend="asyncio")
        counts = store.finish(status)
    finally:
        db.close()
    return RunOutcome(store.run_id, db_path, status, counts["items"], counts["ok"], counts["failed"],
                      counts["cost_usd"])


async def _run(job: Job, registry: ProviderRegistry, options: RunOptions, store: RunStore,
               progress: Progress | None, handle_signals: bool) -> str:
    lanes: list[Lane] = []
    try:
        for provider_id in dict.fromkeys(t.provider for t in job.targets):
            provider = registry.get(provider_id)
            targets = [t for t in job.targets if t.provider == provider_id]
            lookup = find_key(provider)
            client = None if lookup.problem else ProviderClient(provider, lookup.key)
            lanes.append(Lane(provider, client, lane_items(job, targets, options.limit), lookup.problem))
        engine = Engine(job, lanes, store, concurrency=options.concurrency or job.concurrency,
                        progress=progress, handle_signals=handle_signals)
        return await engine.run()
    finally:
        for lane in lanes:
            if lane.client:
                await lane.client.aclose()


__all__ = ["ConfigError", "RunOptions", "RunOutcome", "execute", "prepare"]
