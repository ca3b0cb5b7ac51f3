"""Sanity checks for the fake provider server the rest of the suite relies on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import FLAVORS, OPENAI_API, FakeServer, Recorded

MODEL = {"openai": "gpt-4o-mini", "groq": "llama-3.1-8b-instant", "openrouter": "openai/gpt-4o-mini",
         "sambanova": "Meta-Llama-3.1-8B-Instruct", "lmstudio": "qwen2.5-7b-instruct",
         "anthropic": "claude-3-5-haiku-20241022", "gemini": "gemini-2.5-flash", "ollama": "llama3.2"}
FINISH = {"anthropic": ("end_turn", "max_tokens"), "gemini": ("STOP", "MAX_TOKENS")}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def chat_call(fake: FakeServer, flavor: str, *, model: str | None = None, text: str = "hello world",
              max_tokens: int | None = None, stream: bool = False,
              key: str | None = None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(url, json body, headers) of one chat request in `flavor`'s own protocol."""
    model = model or MODEL[flavor]
    key = fake.keys[flavor] if key is None else key
    base = fake.base_url(flavor)
    system, user = {"role": "system", "content": "be brief"}, {"role": "user", "content": text}
    if flavor == "anthropic":
        body = {"model": model, "system": "be brief", "messages": [user], "max_tokens": max_tokens or 100,
                "stream": stream}
        return base + "/v1/messages", body, {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if flavor == "gemini":
        op = "streamGenerateContent?alt=sse" if stream else "generateContent"
        gbody: dict[str, Any] = {"systemInstruction": {"parts": [{"text": "be brief"}]},
                                 "contents": [{"role": "user", "parts": [{"text": text}]}]}
        if max_tokens:
            gbody["generationConfig"] = {"maxOutputTokens": max_tokens}
        return f"{base}/models/{model}:{op}", gbody, {"x-goog-api-key": key}
    body = {"model": model, "messages": [system, user], "stream": stream}
    if flavor == "ollama":
        if max_tokens:
            body["options"] = {"num_predict": max_tokens}
        return base + "/api/chat", body, {}
    if max_tokens:
        body["max_tokens"] = max_tokens
    return base + "/chat/completions", body, {"Authorization": f"Bearer {key}"}


def answer(flavor: str, data: Any) -> tuple[str, str, int, int]:
    """(text, finish reason, input tokens, output tokens) of a non-streamed answer."""
    if flavor == "anthropic":
        u = data["usage"]
        return data["content"][0]["text"], data["stop_reason"], u["input_tokens"], u["output_tokens"]
    if flavor == "gemini":
        c, u = data["candidates"][0], data["usageMetadata"]
        return (c["content"]["parts"][0]["text"], c["finishReason"], u["promptTokenCount"],
                u["candidatesTokenCount"])
    if flavor == "ollama":
        return data["message"]["content"], data["done_reason"], data["prompt_eval_count"], data["eval_count"]
    c, u = data["choices"][0], data["usage"]
    return c["message"]["content"], c["finish_reason"], u["prompt_tokens"], u["completion_tokens"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_chat_answers_in_each_protocol(fake: FakeServer, client: httpx.Client, flavor: str) -> None:
    url, body, headers = chat_call(fake, flavor)
    if flavor == "ollama":
        body["stream"] = False  # Ollama streams unless told not to
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == 200, r.text
    stop, length = FINISH.get(flavor, ("stop", "length"))
    model = MODEL[flavor]
    assert answer(flavor, r.json()) == (f"{model} says: hello world", stop, 4, 4)

    url, body, headers = chat_call(fake, flavor, max_tokens=2, text="one two three")
    body["stream"] = False if flavor == "ollama" else body.get("stream")
    assert answer(flavor, client.post(url, json=body, headers=headers).json()) == (
        f"{model} says:", length, 5, 2)
    assert fake.count(flavor) == 2 and fake.requests[0].model == model


BAD_KEY = {  # flavor -> (status, a piece of the real body)
    "openai": (401, '"code": "invalid_api_key"'), "groq": (401, '"message": "Invalid API Key"'),
    "sambanova": (401, '"code": "invalid_api_key"'), "openrouter": (401, '"code": 401'),
    "anthropic": (401, '"type": "authentication_error", "message": "invalid x-api-key"'),
    "gemini": (400, '"reason": "API_KEY_INVALID"'), "lmstudio": (200, "says:"), "ollama": (200, "says:"),
}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_key_gets_the_real_rejection(fake: FakeServer, client: httpx.Client, flavor: str) -> None:
    url, body, headers = chat_call(fake, flavor, key="wrong-key-123456")
    body["stream"] = False
    r = client.post(url, json=body, headers=headers)
    status, piece = BAD_KEY[flavor]
    assert r.status_code == status and piece in r.text, r.text


def test_auth_details(fake: FakeServer, client: httpx.Client) -> None:
    url, body, headers = chat_call(fake, "gemini")
    r = client.post(url, json=body)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    assert client.post(f"{url}?key={fake.keys['gemini']}", json=body).status_code == 200
    url, body, headers = chat_call(fake, "anthropic")
    r = client.post(url, json=body, headers={"x-api-key": fake.keys["anthropic"]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    del body["max_tokens"]
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    assert client.get(fake.base_url("openrouter") + "/models").status_code == 200  # public
    r = client.get(fake.base_url("openrouter") + "/key",
                   headers={"Authorization": f"Bearer {fake.keys['openrouter']}"})
    assert set(r.json()["data"]) >= {"label", "limit", "usage"}


def stream_text(flavor: str, raw: str) -> tuple[str, bool]:
    """(joined text, whether the protocol's end marker arrived) of a streamed body."""
    if flavor == "ollama":
        objs = [json.loads(line) for line in raw.splitlines() if line]
        return "".join(o["message"]["content"] for o in objs), objs[-1].get("done") is True
    datas = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    if flavor == "anthropic":
        events = [json.loads(d) for d in datas]
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        return text, events[-1]["type"] == "message_stop"
    if flavor == "gemini":
        chunks = [json.loads(d) for d in datas]
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        return text, "finishReason" in chunks[-1]["candidates"][0]
    chunks = [json.loads(d) for d in datas if d != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    return text, datas[-1] == "[DONE]"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_stream_ends_with_its_end_marker(fake: FakeServer, client: httpx.Client, flavor: str) -> None:
    url, body, headers = chat_call(fake, flavor, stream=True, text="a  b\nc ")
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == 200
    assert stream_text(flavor, r.text) == (f"{MODEL[flavor]} says: a  b\nc ", True)
    fake.add_fault("cut_stream", flavor=flavor)
    assert stream_text(flavor, client.post(url, json=body, headers=headers).text)[1] is False


def test_openai_family_stream_usage(fake: FakeServer, client: httpx.Client) -> None:
    for flavor in OPENAI_API:
        url, body, headers = chat_call(fake, flavor, stream=True)
        plain = client.post(url, json=body, headers=headers).text
        body["stream_options"] = {"include_usage": True}
        counted = client.post(url, json=body, headers=headers).text
        assert ('"choices": [], "usage"' in plain) == (flavor == "openrouter")
        assert '"choices": [], "usage"' in counted
        assert ('"x_groq"' in plain) == (flavor == "groq")
        assert (": OPENROUTER PROCESSING" in plain) == (flavor == "openrouter")


def test_faults_are_consumed_after_times(fake: FakeServer, client: httpx.Client) -> None:
    fake.add_fault("500", flavor="openai", times=2)
    fake.add_fault("429", flavor="anthropic", retry_after=2, retry_after_ms=1500)
    fake.add_fault("429", flavor="gemini", retry_after=3)
    url, body, headers = chat_call(fake, "openai")
    assert [client.post(url, json=body, headers=headers).status_code for _ in range(3)] == [500, 500, 200]
    url, body, headers = chat_call(fake, "anthropic")
    r = client.post(url, json=body, headers=headers)
    assert (r.status_code, r.headers["retry-after"], r.headers["retry-after-ms"]) == (429, "2", "1500")
    assert r.json()["error"]["type"] == "rate_limit_error"
    url, body, headers = chat_call(fake, "gemini")
    details = client.post(url, json=body, headers=headers).json()["error"]["details"]
    assert details[0]["retryDelay"] == "3s"
    assert client.post(url, json=body, headers=headers).status_code == 200
    assert fake.count() == 6


def test_fault_kinds(fake: FakeServer, client: httpx.Client) -> None:
    url, body, headers = chat_call(fake, "openai")
    for kind, check in [
        ("quota", lambda r: r.json()["error"]["code"] == "insufficient_quota"),
        ("malformed", lambda r: r.status_code == 200 and r.text.startswith('{"id"')),
        ("html", lambda r: r.status_code == 502 and r.headers["content-type"].startswith("text/html")),
        ("error_200", lambda r: r.status_code == 200 and "error" in r.json()),
        ("missing_fields", lambda r: r.json() == {"id": "x"}),
        ("huge", lambda r: len(r.json()["choices"][0]["message"]["content"]) == 1000),
    ]:
        fake.add_fault(kind, model=MODEL["openai"], size=1000)
        assert check(client.post(url, json=body, headers=headers)), kind
    for kind in ("disconnect", "cut_stream"):
        fake.add_fault(kind)
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(url, json=body, headers=headers)
    fake.add_fault("401", probability=1.0)
    assert client.post(url, json=body, headers=headers).status_code == 401
    fake.clear()
    fake.add_fault("401", probability=0.0)
    assert client.post(url, json=body, headers=headers).status_code == 200
    assert client.post(url, json={**body, "model": "missing-model"}, headers=headers).status_code == 404


def test_stream_error_event(fake: FakeServer, client: httpx.Client) -> None:
    fake.add_fault("stream_error", flavor="anthropic")
    url, body, headers = chat_call(fake, "anthropic", stream=True)
    assert "event: error\ndata: " in client.post(url, json=body, headers=headers).text


def test_max_in_window_slides() -> None:
    fake = FakeServer()
    for t in (0.0, 0.1, 0.2, 0.95, 1.05, 1.1, 3.0):
        fake.requests.append(Recorded(t, "openai", "POST", "/x", {}, {}, None, "m", chat=True))
    fake.requests.append(Recorded(1.0, "openai", "GET", "/models", {}, {}, None, None))
    assert fake.max_in_window("openai", 1.0) == 4  # 0.1 .. 1.05
    assert fake.max_in_window("openai", 0.2) == 3  # 0.95, 1.05, 1.1
    assert fake.max_in_window("openai", 10) == 7
    assert fake.max_in_window("groq", 1.0) == 0


def test_latency_concurrency_and_quick_stop() -> None:
    with FakeServer(latency=0.2) as fake, httpx.Client(timeout=5) as c:
        url, body, headers = chat_call(fake, "groq")
        threads = [threading.Thread(target=c.post, args=(url,), kwargs={"json": body, "headers": headers})
                   for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert fake.max_concurrent["groq"] == 4
        assert fake.max_in_window("groq", 0.1) == 4
        fake.add_fault("slow", delay=30)
        errors: list[Exception] = []
        th = threading.Thread(target=slow_call, args=(url, body, headers, errors))
        th.start()
        time.sleep(0.3)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
    th.join(2)
    assert not th.is_alive() and isinstance(errors[0], httpx.RemoteProtocolError)


def slow_call(url: str, body: Any, headers: dict[str, str], errors: list[Exception]) -> None:
    try:
        httpx.post(url, json=body, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        errors.append(exc)
