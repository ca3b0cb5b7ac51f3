"""One call from Python: runner.chat / runner.achat, the registry helpers a program needs, and
``hanzo-run ask`` (issue 19, part 4). Every protocol against the fake server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest

import runner
from runner.engine.costing import dataset_version, model_pricing
from runner.errors import ErrorCode, ProviderError, UsageError
from tests.conftest import hanzo, point_at, write_providers
from tests.fakes import FakeServer

# One provider per protocol, each asked for its provider file's default model (priced by the dataset or the file).
PROTOCOLS = ["openai", "anthropic", "gemini", "ollama"]
NEEDS_KEY = ["openai", "anthropic", "gemini"]
FLAVOR = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "ollama": "ollama"}


def _expected_cost(provider_id: str, result: runner.ChatResult) -> float:
    pricing = model_pricing(runner.get_provider(provider_id), result.model)
    assert pricing is not None and result.input_tokens and result.output_tokens
    return (result.input_tokens * pricing.input + result.output_tokens * pricing.output) / 1_000_000


@pytest.mark.parametrize("provider_id", PROTOCOLS)
def test_chat_answers_with_usage_and_cost(provider_id: str, fake: FakeServer, keys: dict[str, str],
                                          providers_env: Path) -> None:
    result = runner.chat(provider_id, "What is the capital of France?", temperature=0, max_tokens=50)
    model = runner.get_provider(provider_id).default_model
    assert result.model == model and result.provider == provider_id
    assert result.text == f"{model} says: What is the capital of France?"
    assert (result.input_tokens, result.output_tokens) == (6, 8)
    assert result.cost_usd == pytest.approx(_expected_cost(provider_id, result))
    assert result.price_source == ("provider file ollama.yaml" if provider_id == "ollama" else dataset_version())
    assert result.attempts == 1 and result.ttft_ms is None and result.latency_ms > 0
    assert result.to_dict()["cost_usd"] == result.cost_usd


@pytest.mark.parametrize("provider_id", PROTOCOLS)
def test_a_429_is_retried_after_the_wait_the_server_asked_for(provider_id: str, fake: FakeServer,
                                                              keys: dict[str, str], providers_env: Path) -> None:
    fake.add_fault("429", flavor=FLAVOR[provider_id], retry_after=0.4)  # the provider file's own backoff: 10 ms
    started = time.monotonic()
    result = runner.chat(provider_id, "Hello there")
    assert time.monotonic() - started >= 0.4
    assert result.attempts == 2 and result.text.endswith("says: Hello there")
    assert fake.count(FLAVOR[provider_id]) == 2


@pytest.mark.parametrize("provider_id", NEEDS_KEY)
def test_a_rejected_key_raises_invalid_api_key(provider_id: str, fake: FakeServer, keys: dict[str, str],
                                               providers_env: Path) -> None:
    fake.add_fault("401", flavor=FLAVOR[provider_id])
    with pytest.raises(ProviderError) as raised:
        runner.chat(provider_id, "Hello")
    error = raised.value
    assert (error.code, error.provider) == (ErrorCode.INVALID_API_KEY, provider_id)
    assert error.status in (400, 401) and error.message
    assert fake.count(FLAVOR[provider_id]) == 1  # a bad key is not asked again
    assert keys[provider_id] not in str(error)


@pytest.mark.parametrize("provider_id", NEEDS_KEY)
def test_no_key_raises_api_key_required_and_sends_nothing(provider_id: str, fake: FakeServer,
                                                          providers_env: Path) -> None:
    with pytest.raises(ProviderError) as raised:
        runner.chat(provider_id, "Hello")
    assert (raised.value.code, raised.value.provider) == (ErrorCode.API_KEY_REQUIRED, provider_id)
    assert fake.count() == 0


@pytest.mark.parametrize("provider_id", PROTOCOLS)
def test_streaming_measures_ttft_and_tells_each_piece_as_it_arrives(provider_id: str, fake: FakeServer,
                                                                    keys: dict[str, str], providers_env: Path) -> None:
    pieces: list[str] = []
    result = runner.chat(provider_id, "Tell me a long story about a cat", stream=True, on_text=pieces.append)
    assert result.ttft_ms is not None and 0 < result.ttft_ms <= result.latency_ms
    assert len(pieces) > 1 and "".join(pieces) == result.text
    assert result.text.endswith("says: Tell me a long story about a cat")
    assert result.cost_usd == pytest.approx(_expected_cost(provider_id, result))


def test_messages_a_model_and_a_target_spelling(fake: FakeServer, keys: dict[str, str], providers_env: Path) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of Peru?"}]
    result = runner.chat("openai", messages, "gpt-4o", seed=7)
    assert (result.model, result.text) == ("gpt-4o", "gpt-4o says: Capital of Peru?")
    sent = fake.requests[-1].json
    assert sent["messages"] == messages and sent["seed"] == 7
    assert runner.chat("openrouter/openai/gpt-4o-mini", "Hi").model == "openai/gpt-4o-mini"


def test_bad_arguments_are_usage_errors_before_anything_is_sent(fake: FakeServer, keys: dict[str, str],
                                                                providers_env: Path) -> None:
    with pytest.raises(UsageError, match="unknown provider 'nope'"):
        runner.chat("nope", "Hi")
    with pytest.raises(UsageError, match=r"messages\[0\] must be"):
        runner.chat("openai", [{"role": "robot", "content": "Hi"}])
    with pytest.raises(UsageError, match="no user message"):
        runner.chat("openai", [{"role": "system", "content": "Be brief."}])
    with pytest.raises(UsageError, match="temperature"):
        runner.chat("openai", "Hi", temperature=5)
    with pytest.raises(UsageError, match="'frequency' was unexpected"):
        runner.chat("openai", "Hi", frequency=1)
    assert fake.count() == 0


@pytest.fixture
def slow_openai(fake: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OpenAI at 2 requests a second: what calls must share to be held to it."""
    folder = write_providers(tmp_path / "slow", {"openai": point_at(fake, "openai")})
    data = point_at(fake, "openai", limits={"requests": 2, "window": 1, "concurrency": 8})
    write_providers(folder, {"openai": data})
    monkeypatch.setenv("HANZO_RUN_PROVIDERS_DIR", str(folder))
    return folder


def test_sync_calls_share_the_providers_rate_limit(slow_openai: Path, fake: FakeServer,
                                                   keys: dict[str, str]) -> None:
    started = time.monotonic()
    for n in range(3):
        runner.chat("openai", f"question {n}")
    assert time.monotonic() - started >= 0.9  # the third waited for the window
    assert fake.max_in_window("openai", 0.9) <= 2  # less the first connection's set-up time


@pytest.mark.anyio
async def test_concurrent_achat_calls_share_the_providers_rate_limit(slow_openai: Path, fake: FakeServer,
                                                                     keys: dict[str, str]) -> None:
    results: list[runner.ChatResult] = []

    async def ask(n: int) -> None:
        results.append(await runner.achat("openai", f"question {n}"))

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for n in range(3):
            group.start_soon(ask, n)
    assert time.monotonic() - started >= 0.9
    assert fake.max_in_window("openai", 0.9) <= 2  # less the first connection's set-up time
    assert sorted(r.text for r in results) == [f"gpt-6-luna says: question {n}" for n in range(3)]


@pytest.mark.anyio
async def test_chat_inside_a_running_loop_points_to_achat() -> None:
    with pytest.raises(UsageError, match="await achat"):
        runner.chat("openai", "Hi")


def test_registry_helpers_and_settings(fake: FakeServer, keys: dict[str, str], providers_env: Path) -> None:
    assert {p.id for p in runner.get_cloud_providers()} >= {"openai", "anthropic", "gemini", "groq"}
    assert {p.id for p in runner.get_local_providers()} >= {"ollama", "lmstudio"}
    assert not {p.id for p in runner.get_cloud_providers()} & {p.id for p in runner.get_local_providers()}
    assert runner.requires_api_key("openai") and not runner.requires_api_key("ollama")
    assert runner.get_selected_provider() is None and runner.get_selected_model() is None
    assert runner.get_selected_model("openai") == runner.get_provider("openai").default_model
    settings = runner.update_settings(default_provider="openai", models={"openai": "gpt-4o"})
    assert settings == runner.get_settings()
    assert (runner.get_selected_provider(), runner.get_selected_model()) == ("openai", "gpt-4o")
    assert runner.chat("openai", "Hi").model == "gpt-4o"  # a call naming only the provider runs the selection
    runner.update_settings(models={"openai": None})
    assert runner.get_selected_model() == runner.get_provider("openai").default_model
    with pytest.raises(UsageError, match="unknown provider 'nope'"):
        runner.update_settings(models={"nope": "m"})


# ---------------------------------------------------------------- hanzo-run ask


def test_ask_prints_the_answer(fake: FakeServer, keys: dict[str, str], providers_env: Path) -> None:
    done = hanzo("ask", "openai/gpt-4o-mini", "Capital of France?", "--system", "Be brief.",
                 "--param", "temperature=0", "--param", "stop=[END]")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gpt-4o-mini says: Capital of France?\n"
    assert "openai/gpt-4o-mini: 5 in, 5 out, $" in done.stderr
    sent = fake.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (sent["temperature"], sent["stop"]) == (0, ["END"])


def test_ask_json_streams_and_reports_the_whole_result(fake: FakeServer, keys: dict[str, str],
                                                       providers_env: Path) -> None:
    done = hanzo("ask", "anthropic", "Hello there", "--stream", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["provider"] == "anthropic" and result["text"].endswith("says: Hello there")
    assert result["ttft_ms"] > 0 and result["cost_usd"] > 0 and result["attempts"] == 1


def test_ask_stream_prints_as_it_arrives(fake: FakeServer, keys: dict[str, str], providers_env: Path) -> None:
    done = hanzo("ask", "gemini", "Tell me a long story about a cat", "--stream")
    assert done.returncode == 0, done.stderr
    model = runner.get_provider("gemini").default_model
    assert done.stdout == f"{model} says: Tell me a long story about a cat\n"
    assert "first token" in done.stderr


def test_ask_exit_codes(fake: FakeServer, providers_env: Path, keys: dict[str, str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_fault("401", flavor="openai")
    rejected = hanzo("ask", "openai", "Hi", "--json")
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["error"]["code"] == "INVALID_API_KEY"
    assert "INVALID_API_KEY" in rejected.stderr
    unknown = hanzo("ask", "nope", "Hi")
    assert unknown.returncode == 2 and "unknown provider 'nope'" in unknown.stderr
    bad = hanzo("ask", "openai", "Hi", "--param", "temperature")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    monkeypatch.delenv("OPENAI_API_KEY")
    missing = hanzo("ask", "openai", "Hi")
    assert missing.returncode == 1 and "API_KEY_REQUIRED" in missing.stderr
