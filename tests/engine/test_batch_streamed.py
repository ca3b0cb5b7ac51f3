"""Batch results are read as they download, never whole: the client hands over lines piece by piece, each
API turns them into lines as they come, and a run writes rows while the file is still being read."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from runner.config.providers import BatchSettings, load_provider_file
from runner.engine import batching
from runner.errors import ErrorCode, ProviderError
from runner.http.client import ProviderClient
from runner.protocols.anthropic_batch import AnthropicBatches
from runner.protocols.batch import BatchApi, BatchStatus
from runner.protocols.gemini_batch import GeminiBatches
from runner.protocols.openai_batch import OpenAIBatches
from runner.store.database import RunStore
from tests.conftest import point_at, write_providers
from tests.engine.test_batch import batch_job, rows, run
from tests.fakes import FakeServer

SETTINGS = {api: BatchSettings(api, 10, 1024, 0.5, "24h", {}) for api in ("openai", "anthropic", "gemini")}
ANSWER = {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def openai_line(n: int) -> bytes:
    return json.dumps({"id": f"r{n}", "custom_id": f"c{n}", "response": {
        "status_code": 200, "body": {**ANSWER, "id": f"chatcmpl-{n}", "padding": "x" * 100}}}).encode() + b"\n"


class Pieces:
    """A BatchIO whose file comes in pieces of ``per_piece`` lines, counting the pieces handed out."""

    base_url = "https://api.example/v1beta"

    def __init__(self, line: Any, pieces: int, per_piece: int) -> None:
        self.line, self.pieces, self.per_piece = line, pieces, per_piece
        self.handed = 0

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not expected")

    async def upload(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not expected")

    async def exchange(self, method: str, path: str, *, headers: Mapping[str, str],
                       content: bytes) -> tuple[Mapping[str, str], Any]:
        raise AssertionError("not expected")

    async def download_lines(self, path: str) -> AsyncGenerator[list[bytes], None]:
        for piece in range(self.pieces):
            self.handed += 1
            yield [self.line(piece * self.per_piece + n).rstrip(b"\n") for n in range(self.per_piece)]


@pytest.mark.parametrize(("api", "line", "raw"), [
    ("openai", openai_line, {}),
    ("anthropic",
     lambda n: json.dumps({"custom_id": f"t_c{n}", "result": {"type": "succeeded", "message": {}}}).encode(),
     {"results_url": "https://api.anthropic.com/v1/messages/batches/b/results"}),
    ("gemini", lambda n: json.dumps({"key": f"c{n}", "response": {"candidates": []}}).encode(),
     {"done": True, "response": {"responsesFile": "files/out-1"}}),
])
def test_each_api_yields_lines_as_the_pieces_come(api: str, line: Any, raw: dict[str, Any]) -> None:
    batches: BatchApi = {"openai": OpenAIBatches, "anthropic": AnthropicBatches, "gemini": GeminiBatches}[api](
        SETTINGS[api])
    io = Pieces(line, pieces=5, per_piece=3)
    status = BatchStatus("b", "ended", "done", output_file_id="file-out", raw=raw)
    seen: list[tuple[str, int]] = []

    async def read() -> None:
        async for got in batches.results(io, status):  # type: ignore[arg-type]
            seen.append((got.custom_id, io.handed))

    anyio.run(read)
    assert [custom_id for custom_id, _ in seen] == [f"c{n}" for n in range(15)]
    assert [handed for _, handed in seen] == [n // 3 + 1 for n in range(15)]  # no piece read before it is needed


def test_the_client_never_holds_a_whole_results_file(canned: Any, tmp_path: Path, fake: FakeServer) -> None:
    count = 60_000
    canned.answer(200, b"".join(openai_line(n) for n in range(count)).decode(), content_type="application/jsonl")
    size = len(canned.body)
    assert size > 12_000_000
    write_providers(tmp_path / "p", {"openai": {**point_at(fake, "openai"), "base_url": canned.url + "/v1"}})
    provider, _ = load_provider_file(tmp_path / "p" / "openai.yaml")
    assert provider is not None
    status = BatchStatus("b", "ended", "completed", output_file_id="file-out")

    async def read() -> tuple[int, int]:
        client = ProviderClient(provider, "sk-test")
        try:
            tracemalloc.start()
            lines = 0
            async for got in OpenAIBatches(SETTINGS["openai"]).results(client, status):
                lines += got.kind == "ok"
            return lines, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await client.aclose()

    lines, peak = anyio.run(read, backend="asyncio")
    assert lines == count
    assert peak < size / 10, f"{peak} bytes held at once reading a {size}-byte file"


def test_a_run_writes_rows_while_the_results_file_is_read(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                           isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "COLLECTED_AT_ONCE", 10)
    reading = [False]
    writes_while_reading: list[int] = []
    download_lines, write = ProviderClient.download_lines, RunStore.write

    async def watched_download(client: ProviderClient, path: str) -> AsyncGenerator[list[bytes], None]:
        reading[0] = True
        try:
            async for lines in download_lines(client, path):
                for line in lines:  # one line at a time, as a slow download would hand them over
                    yield [line]
        finally:
            reading[0] = False

    def watched_write(store: RunStore, results: Any, attempts: Any) -> None:
        results = list(results)
        if reading[0] and results:
            writes_while_reading.append(len(results))
        write(store, results, attempts)

    monkeypatch.setattr(ProviderClient, "download_lines", watched_download)
    monkeypatch.setattr(RunStore, "write", watched_write)
    providers = write_providers(tmp_path / "batch-providers", {"openai": point_at(fake, "openai")})
    outcome = run(batch_job(isolated, ["openai"], 35), providers)
    assert (outcome.status, outcome.ok) == ("completed", 35)
    assert writes_while_reading == [10, 10, 10]  # the last 5 after the file ended
    assert len(rows(isolated / "out.db", "SELECT DISTINCT item_key FROM results WHERE status = 'ok'")) == 35


@pytest.mark.parametrize("failed_reads", [1, 5])
def test_a_read_cut_short_keeps_its_rows_and_reading_again_skips_them(
        failed_reads: int, fake: FakeServer, tmp_path: Path, keys: dict[str, str], isolated: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The download drops after 15 lines: retried at once (1 failed read), or past its retries, at the
    next poll (5). The rows written before the drop stay; no item gets a second row or attempt."""
    monkeypatch.setattr(batching, "COLLECTED_AT_ONCE", 10)
    reads = [0]
    download_lines = ProviderClient.download_lines

    async def dropping(client: ProviderClient, path: str) -> AsyncGenerator[list[bytes], None]:
        reads[0] += 1
        sent = 0
        async for lines in download_lines(client, path):
            for line in lines:
                if reads[0] <= failed_reads and sent == 15:
                    raise ProviderError(ErrorCode.CONNECTION_FAILED, "connection dropped", None, "openai")
                sent += 1
                yield [line]

    monkeypatch.setattr(ProviderClient, "download_lines", dropping)
    providers = write_providers(tmp_path / "batch-providers", {"openai": point_at(fake, "openai")})
    outcome = run(batch_job(isolated, ["openai"], 25), providers)
    assert (outcome.status, outcome.ok) == ("completed", 25)
    assert reads[0] == failed_reads + 1
    db = isolated / "out.db"
    assert rows(db, "SELECT count(*) AS n, count(DISTINCT item_key) AS items FROM results") == [{"n": 25, "items": 25}]
    assert rows(db, "SELECT count(*) AS n, max(attempt) AS last FROM attempts") == [{"n": 25, "last": 1}]
    assert rows(db, "SELECT count(*) AS n FROM results WHERE attempts != 1") == [{"n": 0}]
