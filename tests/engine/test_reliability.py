"""Interrupts, kills, resume, overlapping runs, budgets: nothing lost, nothing duplicated."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hanzo, point_at, query, write_job, write_providers
from tests.fakes import FakeServer


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runner", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)



def wait_for_results(db: Path, at_least: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if query(db, "SELECT count(*) FROM results")[0][0] >= at_least:
                return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} results after {timeout} s")


@pytest.fixture
def paced(fake: FakeServer, tmp_path: Path, keys: dict[str, str]) -> Path:
    """OpenAI at 40 requests a second: a 200-item job takes about 5 s."""
    limits = {"requests": 40, "window": 1, "concurrency": 4}
    return write_providers(tmp_path / "paced", {"openai": point_at(fake, "openai", limits=limits)})


def job_of(folder: Path, items: int, **extra: Any) -> Path:
    return write_job(folder, {"name": "nightly", "targets": ["openai/gpt-4o-mini"], "prompts": ["item {{n}}"],
                              "data": [{"n": i} for i in range(items)], "output": "runs.db", **extra})


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_keeps_results_and_resume_finishes(sig: int, paced: Path, isolated: Path) -> None:
    job = job_of(isolated, 200)
    db = isolated / "runs.db"
    proc = start(job, "--providers-dir", paced)
    wait_for_results(db, 20)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert f"resume with: hanzo-run {job} --resume 1" in err
    [(status, kept)] = query(db, "SELECT status, (SELECT count(*) FROM results) FROM runs")
    assert status == "interrupted"
    assert 20 <= kept < 200

    done = hanzo(job, "--providers-dir", paced, "--resume")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT status, items_ok, items_failed FROM runs") == [("completed", 200, 0)]
    assert query(db, "SELECT count(*), count(DISTINCT item_key) FROM results") == [(200, 200)]
    # Items finished before the interrupt were not sent again.
    assert query(db, "SELECT count(*) FROM attempts") == [(200,)]


def test_sigkill_at_a_random_moment_loses_and_duplicates_nothing(fake: FakeServer, fake_providers: Path,
                                                                 keys: dict[str, str], isolated: Path) -> None:
    items = 2500
    job = job_of(isolated, items)
    db = isolated / "runs.db"
    fake.latency = 0.01  # 8 at a time: ~3 s for the whole run, so the kill lands mid-run
    proc = start(job, "--providers-dir", fake_providers, "--quiet")
    wait_for_results(db, 1)
    time.sleep(random.uniform(0.0, 1.0))
    proc.kill()
    fake.latency = 0.0
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    survived = query(db, "SELECT count(*) FROM results")[0][0]
    assert query(db, "SELECT status FROM runs") == [("running",)]  # it never got to say otherwise

    done = hanzo(job, "--providers-dir", fake_providers, "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT count(*), count(DISTINCT item_key), sum(status = 'ok') FROM results") == [
        (items, items, items)]
    assert query(db, "SELECT status, items_ok, items_failed FROM runs") == [("completed", items, 0)]

    # The same items as a run that was never interrupted.
    whole = hanzo(job, "--providers-dir", fake_providers, "--quiet", "--db", isolated / "whole.db")
    assert whole.returncode == 0
    keys_of = "SELECT item_key FROM results ORDER BY item_key"
    assert query(db, keys_of) == query(isolated / "whole.db", keys_of)
    assert survived <= items


def test_retry_errors_resends_only_the_failed(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                              isolated: Path) -> None:
    job = job_of(isolated, 10)
    db = isolated / "runs.db"
    fake.add_fault("quota", flavor="openai", times=3)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    # An exhausted quota stops the provider: items after it are recorded as not sent, with the same code.
    [(failed, code)] = query(db, "SELECT count(*), group_concat(DISTINCT error_code) FROM results "
                                 "WHERE status = 'error'")
    assert 3 <= failed < 10 and code == "QUOTA_EXHAUSTED"
    fake.clear()
    done = hanzo(job, "--providers-dir", fake_providers, "--retry-errors")
    assert done.returncode == 0, done.stderr
    assert fake.count("openai") == failed
    assert query(db, "SELECT id, status, items_ok, items_failed FROM runs") == [(1, "completed", 10, 0)]


def test_resume_refuses_a_changed_job_unless_forced(paced: Path, isolated: Path) -> None:
    job = job_of(isolated, 200)
    proc = start(job, "--providers-dir", paced)
    wait_for_results(isolated / "runs.db", 5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    job_of(isolated, 201)  # one more data row: the items changed
    done = hanzo(job, "--providers-dir", paced, "--resume")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"--resume: {job} changed since run 1 (its targets, prompts, data or repeat), "
                                   "so its items differ; pass --force to continue anyway, or start a new run")
    nothing = hanzo(job, "--providers-dir", paced, "--resume", "7")
    assert (nothing.returncode, nothing.stderr.strip()) == (2, "--resume: there is no run 7 in this database")


def test_overlapping_runs_of_one_job_are_refused(paced: Path, isolated: Path) -> None:
    job = job_of(isolated, 120)
    first = start(job, "--providers-dir", paced, "--quiet")
    wait_for_results(isolated / "runs.db", 1)
    second = hanzo(job, "--providers-dir", paced, timeout=10)
    assert second.returncode == 2
    assert f"{job} is already running on this database (pid {first.pid}, started " in second.stderr
    # A different job may share the database at the same time.
    other = write_job(isolated, {"name": "other", "targets": ["openai/gpt-4o-mini"], "prompts": ["x"],
                                 "output": "runs.db"}, name="other.yaml")
    assert hanzo(other, "--providers-dir", paced).returncode == 0
    # --wait queues behind the running one instead of exiting.
    waited = hanzo(job, "--providers-dir", paced, "--wait", "--quiet", "--limit", "1")
    assert waited.returncode == 0, waited.stderr
    first.communicate(timeout=30)
    assert first.returncode == 0
    assert query(isolated / "runs.db", "SELECT job_name, status FROM runs ORDER BY id") == [
        ("nightly", "completed"), ("other", "completed"), ("nightly", "completed")]


def test_budget_never_starts_an_item_that_could_pass_it(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                        isolated: Path) -> None:
    data = point_at(fake, "openai")
    data["limits"]["concurrency"] = 1
    data["models"]["known"] = [{"id": "priced", "pricing": {"input": 1000.0, "output": 1000.0}}]
    providers = write_providers(tmp_path / "p", {"openai": data})
    # Worst case of one item: (4 input estimate + 10 max_tokens) tokens at $1000/1M = $0.014;
    # real cost: "priced says: x" = 3 output + 1 input tokens = $0.004.
    job = write_job(isolated, {"targets": ["openai/priced", "openai/free"], "prompts": ["x"], "repeat": 10,
                               "params": {"max_tokens": 10}, "budget_usd": 0.03})
    done = hanzo(job, "--providers-dir", providers, "--allow-unpriced")
    assert done.returncode == 1
    rows = query(isolated / "hanzo-runs.db", "SELECT model, status, error_code, cost_usd FROM results ORDER BY id")
    priced = [r for r in rows if r[0] == "priced"]
    ok = [r for r in priced if r[1] == "ok"]
    assert all(r[2] == "BUDGET_EXCEEDED" for r in priced if r[1] != "ok")
    assert sum(r[3] for r in ok) <= 0.03
    assert len(ok) == 5  # 0.004 spent each; the 6th would reserve 0.014 on top of 0.020
    assert all(r[1] == "ok" for r in rows if r[0] == "free")  # unpriced but allowed
    # Without --allow-unpriced an unpriced model is refused under a budget.
    refused = hanzo(job, "--providers-dir", providers, "--only", "openai/free", "--max-cost", "1")
    message = query(isolated / "hanzo-runs.db", "SELECT DISTINCT error_message FROM results WHERE run_id = 2")
    assert refused.returncode == 1
    assert message == [("the model has no known price, so a budget cannot bound it; add its pricing to the "
                        "provider file or pass --allow-unpriced",)]


def test_a_dead_provider_does_not_stall_the_others(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                   isolated: Path) -> None:
    dead = point_at(fake, "groq")
    dead["base_url"] = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    providers = write_providers(tmp_path / "p", {"groq": dead, "openai": point_at(fake, "openai")})
    job = write_job(isolated, {"targets": ["groq/m", "openai/m"], "prompts": ["x"], "repeat": 20})
    began = time.monotonic()
    done = hanzo(job, "--providers-dir", providers, "--quiet")
    assert time.monotonic() - began < 20
    assert done.returncode == 1
    rows = query(isolated / "hanzo-runs.db", "SELECT provider, status, error_code, attempts FROM results")
    # The first items spend their retries; once one has, the rest of groq's items are not sent.
    # Items in flight then have their retries called off (CONNECTION_FAILED, fewer attempts).
    groq = [r for r in rows if r[0] == "groq"]
    assert len(groq) == 20 and ("groq", "error", "MAX_RETRIES_EXCEEDED", 3) in groq
    assert {r[2] for r in groq} == {"MAX_RETRIES_EXCEEDED", "CONNECTION_FAILED"}
    assert ("groq", "error", "CONNECTION_FAILED", 0) in groq
    assert {r for r in rows if r[0] == "openai"} == {("openai", "ok", None, 1)}


def test_crash_report_goes_to_a_log_not_the_terminal(isolated: Path) -> None:
    logs = isolated / "tmp"  # the log goes to the system's temporary folder: this test's own, not the machine's
    logs.mkdir()
    env = {"PYTHONPATH": str(isolated), "TMPDIR": str(logs)}
    (isolated / "sitecustomize.py").write_text(
        "import runner.config.validation\n"
        "def boom(*a, **k):\n    raise RuntimeError('boom')\n"
        "runner.config.validation.validate_files = boom\n")
    done = hanzo("validate", env={**os.environ, **env})
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert "hanzo-run: internal error: RuntimeError: boom" in done.stderr
    log = done.stderr.split("the full traceback is in ")[1].split(";")[0]
    assert Path(log).parent == logs
    assert "RuntimeError: boom" in Path(log).read_text()


def test_second_ctrl_c_stops_at_once(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                     isolated: Path) -> None:
    job = job_of(isolated, 30)
    db = isolated / "runs.db"
    fake.add_fault("slow", flavor="openai", model="gpt-4o-mini", times=1000, delay=60)
    proc = start(job, "--providers-dir", fake_providers)
    deadline = time.monotonic() + 10
    while fake.count("openai") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - began < 3  # not the 5 s grace, not the 60 s answer
    assert proc.returncode == 130
    assert "stopping now" in err
    assert query(db, "SELECT status FROM runs") == [("interrupted",)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
