"""Gemini batches over the inline limit (20 MB) go through the File API: the requests uploaded as a JSONL
file with the resumable protocol, the batch created from its name, the results read from its results file."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.protocols import gemini_batch
from tests.conftest import point_at, write_providers
from tests.engine.test_batch import PRICES, batch_job, rows, run
from tests.fakes import FakeServer


def test_the_inline_limit_is_geminis() -> None:
    # "inline requests ... under 20 MB" (provider-facts.md), with the margin the provider file kept before
    assert gemini_batch.INLINE_MAX_BYTES == 19_000_000


@pytest.mark.parametrize("over", [False, True])
def test_a_batch_over_the_inline_limit_goes_as_a_file(over: bool, fake: FakeServer, tmp_path: Path,
                                                      keys: dict[str, str], isolated: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemini_batch, "INLINE_MAX_BYTES", 2000 if over else 20_000_000)
    providers = write_providers(tmp_path / "p", {"gemini": point_at(fake, "gemini")})
    outcome = run(batch_job(isolated, ["gemini"], 30), providers)
    assert (outcome.status, outcome.ok) == ("completed", 30)
    (batch,) = fake.batch.created("gemini")
    create = next(r for r in fake.requests if r.path.endswith(":batchGenerateContent"))
    uploads = [r for r in fake.requests if "/upload/" in r.path]
    downloads = [r for r in fake.requests if "/download/" in r.path]
    if not over:
        assert "requests" in create.json["batch"]["input_config"] and uploads == downloads == []
        return
    assert create.json["batch"] == {"display_name": batch.create["displayName"],
                                    "input_config": {"file_name": batch.create["fileName"]}}
    assert [(r.method, r.headers["x-goog-upload-command"]) for r in uploads] == [
        ("POST", "start"), ("POST", "upload, finalize")]
    assert all(r.headers["x-goog-api-key"] == keys["gemini"] for r in uploads)  # on the provider's own host
    assert [r.path for r in downloads] == [f"/gemini/download/v1beta/{batch.output_file_id}:download"]
    assert sorted(r.custom_id for r in batch.requests) == sorted(
        r["custom_id"] for r in rows(isolated / "out.db", "SELECT custom_id FROM batch_items"))
    results = rows(isolated / "out.db", "SELECT status, via, response_text, cost_usd, input_tokens, output_tokens"
                                        " FROM results ORDER BY row_index")
    assert {(r["status"], r["via"]) for r in results} == {("ok", "batch")}
    assert results[3]["response_text"] == "gemini-2.5-flash-lite says: Question number 3: what is 3 squared?"
    price_in, price_out = PRICES["gemini"]
    first = results[0]
    assert first["cost_usd"] == pytest.approx(
        (first["input_tokens"] * price_in + first["output_tokens"] * price_out) / 1e6 * 0.5)
