"""Prices from the genai-prices dataset shipped in the package (issue 19.3): a model the provider file
leaves unpriced is priced by the dataset at the answer's date, with its cache and tier rates, and
``price_source`` names the dataset's version; the provider file's price wins; a model neither knows
stays unpriced (NULL, never 0); the dry run and ``hanzo-run models`` use the same prices; all offline."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from runner.config.providers import Provider
from runner.engine.costing import PriceBook, answer_cost, dataset_version, worst_case
from runner.protocols import Completion
from tests.conftest import REPO, dict_rows, hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer

PROMPT = "name three colors please"  # 4 words; the fake server counts tokens as words
DATASET = dataset_version()
UTC = datetime.UTC


def dataset_usd(model: str, vendor: str, at: datetime.datetime | None = None, **usage: int) -> float:
    """The dataset's own figure, computed by genai-prices itself: what hanzo-run must record."""
    return float(calc_price(Usage(**usage), model, provider_id=vendor, genai_request_timestamp=at).total_price)


def one_row(db: Path) -> dict[str, Any]:
    (row,) = dict_rows(db, "SELECT target, input_tokens, output_tokens, cached_input_tokens, cost_usd, price_source"
                           " FROM results")
    return row


def run(isolated: Path, providers: Path, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one prompt against ``target``; its result row and the run's JSON summary of the target."""
    job = write_job(isolated, {"targets": [target], "prompts": [PROMPT], "output": "out.db"})
    done = hanzo(job, "--providers-dir", providers, "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)["targets"]
    return one_row(isolated / "out.db"), summary


def test_a_model_the_provider_file_leaves_unpriced_is_priced_by_the_dataset(
        fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    # groq.yaml lists openai/gpt-oss-20b without a price; the dataset has Groq's.
    row, summary = run(isolated, fake_providers, "groq/openai/gpt-oss-20b")
    assert (row["input_tokens"], row["output_tokens"]) == (4, 6)
    expected = dataset_usd("openai/gpt-oss-20b", "groq", input_tokens=4, output_tokens=6)
    assert expected > 0
    assert row["cost_usd"] == pytest.approx(expected)
    assert row["price_source"] == DATASET and DATASET.startswith("genai-prices 0.")
    assert summary["price_source"] == DATASET and summary["cost_usd"] == pytest.approx(expected)


def test_the_provider_file_price_wins_over_the_dataset(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                       tmp_path: Path) -> None:
    groq = point_at(fake, "groq")
    model = next(m for m in groq["models"]["known"] if m["id"] == "openai/gpt-oss-20b")
    model["pricing"] = {"input": 1.0, "output": 2.0}
    providers = write_providers(tmp_path / "providers", {"groq": groq})
    row, _ = run(isolated, providers, "groq/openai/gpt-oss-20b")
    assert row["cost_usd"] == pytest.approx((4 * 1.0 + 6 * 2.0) / 1e6)
    assert row["price_source"] == "provider file groq.yaml"


def test_a_model_neither_knows_stays_unpriced_never_zero(fake_providers: Path, keys: dict[str, str],
                                                         isolated: Path) -> None:
    row, summary = run(isolated, fake_providers, "groq/qwen/qwen3.6-27b")  # in neither groq.yaml nor the dataset
    assert (row["cost_usd"], row["price_source"]) == (None, None)
    assert (summary["cost_usd"], summary["unpriced"]) == (None, 1)


def test_a_local_server_is_never_priced_as_a_cloud_api(fake_providers: Path, keys: dict[str, str],
                                                       isolated: Path) -> None:
    # The dataset prices openai/gpt-oss-120b at cloud providers; on one's own LM Studio it has no price.
    row, _ = run(isolated, fake_providers, "lmstudio/openai/gpt-oss-120b")
    assert (row["cost_usd"], row["price_source"]) == (None, None)


def test_cache_reads_are_priced_at_the_dataset_cache_rate(fake_providers: Path, keys: dict[str, str],
                                                          isolated: Path) -> None:
    # The fake reads 4 input tokens from the cache for a model named "...cache"; the dataset's
    # claude-haiku-4-5 entry matches the name and charges a tenth of the input price for them.
    row, _ = run(isolated, fake_providers, "anthropic/claude-haiku-4-5-cache")
    assert row["cached_input_tokens"] == 4
    tokens = {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]}
    expected = dataset_usd("claude-haiku-4-5", "anthropic", cache_read_tokens=4, **tokens)
    assert row["cost_usd"] == pytest.approx(expected)
    assert expected < dataset_usd("claude-haiku-4-5", "anthropic", **tokens)
    assert row["price_source"] == DATASET


def provider(providers: Path, provider_id: str) -> Provider:
    from runner.api import get_provider

    return get_provider(provider_id, (str(providers),))


def test_an_answer_is_priced_at_its_date(fake_providers: Path) -> None:
    # gemini-3.8-flash's introductory price doubles on 2027-01-01 (the dataset knows both).
    pricing = PriceBook().get(provider(fake_providers, "gemini"), "gemini-3.8-flash")
    answer = Completion("ok", "stop", 1_000_000, 1_000_000)
    before = answer_cost(pricing, answer, (), datetime.datetime(2026, 12, 31, 23, tzinfo=UTC))
    after = answer_cost(pricing, answer, (), datetime.datetime(2027, 1, 1, 1, tzinfo=UTC))
    assert before.usd == pytest.approx(dataset_usd("gemini-3.8-flash", "google", datetime.datetime(
        2026, 12, 31, 23, tzinfo=UTC), input_tokens=1_000_000, output_tokens=1_000_000))
    assert after.usd == pytest.approx(2 * before.usd)
    assert before.source == after.source == DATASET


def test_a_long_prompt_pays_its_tier_and_cache_writes_their_rate(fake_providers: Path) -> None:
    # claude-haiku-5-5: prompts over 100K tokens cost 5x, for the whole request; cache writes cost more.
    pricing = PriceBook().get(provider(fake_providers, "anthropic"), "claude-haiku-5-5")
    assert pricing is not None
    short = answer_cost(pricing, Completion("ok", "stop", 100_000, 1000), ()).usd
    long = answer_cost(pricing, Completion("ok", "stop", 150_000, 1000), ()).usd
    assert short == pytest.approx((100_000 * pricing.input + 1000 * pricing.output) / 1e6)
    assert long == pytest.approx(5 * (150_000 * pricing.input + 1000 * pricing.output) / 1e6)
    assert worst_case(pricing, 150_000, 1000) == pytest.approx(long)  # a budget reserves the tier's price
    written = answer_cost(pricing, Completion("ok", "stop", 10_000, 0, cache_write_tokens=4000), ()).usd
    assert written == pytest.approx(dataset_usd("claude-haiku-5-5", "anthropic", input_tokens=10_000,
                                                cache_write_tokens=4000, output_tokens=0))
    assert pricing.cache_write is not None and written == pytest.approx(
        (6000 * pricing.input + 4000 * pricing.cache_write) / 1e6)


def test_batch_answers_pay_the_dataset_price_at_the_batch_discount(fake_providers: Path) -> None:
    book = PriceBook()
    anthropic = provider(fake_providers, "anthropic")
    full, batch = book.get(anthropic, "claude-haiku-5-5"), book.batch(anthropic, "claude-haiku-5-5")
    assert batch is not None and batch.source == f"{DATASET} (batch 50%)"
    answer = Completion("ok", "stop", 150_000, 1000, cached_input_tokens=1000)
    assert answer_cost(batch, answer, ()).usd == pytest.approx(answer_cost(full, answer, ()).usd / 2)


def test_dry_run_estimates_with_the_same_prices(fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["groq/openai/gpt-oss-20b", "groq/qwen/qwen3.6-27b"], "prompts": [PROMPT],
                               "params": {"max_tokens": 100}, "output": "out.db"})
    done = hanzo(job, "--providers-dir", fake_providers, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    priced, unpriced = json.loads(done.stdout)["targets"]
    pricing = PriceBook().get(provider(fake_providers, "groq"), "openai/gpt-oss-20b")
    assert pricing is not None
    assert priced["price_source"] == DATASET
    tokens = priced["input_tokens"]
    assert priced["worst_cost_usd"] == pytest.approx((tokens * pricing.input + 100 * pricing.output) / 1e6)
    assert (unpriced["price_source"], unpriced["typical_cost_usd"]) == (None, None)


def test_models_shows_each_price_and_its_source(fake: FakeServer, keys: dict[str, str],
                                                providers_env: Path) -> None:
    done = hanzo("models", "groq", "--json")
    assert done.returncode == 0, done.stderr
    listed = {m["id"]: m["pricing"] for m in json.loads(done.stdout)}
    expected = dataset_usd("llama-3.1-8b-instant", "groq", input_tokens=1_000_000)
    assert listed["llama-3.1-8b-instant"]["source"] == DATASET
    assert listed["llama-3.1-8b-instant"]["input"] == pytest.approx(expected)
    table = hanzo("models", "groq").stdout
    line = next(line for line in table.splitlines() if "llama-3.1-8b-instant" in line)
    assert DATASET in line and f"{expected:g}" in line


def test_the_dataset_is_read_offline_from_the_package(fake_providers: Path, tmp_path: Path) -> None:
    """In a fresh process with every socket refused, and with another library's downloaded prices set as
    genai-prices' current snapshot: hanzo-run still prices from the data bundled in the package."""
    script = f"""
import socket
def refused(*args, **kwargs):
    raise OSError("network used")
socket.socket.connect = socket.socket.connect_ex = refused
socket.getaddrinfo = socket.create_connection = refused
from genai_prices import data_snapshot
data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=[], from_auto_update=True))
from runner.api import get_provider
from runner.engine.costing import PriceBook
pricing = PriceBook().get(get_provider("groq", ({str(fake_providers)!r},)), "openai/gpt-oss-20b")
print(pricing.source, pricing.input, pricing.output)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    source, *rates = done.stdout.rsplit(" ", 2)
    assert source == DATASET
    expected = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "openai/gpt-oss-20b",
                          provider_id="groq")
    assert [Decimal(r) for r in rates] == [expected.input_price, expected.output_price]


def test_flat_prices_are_summed_as_genai_prices_sums_them() -> None:
    """The quick sum for a price of token rates only is genai-prices' own figure, for every such price in the
    dataset (every period of every model), with and without cache reads and writes."""
    from genai_prices.data import providers
    from genai_prices.types import ModelPrice

    from runner.engine.costing import _flat_rates, _flat_usd

    usages = [(1000, 200, 0, 0), (1000, 200, 300, 0), (1000, 200, 0, 400), (5_000_000, 7, 4_000_000, 999_000)]
    flat = other = 0
    for vendor in providers:
        for model in vendor.models:
            periods = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
            for prices in periods:
                rates = _flat_rates(prices)
                if rates is None:
                    other += 1
                    continue
                flat += 1
                for tokens_in, tokens_out, read, written in usages:
                    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=read,
                                  cache_write_tokens=written)
                    assert _flat_usd(rates, tokens_in, tokens_out, read, written) == pytest.approx(
                        float(prices.calc_price(usage)["total_price"]), rel=1e-12), (vendor.id, model.id)
    assert flat > 4 * other  # most prices take the quick sum: the test would mean little otherwise
