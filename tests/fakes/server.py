"""A fake LLM provider server for the test suite.

One aiohttp server on 127.0.0.1 (own thread, own event loop, ephemeral port) speaks the real wire
protocol of every provider in /work/shared/provider-facts.md under a per-flavor URL prefix, checks
each provider's auth, records every request and serves injectable faults.

    with FakeServer() as fake:
        fake.add_fault("429", flavor="openai", retry_after=0.01)
        httpx.post(fake.base_url("openai") + "/chat/completions", ...)

Answers are deterministic: the reply is f"{model} says: {last user message}", tokens are words;
fake.add_reply(text, contains=...) makes matching requests answer ``text`` instead (a grader's verdict).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import asks as fakeasks

FLAVORS = ("openai", "groq", "openrouter", "sambanova", "lmstudio", "anthropic", "gemini", "ollama")
# Path of the OpenAI-compatible API below each flavor's fake host (= the real host's path).
OPENAI_API = {"openai": "/v1", "groq": "/openai/v1", "openrouter": "/api/v1", "sambanova": "/v1",
              "lmstudio": "/v1"}
BASE_PATH = {**OPENAI_API, "anthropic": "", "gemini": "/v1beta", "ollama": ""}
NO_AUTH = ("lmstudio", "ollama")
FAULT_KINDS = ("429", "rpm_429", "quota", "no_endpoints", "401", "500", "503", "529", "slow", "malformed", "html",
               "disconnect", "cut_stream", "early_done", "drip", "stall", "error_200", "missing_fields", "huge",
               "stream_error", "no_usage", "surrogate", "empty_answer")
DEFAULT_MODELS = {
    "openai": ["gpt-4o-mini", "gpt-4o"],
    "groq": ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"],
    "openrouter": ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct:free"],
    "sambanova": ["Meta-Llama-3.1-8B-Instruct", "DeepSeek-V3-0324"],
    "lmstudio": ["qwen2.5-7b-instruct", "text-embedding-nomic-embed-text-v1.5"],
    "anthropic": ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514", "claude-opus-4-1-20250805"],
    "gemini": ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite", "text-embedding-004"],
    "ollama": ["llama3.2:latest", "qwen2.5:7b"],
}
RATE_HEADERS = {
    "openai": {"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
               "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "2000000",
               "x-ratelimit-remaining-tokens": "1999990", "x-ratelimit-reset-tokens": "0s"},
    "anthropic": {"anthropic-ratelimit-requests-limit": "4000",
                  "anthropic-ratelimit-requests-remaining": "3999",
                  "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"},
}
RATE_HEADERS["groq"] = RATE_HEADERS["openai"]
FINISH = {  # protocol family -> our finish kind -> wire value
    "openai": {"stop": "stop", "length": "length", "stop_sequence": "stop"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"},
    "gemini": {"stop": "STOP", "length": "MAX_TOKENS", "stop_sequence": "STOP"},
    "ollama": {"stop": "stop", "length": "length", "stop_sequence": "stop"},
}
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                   403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                   529: "overloaded_error"}
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 529: "UNAVAILABLE"}
OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "requests"}
SERVER_ERRORS = {500: "The server had an error while processing your request. Sorry about that!",
                 503: "The model is overloaded. Please try again later.", 529: "Overloaded"}
GEMINI_BAD_KEY = {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                  "status": "INVALID_ARGUMENT", "details": [
                      {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                       "domain": "googleapis.com",
                       "metadata": {"service": "generativelanguage.googleapis.com"}}]}
GEMINI_NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity)."
                 " Please use API Key or other form of API consumer identity to call this API.")
# OpenAI's free-tier per-minute limit, verbatim (github.com/feder-cr/invisible_playwright_mcp/issues/249):
# a rate limit whose message mentions billing.
OPENAI_RPM = ("Rate limit reached for {model} in organization org-OOhFjD3fpmItZTQAxWOQx11o on requests per min "
              "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
              "https://platform.openai.com/account/rate-limits to learn more. You can increase your rate limit by "
              "adding a payment method to your account at https://platform.openai.com/account/billing.")
GEMINI_QUOTA = "You exceeded your current quota, please check your plan and billing details. For more information"\
    " on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
# Ollama's cloud models past their plan (github.com/diegosouzapw/OmniRoute/issues/3709).
OLLAMA_USAGE_LIMIT = "you (alice) have reached your weekly usage limit, upgrade for higher limits: https://ollama.com/upgrade"
# The chunk a llama.cpp server sends before [DONE] on a stream it cuts short.
LLAMA_CPP_ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}],
                  "created": 1735689600, "id": "chatcmpl-cut", "model": "m", "system_fingerprint": "b4000-fake",
                  "object": "chat.completion.chunk"}
HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
GEMINI_CHAT = re.compile(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)")
WORDS = re.compile(r"\s*\S+(?:\s+$)?")


@dataclass
class Recorded:
    time: float
    flavor: str | None
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    model: str | None
    chat: bool = False  # a chat/generation request (what max_in_window / max_concurrent count)


@dataclass
class _Fault:
    kind: str
    flavor: str | None
    model: str | None
    times: int
    probability: float | None
    rng: random.Random
    options: dict[str, Any]


@dataclass
class _Chat:
    """A chat request reduced to what the fake needs, whatever the protocol."""

    model: str
    stream: bool
    prompt: str
    input_tokens: int
    max_tokens: int | None
    stops: list[str]
    include_usage: bool = False
    json_schema: Any = None  # set with wants_json: the schema the answer must match
    wants_json: bool = False
    tool: tuple[str, Any] | None = None  # (name, parameters) of the tool to call
    image: bool = False  # the request carries an image


@dataclass
class _Answer:
    text: str
    finish: str  # stop | length | stop_sequence
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    pieces: list[str] = field(default_factory=list)  # stream chunks; "".join(pieces) == text
    tool_call: tuple[str, Any] | None = None  # (name, arguments) when the answer calls a tool
    reasoning: int = 0  # reasoning tokens, part of output_tokens
    cached: int = 0  # input tokens read from the cache, part of input_tokens


def _text(value: Any) -> str:
    """Plain text of a message content: a string, a list of parts/blocks, or a Gemini content."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    if isinstance(value, dict):
        for key in ("text", "parts", "content"):
            if key in value:
                return _text(value[key])
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def answer_for(chat: _Chat, huge: int | None = None, reply: str | None = None) -> _Answer:
    if reply is not None:
        return _Answer(reply, "stop", None, chat.input_tokens, _words(reply), WORDS.findall(reply) or [""])
    if huge is not None:
        text = ("lorem " * (huge // 6 + 1))[:huge]
        pieces = [text[i:i + 65536] for i in range(0, len(text), 65536)]
        return _Answer(text, "stop", None, chat.input_tokens, _words(text), pieces)
    if chat.tool is not None:
        arguments = fakeasks.example(chat.tool[1] or {}, fakeasks.last_word(chat.prompt))
        text = fakeasks.arguments_text(arguments)
        return _with_details(chat, _Answer("", "stop", None, chat.input_tokens, _words(text), [text],
                                           (chat.tool[0], arguments)))
    if chat.wants_json:
        text = json.dumps(fakeasks.example(chat.json_schema or {"type": "object", "properties": {
            "answer": {"type": "string"}}}, fakeasks.last_word(chat.prompt)))
        return _with_details(chat, _Answer(text, "stop", None, chat.input_tokens, len(WORDS.findall(text)),
                                           WORDS.findall(text)))
    text, finish, stop_seq = f"{chat.model} says: {chat.prompt}", "stop", None
    hits = [(text.find(s), s) for s in chat.stops if s and s in text]
    if hits:
        cut, stop_seq = min(hits)
        text, finish = text[:cut], "stop_sequence"
    pieces = WORDS.findall(text)
    if chat.max_tokens is not None and 0 <= chat.max_tokens < len(pieces):
        pieces, finish, stop_seq = pieces[:chat.max_tokens], "length", None
        text = "".join(pieces)
    return _with_details(chat, _Answer(text, finish, stop_seq, chat.input_tokens, len(pieces), pieces or [""]))


def _with_details(chat: _Chat, ans: _Answer) -> _Answer:
    """Reasoning and cached tokens for models named for them (see tests/fakes/asks.py)."""
    if "think" in chat.model:
        ans.reasoning = fakeasks.REASONING_TOKENS
        ans.output_tokens += ans.reasoning
    if "cache" in chat.model:
        ans.cached = min(fakeasks.CACHED_TOKENS, ans.input_tokens)
    return ans


# ---------------------------------------------------------------- error bodies, per flavor


def error_body(flavor: str, status: int, message: str, *, etype: str | None = None,
                code: Any = None, details: Any = None) -> Any:
    if flavor == "anthropic":
        err: dict[str, Any] = {"type": etype or ANTHROPIC_TYPES.get(status, "api_error"),
                               "message": message}
        if details:
            err["details"] = details
        return {"type": "error", "error": err, "request_id": "req_fake0001"}
    if flavor == "gemini":
        err = {"code": status, "message": message, "status": etype or GOOGLE_STATUS.get(status, "UNKNOWN")}
        if details:
            err["details"] = details
        return {"error": err}
    if flavor == "ollama":
        return {"error": message}
    if flavor == "openrouter":
        return {"error": {"code": status, "message": message}}
    body: dict[str, Any] = {"error": {"message": message, "param": None, "code": code,
                                      "type": etype or OPENAI_TYPES.get(status, "server_error")}}
    if flavor == "sambanova":
        body["request_id"] = "fake-request-0001"
    return body


def failure(flavor: str, status: int, message: str, headers: dict[str, str] | None = None,
           **kw: Any) -> web.Response:
    return web.json_response(error_body(flavor, status, message, **kw), status=status, headers=headers)


def _bad_key(flavor: str, given: str | None) -> web.Response:
    if flavor == "gemini":
        if not given:
            return failure(flavor, 403, GEMINI_NO_KEY)
        return web.json_response({"error": GEMINI_BAD_KEY}, status=400)
    if flavor == "anthropic":
        return failure(flavor, 401, "invalid x-api-key" if given else "x-api-key header is required")
    if flavor == "openrouter":
        return failure(flavor, 401, "User not found." if given else "No cookie auth credentials found")
    if flavor == "ollama":
        return failure(flavor, 401, "unauthorized")
    if not given:
        return failure(flavor, 401, "You didn't provide an API key. You need to provide your API key in"
                      " an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    message = {"groq": "Invalid API Key", "sambanova": "Invalid API key",
               "lmstudio": "Invalid LM Studio API token"}.get(
        flavor, f"Incorrect API key provided: {given[:3]}***{given[-4:]}. You can find your API key"
                " at https://platform.openai.com/account/api-keys.")
    return failure(flavor, 401, message, code="invalid_api_key")


def _model_not_found(flavor: str, model: str) -> web.Response:
    if flavor == "anthropic":
        return failure(flavor, 404, f"model: {model}")
    if flavor == "gemini":
        return failure(flavor, 404, f"models/{model} is not found for API version v1beta, or is not "
                      "supported for generateContent. Call ListModels to see the list of available "
                      "models and their supported methods.")
    if flavor == "ollama":
        return failure(flavor, 404, f"model '{model}' not found")
    if flavor == "openrouter":  # the real OpenRouter answers an unknown model with 400, not 404
        return failure(flavor, 400, f"{model} is not a valid model ID")
    return failure(flavor, 404, f"The model `{model}` does not exist or you do not have access to it.",
                  code="model_not_found")


def _fault_error(kind: str, flavor: str, model: str, opts: dict[str, Any]) -> web.Response:
    if kind == "401":
        return _bad_key(flavor, "wrong-key-0000")
    if kind in ("500", "503", "529"):
        status = int(kind)
        etype = "overloaded_error" if flavor == "anthropic" and status in (503, 529) else None
        return failure(flavor, status, SERVER_ERRORS[status], etype=etype)
    if kind == "quota":
        if flavor == "openrouter":
            return failure(flavor, 402, "Insufficient credits. Add more using https://openrouter.ai/credits")
        if flavor == "anthropic":
            return failure(flavor, 429, "You have reached your specified workspace API usage limits.",
                          details={"error_code": "enforced_spend_limit_reached"})
        if flavor == "ollama":
            return failure(flavor, 429, OLLAMA_USAGE_LIMIT)
        if flavor == "gemini":
            return failure(flavor, 429, GEMINI_QUOTA, details=[{
                              "@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                                  "quotaMetric": "generativelanguage.googleapis.com/"
                                                 "generate_content_free_tier_requests",
                                  "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                                  "quotaDimensions": {"location": "global", "model": model},
                                  "quotaValue": "250"}]}])
        return failure(flavor, 429, "You exceeded your current quota, please check your plan and billing"
                      " details.", etype="insufficient_quota", code="insufficient_quota")
    if kind == "no_endpoints":  # OpenRouter: a model id no upstream serves
        return failure(flavor, 404, f"No endpoints found for {model}.")
    if kind == "rpm_429":
        return _rpm_429(flavor, model, float(opts.get("retry_after", 0.2)))
    # kind == "429"
    after, after_ms = opts.get("retry_after"), opts.get("retry_after_ms")
    if flavor == "gemini":
        delay = after if after is not None else (after_ms / 1000 if after_ms is not None else None)
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{_num(delay)}s"}]
        return failure(flavor, 429, "Resource has been exhausted (e.g. check quota).",
                      details=details if delay is not None else None)
    headers = {}
    if after is not None:
        headers["Retry-After"] = _num(after)
    if after_ms is not None:
        headers["retry-after-ms"] = _num(after_ms)
    message = {"anthropic": "This request would exceed the rate limit for your organization of 50 "
                            "requests per minute.",
               "openrouter": "Rate limit exceeded: free-models-per-min.",
               "ollama": "rate limit exceeded"}.get(
        flavor, f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, "
                "Requested 1. Please try again in 20s.")
    return failure(flavor, 429, message, headers, code="rate_limit_exceeded")


def _rpm_429(flavor: str, model: str, after: float) -> web.Response:
    """A per-minute rate limit in the provider's real words, several of which mention billing."""
    if flavor == "gemini":  # the same words as the per-day quota; only quotaId and RetryInfo differ
        return failure(flavor, 429, GEMINI_QUOTA, details=[
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{_num(after)}s"}])
    headers = {"retry-after": _num(after)}
    if flavor == "anthropic":
        return failure(flavor, 429, "This request would exceed the rate limit for your organization "
                      "(fake-org) of 5 input tokens per minute. For details, refer to: "
                      "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
                      "current usage. Please reduce the prompt length or the maximum tokens requested, or try "
                      "again later. You may also contact sales at https://www.anthropic.com/contact-sales to "
                      "discuss your options for a rate limit increase.", headers)
    return failure(flavor, 429, OPENAI_RPM.format(model=model), headers, etype="requests",
                  code="rate_limit_exceeded")


# ---------------------------------------------------------------- request parsing, per protocol


def _family(flavor: str) -> str:
    return "openai" if flavor in OPENAI_API else flavor


def parse_chat(flavor: str, body: dict[str, Any], gemini: re.Match[str] | None) -> _Chat | str:
    """The chat request in ``body`` with what it asks beyond text (JSON, a tool, an image), or why it is
    refused: the same for a synchronous request and a batch line."""
    chat = _parse_request(flavor, body, gemini)
    if isinstance(chat, _Chat):
        family = _family(flavor)
        chat.wants_json, chat.json_schema = fakeasks.wanted_json(family, body)
        chat.tool = fakeasks.wanted_tool(family, body)
        chat.image = fakeasks.has_image(family, body)
    return chat


def _parse_request(flavor: str, body: dict[str, Any], gemini: re.Match[str] | None) -> _Chat | str:
    """A _Chat, or the message of the 400 the provider would answer."""
    family = _family(flavor)
    if family == "gemini":
        contents = body.get("contents")
        if not isinstance(contents, list):
            return "* GenerateContentRequest.contents: contents is not specified"
        system = body.get("systemInstruction", body.get("system_instruction"))
        users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
        config = body.get("generationConfig", body.get("generation_config")) or {}
        limit = config.get("maxOutputTokens", config.get("max_output_tokens"))
        stops = config.get("stopSequences", config.get("stop_sequences")) or []
        return _Chat(gemini.group(1) if gemini else "", bool(gemini and gemini.group(2) != "generateContent"),
                     _text(users[-1]) if users else "", _words(_text(system) + " " + _text(contents)),
                     limit, list(stops))
    if not isinstance(body.get("model"), str):
        return {"anthropic": "model: Field required", "ollama": "model is required"}.get(
            family, "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required" if family == "anthropic" else "'messages' is a required property"
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    prompt = _text(users[-1].get("content")) if users else ""
    words = sum(_words(_text(m.get("content"))) for m in messages if isinstance(m, dict))
    if family == "anthropic":
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        return _Chat(body["model"], bool(body.get("stream")), prompt,
                     words + _words(_text(body.get("system", ""))), body["max_tokens"],
                     list(body.get("stop_sequences") or []))
    if family == "ollama":
        opts = body.get("options") or {}
        stops = opts.get("stop") or []
        return _Chat(body["model"], body.get("stream", True) is not False, prompt, words,
                     opts.get("num_predict"), [stops] if isinstance(stops, str) else list(stops))
    stops = body.get("stop") or []
    include = bool((body.get("stream_options") or {}).get("include_usage"))
    return _Chat(body["model"], bool(body.get("stream")), prompt, words,
                 body.get("max_completion_tokens", body.get("max_tokens")),
                 [stops] if isinstance(stops, str) else list(stops), include)


# ---------------------------------------------------------------- answers, per protocol


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _openai_usage(flavor: str, ans: _Answer, price: tuple[float, float]) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": ans.input_tokens, "completion_tokens": ans.output_tokens,
                             "total_tokens": ans.input_tokens + ans.output_tokens}
    if flavor == "openrouter":
        usage["cost"] = ans.input_tokens * price[0] + ans.output_tokens * price[1]
    if flavor == "groq":
        usage.update(queue_time=0.01, prompt_time=0.001, completion_time=0.002, total_time=0.003)
    if ans.cached or ans.reasoning:  # reasoning is inside completion_tokens, cached inside prompt_tokens
        usage["prompt_tokens_details"] = {"cached_tokens": ans.cached}
        usage["completion_tokens_details"] = {"reasoning_tokens": ans.reasoning}
    return usage


def render_answer(flavor: str, chat: _Chat, ans: _Answer, price: tuple[float, float]) -> tuple[
        Any, list[bytes], list[bytes], list[bytes], bytes]:
    """(full JSON body, stream head frames, content frames, tail frames, mid-stream error frame)."""
    family = _family(flavor)
    finish = FINISH[family][ans.finish]
    now = int(time.time())
    call = ans.tool_call
    args_text = fakeasks.arguments_text(call[1]) if call else ""
    # The arguments' JSON in two pieces, as the streaming APIs send it.
    arg_pieces = [args_text[:len(args_text) // 2], args_text[len(args_text) // 2:]]
    if family == "anthropic":
        # input_tokens counts what was not read from the cache.
        usage = {"input_tokens": ans.input_tokens - ans.cached, "output_tokens": ans.output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": ans.cached}
        blocks: list[dict[str, Any]] = [{"type": "text", "text": ans.text}]
        if call:
            finish = "tool_use"
            blocks = [{"type": "tool_use", "id": "toolu_fake01", "name": call[0], "input": call[1]}]
        message = {"id": "msg_fake0001", "type": "message", "role": "assistant", "model": chat.model,
                   "content": blocks, "stop_reason": finish,
                   "stop_sequence": ans.stop_sequence, "usage": usage}
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        first = {"type": "tool_use", "id": "toolu_fake01", "name": call[0], "input": {}} if call else {
            "type": "text", "text": ""}
        head = [_sse({"type": "message_start", "message": start}, "message_start"),
                _sse({"type": "content_block_start", "index": 0,
                      "content_block": first}, "content_block_start"),
                _sse({"type": "ping"}, "ping")]
        content = [_sse({"type": "content_block_delta", "index": 0,
                         "delta": {"type": "text_delta", "text": p}}, "content_block_delta")
                   for p in ans.pieces]
        if call:
            content = [_sse({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "input_json_delta", "partial_json": p}}, "content_block_delta")
                       for p in arg_pieces]
        tail = [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                _sse({"type": "message_delta", "usage": {"output_tokens": ans.output_tokens},
                      "delta": {"stop_reason": finish, "stop_sequence": ans.stop_sequence}},
                     "message_delta"),
                _sse({"type": "message_stop"}, "message_stop")]
        error = _sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                     "error")
        return message, head, content, tail, error
    if family == "gemini":
        # Thoughts are counted beside the candidates, cached tokens inside the prompt's.
        meta = {"promptTokenCount": ans.input_tokens, "candidatesTokenCount": ans.output_tokens - ans.reasoning,
                "totalTokenCount": ans.input_tokens + ans.output_tokens}
        if ans.reasoning:
            meta["thoughtsTokenCount"] = ans.reasoning
        if ans.cached:
            meta["cachedContentTokenCount"] = ans.cached

        def chunk(text: str, last: bool) -> dict[str, Any]:
            parts: list[dict[str, Any]] = [{"text": text}] if text else []  # as LiteLLM sends an empty one
            if call:
                parts = [{"functionCall": {"name": call[0], "args": call[1]}}]
            cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if last:
                cand["finishReason"] = finish
            usage = meta if last else {"promptTokenCount": ans.input_tokens,
                                       "totalTokenCount": ans.input_tokens}
            return {"candidates": [cand], "usageMetadata": usage, "modelVersion": chat.model,
                    "responseId": "fake-response-0001"}
        full = chunk(ans.text, True)
        content = [_sse(chunk(p, False)) for p in ans.pieces[:-1]]
        error = _sse(error_body("gemini", 503, SERVER_ERRORS[503]))
        return full, [], content, [_sse(chunk(ans.pieces[-1] if ans.pieces else "", True))], error
    if family == "ollama":
        stamp = "2025-01-01T00:00:00.000000Z"
        reply: dict[str, Any] = {"role": "assistant", "content": ans.text}
        if call:
            reply["tool_calls"] = [{"function": {"name": call[0], "arguments": call[1]}}]
        done = {"model": chat.model, "created_at": stamp,
                "message": reply, "done": True,
                "done_reason": finish, "total_duration": 5_000_000, "load_duration": 1_000_000,
                "prompt_eval_count": ans.input_tokens, "prompt_eval_duration": 1_000_000,
                "eval_count": ans.output_tokens, "eval_duration": 3_000_000}
        content = [(json.dumps({"model": chat.model, "created_at": stamp, "done": False,
                                "message": {"role": "assistant", "content": p}}) + "\n").encode()
                   for p in ans.pieces]
        if call:  # Ollama sends a call whole, in one line
            content = [(json.dumps({"model": chat.model, "created_at": stamp, "done": False,
                                    "message": reply}) + "\n").encode()]
        last = {**done, "message": {"role": "assistant", "content": ""}}
        error = (json.dumps({"error": "an error was encountered while running the model"}) + "\n").encode()
        return done, [], content, [(json.dumps(last) + "\n").encode()], error
    usage = _openai_usage(flavor, ans, price)
    base = {"id": "chatcmpl-fake0001", "created": now, "model": chat.model,
            "system_fingerprint": "fp_fake"}
    reply = {"role": "assistant", "content": ans.text}
    if call:
        finish = "tool_calls"
        reply = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_fake01", "type": "function", "function": {"name": call[0], "arguments": args_text}}]}
    full = {**base, "object": "chat.completion", "usage": usage, "choices": [
        {"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}]}
    with_usage = chat.include_usage or flavor == "openrouter"
    extra: dict[str, Any] = {"usage": None} if with_usage else {}

    def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {**base, "object": "chat.completion.chunk", **extra,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}
    head = [_sse(chunk({"role": "assistant", "content": ""}, None))]
    if flavor == "openrouter":
        head.insert(0, b": OPENROUTER PROCESSING\n\n")
    content = [_sse(chunk({"content": p}, None)) for p in ans.pieces]
    if call:  # the name and id first, then the arguments in pieces, by index
        content = [_sse(chunk({"tool_calls": [{"index": 0, "id": "call_fake01", "type": "function",
                                               "function": {"name": call[0], "arguments": ""}}]}, None))]
        content += [_sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}, None))
                    for p in arg_pieces]
    last = chunk({}, finish)
    if flavor == "groq":
        last["x_groq"] = {"id": "req_fake0001", "usage": usage}
    tail = [_sse(last)]
    if with_usage:
        tail.append(_sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
    tail.append(b"data: [DONE]\n\n")
    error = _sse(error_body(flavor, 500, "Internal error while generating the response"))
    return full, head, content, tail, error


class FakeServer:
    """The fake provider host. All public attributes may be read or changed from the test thread.

    Faults apply to chat requests only, after the auth check, first added first served.
    Handlers without latency finish without yielding, so `max_concurrent` only means something
    with `latency` > 0 (or "slow" faults). Model listings use `context_length`, `max_output`
    and `price` below; GET /key on openrouter reports the cost of what it served.
    """

    context_length = 131072
    max_output = 8192
    price = (0.000001, 0.000002)  # USD per input token, per output token

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.url = ""
        self.keys = {f: f"test-key-{f}" for f in FLAVORS}
        self.models = {f: list(m) for f, m in DEFAULT_MODELS.items()}
        self.requests: list[Recorded] = []
        self.max_concurrent: dict[str, int] = {f: 0 for f in FLAVORS}
        self.openrouter_usage = 0.0  # USD spent, reported by GET /key
        self._in_flight: dict[str, int] = {f: 0 for f in FLAVORS}
        self._faults: list[_Fault] = []
        self._replies: list[tuple[str | None, str | None, str, str]] = []  # (flavor, model, contains, text)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failure: BaseException | None = None
        from tests.fakes.batch import BatchFake  # here: tests.fakes.batch imports this module
        self.batch = BatchFake(self)  # the batch APIs and their controls (tests/fakes/batch.py)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(ready),),
                                        name="fakeserver", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._failure:
            raise RuntimeError("fake server did not start") from self._failure
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _main(self, ready: threading.Event) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.05)
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        except BaseException as exc:
            self._failure = exc
            await runner.cleanup()
            raise
        finally:
            ready.set()
        await self._stopping.wait()
        for task in list(self._tasks):  # slow answers in flight must not hold up stop()
            task.cancel()
        await runner.cleanup()

    def base_url(self, flavor: str) -> str:
        return f"{self.url}/{flavor}{BASE_PATH[flavor]}"

    # ------------------------------------------------------------ inspection and faults

    def count(self, flavor: str | None = None, path_contains: str | None = None) -> int:
        return sum(1 for r in list(self.requests) if (flavor is None or r.flavor == flavor)
                   and (path_contains is None or path_contains in r.path))

    def max_in_window(self, flavor: str, window: float) -> int:
        times = sorted(r.time for r in list(self.requests) if r.chat and r.flavor == flavor)
        best, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    def add_fault(self, kind: str, *, flavor: str | None = None, model: str | None = None,
                  times: int = 1, probability: float | None = None, seed: int = 0,
                  **options: Any) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if flavor is not None and flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}")
        with self._lock:
            self._faults.append(_Fault(kind, flavor, model, times, probability, random.Random(seed),
                                       options))

    def add_reply(self, text: str, *, flavor: str | None = None, model: str | None = None,
                  contains: str = "") -> None:
        """Answer ``text`` to chat requests of ``flavor``/``model`` whose last user message contains ``contains``
        (the first added that matches wins; faults still come first)."""
        with self._lock:
            self._replies.append((flavor, model, contains, text))

    def _reply_for(self, flavor: str, chat: _Chat) -> str | None:
        with self._lock:
            return next((text for f, m, contains, text in self._replies
                         if f in (None, flavor) and m in (None, chat.model) and contains in chat.prompt), None)

    def clear(self) -> None:
        with self._lock:
            self._replies.clear()
            self._faults.clear()
            self.requests.clear()
            self.batch.reset()
            self.max_concurrent.update(self._in_flight)

    def _take_fault(self, flavor: str, model: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.flavor not in (None, flavor) or fault.model not in (None, model):
                    continue
                if fault.probability is not None:
                    if fault.rng.random() < fault.probability:
                        return fault
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------ request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        flavor, _, rest = request.path[1:].partition("/")
        real = "/" + rest
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        known = flavor in FLAVORS
        gemini = GEMINI_CHAT.fullmatch(real) if flavor == "gemini" else None
        chat = known and request.method == "POST" and (
            gemini is not None or real == {"anthropic": "/v1/messages", "ollama": "/api/chat"}.get(
                flavor, OPENAI_API.get(flavor, "") + "/chat/completions"))
        model = gemini.group(1) if gemini else body.get("model") if isinstance(body, dict) else None
        self.requests.append(Recorded(arrived, flavor if known else None, request.method, request.path,
                                      dict(request.query), {k.lower(): v for k, v in request.headers.items()},
                                      body, model if isinstance(model, str) else None, chat))
        if not known:
            return web.Response(status=404, text="404: Not Found")
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if chat:
            self._in_flight[flavor] += 1
            self.max_concurrent[flavor] = max(self.max_concurrent[flavor], self._in_flight[flavor])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            denied = self._auth(flavor, real, request)
            if denied is not None:
                return denied
            if chat:
                return await self._chat(flavor, request, body, raw, gemini)
            if (batch := self.batch.handle(flavor, request, real, body, raw)) is not None:
                return batch
            return self._other(flavor, request, real, body)
        finally:
            self._tasks.discard(task)
            if chat:
                self._in_flight[flavor] -= 1

    def _auth(self, flavor: str, real: str, request: web.Request) -> web.Response | None:
        if flavor in NO_AUTH or (flavor == "openrouter" and real == "/api/v1/models"):
            return None
        headers = request.headers
        if flavor == "anthropic":
            given = headers.get("x-api-key")
        elif flavor == "gemini":
            given = headers.get("x-goog-api-key") or request.query.get("key")
        else:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            given = given.strip() if scheme.lower() == "bearer" else ""
        if given != self.keys[flavor]:
            return _bad_key(flavor, given)
        if flavor == "anthropic" and "anthropic-version" not in headers:
            return failure(flavor, 400, "anthropic-version: header is required")
        return None

    async def _chat(self, flavor: str, request: web.Request, body: Any, raw: bytes,
                    gemini: re.Match[str] | None) -> web.StreamResponse:
        if not isinstance(body, dict):
            return failure(flavor, 400, "We could not parse the JSON body of your request." if raw
                          else "Request body is missing.")
        chat = parse_chat(flavor, body, gemini)
        if isinstance(chat, str):
            return failure(flavor, 400, chat)
        if chat.image and "novision" in chat.model:
            return failure(flavor, *fakeasks.refuse_image(_family(flavor)))
        fault = self._take_fault(flavor, chat.model)
        kind = fault.kind if fault else "none"
        opts = fault.options if fault else {}
        if kind == "slow":
            await asyncio.sleep(opts.get("delay", 5.0))
        elif kind in ("429", "rpm_429", "quota", "no_endpoints", "401", "500", "503", "529"):
            return _fault_error(kind, flavor, chat.model, opts)
        elif kind == "malformed":
            return web.Response(text='{"id": "chatcmpl-broken", "choices": [{"mess',
                                content_type="application/json")
        elif kind == "html":
            return web.Response(status=502, text=HTML_502, content_type="text/html")
        elif kind == "error_200":
            return web.json_response({"error": opts.get("message", "Model unloaded.")})
        elif kind == "missing_fields":
            return web.json_response({"id": "x"})
        elif kind == "disconnect":
            return self._drop(request)
        if chat.model.startswith("missing"):
            return _model_not_found(flavor, chat.model)
        ans = answer_for(chat, opts.get("size", 5_000_000) if kind == "huge" else None, self._reply_for(flavor, chat))
        if kind == "surrogate":  # a lone surrogate, sent as the JSON escape "\ud800"
            ans.text += "\ud800"
            ans.pieces.append("\ud800")
        if kind == "empty_answer":  # LiteLLM's proxy when llama.cpp cut the stream behind it: a whole, empty answer
            ans.text, ans.pieces, ans.output_tokens = "", [], 0
        full, head, content, tail, error = render_answer(flavor, chat, ans, self.price)
        if kind == "no_usage":  # like llama.cpp: no token counts at all (non-streamed OpenAI format)
            full.pop("usage", None)
        if flavor == "openrouter":
            self.openrouter_usage += full["usage"]["cost"]
        headers = RATE_HEADERS.get(flavor, {})
        if not chat.stream:
            if kind in ("cut_stream", "stream_error"):
                if kind == "stream_error":
                    return _fault_error("500", flavor, chat.model, opts)
                data = json.dumps(full).encode()
                resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                                   "Content-Length": str(len(data))})
                await resp.prepare(request)
                await resp.write(data[: len(data) // 2])
                return self._drop(request, resp)
            return web.json_response(full, headers=headers)
        if gemini and request.query.get("alt") != "sse":  # without alt=sse Gemini streams a JSON array
            chunks = [json.loads(f[6:]) for f in content + tail]
            return web.json_response(chunks, headers=headers)
        llama_cpp = kind == "early_done" and _family(flavor) == "openai"
        if kind in ("cut_stream", "early_done"):  # ends cleanly, but before the protocol's end marker
            frames = head + content[:2]
        elif kind == "stream_error":
            if opts.get("litellm") and _family(flavor) == "openai":  # LiteLLM proxy's in-band form
                error = _sse({"error": {"message": "litellm.InternalServerError: VertexAIException - "
                                        "An internal error has occurred.", "type": "internal_server_error",
                                        "param": None, "code": "500"}})
            frames = head + content[:2] + [error]
        else:
            frames = head + content + tail
        ctype = "application/x-ndjson" if flavor == "ollama" else "text/event-stream"
        resp = web.StreamResponse(headers={**headers, "Content-Type": ctype, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if llama_cpp:
            # A llama.cpp server cutting one of two parallel streams: a role chunk, [DONE], then the
            # connection closes with the chunked body unfinished.
            await resp.write(_sse(LLAMA_CPP_ROLE) + b"data: [DONE]\n\n")
            await asyncio.sleep(0.05)
            return self._drop(request, resp)
        if kind == "drip":  # a healthy but slow stream: one frame every `interval` seconds
            for frame in frames:
                await asyncio.sleep(opts.get("interval", 0.2))
                await resp.write(frame)
        elif kind == "stall":  # `after` frames, then silence for `delay` seconds, then the rest
            after = opts.get("after", 2)
            await resp.write(b"".join(frames[:after]))
            await asyncio.sleep(opts.get("delay", 5.0))
            await resp.write(b"".join(frames[after:]))
        else:
            await resp.write(b"".join(frames))
        await resp.write_eof()
        return resp

    @staticmethod
    def _drop(request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return resp or web.Response()

    # ------------------------------------------------------------ everything that is not chat

    def _other(self, flavor: str, request: web.Request, real: str, body: Any) -> web.Response:
        method, models = request.method, self.models[flavor]
        if flavor in OPENAI_API:
            route = real.removeprefix(OPENAI_API[flavor]) if real.startswith(OPENAI_API[flavor]) else real
            if method == "GET" and route == "/models":
                return web.json_response(self._openai_models(flavor))
            if method == "GET" and flavor == "lmstudio" and real == "/api/v0/models":
                return web.json_response({"object": "list", "data": [
                    {"id": m, "object": "model", "type": "embeddings" if "embed" in m else "llm",
                     "publisher": "lmstudio-community", "arch": "qwen2", "compatibility_type": "gguf",
                     "quantization": "Q4_K_M", "state": "loaded" if i == 0 else "not-loaded",
                     "max_context_length": self.context_length} for i, m in enumerate(models)]})
            if method == "GET" and flavor == "openrouter" and route in ("/key", "/auth/key"):
                return web.json_response({"data": {
                    "label": "sk-or-v1-tes...key", "limit": None, "limit_remaining": None,
                    "limit_reset": None, "usage": self.openrouter_usage,
                    "usage_daily": self.openrouter_usage, "usage_weekly": self.openrouter_usage,
                    "usage_monthly": self.openrouter_usage, "is_free_tier": False,
                    "include_byok_in_limit": False, "rate_limit": {"requests": -1, "interval": "10s"}}})
            if flavor == "lmstudio":
                return web.json_response({"error": f"Unexpected endpoint or method. ({method} {real})"})
            return failure(flavor, 404, f"Invalid URL ({method} {real})" if flavor != "openrouter"
                          else "Not Found")
        if flavor == "anthropic" and method == "GET" and real == "/v1/models":
            return web.json_response(self._anthropic_models(request.query))
        if flavor == "gemini" and method == "GET" and real.startswith("/v1beta/models"):
            listing = self._gemini_models(request.query)
            if real == "/v1beta/models":
                return web.json_response(listing)
            name = real.removeprefix("/v1beta/")
            found = [m for m in self._gemini_models({"pageSize": "1000"})["models"] if m["name"] == name]
            return web.json_response(found[0]) if found else failure(flavor, 404, f"{name} is not found")
        if flavor == "ollama":
            if method == "GET" and real == "/api/tags":
                return web.json_response({"models": [self._ollama_model(m) for m in models]})
            if method == "GET" and real == "/api/ps":
                loaded = [{**self._ollama_model(m), "expires_at": "2030-01-01T00:00:00Z",
                           "size_vram": 2_000_000_000, "context_length": 4096} for m in models[:1]]
                return web.json_response({"models": loaded})
            if method == "GET" and real == "/api/version":
                return web.json_response({"version": "0.12.3"})
            if method == "POST" and real == "/api/show":
                name = body.get("model", body.get("name")) if isinstance(body, dict) else None
                if not isinstance(name, str) or name.startswith("missing"):
                    return _model_not_found(flavor, str(name))
                return web.json_response({
                    "modelfile": f"FROM {name}\n", "parameters": "stop \"<|eot_id|>\"",
                    "template": "{{ .Prompt }}", "details": self._ollama_model(name)["details"],
                    "model_info": {"general.architecture": "llama", "general.parameter_count": 3212749888,
                                   "llama.context_length": self.context_length},
                    "capabilities": ["completion"]})
            return web.Response(status=404, text="404 page not found")
        return failure(flavor, 404, "Not Found")

    def _openai_models(self, flavor: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        for m in self.models[flavor]:
            entry: dict[str, Any] = {"id": m, "object": "model", "created": 1700000000, "owned_by": flavor}
            if flavor == "groq":
                entry.update(active=True, context_window=self.context_length, public_apps=None,
                             max_completion_tokens=self.max_output)
            elif flavor == "sambanova":
                entry.update(context_length=self.context_length, max_completion_tokens=self.max_output,
                             pricing={"prompt": self.price[0], "completion": self.price[1]})
            elif flavor == "openrouter":
                entry = {"id": m, "canonical_slug": m, "name": m, "created": 1700000000,
                         "description": f"Fake {m}", "context_length": self.context_length,
                         "architecture": {"modality": "text->text", "input_modalities": ["text"],
                                          "output_modalities": ["text"], "tokenizer": "Other",
                                          "instruct_type": None},
                         "pricing": {"prompt": _num(self.price[0]), "completion": _num(self.price[1]),
                                     "request": "0", "image": "0"},
                         "top_provider": {"context_length": self.context_length,
                                          "max_completion_tokens": self.max_output, "is_moderated": False},
                         "per_request_limits": None,
                         "supported_parameters": ["max_tokens", "temperature", "stop"]}
            data.append(entry)
        return {"data": data} if flavor == "openrouter" else {"object": "list", "data": data}

    def _anthropic_models(self, query: Any) -> dict[str, Any]:
        ids = self.models["anthropic"]
        start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
        end = ids.index(query["before_id"]) if query.get("before_id") in ids else len(ids)
        page = ids[start:end][: int(query.get("limit", 20))]
        return {"data": [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                          "created_at": "2025-01-01T00:00:00Z", "max_input_tokens": self.context_length,
                          "max_tokens": self.max_output} for m in page],
                "has_more": start + len(page) < end, "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None}

    def _gemini_models(self, query: Any) -> dict[str, Any]:
        ids = self.models["gemini"]
        start, size = int(query.get("pageToken") or 0), int(query.get("pageSize") or 50)
        page = [{"name": f"models/{m}", "baseModelId": m, "version": "001", "displayName": m,
                 "description": f"Fake {m}", "inputTokenLimit": self.context_length,
                 "outputTokenLimit": self.max_output,
                 "supportedGenerationMethods": ["embedContent"] if "embedding" in m
                 else ["generateContent", "countTokens"]} for m in ids[start:start + size]]
        result: dict[str, Any] = {"models": page}
        if start + size < len(ids):
            result["nextPageToken"] = str(start + size)
        return result

    @staticmethod
    def _ollama_model(name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 2019393189,
                "digest": "a80c4f17acd5" + "0" * 52,
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
