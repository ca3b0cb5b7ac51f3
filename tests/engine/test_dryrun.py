"""``--dry-run``: items per target, estimated input tokens, typical and worst-case cost; nothing sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.engine.costing import dataset_version
from tests.conftest import hanzo, write_job


def test_dry_run_figures(fake_providers: Path, keys: dict[str, str], isolated: Path, fake: Any) -> None:
    job = write_job(isolated, {
        "targets": ["openai/gpt-4o-mini", "lmstudio/qwen2.5-7b-instruct"],
        "system": "Answer in one word.",                      # 19 characters
        "prompts": [{"id": "cap", "text": "What is the capital of {{country}}?"}],  # 30 and 29 characters
        "data": [{"country": "France"}, {"country": "Japan"}],
        "params": {"max_tokens": 500}, "repeat": 2, "output": "out.db"})
    done = hanzo(job, "--providers-dir", fake_providers, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    assert fake.count() == 0 and not (isolated / "out.db").exists()
    got = json.loads(done.stdout)
    # Per item: (19 + 30) // 4 + 4 * 2 messages = 20 (France), (19 + 29) // 4 + 8 = 20 (Japan); 4 items.
    openai, lmstudio = got["targets"]
    assert openai == {
        "target": "openai/gpt-4o-mini", "items": 4, "input_tokens": 80, "max_output_tokens": 500,
        "typical_output_tokens": 150, "price_source": dataset_version(),
        # $0.15 / $0.60 per 1M: typical 80 in + 4 x 150 out; worst 80 in + 4 x 500 out.
        "typical_cost_usd": pytest.approx((80 * 0.15 + 600 * 0.60) / 1e6),
        "worst_cost_usd": pytest.approx((80 * 0.15 + 2000 * 0.60) / 1e6)}
    assert lmstudio["items"] == 4 and lmstudio["typical_cost_usd"] is None and lmstudio["worst_cost_usd"] is None
    assert got["totals"] == {"items": 8, "input_tokens": 160, "typical_cost_usd": pytest.approx(3.72e-4),
                             "worst_cost_usd": pytest.approx(1.212e-3), "unpriced": ["lmstudio/qwen2.5-7b-instruct"],
                             "unbounded": []}

    table = hanzo(job, "--providers-dir", fake_providers, "--dry-run", "--limit", "1")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: [c for c in line.split() if c != "│"] for line in table.stdout.splitlines()[3:]
            if line.strip() and not line.startswith("─")}
    assert rows["openai/gpt-4o-mini"][:6] == ["openai/gpt-4o-mini", "1", "20", "500", "0.0001", "0.0003"]
    assert rows["lmstudio/qwen2.5-7b-instruct"][4:6] == ["unpriced", "unpriced"]
    assert "unpriced (not in the totals): lmstudio/qwen2.5-7b-instruct" in table.stderr
    assert fake.count() == 0


def test_dry_run_still_validates(isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi {{who}}"]})
    done = hanzo(job, "--dry-run")
    assert done.returncode == 2
    assert "{{who}} is not defined by every data row" in done.stderr
