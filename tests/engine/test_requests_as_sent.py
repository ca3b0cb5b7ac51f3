"""What is cached and batched is the request as sent: the provider's dialect applied, and a request
that cannot be built (an image gone since validation) is a CLIENT_ERROR row in every mode, never a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner import run_job
from runner.engine.progress import Progress
from tests.conftest import point_at, write_job, write_providers
from tests.fakes import FakeServer

IMAGE = Path(__file__).resolve().parents[2] / "jobs" / "images" / "red-square.png"


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_changed_dialect_is_another_request_for_the_cache(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                             tmp_path: Path, cache_dir: Path) -> None:
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["Capital of {{c}}?"],
                               "data": [{"c": "France"}, {"c": "Japan"}], "params": {"max_tokens": 20},
                               "cache": True, "output": "out.db"})
    first = write_providers(tmp_path / "first", {"openai": point_at(fake, "openai", max_tokens_field="max_tokens")})
    assert run_job(job, providers_dirs=(str(first),)).ok == 2
    assert {tuple(r.json) for r in fake.requests} and all("max_tokens" in r.json for r in fake.requests)
    fake.clear()
    assert run_job(job, providers_dirs=(str(first),)).ok == 2
    assert fake.count("openai") == 0  # unchanged: answered from the cache
    second = write_providers(tmp_path / "second", {"openai": point_at(
        fake, "openai", max_tokens_field="max_completion_tokens")})
    assert run_job(job, providers_dirs=(str(second),)).ok == 2
    # The server is now asked with max_completion_tokens: a body it never answered, so it is sent.
    assert fake.count("openai") == 2
    assert all(r.json["max_completion_tokens"] == 20 and "max_tokens" not in r.json for r in fake.requests)
    assert rows(isolated / "out.db", "SELECT run_id, sum(cached) FROM results GROUP BY run_id") == [
        (1, 0), (2, 2), (3, 0)]


class RemovesImage(Progress):
    """Deletes the job's image once the job is validated and loaded (``start``), or after ``after`` results."""

    def __init__(self, image: Path, after: int | None = None) -> None:
        self.image, self.after, self.seen = image, after, 0

    def start(self, total: int | None) -> None:
        if self.after is None:
            self.image.unlink()

    def advance(self, ok: int, failed: int) -> None:
        self.seen += ok + failed
        if self.after is not None and self.seen >= self.after and self.image.exists():
            self.image.unlink()


def image_job(folder: Path, target: str, n: int, **extra: Any) -> Path:
    (folder / "square.png").write_bytes(IMAGE.read_bytes())
    return write_job(folder, {"targets": [target], "params": {"max_tokens": 20}, "output": "out.db",
                              "data": [{"n": i} for i in range(n)],
                              "prompts": [{"id": "img", "messages": [{"role": "user", "content": [
                                  {"text": "Square {{n}}: what colour?"}, {"image": "square.png"}]}]}], **extra})


MODES = {"no cache": {}, "cache": {"cache": True}, "batch": {"batch": True}}


@pytest.mark.parametrize("mode", list(MODES))
def test_an_image_gone_after_validation_is_a_client_error_row(mode: str, fake: FakeServer, keys: dict[str, str],
                                                              isolated: Path, fake_providers: Path,
                                                              cache_dir: Path) -> None:
    job = image_job(isolated, "openai/gpt-4o-mini", 3, **MODES[mode])
    outcome = run_job(job, providers_dirs=(str(fake_providers),), poll_interval=0.01,
                      progress=RemovesImage(isolated / "square.png"))
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 0, 3)
    got = rows(isolated / "out.db", "SELECT status, error_code, error_message, attempts FROM results")
    assert {r[:2] for r in got} == {("error", "CLIENT_ERROR")} and all("square.png" in r[2] for r in got)
    assert {r[3] for r in got} == {0}  # nothing was sent
    assert fake.count("openai") == 0 and fake.batch.created() == []


def test_an_image_gone_before_an_expired_batch_is_sent_again(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                             fake_providers: Path) -> None:
    fake.batch.outcome, fake.batch.partial = "expired", 2
    job = image_job(isolated, "openai/gpt-4o-mini", 5, batch=True)
    outcome = run_job(job, providers_dirs=(str(fake_providers),), poll_interval=0.01,
                      progress=RemovesImage(isolated / "square.png", after=2))
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 2, 3)
    assert len(fake.batch.created("openai")) == 1  # the expired requests could not be built again: not sent
    got = rows(isolated / "out.db", "SELECT error_code, count(*) FROM results WHERE status = 'error' GROUP BY 1")
    assert got == [("CLIENT_ERROR", 3)]
