"""Bad answers from servers, for every protocol, streamed and not: each becomes an error
row with the right code and a message a person understands; never a crash, never a hang.

Runs in process against the fake server; each run has a hard time limit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import runner
import runner.http.client
from runner.config.providers import load_provider_file
from runner.errors import ProviderError
from runner.http.client import Answer, ProviderClient
from runner.protocols import ChatRequest
from runner.resources import builtin_providers_dir
from tests.conftest import FLAVORS, point_at, write_job, write_providers
from tests.fakes import FakeServer

PROTOCOLS = ["openai", "anthropic", "gemini", "ollama"]  # one provider per wire protocol
DEADLINE = 30.0  # seconds for one run; a hang fails the test instead of stalling the suite


def run_guarded(folder: Path, providers: Path, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a job in a thread that must finish within DEADLINE; its result rows."""
    path = write_job(folder, {"output": "out.db", **job})
    failure: list[BaseException] = []

    def target() -> None:
        try:
            runner.run_job(path, providers_dirs=(str(providers),))
        except BaseException as e:  # re-raised in the test thread below
            failure.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"the run did not finish within {DEADLINE:g} s"
    if failure:
        raise failure[0]
    conn = sqlite3.connect(folder / "out.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM results ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def no_retry_providers(fake: FakeServer, tmp_path: Path) -> Path:
    """Every protocol's provider at the fake server, one attempt per item, a short timeout."""
    providers = {}
    for pid in [*PROTOCOLS, "lmstudio"]:
        data = point_at(fake, pid, timeout=5)
        data["retry"] = {"max_retries": 0}
        providers[pid] = data
    return write_providers(tmp_path / "p", providers)


def one_result(fake: FakeServer, providers: Path, folder: Path, provider: str, stream: bool,
               fault: str | None, **options: Any) -> dict[str, Any]:
    if fault is not None:
        fake.add_fault(fault, flavor=FLAVORS[provider], times=5, **options)
    [result] = run_guarded(folder, providers, {"targets": [f"{provider}/m"], "prompts": ["hi"], "stream": stream})
    return result


# (fault, streamed) -> (error code, words the error message must contain)
CASES: dict[tuple[str, bool], tuple[str, str]] = {
    ("malformed", False): ("INVALID_RESPONSE", "answer is not JSON: {"),
    ("malformed", True): ("INVALID_RESPONSE", "answer is not JSON: {"),
    ("missing_fields", False): ("INVALID_RESPONSE", "answer has no "),
    ("missing_fields", True): ("INVALID_RESPONSE", "answer has no "),
    ("html", False): ("SERVER_ERROR", "HTTP 502: 502 Bad Gateway"),
    ("html", True): ("SERVER_ERROR", "HTTP 502: 502 Bad Gateway"),
    # LM Studio answers 200 with {"error": "..."}; streaming or not, that is its message, and of no
    # known kind, so worth another try like a 5xx.
    ("error_200", False): ("SERVER_ERROR", "Model unloaded."),
    ("error_200", True): ("SERVER_ERROR", "Model unloaded."),
    ("cut_stream", False): ("CONNECTION_FAILED", "dropped: "),
    ("cut_stream", True): ("INVALID_RESPONSE", "the stream ended before its end marker after "),
    ("early_done", True): ("INVALID_RESPONSE", "the stream ended before its end marker after "),
    ("stream_error", False): ("SERVER_ERROR", "HTTP 500: "),
    ("stream_error", True): ("SERVER_ERROR", ""),
    ("disconnect", False): ("CONNECTION_FAILED", "dropped: Server disconnected"),
    ("disconnect", True): ("CONNECTION_FAILED", "dropped: Server disconnected"),
}
SPECIAL: dict[tuple[str, bool, str], tuple[str, str]] = {}


@pytest.mark.parametrize("provider", PROTOCOLS)
@pytest.mark.parametrize(("fault", "stream"), list(CASES), ids=[f"{f}-{'stream' if s else 'whole'}" for f, s in CASES])
def test_bad_answer_becomes_an_error_row(fault: str, stream: bool, provider: str, fake: FakeServer,
                                         no_retry_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    code, words = SPECIAL.get((fault, stream, provider), CASES[fault, stream])
    result = one_result(fake, no_retry_providers, isolated, provider, stream, fault)
    assert (result["status"], result["error_code"], result["attempts"]) == ("error", code, 1)
    assert words in result["error_message"]
    assert result["response_text"] is None


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", PROTOCOLS)
def test_a_huge_answer_is_recorded_in_full(provider: str, stream: bool, fake: FakeServer, no_retry_providers: Path,
                                           keys: dict[str, str], isolated: Path) -> None:
    size = 3_000_000
    result = one_result(fake, no_retry_providers, isolated, provider, stream, "huge", size=size)
    assert (result["status"], result["error_code"]) == ("ok", None)
    assert len(result["response_text"]) == size
    assert result["response_text"].startswith("lorem lorem")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", PROTOCOLS)
def test_an_answer_over_the_cap_is_refused(provider: str, stream: bool, fake: FakeServer, no_retry_providers: Path,
                                           keys: dict[str, str], isolated: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.http.client, "MAX_BODY_BYTES", 1_000_000)
    result = one_result(fake, no_retry_providers, isolated, provider, stream, "huge", size=3_000_000)
    assert (result["status"], result["error_code"]) == ("error", "INVALID_RESPONSE")
    assert "larger than" in result["error_message"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", PROTOCOLS)
def test_a_server_that_never_answers_times_out(provider: str, stream: bool, fake: FakeServer, tmp_path: Path,
                                               keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, provider, timeout=0.5)
    data["retry"] = {"max_retries": 0}
    providers = write_providers(tmp_path / "slow", {provider: data})
    result = one_result(fake, providers, isolated, provider, stream, "slow", delay=20)
    assert (result["status"], result["error_code"]) == ("error", "TIMEOUT")
    assert "0.5 s" in result["error_message"]


# Answers that are JSON but not the shape the protocol promises: the adapter must say so,
# never fail with a KeyError or AttributeError that would escape the engine.
ODD_SHAPES: dict[str, list[Any]] = {
    "openai": [["x"], {"choices": "abc"}, {"choices": ["x"]}, {"choices": [{"message": "hi"}]},
               {"choices": [{"message": {"content": 5}}]}, {"choices": [{"delta": "x", "message": {"content": "a"}}],
                                                            "usage": [1]}],
    "anthropic": [{"content": ["x"]}, {"content": [{"type": "text"}]}, {"content": [{"type": "text", "text": 5}]},
                  {"content": [], "usage": "x"}, {"type": "message_start", "message": "x"},
                  {"type": "content_block_delta", "delta": {"type": "text_delta"}}],
    "gemini": [{"candidates": ["x"]}, {"candidates": [{"content": "x"}]},
               {"candidates": [{"content": {"parts": ["x"]}}]},
               {"candidates": [{"content": {"parts": [{"text": 5}]}}]}, {"promptFeedback": "x"},
               {"usageMetadata": [1], "candidates": [{"finishReason": "STOP"}]}],
    "ollama": [{"message": "x"}, {"message": {"content": 5}}, {"message": {"content": ["a"]}, "done": True},
               {"done": True, "message": {"content": "a"}, "prompt_eval_count": "x", "done_reason": 5}],
}


def frame(provider: str, body: Any) -> bytes:
    data = json.dumps(body)
    return (data + "\n").encode() if provider == "ollama" else f"data: {data}\n\n".encode()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("provider", "body"), [(p, b) for p, bodies in ODD_SHAPES.items() for b in bodies])
def test_an_odd_shaped_answer_is_invalid_response_or_text(provider: str, body: Any, stream: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if stream:
            return httpx.Response(200, content=frame(provider, body),
                                  headers={"content-type": "application/x-ndjson" if provider == "ollama"
                                           else "text/event-stream"})
        return httpx.Response(200, json=body)

    outcome = anyio.run(send_once, provider, httpx.MockTransport(answer), stream)
    if isinstance(outcome, ProviderError):
        assert outcome.code == "INVALID_RESPONSE", outcome
        assert outcome.provider == provider
    else:
        assert isinstance(outcome.completion.text, str)
        for count in (outcome.completion.input_tokens, outcome.completion.output_tokens):
            assert count is None or isinstance(count, int)
        assert outcome.completion.finish_reason is None or isinstance(outcome.completion.finish_reason, str)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", PROTOCOLS)
def test_a_captive_portal_page_with_200_is_invalid_response(provider: str, stream: bool) -> None:
    page = "<html><head><title>Sign in to Hotel WiFi</title></head><body><form>...</form></body></html>"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=page, headers={"content-type": "text/html"})

    outcome = anyio.run(send_once, provider, httpx.MockTransport(answer), stream)
    assert isinstance(outcome, ProviderError)
    assert outcome.code == "INVALID_RESPONSE"
    assert "Sign in to Hotel WiFi" in outcome.message


async def send_once(provider_id: str, transport: httpx.AsyncBaseTransport, stream: bool) -> Answer | ProviderError:
    provider, problems = load_provider_file(builtin_providers_dir() / f"{provider_id}.yaml")
    assert provider is not None, problems
    client = ProviderClient(provider, "k", transport=transport)
    try:
        with anyio.fail_after(DEADLINE):
            return await client.send(ChatRequest("m", ({"role": "user", "content": "hi"},), {}, stream))
    except ProviderError as e:
        return e
    finally:
        await client.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_redirect_names_its_status_and_location(stream: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://api.openai.com/v1/chat/completions"})

    outcome = anyio.run(send_once, "openai", httpx.MockTransport(answer), stream)
    assert isinstance(outcome, ProviderError)
    assert (outcome.code, outcome.status) == ("CLIENT_ERROR", 301)
    assert outcome.message == "HTTP 301 redirect to https://api.openai.com/v1/chat/completions — check base_url"


SECRET = "sk-test-secret-0123456789"


@pytest.mark.parametrize(("status", "body"), [
    (401, {"error": {"message": f"Incorrect API key provided: {SECRET}.", "code": "invalid_api_key"}}),
    (200, {"error": f"bad key {SECRET}"}),  # an in-band error, raised by the adapter
    (200, {"choices": f"not a list {SECRET}"}),  # an answer of the wrong shape, quoted back
])
def test_an_error_never_holds_the_key_anywhere(status: int, body: Any) -> None:
    async def send() -> ProviderError:
        provider, _ = load_provider_file(builtin_providers_dir() / "openai.yaml")
        assert provider is not None
        client = ProviderClient(provider, SECRET, transport=httpx.MockTransport(
            lambda request: httpx.Response(status, json=body)))
        try:
            await client.send(ChatRequest("m", ({"role": "user", "content": "hi"},), {}, False))
        except ProviderError as e:
            return e
        finally:
            await client.aclose()
        raise AssertionError("no error")

    error = anyio.run(send)
    assert "[REDACTED]" in error.message
    assert all(SECRET not in str(part) for part in (error, error.message, *error.args, repr(error)))
