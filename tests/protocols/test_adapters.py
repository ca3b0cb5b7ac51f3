"""The four HTTP wire adapters, fed the bodies providers really send (see provider-facts.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runner.errors import ErrorCode, ProviderError
from runner.protocols import anthropic, gemini, ollama, openai
from runner.protocols.base import (
    ChatRequest,
    Completion,
    ErrorInfo,
    HttpCall,
    StreamState,
    excerpt,
)

SYSTEM = {"role": "system", "content": "Be terse."}
USER = {"role": "user", "content": "Say hi"}
ASSISTANT = {"role": "assistant", "content": "Hi"}
USER2 = {"role": "user", "content": "Again"}
MESSAGES = (SYSTEM, USER, ASSISTANT, USER2)
PARAMS: dict[str, Any] = {"temperature": 0.2, "max_tokens": 64, "top_p": 0.9, "stop": ["\n\n"],
                          "seed": 7}

HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")


def request(stream: bool = False, params: dict[str, Any] | None = None,
            model: str = "m-1") -> ChatRequest:
    return ChatRequest(model, MESSAGES, PARAMS if params is None else params, stream)


def raised(caught: pytest.ExceptionInfo[ProviderError]) -> tuple[str, str]:
    return caught.value.code, caught.value.message


def run_stream(adapter: Any, events: list[tuple[str | None, Any]]) -> StreamState:
    state = StreamState()
    for event, data in events:
        adapter.on_event(state, event, data)
    return state


def test_every_adapter_is_registered() -> None:
    from runner.protocols import adapter_for

    for name, module in [("openai", openai), ("anthropic", anthropic), ("gemini", gemini),
                         ("ollama", ollama)]:
        assert adapter_for(name) is module.ADAPTER


# --- OpenAI-compatible ---------------------------------------------------------------------


def test_openai_build() -> None:
    call = openai.ADAPTER.build(request(params={**PARAMS, "extra": {"seed": 8, "user": "u"}}))
    assert call == HttpCall("/chat/completions", {
        "model": "m-1", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 64, "top_p": 0.9,
        "stop": ["\n\n"], "seed": 8, "user": "u"})
    assert call.query is None and call.method == "POST"


def test_openai_build_streaming_asks_for_usage_and_omits_unset_params() -> None:
    call = openai.ADAPTER.build(request(stream=True, params={"temperature": None}))
    assert call.json == {"model": "m-1", "messages": MESSAGES, "stream": True,
                         "stream_options": {"include_usage": True}}


def test_openai_parse() -> None:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!",
                                                 "refusal": None},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 0}},
            "system_fingerprint": "fp_1"}
    # The cache counted nothing: 0 is recorded, not unknown.
    assert openai.ADAPTER.parse(body) == Completion("Hello!", "stop", 12, 3, None, cached_input_tokens=0)


def test_openai_parse_openrouter_cost_and_null_content() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": None},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14,
                      "cost": 0.000123, "cost_details": {"upstream_inference_cost": None}}}
    assert openai.ADAPTER.parse(body) == Completion("", "tool_calls", 5, 9, 0.000123)


def test_openai_parse_lm_studio_error_on_200() -> None:
    body = {"error": "Unexpected endpoint or method. (POST /chat/completions)"}
    with pytest.raises(ProviderError) as caught:
        openai.ADAPTER.parse(body)
    assert raised(caught) == (
        "INVALID_RESPONSE", "Unexpected endpoint or method. (POST /chat/completions)")


def test_openai_parse_without_choices() -> None:
    with pytest.raises(ProviderError) as caught:
        openai.ADAPTER.parse({"id": "x", "object": "chat.completion"})
    assert caught.value.code == "INVALID_RESPONSE"
    assert caught.value.message == 'answer has no choices: {"id": "x", "object": "chat.completion"}'


def test_openai_stream_with_include_usage() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "usage": None}
    state = run_stream(openai.ADAPTER, [
        (None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": "Hel"},
                                      "finish_reason": None}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": "lo"},
                                      "finish_reason": None}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
        (None, {**chunk, "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}),
    ])
    assert state.completion() == Completion("Hello", "length", 10, 2, None)
    assert state.done is True  # the chunk with a finish reason is the end marker, not [DONE]


def test_openai_stream_groq_x_groq_usage() -> None:
    state = run_stream(openai.ADAPTER, [
        (None, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                "x_groq": {"id": "req_01"}}),
        (None, {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}),
        (None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "x_groq": {"id": "req_01", "usage": {
                    "queue_time": 0.02, "prompt_tokens": 40, "prompt_time": 0.004,
                    "completion_tokens": 2, "completion_time": 0.001, "total_tokens": 42}}}),
    ])
    assert state.completion() == Completion("Hi", "stop", 40, 2, None)


def test_openai_stream_groq_early_stop() -> None:
    with pytest.raises(ProviderError) as caught:
        run_stream(openai.ADAPTER, [(None, {"choices": [], "x_groq": {"error": "over capacity"}})])
    # An in-band error of no known kind is retried like a 5xx.
    assert raised(caught) == ("SERVER_ERROR", "over capacity")


def test_openai_stream_openrouter_cost_in_last_chunk() -> None:
    state = run_stream(openai.ADAPTER, [
        (None, {"id": "gen-1", "provider": "OpenAI", "model": "openai/gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Yo"},
                             "finish_reason": None}]}),
        (None, {"id": "gen-1", "choices": [{"index": 0, "delta": {"content": ""},
                                            "finish_reason": "stop",
                                            "native_finish_reason": "stop"}]}),
        (None, {"id": "gen-1", "choices": [],
                "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9,
                          "cost": 0.0000015, "is_byok": False}}),
    ])
    assert state.completion() == Completion("Yo", "stop", 8, 1, 0.0000015)


@pytest.mark.parametrize(("error", "code"), [
    ({"code": 502, "message": "Provider returned error"}, "SERVER_ERROR"),
    ({"code": 400, "message": "Invalid request"}, "REQUEST_FAILED"),
    ({"code": 429, "message": "Rate limited upstream"}, "RATE_LIMIT_EXCEEDED"),
    ({"message": "The server had an error", "type": "server_error", "code": None}, "SERVER_ERROR"),
    ({"message": "Model is overloaded", "code": "x"}, "SERVER_ERROR"),
])
def test_openai_stream_error_chunk(error: dict[str, Any], code: str) -> None:
    state = StreamState(parts=["partial"])
    with pytest.raises(ProviderError) as caught:
        openai.ADAPTER.on_event(state, None, {"id": "gen-1", "error": error,
                                              "choices": [{"index": 0, "delta": {"content": ""},
                                                           "finish_reason": "error"}]})
    assert raised(caught) == (code, error["message"])


@pytest.mark.parametrize(("body", "info"), [
    ({"error": {"message": "You exceeded your current quota, please check your plan.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
     ErrorInfo("You exceeded your current quota, please check your plan.",
               "insufficient_quota insufficient_quota")),
    ({"error": {"message": "Rate limit reached for gpt-4o on tokens per min (TPM). "
                           "Please try again in 2.502s.",
                "type": "tokens", "code": "rate_limit_exceeded"}},
     ErrorInfo("Rate limit reached for gpt-4o on tokens per min (TPM). "
               "Please try again in 2.502s.", "tokens rate_limit_exceeded")),
    ({"error": {"message": "Incorrect API key provided: sk-abc.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
     ErrorInfo("Incorrect API key provided: sk-abc.", "invalid_request_error invalid_api_key")),
    ({"error": {"code": 402, "message": "Insufficient credits", "metadata": {}}},
     ErrorInfo("Insufficient credits", "402")),
    ({"error": "Unexpected endpoint or method. (POST /chat/completions)"},
     ErrorInfo("Unexpected endpoint or method. (POST /chat/completions)")),
    ({"error": {"message": "Decimal above maximum value", "type": "invalid_request_error",
                "param": "top_p", "code": "decimal_above_max_value"}, "request_id": "r"},
     ErrorInfo("Decimal above maximum value", "invalid_request_error decimal_above_max_value")),
    (HTML_502, ErrorInfo("502 Bad Gateway 502 Bad Gateway nginx")),
    (None, ErrorInfo("(empty body)")),
    ({"detail": "Not Found"}, ErrorInfo('{"detail": "Not Found"}')),
])
def test_openai_error_info(body: Any, info: ErrorInfo) -> None:
    assert replace(openai.ADAPTER.error_info(body), status=None) == info


# --- Anthropic -----------------------------------------------------------------------------


def test_anthropic_build() -> None:
    call = anthropic.ADAPTER.build(request(params={**PARAMS, "extra": {"top_k": 5}}))
    assert call == HttpCall("/v1/messages", {
        "model": "m-1", "max_tokens": 64, "system": "Be terse.",
        "messages": [USER, ASSISTANT, USER2], "temperature": 0.2, "top_p": 0.9,
        "stop_sequences": ["\n\n"], "top_k": 5})


def test_anthropic_build_streaming_defaults_max_tokens_and_joins_system() -> None:
    req = ChatRequest("m-1", (SYSTEM, {"role": "system", "content": "Be kind."}, USER), {}, True)
    assert anthropic.ADAPTER.build(req).json == {
        "model": "m-1", "max_tokens": 1024, "system": "Be terse.\n\nBe kind.", "messages": [USER],
        "stream": True}


def test_anthropic_parse() -> None:
    body = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 20, "cache_creation_input_tokens": 100,
                      "cache_read_input_tokens": 3, "output_tokens": 6, "service_tier": "standard"}}
    assert anthropic.ADAPTER.parse(body) == Completion("Hello there", "end_turn", 123, 6, None,
                                                       cached_input_tokens=3, cache_write_tokens=100)


def test_anthropic_parse_error_body() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_1"}
    with pytest.raises(ProviderError) as caught:
        anthropic.ADAPTER.parse(body)
    assert raised(caught) == ("SERVER_ERROR", "Overloaded")


def test_anthropic_stream_takes_cumulative_output_tokens() -> None:
    state = run_stream(anthropic.ADAPTER, [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 25, "cache_read_input_tokens": 5,
                                           "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "!"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": None},
                           "usage": {"output_tokens": 10}}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                           "usage": {"output_tokens": 15}}),
        ("brand_new_event", {"type": "brand_new_event"}),
    ])
    assert state.completion() == Completion("Hello!", "max_tokens", 30, 15, None, cached_input_tokens=5)
    assert state.done is False
    anthropic.ADAPTER.on_event(state, "message_stop", {"type": "message_stop"})
    assert state.done is True


def test_anthropic_stream_without_event_names_uses_data_type() -> None:
    state = run_stream(anthropic.ADAPTER, [
        (None, {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ok"}}),
        (None, {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        (None, {"type": "message_stop"}),
    ])
    assert (state.parts, state.done) == (["ok"], True)


def test_anthropic_message_stop_without_a_stop_reason_is_not_the_end() -> None:
    state = run_stream(anthropic.ADAPTER, [
        (None, {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ok"}}),
        ("message_stop", {"type": "message_stop"}),
    ])
    assert state.done is False


def test_openai_role_chunk_then_done_is_not_the_end() -> None:
    state = run_stream(openai.ADAPTER, [
        (None, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]}),
    ])
    assert state.done is False


@pytest.mark.parametrize(("kind", "code"), [
    ("overloaded_error", "SERVER_ERROR"), ("api_error", "SERVER_ERROR"),
    ("rate_limit_error", "RATE_LIMIT_EXCEEDED"), ("invalid_request_error", "REQUEST_FAILED"),
])
def test_anthropic_stream_error_event(kind: str, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        anthropic.ADAPTER.on_event(StreamState(), "error", {
            "type": "error", "error": {"type": kind, "message": "Something"}})
    assert raised(caught) == (code, "Something")


@pytest.mark.parametrize(("body", "info"), [
    ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
      "request_id": "req_011"},
     ErrorInfo("Overloaded", "overloaded_error")),
    ({"type": "error", "error": {"type": "rate_limit_error",
                                 "message": "You have reached your specified API usage limits.",
                                 "details": {"error_visibility": "user_facing",
                                             "error_code": "enforced_spend_limit_reached"}}},
     ErrorInfo("You have reached your specified API usage limits.",
               "rate_limit_error enforced_spend_limit_reached")),
    ({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
     ErrorInfo("invalid x-api-key", "authentication_error")),
    (HTML_502, ErrorInfo("502 Bad Gateway 502 Bad Gateway nginx")),
])
def test_anthropic_error_info(body: Any, info: ErrorInfo) -> None:
    assert anthropic.ADAPTER.error_info(body) == info


# --- Gemini --------------------------------------------------------------------------------


def test_gemini_build() -> None:
    call = gemini.ADAPTER.build(request(params={**PARAMS, "extra": {"safetySettings": []}},
                                        model="models/gemini-2.5-flash"))
    assert call == HttpCall("/models/gemini-2.5-flash:generateContent", {
        "contents": [{"role": "user", "parts": [{"text": "Say hi"}]},
                     {"role": "model", "parts": [{"text": "Hi"}]},
                     {"role": "user", "parts": [{"text": "Again"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64, "topP": 0.9,
                             "stopSequences": ["\n\n"], "seed": 7},
        "safetySettings": []})
    assert call.query is None


def test_gemini_build_streaming_without_params() -> None:
    call = gemini.ADAPTER.build(ChatRequest("gemini-2.5-flash", (USER,), {}, True))
    assert call.path == "/models/gemini-2.5-flash:streamGenerateContent"
    assert dict(call.query or {}) == {"alt": "sse"}
    assert call.json == {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}


def test_gemini_parse_skips_thoughts_and_counts_them_as_output() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think", "thought": True}, {"text": "Hello"}, {"text": "!"}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2,
                              "totalTokenCount": 40, "thoughtsTokenCount": 30},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"}
    assert gemini.ADAPTER.parse(body) == Completion("Hello!", "STOP", 8, 32, None, reasoning_tokens=30)


def test_gemini_parse_blocked_prompt_is_an_empty_answer() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}
    assert gemini.ADAPTER.parse(body) == Completion("", "BLOCKED:SAFETY", 9, None, None)


def test_gemini_parse_error_and_missing_candidates() -> None:
    with pytest.raises(ProviderError) as caught:
        gemini.ADAPTER.parse({"error": {"code": 503, "message": "The model is overloaded.",
                                        "status": "UNAVAILABLE"}})
    assert raised(caught) == ("SERVER_ERROR", "The model is overloaded.")
    with pytest.raises(ProviderError) as caught:
        gemini.ADAPTER.parse({"usageMetadata": {}})
    assert raised(caught) == ("INVALID_RESPONSE",
                                         'answer has no candidates: {"usageMetadata": {}}')


def test_gemini_stream_ends_at_the_chunk_with_a_finish_reason() -> None:
    def chunk(text: str, **more: Any) -> dict[str, Any]:
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0,
                     **more}
        return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash",
                "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}

    state = StreamState()
    gemini.ADAPTER.on_event(state, None, chunk("Hel"))
    gemini.ADAPTER.on_event(state, None, chunk("lo"))
    assert state.done is False
    last = chunk(" you", finishReason="MAX_TOKENS")
    last["usageMetadata"] = {"promptTokenCount": 7, "candidatesTokenCount": 3,
                             "totalTokenCount": 14, "thoughtsTokenCount": 4}
    gemini.ADAPTER.on_event(state, None, last)
    assert state.done is True
    assert state.completion() == Completion("Hello you", "MAX_TOKENS", 7, 7, None, reasoning_tokens=4)


def test_gemini_stream_error_array() -> None:
    with pytest.raises(ProviderError) as caught:
        gemini.ADAPTER.on_event(StreamState(), None, [{"error": {
            "code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": "2s"}]}}])
    assert raised(caught) == ("RATE_LIMIT_EXCEEDED", "Resource has been exhausted")
    assert caught.value.retry_after == 2.0


GEMINI_BAD_KEY = {"error": {
    "code": 400, "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                 "message": "API key not valid. Please pass a valid API key."}]}}

GEMINI_PER_DAY = {"error": {
    "code": 429, "message": "You exceeded your current quota, please check your plan.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/"
                                   "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "250"}]},
                {"@type": "type.googleapis.com/google.rpc.Help",
                 "links": [{"description": "Learn more", "url": "https://ai.google.dev/"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                 "retryDelay": "57.238747106s"}]}}


@pytest.mark.parametrize(("body", "info"), [
    (GEMINI_BAD_KEY, ErrorInfo("API key not valid. Please pass a valid API key.",
                               "INVALID_ARGUMENT API_KEY_INVALID")),
    (GEMINI_PER_DAY, ErrorInfo("You exceeded your current quota, please check your plan.",
                               "RESOURCE_EXHAUSTED "
                               "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                               57.238747106)),
    ([GEMINI_BAD_KEY], ErrorInfo("API key not valid. Please pass a valid API key.",
                                 "INVALID_ARGUMENT API_KEY_INVALID")),
    ({"error": {"code": 429, "message": "Slow down", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                             "retryDelay": "17s"}]}},
     ErrorInfo("Slow down", "RESOURCE_EXHAUSTED", 17.0)),
    (HTML_502, ErrorInfo("502 Bad Gateway 502 Bad Gateway nginx")),
])
def test_gemini_error_info(body: Any, info: ErrorInfo) -> None:
    assert replace(gemini.ADAPTER.error_info(body), status=None) == info


# --- Ollama --------------------------------------------------------------------------------


def test_ollama_build() -> None:
    call = ollama.ADAPTER.build(request(params={**PARAMS, "extra": {"keep_alive": "5m"}}))
    assert call == HttpCall("/api/chat", {
        "model": "m-1", "messages": MESSAGES, "stream": False,
        "options": {"temperature": 0.2, "num_predict": 64, "top_p": 0.9, "stop": ["\n\n"],
                    "seed": 7},
        "keep_alive": "5m"})
    assert ollama.ADAPTER.stream_format == "ndjson"


def test_ollama_build_streaming_without_options() -> None:
    call = ollama.ADAPTER.build(request(stream=True, params={}))
    assert call.json == {"model": "m-1", "messages": MESSAGES, "stream": True}


def test_ollama_parse() -> None:
    body = {"model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Hello!"}, "done": True,
            "done_reason": "stop", "total_duration": 5191566416, "load_duration": 2154458,
            "prompt_eval_count": 26, "prompt_eval_duration": 383809000, "eval_count": 298,
            "eval_duration": 4799921000}
    assert ollama.ADAPTER.parse(body) == Completion("Hello!", "stop", 26, 298, None)


def test_ollama_parse_error() -> None:
    with pytest.raises(ProviderError) as caught:
        ollama.ADAPTER.parse({"error": "model is required"})
    # Bare text on a 200 says nothing of its kind: retried like a 5xx (a 400 would carry its status).
    assert raised(caught) == ("SERVER_ERROR", "model is required")


def test_ollama_stream() -> None:
    def line(content: str) -> dict[str, Any]:
        return {"model": "llama3.2", "created_at": "t",
                "message": {"role": "assistant", "content": content}, "done": False}

    state = run_stream(ollama.ADAPTER, [(None, line("The")), (None, line(" sky"))])
    assert state.done is False
    ollama.ADAPTER.on_event(state, None, {
        "model": "llama3.2", "created_at": "t", "message": {"role": "assistant", "content": ""},
        "done": True, "done_reason": "length", "total_duration": 1, "prompt_eval_count": 12,
        "eval_count": 2})
    assert state.done is True
    assert state.completion() == Completion("The sky", "length", 12, 2, None)


def test_ollama_stream_error_line() -> None:
    state = run_stream(ollama.ADAPTER, [(None, {"message": {"content": "The"}, "done": False})])
    with pytest.raises(ProviderError) as caught:
        ollama.ADAPTER.on_event(state, None, {"error": "an error was encountered while running "
                                                       "the model: unexpected EOF"})
    assert raised(caught) == (
        "SERVER_ERROR", "an error was encountered while running the model: unexpected EOF")


@pytest.mark.parametrize(("body", "info"), [
    ({"error": "model 'llama9' not found"},
     ErrorInfo("model 'llama9' not found", "model 'llama9' not found")),
    ({"error": {"message": "model \"x\" not found, try pulling it first",
                "type": "not_found_error", "param": None, "code": None}},
     ErrorInfo("model \"x\" not found, try pulling it first", "not_found_error")),
    ("404 page not found", ErrorInfo("404 page not found")),
])
def test_ollama_error_info(body: Any, info: ErrorInfo) -> None:
    assert ollama.ADAPTER.error_info(body) == info


# --- shared helpers ------------------------------------------------------------------------


def test_excerpt_is_one_short_line_without_markup() -> None:
    page = ("<!DOCTYPE html><html><head><title>Just a moment...</title>"
            "<style>body{color:red}</style><script>var a = '<b>';</script></head>"
            "<body>" + "word " * 100 + "</body></html>")
    text = excerpt(page)
    assert len(text) == 200
    assert text.startswith("Just a moment... word word")
    assert text.endswith("…")
    assert "\n" not in excerpt("line one\n  line two") == "line one line two"


# --- classification: structured fields first, words last -----------------------------------

OPENAI_RPM_BILLING = ("Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, "
                      "Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/"
                      "rate-limits to learn more. You can increase your rate limit by adding a payment method to "
                      "your account at https://platform.openai.com/account/billing.")
GEMINI_BILLING = "You exceeded your current quota, please check your plan and billing details."


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": quota_id}]}


@pytest.mark.parametrize(("adapter", "status", "body", "code"), [
    (openai.ADAPTER, 429, {"error": {"message": OPENAI_RPM_BILLING, "type": "requests", "param": None,
                                     "code": "rate_limit_exceeded"}}, "RATE_LIMIT_EXCEEDED"),
    (openai.ADAPTER, 429, {"error": {"message": "You exceeded your current quota, please check your plan and "
                                     "billing details.", "type": "insufficient_quota", "param": None,
                                     "code": "insufficient_quota"}}, "QUOTA_EXHAUSTED"),
    (openai.ADAPTER, 402, {"error": {"code": 402, "message": "Insufficient credits"}}, "QUOTA_EXHAUSTED"),
    (openai.ADAPTER, 404, {"error": {"code": 404, "message": "No endpoints found for x/y."}}, "MODEL_NOT_FOUND"),
    (openai.ADAPTER, 404, {"error": {"message": "Invalid URL (POST /v1/chat/completionz)",
                                     "type": "invalid_request_error"}}, "CLIENT_ERROR"),
    (openai.ADAPTER, 401, {"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error",
                                     "code": None}}, "INVALID_API_KEY"),
    (anthropic.ADAPTER, 429, {"type": "error", "error": {"type": "rate_limit_error",
                                                         "message": "Number of request tokens has exceeded your "
                                                         "per-minute rate limit"}}, "RATE_LIMIT_EXCEEDED"),
    (anthropic.ADAPTER, 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "limit",
                                                         "details": {"error_code": "enforced_spend_limit_reached"}}},
     "QUOTA_EXHAUSTED"),
    (anthropic.ADAPTER, 400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits."}}, "QUOTA_EXHAUSTED"),
    (anthropic.ADAPTER, 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                         "message": "max_tokens: Field required"}}, "CLIENT_ERROR"),
    (anthropic.ADAPTER, 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
     "SERVER_ERROR"),
    (gemini.ADAPTER, 429, {"error": {"code": 429, "message": GEMINI_BILLING, "status": "RESOURCE_EXHAUSTED",
                                     "details": [quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                                                 {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                  "retryDelay": "17s"}]}}, "RATE_LIMIT_EXCEEDED"),
    (gemini.ADAPTER, 429, {"error": {"code": 429, "message": GEMINI_BILLING, "status": "RESOURCE_EXHAUSTED",
                                     "details": [quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier")]}},
     "QUOTA_EXHAUSTED"),
    (ollama.ADAPTER, 429, {"error": "you (alice) have reached your weekly usage limit, upgrade for higher limits: "
                                    "https://ollama.com/upgrade"}, "QUOTA_EXHAUSTED"),
    (ollama.ADAPTER, 429, {"error": "rate limit exceeded"}, "RATE_LIMIT_EXCEEDED"),
])
def test_classify_reads_structured_fields_before_words(adapter: Any, status: int, body: Any, code: str) -> None:
    assert adapter.classify(status, adapter.error_info(body)) == code


@pytest.mark.parametrize(("adapter", "event", "data", "code"), [
    # LiteLLM's proxy, when its Gemini upstream fails mid-stream
    (openai.ADAPTER, None, {"error": {"message": "litellm.InternalServerError: boom", "type": "internal_server_error",
                                      "param": None, "code": "500"}}, "SERVER_ERROR"),
    (openai.ADAPTER, None, {"error": {"message": "litellm.InternalServerError: boom", "type": "internal_server_error",
                                      "param": None}}, "SERVER_ERROR"),
    (openai.ADAPTER, None, {"error": {"message": "bad", "type": "invalid_request_error"}}, "REQUEST_FAILED"),
    (ollama.ADAPTER, None, {"error": "an error was encountered while running the model"}, "SERVER_ERROR"),
    (gemini.ADAPTER, None, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
     "SERVER_ERROR"),
    (anthropic.ADAPTER, "error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
     "RATE_LIMIT_EXCEEDED"),
])
def test_a_transient_inband_error_is_retryable(adapter: Any, event: str | None, data: Any, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter.on_event(StreamState(), event, data)
    assert caught.value.code == code


def test_lm_studio_200_error_is_transient_unless_it_names_a_wrong_path() -> None:
    with pytest.raises(ProviderError) as caught:
        openai.ADAPTER.parse({"error": "Model unloaded."})
    assert caught.value.code == ErrorCode.SERVER_ERROR
    with pytest.raises(ProviderError) as caught:
        openai.ADAPTER.parse({"error": "Unexpected endpoint or method. (POST /chat/completions)"})
    assert caught.value.code == ErrorCode.INVALID_RESPONSE
