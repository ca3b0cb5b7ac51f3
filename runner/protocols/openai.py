"""OpenAI-compatible chat completions (OpenAI, Groq, OpenRouter, SambaNova, LM Studio, ...).

Their model listings share one entry reader that picks up whichever optional fields a
provider adds (context length, output limit, per-token prices).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from ..config.providers import ModelInfo, Pricing, Provider
from ..errors import ErrorCode, ProviderError
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
from .listing import entries, first_int, flags, server_root
from .openai_shapes import (
    add_asks,
    on_tool_delta,
    read_tool_calls,
    read_usage_details,
    rename_max_tokens,
    schema_as_json_object,
    wire_messages,
)
from .ratelimit import exhausted_for

# ``max_tokens`` rather than ``max_completion_tokens``: every compatible server accepts it;
# a job that targets o-series models can send the other one through ``extra``.
_PARAMS = {name: name for name in ("temperature", "max_tokens", "top_p", "stop", "seed")}
# (remaining, reset) header pairs, as OpenAI and Groq send them; resets are Go durations.
_RATE_LIMITS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
)

# error.code / error.type values, in the order they decide. OpenAI's free-tier rate limit says
# "billing" in its message yet is code rate_limit_exceeded: retried; insufficient_quota is not.
_KNOWN: Mapping[str, ErrorCode] = MappingProxyType({
    "insufficient_quota": ErrorCode.QUOTA_EXHAUSTED,
    "rate_limit_exceeded": ErrorCode.RATE_LIMIT_EXCEEDED,
    "invalid_api_key": ErrorCode.INVALID_API_KEY,
    "model_not_found": ErrorCode.MODEL_NOT_FOUND,
    "server_error": ErrorCode.SERVER_ERROR,
    "internal_server_error": ErrorCode.SERVER_ERROR,  # LiteLLM's proxy, mid-stream
    "api_error": ErrorCode.SERVER_ERROR,  # Ollama's /v1
})


class OpenAIAdapter(Adapter):
    stream_format: Literal["sse", "ndjson"] = "sse"

    def build(self, request: ChatRequest) -> HttpCall:
        # Tuples serialise as JSON arrays, so the messages go out without a copy.
        body = copy_params(request.params, _PARAMS,
                           {"model": request.model, "messages": wire_messages(request)})
        add_asks(body, request)
        if request.stream:
            # Without include_usage most servers send no token counts in a stream.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        merge_extra(body, request.params)
        return HttpCall("/chat/completions", body)

    def parse(self, body: Any) -> Completion:
        body = answer_object(body, self)  # LM Studio answers an unknown endpoint with 200 + error
        choices = body.get("choices")
        if not choices or not isinstance(choices, list):
            raise invalid_response(f"answer has no choices: {excerpt(body)}")
        choice = choices[0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise invalid_response(f"message content is not text: {excerpt(text)}")
        completion = Completion(text, choice.get("finish_reason"))
        read_tool_calls(completion, message)
        usage = body.get("usage")
        if usage:
            completion.input_tokens = as_int(usage.get("prompt_tokens"))
            completion.output_tokens = as_int(usage.get("completion_tokens"))
            completion.cost_usd = _cost(usage)
            read_usage_details(completion, usage)
        return completion

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise invalid_response(f"unexpected stream chunk: {excerpt(data)}")
        if data.get("error") is not None:
            # OpenRouter reports failures after the 200 this way.
            raise inband_error(self, self.error_info(data), ErrorCode.REQUEST_FAILED)
        choices = data.get("choices")
        if choices:  # the usage chunk has choices: []
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text:
                    state.parts.append(text)
                if delta.get("tool_calls"):
                    on_tool_delta(state, delta["tool_calls"])
            finish = choice.get("finish_reason")
            if finish:
                # The end marker: a chunk with a finish reason. [DONE] alone is not one (a llama.cpp
                # server cutting a stream sends [DONE] after nothing but the role chunk).
                state.finish_reason = finish
                state.done = True
        usage = data.get("usage")
        groq = data.get("x_groq")
        if groq:
            if groq.get("error"):  # Groq stopped the stream early
                raise inband_error(self, ErrorInfo(str(groq["error"])), ErrorCode.REQUEST_FAILED)
            usage = usage or groq.get("usage")
        if usage:
            state.input_tokens = as_int(usage.get("prompt_tokens"))
            state.output_tokens = as_int(usage.get("completion_tokens"))
            cost = _cost(usage)
            if cost is not None:
                state.cost_usd = cost
            read_usage_details(state, usage)

    def error_info(self, body: Any) -> ErrorInfo:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):  # LM Studio, Ollama native
            return ErrorInfo(error)
        if not isinstance(error, dict):
            return ErrorInfo(excerpt(body))
        # type is absent on OpenRouter, code absent, an int (OpenRouter: the HTTP status) or a
        # string of digits (LiteLLM's proxy) on some servers.
        kind, code = error.get("type"), error.get("code")
        reason = " ".join(str(part) for part in (kind, code) if part is not None)
        message = error.get("message")
        status = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        return ErrorInfo(str(message) if message else excerpt(error), reason, status=status)

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        if info.message.startswith("Unexpected endpoint or method"):  # LM Studio's wrong path, on a 200
            return ErrorCode.CLIENT_ERROR
        return classify_http(status, info, _KNOWN)

    def body_dialect(self, provider: Provider) -> Callable[[dict[str, Any]], None] | None:
        rewrites: list[Callable[[dict[str, Any]], None]] = []
        if provider.max_tokens_field != "max_tokens":
            # OpenAI's reasoning models take only max_completion_tokens; the provider file says so.
            rewrites.append(functools.partial(rename_max_tokens, provider.max_tokens_field))
        if provider.json_schema_style == "llama-cpp-python":
            rewrites.append(schema_as_json_object)
        if len(rewrites) < 2:
            return rewrites[0] if rewrites else None

        def both(body: dict[str, Any]) -> None:
            for rewrite in rewrites:
                rewrite(body)
        return both

    def rate_limit_pause(self, headers: Mapping[str, str]) -> float | None:
        return exhausted_for(headers, _RATE_LIMITS)

    async def list_models(self, api: JsonApi, provider: Provider) -> list[ModelInfo]:
        if provider.kind == "local":
            # LM Studio's native /api/v0/models carries context lengths; other servers fall back to /models.
            try:
                found = entries(await api.get(server_root(provider) + "/api/v0/models"), "data")
            except ProviderError:
                pass
            else:
                source = f"discovered via {provider.id} /api/v0/models"
                return [_entry(e, source) for e in found if isinstance(e.get("id"), str)]
        assert provider.list_path
        body = await api.get(provider.list_path)
        source = f"discovered via {provider.id} {provider.list_path}"
        return [_entry(e, source) for e in entries(body, "data") if isinstance(e.get("id"), str)]

    async def loaded_models(self, api: JsonApi, provider: Provider, within: float) -> tuple[str, ...]:
        try:  # LM Studio marks loaded models in its native listing
            body = await api.get(server_root(provider) + "/api/v0/models", within=within)
            return tuple(str(m["id"]) for m in body.get("data", []) if m.get("state") == "loaded")
        except ProviderError:
            if not provider.list_path:
                return ()
            body = await api.get(provider.list_path, within=within)
            return tuple(str(m["id"]) for m in body.get("data", []) if isinstance(m, dict) and "id" in m)


def _entry(e: Mapping[str, Any], source: str) -> ModelInfo:
    top: Mapping[str, Any] = e.get("top_provider") or {}
    context = first_int(e.get("context_length"), e.get("context_window"), e.get("max_context_length"),
                        top.get("context_length"))
    output = first_int(e.get("max_completion_tokens"), top.get("max_completion_tokens"))
    caps: set[str] = set(flags(e.get("capabilities")))
    if "tools" in (e.get("supported_parameters") or ()):
        caps.add("tools")
    arch: Mapping[str, Any] = e.get("architecture") or {}
    if "image" in (arch.get("input_modalities") or ()) or e.get("type") == "vlm":
        caps.add("vision")
    if e.get("type") in ("embeddings", "embedding"):
        caps.add("embeddings")
    return ModelInfo(str(e["id"]), context, output, _per_token_pricing(e.get("pricing"), source),
                     tuple(sorted(caps)))


def _per_token_pricing(pricing: Any, source: str) -> Pricing | None:
    """USD per token (OpenRouter: strings, SambaNova: floats) -> USD per 1M tokens."""
    if not isinstance(pricing, dict):
        return None
    try:
        per_input, per_output = float(pricing["prompt"]), float(pricing["completion"])
    except (KeyError, TypeError, ValueError):
        return None
    if per_input < 0 or per_output < 0:  # OpenRouter marks variable-priced routers with -1
        return None
    return Pricing(round(per_input * 1e6, 6), round(per_output * 1e6, 6), source)


def _cost(usage: dict[str, Any]) -> float | None:
    cost = usage.get("cost")  # OpenRouter reports the charge itself, in USD
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None


ADAPTER = OpenAIAdapter()
