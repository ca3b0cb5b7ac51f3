"""Model discovery per protocol (pagination, pricing units, context lengths), merging with
the provider file, the 24 h cache, failures, and ``hanzo-run models``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner import ProviderError, cached_models, fetch_models
from runner.config.providers import Pricing
from runner.probes import models as discovery
from runner.protocols import listing
from tests.conftest import hanzo, point_at, write_providers
from tests.fakes import FakeServer

pytestmark = pytest.mark.usefixtures("providers_env")


def test_openai_lists_ids_and_the_provider_file_fills_in_what_it_knows(fake: FakeServer, keys: dict[str, str]) -> None:
    found = {m.id: m for m in fetch_models("openai")}
    assert list(found) == ["gpt-4o-mini", "gpt-4o"]
    assert found["gpt-4o-mini"].context_length == 128000  # from the file: the listing has none


def test_openrouter_prices_are_strings_per_token_turned_into_usd_per_million(fake: FakeServer,
                                                                             keys: dict[str, str]) -> None:
    found = {m.id: m for m in fetch_models("openrouter")}
    llama = found["meta-llama/llama-3.3-70b-instruct:free"]
    assert llama.pricing == Pricing(1.0, 2.0, "discovered via openrouter /models")
    assert (llama.context_length, llama.max_output_tokens) == (131072, 8192)
    assert "tools" not in llama.capabilities  # supported_parameters has no "tools"
    assert cached_models("openrouter")["meta-llama/llama-3.3-70b-instruct:free"].pricing == llama.pricing


def test_openrouter_lists_models_without_a_key(fake: FakeServer) -> None:
    assert len(fetch_models("openrouter")) == 2
    assert "authorization" not in fake.requests[-1].headers


def test_sambanova_prices_are_floats_per_token(fake: FakeServer, keys: dict[str, str]) -> None:
    found = {m.id: m for m in fetch_models("sambanova")}
    assert found["DeepSeek-V3-0324"].pricing == Pricing(1.0, 2.0, "discovered via sambanova /models")
    assert found["DeepSeek-V3-0324"].context_length == 131072


def test_groq_context_window(fake: FakeServer, keys: dict[str, str]) -> None:
    found = {m.id: m for m in fetch_models("groq")}
    assert found["llama-3.3-70b-versatile"].context_length is not None


def test_anthropic_follows_after_id_while_has_more(fake: FakeServer, keys: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    fake.models["anthropic"] = [f"claude-test-{i}" for i in range(5)]
    try:
        found = fetch_models("anthropic", refresh=True)
    finally:
        fake.models["anthropic"] = ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514", "claude-opus-4-1-20250805"]
    assert [m.id for m in found] == [f"claude-test-{i}" for i in range(5)]
    pages = [r.query for r in fake.requests if r.path == "/anthropic/v1/models"]
    assert pages == [{"limit": "2"}, {"limit": "2", "after_id": "claude-test-1"},
                     {"limit": "2", "after_id": "claude-test-3"}]
    assert found[0].context_length == 131072 and found[0].max_output_tokens == 8192


def test_gemini_follows_next_page_token_and_keeps_generate_content_models(fake: FakeServer, keys: dict[str, str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)
    found = fetch_models("gemini")
    assert [m.id for m in found] == ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite"]
    assert [r.query for r in fake.requests if r.path == "/gemini/v1beta/models"] == [
        {"pageSize": "3"}, {"pageSize": "3", "pageToken": "3"}]
    assert found[0].context_length == 131072 and found[0].max_output_tokens == 8192


def test_ollama_tags_with_context_length_from_show(fake: FakeServer) -> None:
    found = fetch_models("ollama")
    assert [(m.id, m.context_length) for m in found] == [("llama3.2:latest", 131072), ("qwen2.5:7b", 131072)]
    assert fake.count("ollama", "/api/show") == 2


def test_lmstudio_native_listing_then_fallback(fake: FakeServer, isolated: Path, keys: dict[str, str]) -> None:
    found = fetch_models("lmstudio")
    assert [(m.id, m.context_length) for m in found] == [("qwen2.5-7b-instruct", 131072),
                                                         ("text-embedding-nomic-embed-text-v1.5", 131072)]
    assert found[1].capabilities == ("embeddings",)
    # A server without /api/v0 (an older LM Studio, vLLM, ...) answers 200 {"error": ...} or 404: use /v1/models.
    data = point_at(fake, "lmstudio", base_url=fake.url + "/openai/v1", kind="local")
    data["auth"] = {"header": "Authorization", "scheme": "Bearer", "env": ["OPENAI_API_KEY"], "required": False}
    (isolated / "extra").mkdir()
    write_providers(isolated / "extra", {"lmstudio": data})
    found = fetch_models("lmstudio", providers_dirs=[isolated / "extra"], refresh=True)
    assert [m.context_length for m in found] == [None, None]


def test_cache_is_used_until_refresh(fake: FakeServer, keys: dict[str, str]) -> None:
    fetch_models("groq")
    fetch_models("groq")
    assert fake.count("groq", "/models") == 1
    fetch_models("groq", refresh=True)
    assert fake.count("groq", "/models") == 2


def test_expired_cache_is_fetched_again(fake: FakeServer, keys: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fetch_models("groq")
    monkeypatch.setattr(discovery, "CACHE_TTL", -1.0)
    fetch_models("groq")
    assert fake.count("groq", "/models") == 2


def test_failure_is_fetch_models_failed_with_its_cause(fake: FakeServer) -> None:
    with pytest.raises(ProviderError) as e:
        fetch_models("anthropic")
    assert e.value.code == "FETCH_MODELS_FAILED"
    assert e.value.message == (
        f"cannot list the models of anthropic ({fake.base_url('anthropic')}/v1/models): INVALID_API_KEY: HTTP 401: "
        "x-api-key header is required (no API key for anthropic: set HANZO_API_KEY_ANTHROPIC or ANTHROPIC_API_KEY "
        "or run: hanzo-run keys set anthropic; get one at https://console.anthropic.com/settings/keys)")


def test_models_command_table_and_json(fake: FakeServer, keys: dict[str, str]) -> None:
    done = hanzo("models", "openrouter", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert rows[1] == {"id": "meta-llama/llama-3.3-70b-instruct:free", "context_length": 131072,
                       "max_output_tokens": 8192, "capabilities": [],
                       "pricing": {"input": 1.0, "output": 2.0, "cached_input": None, "cache_write": None,
                                   "tiered": False, "source": "discovered via openrouter /models"}}
    table = hanzo("models", "openrouter")
    assert "meta-llama/llama-3.3-70b-instruct:free" in table.stdout
    assert "131,072" in table.stdout
    failed = hanzo("models", "anthropic", env={"ANTHROPIC_API_KEY": "sk-ant-wrong-0000000"})
    assert failed.returncode == 1
    assert failed.stderr.startswith("hanzo-run: FETCH_MODELS_FAILED: cannot list the models of anthropic")
    assert "sk-ant-wrong-0000000" not in failed.stderr
