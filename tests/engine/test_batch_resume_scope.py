"""What a resume does with batches the run already sent: every answer of an ended batch is collected
whatever this invocation's scope, and batches the provider file can no longer collect stop the resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import hanzo, point_at, write_providers
from tests.engine.test_batch import batch_job, rows
from tests.fakes import FakeServer


@pytest.fixture
def openai_providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "batch-providers", {"openai": point_at(fake, "openai")})


def test_a_resume_with_a_smaller_limit_collects_every_answer_of_the_batch(
        fake: FakeServer, openai_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 1
    job = batch_job(isolated, ["openai"], 3)
    assert hanzo(job, "--providers-dir", openai_providers, "--no-wait").returncode == 0
    for _ in range(5):  # a --no-wait run's resumes poll once each
        done = hanzo(job, "--providers-dir", openai_providers, "--resume", "--limit", "1")
        if done.returncode != 75:
            break
    assert done.returncode == 0, done.stderr
    results = rows(isolated / "out.db", "SELECT status, via FROM results")
    assert len(results) == 3 and {(r["status"], r["via"]) for r in results} == {("ok", "batch")}
    assert rows(isolated / "out.db", "SELECT status FROM runs") == [{"status": "completed"}]
    assert len(fake.batch.created()) == 1 and fake.batch.chat_requests() == 0  # nothing bought twice


def _without_batch_block(folder: Path) -> None:
    path = folder / "openai.yaml"
    data = yaml.safe_load(path.read_text())
    del data["batch"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_live_batch_whose_provider_lost_its_batch_block_stops_the_resume(
        fake: FakeServer, openai_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 100
    job = batch_job(isolated, ["openai"], 3)
    assert hanzo(job, "--providers-dir", openai_providers, "--no-wait").returncode == 0
    _without_batch_block(openai_providers)
    resumed = hanzo(job, "--providers-dir", openai_providers, "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert "has batches still running for openai/gpt-4o-mini" in resumed.stderr
    assert "openai.yaml now has no batch: block" in resumed.stderr
    assert fake.batch.chat_requests() == 0  # not bought again synchronously
    assert rows(isolated / "out.db", "SELECT count(*) AS n FROM results") == [{"n": 0}]


def test_a_live_batch_whose_key_is_gone_stops_the_resume(
        fake: FakeServer, openai_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 100
    job = batch_job(isolated, ["openai"], 3)
    assert hanzo(job, "--providers-dir", openai_providers, "--no-wait").returncode == 0
    resumed = hanzo(job, "--providers-dir", openai_providers, "--resume", env={"OPENAI_API_KEY": ""})
    assert resumed.returncode == 2, resumed.stderr
    assert "openai.yaml now has no key" in resumed.stderr
    assert rows(isolated / "out.db", "SELECT count(*) AS n FROM results") == [{"n": 0}]
