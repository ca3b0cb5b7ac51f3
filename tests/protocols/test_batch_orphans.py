"""A batch created just before a crash (its id never committed) is found by the tag it carries:
never another database's batch of the same size and age (parallel shards)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import hanzo, point_at, write_providers
from tests.engine.test_batch import batch_job, rows
from tests.fakes import FakeServer

CRASH = {"HANZO_RUN_CRASH_AFTER_BATCH_CREATE": "1"}


@pytest.fixture
def anthropic_providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "batch-providers", {"anthropic": point_at(fake, "anthropic")})


def shard_job(folder: Path, first: int) -> Path:
    folder.mkdir()
    job = batch_job(folder, ["anthropic"], 5)
    data = yaml.safe_load(job.read_text())
    data["data"] = [{"n": first + i} for i in range(5)]  # its own rows, so its own item keys
    job.write_text(yaml.safe_dump(data, sort_keys=False))
    return job


def test_an_anthropic_orphan_is_never_another_databases_batch(
        fake: FakeServer, anthropic_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    other = shard_job(isolated / "b", 100)
    mine = shard_job(isolated / "a", 200)
    # Another database's batch: same size, a moment older, still running, its id known only there.
    assert hanzo(other, "--providers-dir", anthropic_providers, "--no-wait").returncode == 0
    crashed = hanzo(mine, "--providers-dir", anthropic_providers, env=CRASH)
    assert crashed.returncode == -9
    theirs, own = fake.batch.created("anthropic")
    resumed = hanzo(mine, "--providers-dir", anthropic_providers, "--resume", "--poll-interval", "0.01")
    assert resumed.returncode == 0, resumed.stderr
    assert f"found batch {own.id}" in resumed.stderr
    assert rows(isolated / "a" / "out.db", "SELECT status, batch_id FROM results") == [
        {"status": "ok", "batch_id": own.id}] * 5
    collected = hanzo(other, "--providers-dir", anthropic_providers, "--resume", "--poll-interval", "0.01")
    assert collected.returncode == 0, collected.stderr
    assert rows(isolated / "b" / "out.db", "SELECT status, batch_id FROM results") == [
        {"status": "ok", "batch_id": theirs.id}] * 5
    assert len(fake.batch.created()) == 2 and fake.batch.chat_requests() == 0  # nothing bought twice


def test_an_orphan_still_running_waits_until_its_results_tell(
        fake: FakeServer, anthropic_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.batch.polls_until_done = 3
    job = shard_job(isolated / "a", 0)
    assert hanzo(job, "--providers-dir", anthropic_providers, env=CRASH).returncode == -9
    (batch,) = fake.batch.created("anthropic")
    (row,) = rows(isolated / "a" / "out.db", "SELECT tag FROM batches")
    assert all(r.custom_id.startswith(f"{row['tag']}_") for r in batch.requests)  # the tag it is known by
    resumed = hanzo(job, "--providers-dir", anthropic_providers, "--resume", "--poll-interval", "0.01")
    assert resumed.returncode == 0, resumed.stderr
    assert f"batch {batch.id} may be the one created before the last run stopped" in resumed.stderr
    assert f"found batch {batch.id}" in resumed.stderr
    assert len(fake.batch.created()) == 1 and fake.batch.chat_requests() == 0
    assert rows(isolated / "a" / "out.db", "SELECT status, batch_id FROM results") == [
        {"status": "ok", "batch_id": batch.id}] * 5
