"""Anthropic Messages API (``POST /v1/messages``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from ..config.providers import ModelInfo, Provider
from ..errors import ErrorCode
from . import listing
from .anthropic_shapes import (
    add_asks,
    on_block_start,
    on_input_json,
    read_cache_usage,
    read_tool_calls,
    wire_messages,
)
from .base import (
    Adapter,
    ChatRequest,
    Completion,
    ErrorInfo,
    HttpCall,
    JsonApi,
    StreamState,
    answer_object,
    as_int,
    classify_http,
    copy_params,
    excerpt,
    inband_error,
    invalid_response,
    merge_extra,
)
from .listing import entries, flags, positive_int
from .ratelimit import exhausted_for

# The API rejects a request without max_tokens; jobs may leave it unset.
DEFAULT_MAX_TOKENS = 1024
# No seed on this API: it is dropped rather than sent and rejected.
_PARAMS = {"temperature": "temperature", "top_p": "top_p", "stop": "stop_sequences"}
# (remaining, reset) header pairs; resets are RFC 3339 times.
_RATE_LIMITS = (
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ("anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"),
)

# error.type and details.error_code, in the order they decide: a 429 rate_limit_error with
# enforced_spend_limit_reached is the monthly spend cap, which no retry outlasts.
_KNOWN: Mapping[str, ErrorCode] = MappingProxyType({
    "enforced_spend_limit_reached": ErrorCode.QUOTA_EXHAUSTED,
    "billing_error": ErrorCode.QUOTA_EXHAUSTED,
    "rate_limit_error": ErrorCode.RATE_LIMIT_EXCEEDED,
    "overloaded_error": ErrorCode.SERVER_ERROR,
    "api_error": ErrorCode.SERVER_ERROR,
    "timeout_error": ErrorCode.TIMEOUT,
    "authentication_error": ErrorCode.INVALID_API_KEY,
    "permission_error": ErrorCode.INVALID_API_KEY,
})
# A spend limit or an empty balance also comes as a 400 invalid_request_error; only its words tell.
_SPENT = ("credit balance is too low", "api usage limits")


class AnthropicAdapter(Adapter):
    stream_format: Literal["sse", "ndjson"] = "sse"
    key_check_query: Mapping[str, str] | None = MappingProxyType({"limit": "1"})

    def build(self, request: ChatRequest) -> HttpCall:
        system: list[str] = []
        messages: list[Any] = []
        if request.rich:  # content blocks, tool calls and results
            system, messages = wire_messages(request)
        else:
            for message in request.messages:  # no system role here: it is a top-level field
                if message["role"] == "system":
                    system.append(message["content"])
                else:
                    messages.append(message)
        params = request.params
        max_tokens = params.get("max_tokens")
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = "\n\n".join(system)
        copy_params(params, _PARAMS, body)
        add_asks(body, request)
        if request.stream:
            body["stream"] = True
        merge_extra(body, params)
        return HttpCall("/v1/messages", body)

    def parse(self, body: Any) -> Completion:
        body = answer_object(body, self)
        content = body.get("content")
        if not isinstance(content, list):
            raise invalid_response(f"answer has no content: {excerpt(body)}")
        # Other block types (tool_use, thinking, ...) carry no answer text.
        text = "".join(block["text"] for block in content if block.get("type") == "text")
        usage = body.get("usage") or {}
        completion = Completion(text, body.get("stop_reason"), _input_tokens(usage),
                                as_int(usage.get("output_tokens")))
        read_tool_calls(completion, content)
        read_cache_usage(completion, usage)
        return completion

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise invalid_response(f"unexpected stream event: {excerpt(data)}")
        kind = event or data.get("type")  # data repeats the name; some proxies drop the event: line
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                state.parts.append(delta["text"])
            elif delta.get("type") == "input_json_delta":
                on_input_json(state, data)
        elif kind == "content_block_start":
            on_block_start(state, data)
        elif kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            state.input_tokens = _input_tokens(usage)
            read_cache_usage(state, usage)
        elif kind == "message_delta":
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason:
                state.finish_reason = stop_reason
            usage = data.get("usage") or {}
            # Counts here are cumulative: the last one is the total, never sum them.
            output_tokens = as_int(usage.get("output_tokens"))
            if output_tokens is not None:
                state.output_tokens = output_tokens
            if usage.get("input_tokens") is not None:
                state.input_tokens = _input_tokens(usage)
                read_cache_usage(state, usage)
        elif kind == "message_stop":
            # Complete only after a message_delta carried the stop_reason.
            state.done = state.finish_reason is not None
        elif kind == "error":
            raise inband_error(self, self.error_info(data), ErrorCode.REQUEST_FAILED)
        # ping, content_block_stop and event types added later need nothing.

    def error_info(self, body: Any) -> ErrorInfo:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):
            return ErrorInfo(error)
        if not isinstance(error, dict):
            return ErrorInfo(excerpt(body))
        reason = str(error.get("type") or "")
        details = error.get("details")
        if isinstance(details, dict) and details.get("error_code"):
            # e.g. rate_limit_error enforced_spend_limit_reached: a monthly cap, not worth retrying
            reason = f"{reason} {details['error_code']}".lstrip()
        message = error.get("message")
        return ErrorInfo(str(message) if message else excerpt(error), reason)

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        code = classify_http(status, info, _KNOWN)
        if code is ErrorCode.CLIENT_ERROR and any(s in info.message.lower() for s in _SPENT):
            return ErrorCode.QUOTA_EXHAUSTED
        return code

    def rate_limit_pause(self, headers: Mapping[str, str]) -> float | None:
        return exhausted_for(headers, _RATE_LIMITS)

    async def list_models(self, api: JsonApi, provider: Provider) -> list[ModelInfo]:
        """Pages of ``limit`` models, following ``after_id`` while ``has_more``."""
        assert provider.list_path
        found: list[ModelInfo] = []
        query = {"limit": str(listing.PAGE_SIZE)}
        for _ in range(listing.MAX_PAGES):
            page = await api.get(provider.list_path, query)
            for e in entries(page, "data"):
                if isinstance(e.get("id"), str):
                    found.append(ModelInfo(e["id"], positive_int(e.get("max_input_tokens")),
                                           positive_int(e.get("max_tokens")),
                                           capabilities=flags(e.get("capabilities"))))
            last = page.get("last_id")
            if not page.get("has_more") or not isinstance(last, str) or last == query.get("after_id"):
                break
            query["after_id"] = last
        return found


def _input_tokens(usage: Mapping[str, Any]) -> int | None:
    """Input tokens including cached ones, which the API counts apart."""
    tokens = as_int(usage.get("input_tokens"))
    if tokens is None:
        return None
    for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        tokens += as_int(usage.get(key)) or 0
    return tokens


ADAPTER = AnthropicAdapter()
