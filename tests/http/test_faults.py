"""Limits, retries and error codes, end to end against the fake server (in process)."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import runner
from tests.conftest import FLAVORS, point_at, write_job, write_providers
from tests.fakes import FakeServer


def run_job(folder: Path, providers: Path, job: dict[str, Any]) -> list[dict[str, Any]]:
    path = write_job(folder, {"output": "out.db", **job})
    runner.run_job(path, providers_dirs=(str(providers),))
    conn = sqlite3.connect(folder / "out.db")
    conn.row_factory = sqlite3.Row
    try:
        results = [dict(r) for r in conn.execute("SELECT * FROM results ORDER BY id")]
        attempts = [dict(a) for a in conn.execute("SELECT * FROM attempts ORDER BY id")]
    finally:
        conn.close()
    for r in results:
        r["attempt_rows"] = [a for a in attempts if a["item_key"] == r["item_key"]]
    return results


def at(timestamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "ollama"])
def test_server_never_sees_more_than_the_limit_in_a_window(provider: str, fake: FakeServer, tmp_path: Path,
                                                            keys: dict[str, str], isolated: Path) -> None:
    limits = {"requests": 5, "window": 0.5, "concurrency": 8}
    providers = write_providers(tmp_path / "p", {provider: point_at(fake, provider, limits=limits)})
    results = run_job(isolated, providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "repeat": 20})
    assert [r["status"] for r in results] == ["ok"] * 20
    assert fake.count(FLAVORS[provider]) == 20
    assert fake.max_in_window(FLAVORS[provider], 0.5) <= 5
    # Paced, not serialised behind the limit: 20 requests at 10/s take about 2 s.
    times = sorted(r.time for r in fake.requests)
    assert 1.7 < times[-1] - times[0] < 2.6


def test_token_limit_weighs_max_tokens(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                       isolated: Path) -> None:
    limits = {"requests": 1000, "window": 1, "tokens": 400, "concurrency": 8}
    providers = write_providers(tmp_path / "p", {"openai": point_at(fake, "openai", limits=limits)})
    # Each request weighs 104 tokens (max_tokens 100 + the input estimate), so at most three
    # (312 tokens) may start in any one-second window: 8 requests take two whole windows.
    results = run_job(isolated, providers, {"targets": ["openai/m"], "prompts": ["hi"], "repeat": 8,
                                            "params": {"max_tokens": 100}})
    assert all(r["status"] == "ok" for r in results)
    assert fake.max_in_window("openai", 1.0) == 3
    times = sorted(r.time for r in fake.requests)
    assert times[2] - times[0] < 0.2  # the first three start at once
    assert 1.95 < times[-1] - times[0] < 2.6


def test_retry_after_is_honoured(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                 isolated: Path) -> None:
    fake.add_fault("429", flavor="openai", retry_after=1)
    [result] = run_job(isolated, fake_providers, {"targets": ["openai/m"], "prompts": ["hi"]})
    assert (result["status"], result["attempts"]) == ("ok", 2)
    first, second = result["attempt_rows"]
    assert (first["http_status"], first["error_code"], first["retry_after_s"]) == (429, "RATE_LIMIT_EXCEEDED", 1.0)
    assert (second["http_status"], second["error_code"]) == (200, None)
    waited = (at(second["started_at"]) - at(first["started_at"])).total_seconds()
    assert 0.95 <= waited < 1.6


def test_retry_after_ms_and_gemini_retry_info(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                             isolated: Path) -> None:
    fake.add_fault("429", flavor="openai", retry_after_ms=300)
    fake.add_fault("429", flavor="gemini", retry_after=0.4)  # Gemini: RetryInfo in the body only
    results = run_job(isolated, fake_providers, {"targets": ["openai/m", "gemini/m"], "prompts": ["hi"]})
    waits = {r["provider"]: r["attempt_rows"][0]["retry_after_s"] for r in results}
    assert waits == {"openai": 0.3, "gemini": 0.4}
    assert all(r["status"] == "ok" and r["attempts"] == 2 for r in results)


@pytest.mark.parametrize(("fault", "provider", "code", "status"), [
    ("401", "openai", "INVALID_API_KEY", 401),
    ("401", "anthropic", "INVALID_API_KEY", 401),
    ("401", "gemini", "INVALID_API_KEY", 400),
    ("quota", "openai", "QUOTA_EXHAUSTED", 429),
    ("quota", "anthropic", "QUOTA_EXHAUSTED", 429),
    ("quota", "gemini", "QUOTA_EXHAUSTED", 429),
    ("quota", "openrouter", "QUOTA_EXHAUSTED", 402),
    ("quota", "ollama", "QUOTA_EXHAUSTED", 429),  # a cloud model's weekly usage limit
    ("no_endpoints", "openrouter", "MODEL_NOT_FOUND", 404),
])
def test_what_cannot_succeed_is_not_retried(fault: str, provider: str, code: str, status: int, fake: FakeServer,
                                            fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.add_fault(fault, flavor=FLAVORS[provider], times=5)
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"]})
    assert (result["status"], result["error_code"], result["http_status"], result["attempts"]) == (
        "error", code, status, 1)
    assert fake.count(FLAVORS[provider]) == 1


@pytest.mark.parametrize("provider", ["openai", "gemini", "anthropic"])
def test_a_rate_limit_that_mentions_billing_is_retried_after_the_asked_delay(
        provider: str, fake: FakeServer, fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    """OpenAI's free-tier RPM 429 links the billing page and Gemini's per-minute 429 says "check your plan
    and billing details": both are rate limits (code rate_limit_exceeded; a per-minute quotaId), not an
    empty wallet."""
    fake.add_fault("rpm_429", flavor=FLAVORS[provider], retry_after=0.5)
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"]})
    assert (result["status"], result["error_code"], result["attempts"]) == ("ok", None, 2)
    first, second = result["attempt_rows"]
    assert (first["http_status"], first["error_code"], first["retry_after_s"]) == (429, "RATE_LIMIT_EXCEEDED", 0.5)
    waited = (at(second["started_at"]) - at(first["started_at"])).total_seconds()
    assert 0.45 <= waited < 1.2


def test_missing_model_is_recorded(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                   isolated: Path) -> None:
    results = run_job(isolated, fake_providers, {"targets": ["openai/missing-model", "ollama/missing-x"],
                                                 "prompts": ["hi"]})
    assert [(r["error_code"], r["http_status"], r["attempts"]) for r in results] == [
        ("MODEL_NOT_FOUND", 404, 1), ("MODEL_NOT_FOUND", 404, 1)]


@pytest.mark.parametrize(("fault", "code"), [("500", "SERVER_ERROR"), ("529", "SERVER_ERROR"),
                                             ("503", "SERVER_ERROR"), ("disconnect", "CONNECTION_FAILED")])
def test_transient_failures_are_retried_then_succeed(fault: str, code: str, fake: FakeServer,
                                                     fake_providers: Path, keys: dict[str, str],
                                                     isolated: Path) -> None:
    fake.add_fault(fault, flavor="anthropic", times=2)
    [result] = run_job(isolated, fake_providers, {"targets": ["anthropic/m"], "prompts": ["hi"]})
    assert (result["status"], result["attempts"]) == ("ok", 3)
    assert [a["error_code"] for a in result["attempt_rows"]] == [code, code, None]


def test_retries_are_bounded_and_say_so(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                        isolated: Path) -> None:
    fake.add_fault("500", flavor="groq", times=100)
    results = run_job(isolated, fake_providers, {"targets": ["groq/m", "openai/m"], "prompts": ["hi"]})
    groq, openai = results if results[0]["provider"] == "groq" else results[::-1]
    assert openai["status"] == "ok"
    assert (groq["error_code"], groq["attempts"], groq["http_status"]) == ("MAX_RETRIES_EXCEEDED", 3, 500)
    assert groq["error_message"].startswith("gave up after 3 attempts; last: SERVER_ERROR: HTTP 500")


def test_timeout_is_recorded(fake: FakeServer, tmp_path: Path, keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "openai", timeout=0.3)
    data["retry"] = {"max_retries": 0}
    providers = write_providers(tmp_path / "p", {"openai": data})
    fake.add_fault("slow", flavor="openai", delay=5)
    [result] = run_job(isolated, providers, {"targets": ["openai/m"], "prompts": ["hi"]})
    assert (result["error_code"], result["attempts"]) == ("TIMEOUT", 1)
    assert 250 < result["attempt_rows"][0]["latency_ms"] < 1500


@pytest.mark.parametrize(("fault", "stream", "code"), [
    ("malformed", False, "INVALID_RESPONSE"),
    ("missing_fields", False, "INVALID_RESPONSE"),
])
def test_bad_answers_become_error_rows(fault: str, stream: bool, code: str, fake: FakeServer,
                                       fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    fake.add_fault(fault, flavor="lmstudio")
    [result] = run_job(isolated, fake_providers, {"targets": ["lmstudio/m"], "prompts": ["hi"], "stream": stream})
    assert (result["status"], result["error_code"]) == ("error", code)


@pytest.mark.parametrize(("provider", "fault", "stream", "options"), [
    ("ollama", "stream_error", True, {}),  # {"error": "..."} line mid-stream, HTTP 200
    ("lmstudio", "error_200", False, {}),  # 200 with {"error": "..."}
    ("lmstudio", "error_200", True, {}),
    ("openai", "stream_error", True, {"litellm": True}),  # LiteLLM's proxy: data: {"error": {..."code": "500"}}
    ("anthropic", "stream_error", True, {}),  # event: error, overloaded_error
    ("gemini", "stream_error", True, {}),  # UNAVAILABLE mid-stream
])
def test_a_transient_inband_error_is_retried_like_its_http_status(
        provider: str, fault: str, stream: bool, options: dict[str, Any], fake: FakeServer, fake_providers: Path,
        keys: dict[str, str], isolated: Path) -> None:
    fake.add_fault(fault, flavor=FLAVORS[provider], **options)
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": stream})
    assert (result["status"], result["attempts"], result["response_text"]) == ("ok", 2, "m says: hi")
    assert result["attempt_rows"][0]["error_code"] == "SERVER_ERROR"


CUT_STREAMS = [("openai", "early_done"), ("lmstudio", "early_done"), ("openai", "cut_stream"),
               ("anthropic", "cut_stream"), ("gemini", "cut_stream"), ("ollama", "cut_stream")]


@pytest.mark.parametrize(("provider", "fault"), CUT_STREAMS)
def test_a_stream_cut_before_its_end_marker_is_retried(provider: str, fault: str, fake: FakeServer,
                                                       fake_providers: Path, keys: dict[str, str],
                                                       isolated: Path) -> None:
    """early_done is a llama.cpp server shedding a stream: a role chunk, [DONE], the connection closed."""
    fake.add_fault(fault, flavor=FLAVORS[provider])
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": True})
    assert (result["status"], result["attempts"], result["response_text"]) == ("ok", 2, "m says: hi")
    assert result["finish_reason"] is not None
    assert result["attempt_rows"][0]["error_code"] == "INVALID_RESPONSE"


@pytest.mark.parametrize(("provider", "fault"), CUT_STREAMS)
def test_a_stream_always_cut_is_an_error_never_a_partial_answer(provider: str, fault: str, fake: FakeServer,
                                                                fake_providers: Path, keys: dict[str, str],
                                                                isolated: Path) -> None:
    fake.add_fault(fault, flavor=FLAVORS[provider], times=10)
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": True})
    # The final code is the cause itself, not MAX_RETRIES_EXCEEDED; the attempts column counts the tries.
    assert (result["status"], result["error_code"], result["attempts"]) == ("error", "INVALID_RESPONSE", 3)
    assert result["response_text"] is None
    chars = 0 if fault == "early_done" else len("m says:")
    assert result["error_message"].startswith(f"the stream ended before its end marker after {chars} characters (")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
def test_an_empty_answer_with_no_output_tokens_is_asked_again(provider: str, stream: bool, fake: FakeServer,
                                                               fake_providers: Path, keys: dict[str, str],
                                                               isolated: Path) -> None:
    """LiteLLM's proxy, when llama.cpp behind it cut a stream, answers a well-formed, empty message
    (end_turn / STOP, 0 output tokens): the model said nothing, so it is asked again, never kept as ok."""
    fake.add_fault("empty_answer", flavor=FLAVORS[provider])
    [result] = run_job(isolated, fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": stream})
    assert (result["status"], result["attempts"], result["response_text"]) == ("ok", 2, "m says: hi")
    assert result["attempt_rows"][0]["error_code"] == "INVALID_RESPONSE"
    fake.add_fault("empty_answer", flavor=FLAVORS[provider], times=10)
    (isolated / "again").mkdir()
    [again] = run_job(isolated / "again", fake_providers, {"targets": [f"{provider}/m"], "prompts": ["hi"],
                                                           "stream": stream})
    assert (again["status"], again["error_code"], again["attempts"]) == ("error", "INVALID_RESPONSE", 3)
    assert again["error_message"] == "the answer is empty: no text, no tool call and 0 output tokens"


def test_a_proxy_in_the_environment_is_used(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                            isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast aiohttp path ignores HTTP(S)_PROXY, so a proxied run must go through httpx, which honours it."""
    import socket

    with socket.socket() as closed:  # a proxy address where nothing listens
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    [result] = run_job(isolated, fake_providers, {"targets": ["openai/m"], "prompts": ["hi"]})
    assert (result["status"], result["error_code"]) == ("error", "MAX_RETRIES_EXCEEDED")
    assert fake.count("openai") == 0  # it went to the (dead) proxy, not straight to the server
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    (isolated / "again").mkdir()
    [result] = run_job(isolated / "again", fake_providers, {"targets": ["openai/m"], "prompts": ["hi"]})
    assert result["status"] == "ok"


LONG_PROMPT = " ".join(f"word{i}" for i in range(23))  # with "m says:", 25 chunks: about 6 s at 0.2 s a frame


def use_httpx_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the environment (bypassed for loopback) sends chat calls through httpx, not aiohttp."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.mark.parametrize(("path", "bounds"), [
    ("aiohttp", {"timeout": 2}),  # the older spelling: first_byte and idle, never the whole answer
    ("aiohttp", {"timeouts": {"first_byte": 2, "idle": 2}}),
    ("httpx", {"timeouts": {"first_byte": 2, "idle": 2}}),
])
def test_a_slow_stream_that_keeps_sending_is_never_cut(path: str, bounds: dict[str, Any], fake: FakeServer,
                                                       tmp_path: Path, keys: dict[str, str], isolated: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "httpx":
        use_httpx_path(monkeypatch)
    providers = write_providers(tmp_path / "p", {"openai": point_at(fake, "openai", **bounds)})
    fake.add_fault("drip", flavor="openai", interval=0.2)
    [result] = run_job(isolated, providers, {"targets": ["openai/m"], "prompts": [LONG_PROMPT], "stream": True})
    assert (result["status"], result["attempts"], result["response_text"]) == ("ok", 1, f"m says: {LONG_PROMPT}")
    assert result["latency_ms"] > 4500  # it really took longer than any one bound


@pytest.mark.parametrize(("path", "provider"), [("aiohttp", "openai"), ("aiohttp", "ollama"), ("httpx", "openai")])
def test_a_stalled_stream_is_a_timeout_and_retried(path: str, provider: str, fake: FakeServer, tmp_path: Path,
                                                   keys: dict[str, str], isolated: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "httpx":
        use_httpx_path(monkeypatch)
    data = point_at(fake, provider, timeouts={"first_byte": 5, "idle": 0.5})
    providers = write_providers(tmp_path / "p", {provider: data})
    fake.add_fault("stall", flavor=FLAVORS[provider], after=2, delay=3)
    [result] = run_job(isolated, providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": True})
    assert (result["status"], result["attempts"], result["response_text"]) == ("ok", 2, "m says: hi")
    first = result["attempt_rows"][0]
    assert first["error_code"] == "TIMEOUT"
    assert 400 < first["latency_ms"] < 2000


def test_a_stall_without_retries_says_which_bound_and_how_far(fake: FakeServer, tmp_path: Path,
                                                             keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "anthropic", timeouts={"idle": 0.5})
    data["retry"] = {"max_retries": 0}
    providers = write_providers(tmp_path / "p", {"anthropic": data})
    fake.add_fault("stall", flavor="anthropic", after=4, delay=3)  # message_start ... first text delta
    [result] = run_job(isolated, providers, {"targets": ["anthropic/m"], "prompts": ["hi"], "stream": True})
    assert (result["status"], result["error_code"]) == ("error", "TIMEOUT")
    assert result["error_message"].startswith(
        "the stream stalled: nothing for 0.5 s (timeouts.idle) after 1 characters")
