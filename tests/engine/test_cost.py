"""cost_usd and price_source per result: the genai-prices dataset's price, a price learned by model
discovery, OpenRouter's reported cost, and no price at all (NULL, never 0; "unpriced").
The provider file's price winning over the dataset: tests/engine/test_price_source.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner.engine.costing import dataset_version
from tests.conftest import hanzo, write_job

PROMPT = "name three colors"  # 3 words; the fake server counts tokens as words


def results(db: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT target, input_tokens, output_tokens, cost_usd, price_source FROM results")
        return {r[0]: r[1:] for r in rows}
    finally:
        conn.close()


def test_cost_from_known_learned_reported_and_unknown_prices(fake_providers: Path, keys: dict[str, str],
                                                              isolated: Path) -> None:
    # Discovery learns SambaNova's listed prices (the fake lists $1 / $2 per 1M tokens) into its cache.
    listed = hanzo("models", "sambanova", "--json", env={"HANZO_RUN_PROVIDERS_DIR": str(fake_providers)})
    assert listed.returncode == 0, listed.stderr
    job = write_job(isolated, {
        "targets": ["openai/gpt-4o-mini", "sambanova/Meta-Llama-3.1-8B-Instruct",
                    "openrouter/meta-llama/llama-3.1-8b-instruct", "lmstudio/qwen2.5-7b-instruct"],
        "prompts": [PROMPT], "output": "out.db"})
    done = hanzo(job, "--providers-dir", fake_providers, "--json")
    assert done.returncode == 0, done.stderr
    got = results(isolated / "out.db")

    # Known to the dataset: gpt-4o-mini at $0.15 / $0.60 per 1M; 3 tokens in, "gpt-4o-mini says: ..." = 5 out.
    assert got["openai/gpt-4o-mini"][:2] == (3, 5)
    assert got["openai/gpt-4o-mini"][2] == pytest.approx((3 * 0.15 + 5 * 0.60) / 1e6)
    assert got["openai/gpt-4o-mini"][3] == dataset_version()

    # Learned: not in sambanova.yaml, priced by the cached listing at $1 / $2 per 1M.
    learned = got["sambanova/Meta-Llama-3.1-8B-Instruct"]
    assert learned[:2] == (3, 5)
    assert learned[2] == pytest.approx((3 * 1.0 + 5 * 2.0) / 1e6)
    assert learned[3] is not None and learned[3] != "provider file sambanova.yaml"

    # Reported: OpenRouter's usage.cost ($1e-6 per input token, $2e-6 per output token in the fake) wins.
    reported = got["openrouter/meta-llama/llama-3.1-8b-instruct"]
    assert reported[2] == pytest.approx(reported[0] * 1e-6 + reported[1] * 2e-6)
    assert reported[3] == "reported by the provider"

    # Unknown: LM Studio has no price: NULL, never 0.
    assert got["lmstudio/qwen2.5-7b-instruct"][2:] == (None, None)

    summary = {t["target"]: t for t in json.loads(done.stdout)["targets"]}
    assert summary["lmstudio/qwen2.5-7b-instruct"]["cost_usd"] is None
    assert summary["lmstudio/qwen2.5-7b-instruct"]["unpriced"] == 1
    report = hanzo("report", "--db", isolated / "out.db").stdout
    row = next(line for line in report.splitlines() if "lmstudio" in line)
    assert row.split()[-3:] == ["unpriced", "│", "unpriced"]


def test_without_discovery_cache_the_model_is_unpriced(fake_providers: Path, keys: dict[str, str],
                                                       isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["sambanova/Meta-Llama-3.1-8B-Instruct"], "prompts": [PROMPT],
                               "output": "out.db"})
    assert hanzo(job, "--providers-dir", fake_providers, "-q").returncode == 0
    assert results(isolated / "out.db")["sambanova/Meta-Llama-3.1-8B-Instruct"][2:] == (None, None)
