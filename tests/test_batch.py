"""Batch mode (issue 12) against the fake server's batch APIs: submission, collection, resume, costs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import run_job
from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakeserver import FakeServer

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash-lite"}
PRICES = {"openai": (0.15, 0.60), "anthropic": (1.00, 5.00), "gemini": (0.10, 0.40)}  # USD per 1M, provider files


def rows(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def batch_job(folder: Path, providers: list[str], n: int, **extra: Any) -> Path:
    return write_job(folder, {
        "name": "batched",
        "targets": [f"{p}/{MODELS[p]}" for p in providers],
        "prompts": [{"id": "q", "text": "Question number {{n}}: what is {{n}} squared?"}],
        "data": [{"n": i} for i in range(n)],
        "params": {"max_tokens": 50},
        "batch": True,
        "output": "out.db",
        **extra,
    })


@pytest.fixture
def batch_providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "batch-providers", {p: point_at(fake, p) for p in (*MODELS, "groq")})


def run(job: Path, providers: Path, **options: Any) -> Any:
    return run_job(job, providers_dirs=(str(providers),), poll_interval=0.01, **options)


def test_three_providers_by_batch_out_of_order_at_half_price(fake: FakeServer, batch_providers: Path,
                                                               keys: dict[str, str], isolated: Path) -> None:
    fake.batch.shuffle = True
    fake.batch.polls_until_done = 2
    job = batch_job(isolated, list(MODELS), 100)
    outcome = run(job, batch_providers)
    assert (outcome.status, outcome.ok, outcome.failed) == ("completed", 300, 0)
    assert fake.batch.chat_requests() == 0
    results = rows(isolated / "out.db", "SELECT * FROM results")
    assert len(results) == 300
    created = {b.id: b for b in fake.batch.created()}
    assert {f: len(fake.batch.created(f)) for f in MODELS} == {"openai": 1, "anthropic": 1, "gemini": 1}
    for r in results:
        assert r["status"] == "ok" and r["via"] == "batch"
        assert r["response_text"] == f"{r['model']} says: {r['prompt']}"  # matched to its own prompt
        assert r["batch_id"] in created and created[r["batch_id"]].flavor == r["provider"]
        price_in, price_out = PRICES[r["provider"]]
        sync_cost = (r["input_tokens"] * price_in + r["output_tokens"] * price_out) / 1e6
        assert r["cost_usd"] == pytest.approx(sync_cost / 2)
        assert r["price_source"].endswith("(batch 50%)")
        assert r["latency_ms"] is None
    batches = rows(isolated / "out.db", "SELECT * FROM batches ORDER BY id")
    assert [(b["provider"], b["status"], b["request_count"], b["ok_count"]) for b in batches] == [
        ("openai", "completed", 100, 100), ("anthropic", "completed", 100, 100), ("gemini", "completed", 100, 100)]
    assert all(b["collected_at"] and b["provider_batch_id"] in created for b in batches)
