"""The run lock beside the database is removed when the run ends, and removing it never lets
two runs of one job in at once (issue 17, item 16)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runner.engine.lock import RunLock
from runner.errors import UsageError
from tests.conftest import hanzo, write_job


def test_a_run_leaves_no_lock_file_behind(isolated: Path) -> None:
    jobs = isolated / "jobs"
    jobs.mkdir()
    for name in ("a", "b"):
        job = write_job(jobs, {"name": name, "targets": ["echo/echo"], "prompts": ["hi"], "output": "runs.db"},
                        name=f"{name}.yaml")
        for extra in ((), ("--limit", "1"), ("--dry-run",)):
            done = hanzo(job, *extra)
            assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in jobs.iterdir()) == ["a.yaml", "b.yaml", "runs.db"]


def test_a_run_that_fails_leaves_no_lock_file_either(isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "output": "runs.db"})
    done = hanzo(job, "--resume", "7")
    assert done.returncode == 2
    assert [p.name for p in isolated.iterdir() if p.name.endswith(".lock")] == []


def test_the_lock_holds_while_a_waiter_takes_over_a_removed_file(isolated: Path) -> None:
    """A waiter blocked on the old file gets it as the holder removes it: it must notice the file is
    gone and lock the new one, so a third run still finds the job running."""
    db, job = isolated / "runs.db", isolated / "job.yaml"
    first = RunLock(db, job).acquire()
    second = RunLock(db, job)
    took = threading.Event()

    def wait_for_it() -> None:
        second.acquire(wait=True)
        took.set()

    waiter = threading.Thread(target=wait_for_it, daemon=True)
    waiter.start()
    time.sleep(0.2)
    assert not took.is_set()
    first.release()
    assert took.wait(5)
    assert second.path.exists()
    with pytest.raises(UsageError, match="is already running on this database"):
        RunLock(db, job).acquire()
    second.release()
    assert not second.path.exists()
    third = RunLock(db, job).acquire()  # free again
    third.release()
    assert not third.path.exists()
