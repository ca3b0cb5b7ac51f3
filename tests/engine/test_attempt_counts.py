"""``results.attempts`` is the number of requests the server received for the item, and its attempt rows
are numbered 1..n, however the item was sent: cancelled in flight and resumed, re-sent by expired batches,
failed with its batch, or sent synchronously after its batch expired."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runner import run_job
from tests.conftest import dict_rows, point_at, write_job, write_providers
from tests.fakes import FakeServer


def attempts_of(db: Path) -> dict[str, tuple[int, list[int], list[str | None]]]:
    """prompt -> (results.attempts, its attempt numbers, their error codes)."""
    numbers: dict[str, list[tuple[int, str | None]]] = {}
    for a in dict_rows(db, "SELECT r.prompt, a.attempt, a.error_code FROM attempts a JOIN results r"
                           " ON r.item_key = a.item_key AND r.run_id = a.run_id WHERE a.purpose = 'answer'"
                           " ORDER BY a.attempt"):
        numbers.setdefault(a["prompt"], []).append((a["attempt"], a["error_code"]))
    return {r["prompt"]: (r["attempts"], [n for n, _ in numbers.get(r["prompt"], [])],
                          [c for _, c in numbers.get(r["prompt"], [])])
            for r in dict_rows(db, "SELECT prompt, attempts FROM results")}


def test_requests_cancelled_in_flight_count_after_a_resume(fake: FakeServer, fake_providers: Path,
                                                           keys: dict[str, str], isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["item {{n}}"], "stream": True,
                               "data": [{"n": i} for i in range(12)], "output": "runs.db"})
    # Every stream sends its 200 and two frames, then stalls: Ctrl-C twice cancels them all mid-stream.
    fake.add_fault("stall", flavor="openai", times=1000, after=2, delay=60)
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(job), "--providers-dir", str(fake_providers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while fake.count("openai") < 8 and time.monotonic() < deadline:  # the lane's 8 workers are all in flight
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    cancelled = fake.count("openai")
    assert cancelled == 8
    fake.clear()
    resumed = subprocess.run([sys.executable, "-m", "runner", str(job), "--providers-dir", str(fake_providers),
                              "--resume"], capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert fake.count("openai") == 12
    got = attempts_of(isolated / "runs.db")
    assert sum(n for n, _, _ in got.values()) == cancelled + 12  # every request the server saw
    twice = {p: a for p, a in got.items() if a[0] == 2}
    assert len(twice) == 8
    assert all(numbers == [1, 2] and codes == ["CANCELLED", None] for _, numbers, codes in twice.values())
    assert all(a == (1, [1], [None]) for p, a in got.items() if p not in twice)


def batch_job(folder: Path, provider: str, model: str, n: int) -> Path:
    return write_job(folder, {"targets": [f"{provider}/{model}"], "prompts": ["Question {{n}}?"],
                              "data": [{"n": i} for i in range(n)], "batch": True, "output": "out.db"})


MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash-lite"}


def run(job: Path, providers: Path, **options: Any) -> Any:
    return run_job(job, providers_dirs=(str(providers),), poll_interval=0.01, **options)


@pytest.mark.parametrize("provider", list(MODELS))
def test_each_batch_send_is_an_attempt(provider: str, fake: FakeServer, keys: dict[str, str], isolated: Path,
                                       tmp_path: Path) -> None:
    data = point_at(fake, provider)
    data["retry"]["max_retries"] = 2
    providers = write_providers(tmp_path / "p", {provider: data})
    fake.batch.outcome, fake.batch.partial = "expired", 1
    outcome = run(batch_job(isolated, provider, MODELS[provider], 4), providers)
    # Anthropic's custom ids carry the batch's tag before the item key ("<tag>_<key>").
    sends = Counter(r.custom_id.rpartition("_")[2] for b in fake.batch.created(provider) for r in b.requests)
    assert len(fake.batch.created(provider)) == 3 and outcome.ok + outcome.failed == 4
    got = {r["item_key"]: r for r in dict_rows(isolated / "out.db", "SELECT * FROM results")}
    numbers: dict[str, list[int]] = {}
    for a in dict_rows(isolated / "out.db", "SELECT item_key, attempt FROM attempts ORDER BY attempt"):
        numbers.setdefault(a["item_key"], []).append(a["attempt"])
    for key, row in got.items():
        assert row["attempts"] == sends[key], row  # as many as the batches it went out in
        assert numbers[key] == list(range(1, sends[key] + 1))
    assert max(sends.values()) == 3


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_items_of_a_failed_batch_have_their_attempt(provider: str, fake: FakeServer, keys: dict[str, str],
                                                   isolated: Path, tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "p", {provider: point_at(fake, provider)})
    fake.batch.outcome = "failed"
    run(batch_job(isolated, provider, MODELS[provider], 3), providers)
    rows = dict_rows(isolated / "out.db", "SELECT r.attempts, a.attempt, a.error_code FROM results r"
                                          " JOIN attempts a USING (run_id, item_key)")
    assert len(rows) == 3 and all(r == {"attempts": 1, "attempt": 1, "error_code": "REQUEST_FAILED"} for r in rows)


def test_a_synchronous_fallback_continues_the_numbering(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                        tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "p", {"openai": point_at(fake, "openai")})
    fake.batch.outcome = "expired"
    outcome = run(batch_job(isolated, "openai", "gpt-4o-mini", 3), providers, batch_fallback="sync")
    assert outcome.ok == 3 and fake.batch.chat_requests("openai") == 3
    got = attempts_of(isolated / "out.db")
    assert all(a == (2, [1, 2], ["TIMEOUT", None]) for a in got.values()), got
