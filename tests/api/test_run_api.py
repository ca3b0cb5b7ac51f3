"""Running jobs from Python: ``runner.run_job`` and, inside a running event loop, ``runner.arun_job``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import runner
from runner.engine.launch import RunKwargs, RunOptions
from tests.conftest import REPO

HELLO = REPO / "jobs" / "hello.yaml"  # offline: the echo provider; 3 prompts x 2 data rows


def test_run_job_runs_the_hello_job(isolated: Path, tmp_path: Path) -> None:
    outcome = runner.run_job(HELLO, db=tmp_path / "runs.db")
    assert (outcome.status, outcome.items, outcome.ok, outcome.failed) == ("completed", 6, 6, 0)
    assert outcome.db_path == tmp_path / "runs.db"
    again = runner.run_job(str(HELLO), db=tmp_path / "runs.db", limit=1)  # a new run in the same database
    assert (again.run_id, again.items, again.ok) == (outcome.run_id + 1, 1, 1)


@pytest.mark.anyio
async def test_arun_job_works_inside_a_running_event_loop(isolated: Path, tmp_path: Path) -> None:
    outcome = await runner.arun_job(HELLO, db=tmp_path / "runs.db")
    assert (outcome.status, outcome.items, outcome.ok, outcome.failed) == ("completed", 6, 6, 0)


def test_run_job_takes_exactly_the_run_options_as_keywords() -> None:
    assert set(RunKwargs.__annotations__) == {f.name for f in dataclasses.fields(RunOptions)}
