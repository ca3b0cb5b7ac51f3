"""Anthropic batch results: read on the provider's base_url whatever host ``results_url`` names
(the key goes nowhere else), and a refused download settles the batch instead of polling for ever."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from runner.config.providers import BatchSettings
from runner.errors import ErrorCode, ProviderError
from runner.protocols.anthropic_batch import AnthropicBatches
from runner.protocols.batch import BatchLine, BatchStatus, refused_for_good
from tests.conftest import point_at, write_providers
from tests.engine.test_batch import batch_job, rows, run
from tests.fakes import FakeServer


@pytest.fixture
def anthropic_providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "batch-providers", {"anthropic": point_at(fake, "anthropic")})


def test_a_results_url_on_another_host_is_read_on_the_base_url(
        fake: FakeServer, anthropic_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = batch_job(isolated, ["anthropic"], 3)
    assert run(job, anthropic_providers, no_wait=True).status == "submitted"
    with FakeServer() as public_api:  # the host the real API names, which a proxy base_url stands in for
        fake.batch.results_host = public_api.url
        outcome = run(job, anthropic_providers, resume="latest")
        assert public_api.requests == []  # no x-api-key sent there, nor anything else
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 3, 0)
    (batch,) = fake.batch.created("anthropic")
    downloads = [r.path for r in fake.requests if r.path.endswith("/results")]
    assert downloads == [f"/anthropic/v1/messages/batches/{batch.id}/results"]


def test_a_results_download_refused_with_a_4xx_settles_the_items(
        fake: FakeServer, anthropic_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = batch_job(isolated, ["anthropic"], 3)
    assert run(job, anthropic_providers, no_wait=True).status == "submitted"
    fake.batch.results_error = 404
    outcome = run(job, anthropic_providers, resume="latest")  # before: "still running" (exit 75) for ever
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 0, 3)
    (batch,) = fake.batch.created("anthropic")
    results = rows(isolated / "out.db", "SELECT status, error_code, error_message FROM results")
    assert results == [{"status": "error", "error_code": "REQUEST_FAILED", "error_message":
                        f"the batch {batch.id} failed: its results could not be read: CLIENT_ERROR: HTTP 404: "
                        f"Results for message batch {batch.id} are not available."}] * 3
    assert rows(isolated / "out.db", "SELECT collected_at IS NOT NULL AS collected FROM batches") == [
        {"collected": 1}]


class Downloads:
    """A BatchIO that records the paths it is asked for and answers nothing."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def fetch(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                    within: float | None = None) -> Any:
        raise AssertionError("not expected")

    async def upload(self, path: str, fields: Mapping[str, str], filename: str, content: bytes) -> Any:
        raise AssertionError("not expected")

    async def exchange(self, method: str, path: str, *, headers: Mapping[str, str],
                       content: bytes) -> tuple[Mapping[str, str], Any]:
        raise AssertionError("not expected")

    async def download_lines(self, path: str) -> AsyncGenerator[list[bytes], None]:
        self.paths.append(path)
        for lines in ():
            yield lines

    base_url = "https://api.anthropic.com"


def read_results(api: AnthropicBatches, io: Downloads, status: BatchStatus) -> list[BatchLine]:
    async def read() -> list[BatchLine]:
        return [line async for line in api.results(io, status)]

    return anyio.run(read)


@pytest.mark.parametrize(("results_url", "read"), [
    ("https://api.anthropic.com/v1/messages/batches/msgbatch_1/results", "/v1/messages/batches/msgbatch_1/results"),
    ("https://proxy.example/anthropic/v1/messages/batches/msgbatch_1/results?page=2",
     "/v1/messages/batches/msgbatch_1/results?page=2"),
])
def test_results_are_read_below_the_base_url(results_url: str, read: str) -> None:
    api, io = AnthropicBatches(BatchSettings("anthropic", 10, 1024, 0.5, "24h", {})), Downloads()
    status = BatchStatus("msgbatch_1", "ended", "ended", raw={"results_url": results_url})
    assert read_results(api, io, status) == []
    assert io.paths == [read]  # relative: the client puts it on the provider's base_url


def test_a_results_url_elsewhere_is_refused_for_good() -> None:
    api, io = AnthropicBatches(BatchSettings("anthropic", 10, 1024, 0.5, "24h", {})), Downloads()
    status = BatchStatus("msgbatch_1", "ended", "ended", raw={"results_url": "https://cdn.example/files/abc"})
    with pytest.raises(ProviderError) as refused:
        read_results(api, io, status)
    assert refused.value.code is ErrorCode.CLIENT_ERROR and refused_for_good(refused.value)
    assert "results_url https://cdn.example/files/abc is not under the batches path" in str(refused.value)
    assert io.paths == []
