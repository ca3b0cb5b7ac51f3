"""What a run is asked to do beyond its job file: the command line's options, as one frozen record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from .batchtarget import Fallback


@dataclass(frozen=True)
class RunOptions:
    db: Path | None = None
    providers_dirs: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    limit: int | None = None
    concurrency: int | None = None
    resume: str | None = None  # "latest" or a run id: continue that run, skipping its ok items
    retry_errors: str | None = None  # "latest" or a run id: re-send only its failed items
    force: bool = False  # resume even though the job's items changed
    wait: bool = False  # queue behind a running instance of the same job instead of exiting
    max_cost: float | None = None  # overrides the job's budget_usd
    allow_unpriced: bool = False
    cache: bool | None = None  # answer from the response cache; None: as the job's ``cache`` says
    batch: bool | None = None  # None: the job's ``batch`` (a resumed run: what it was started with)
    batch_fallback: Fallback = "batch"  # how expired batch requests are sent again
    no_wait: bool = False  # batch mode: submit and return; ``--resume`` collects
    poll_interval: float | None = None  # seconds between batch status polls at first (backs off)
    shard: str | None = None  # "K/N": only the items of shard K of N


class RunKwargs(TypedDict, total=False):
    """RunOptions as keyword arguments (``runner.run_job(path, limit=5)``); the defaults are RunOptions'."""

    db: Path | None
    providers_dirs: tuple[str, ...]
    only: tuple[str, ...]
    limit: int | None
    concurrency: int | None
    resume: str | None
    retry_errors: str | None
    force: bool
    wait: bool
    max_cost: float | None
    allow_unpriced: bool
    cache: bool | None
    batch: bool | None
    batch_fallback: Fallback
    no_wait: bool
    poll_interval: float | None
    shard: str | None


__all__ = ["RunKwargs", "RunOptions"]
