"""Google Gemini native API (``generateContent`` / ``streamGenerateContent``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from ..config.providers import ModelInfo, Provider
from ..errors import ErrorCode
from . import listing
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
from .gemini_shapes import add_asks, on_function_calls, read_tool_calls, read_usage_details, wire_contents
from .listing import entries, positive_int

_CONFIG = {"temperature": "temperature", "max_tokens": "maxOutputTokens", "top_p": "topP",
           "stop": "stopSequences", "seed": "seed"}
# Without alt=sse the stream is one JSON array, which cannot be read incrementally.
_SSE: Mapping[str, str] = MappingProxyType({"alt": "sse"})

# error.status and details[].reason, in the order they decide. RESOURCE_EXHAUSTED is a rate
# limit unless a QuotaFailure names a per-day quota (see classify); its message says "billing"
# either way, so the message is never read for it.
_KNOWN: Mapping[str, ErrorCode] = MappingProxyType({
    "api_key_invalid": ErrorCode.INVALID_API_KEY,
    "resource_exhausted": ErrorCode.RATE_LIMIT_EXCEEDED,
    "unavailable": ErrorCode.SERVER_ERROR,
    "internal": ErrorCode.SERVER_ERROR,
    "deadline_exceeded": ErrorCode.TIMEOUT,
    "permission_denied": ErrorCode.INVALID_API_KEY,
})


class GeminiAdapter(Adapter):
    stream_format: Literal["sse", "ndjson"] = "sse"
    key_check_query: Mapping[str, str] | None = MappingProxyType({"pageSize": "1"})

    def build(self, request: ChatRequest) -> HttpCall:
        system: list[str] = []
        contents: list[dict[str, Any]] = []
        if request.rich:  # parts, function calls and responses
            system, contents = wire_contents(request)
        for message in request.messages if not request.rich else ():
            role = message["role"]
            if role == "system":  # a separate field here, not a role
                system.append(message["content"])
            else:
                contents.append({"role": "model" if role == "assistant" else "user",
                                 "parts": [{"text": message["content"]}]})
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config = copy_params(request.params, _CONFIG, {})
        if config:
            body["generationConfig"] = config
        add_asks(body, request)
        merge_extra(body, request.params)
        # Model listings name models "models/x"; the path adds that prefix itself.
        model = request.model.removeprefix("models/")
        if request.stream:
            return HttpCall(f"/models/{model}:streamGenerateContent", body, _SSE)
        return HttpCall(f"/models/{model}:generateContent", body)

    def parse(self, body: Any) -> Completion:
        body = answer_object(body, self)
        completion = Completion("")
        _read_usage(completion, body.get("usageMetadata"))
        candidates = body.get("candidates")
        if candidates:
            candidate = candidates[0]
            completion.text = _text(candidate)
            completion.finish_reason = candidate.get("finishReason")
            read_tool_calls(completion, candidate)
            return completion
        # A blocked prompt is an answer (the model said nothing), not a failed request.
        block = (body.get("promptFeedback") or {}).get("blockReason")
        if block:
            completion.finish_reason = f"BLOCKED:{block}"
            return completion
        raise invalid_response(f"answer has no candidates: {excerpt(body)}")

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if isinstance(data, list) and data:  # errors may come wrapped in an array
            data = data[0]
        if not isinstance(data, dict):
            raise invalid_response(f"unexpected stream chunk: {excerpt(data)}")
        if data.get("error") is not None:
            raise inband_error(self, self.error_info(data), ErrorCode.REQUEST_FAILED)
        _read_usage(state, data.get("usageMetadata"))  # each chunk's is the total so far
        candidates = data.get("candidates")
        if candidates:
            candidate = candidates[0]
            text = _text(candidate)
            if text:
                state.parts.append(text)
            on_function_calls(state, candidate)
            finish = candidate.get("finishReason")
            if finish:
                # Gemini has no end marker: the chunk with a finish reason is the last.
                state.finish_reason = finish
                state.done = True
        else:
            block = (data.get("promptFeedback") or {}).get("blockReason")
            if block:
                state.finish_reason = f"BLOCKED:{block}"
                state.done = True

    def error_info(self, body: Any) -> ErrorInfo:
        if isinstance(body, list) and body:  # streaming errors: [{"error": {...}}]
            body = body[0]
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):
            return ErrorInfo(error)
        if not isinstance(error, dict):
            return ErrorInfo(excerpt(body))
        reasons = [error["status"]] if error.get("status") else []
        retry_after = None
        for detail in error.get("details") or ():
            if not isinstance(detail, dict):
                continue
            if detail.get("reason"):  # google.rpc.ErrorInfo, e.g. API_KEY_INVALID
                reasons.append(detail["reason"])
            # Quota ids tell a per-day exhaustion (do not retry soon) from a per-minute one.
            for violation in detail.get("violations") or ():
                if isinstance(violation, dict) and violation.get("quotaId"):
                    reasons.append(violation["quotaId"])
            if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                retry_after = _seconds(detail.get("retryDelay"))
        message = error.get("message")
        code = error.get("code")
        return ErrorInfo(str(message) if message else excerpt(error), " ".join(map(str, reasons)),
                         retry_after, code if isinstance(code, int) and not isinstance(code, bool) else None)

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        # A per-day quota (quotaId ...PerDay...) will not come back within any retry window.
        if any("perday" in word for word in info.reason.lower().split()):
            return ErrorCode.QUOTA_EXHAUSTED
        return classify_http(status, info, _KNOWN)

    async def list_models(self, api: JsonApi, provider: Provider) -> list[ModelInfo]:
        """Pages followed by ``nextPageToken``; only models that serve ``generateContent``."""
        assert provider.list_path
        found: list[ModelInfo] = []
        query = {"pageSize": str(listing.PAGE_SIZE)}
        for _ in range(listing.MAX_PAGES):
            page = await api.get(provider.list_path, query)
            for e in entries(page, "models"):
                if "generateContent" not in (e.get("supportedGenerationMethods") or ()):
                    continue  # embedding and other non-chat models
                name = str(e.get("name", "")).removeprefix("models/")
                caps = ("reasoning",) if e.get("thinking") else ()
                found.append(ModelInfo(name, positive_int(e.get("inputTokenLimit")),
                                       positive_int(e.get("outputTokenLimit")), capabilities=caps))
            token = page.get("nextPageToken")
            if not token or token == query.get("pageToken"):
                break
            query["pageToken"] = str(token)
        return found


def _text(candidate: Mapping[str, Any]) -> str:
    parts = (candidate.get("content") or {}).get("parts") or ()
    # Thinking models return their reasoning as parts marked thought: true; it is not the answer.
    return "".join(part.get("text") or "" for part in parts if not part.get("thought"))


def _read_usage(into: Completion | StreamState, usage: Any) -> None:
    if not usage:
        return
    into.input_tokens = as_int(usage.get("promptTokenCount"))
    # Reasoning tokens are reported beside the answer's but billed as output.
    answer = as_int(usage.get("candidatesTokenCount"))
    thoughts = as_int(usage.get("thoughtsTokenCount"))
    if answer is not None or thoughts is not None:
        into.output_tokens = (answer or 0) + (thoughts or 0)
    read_usage_details(into, usage)


def _seconds(delay: Any) -> float | None:
    """A protobuf JSON Duration such as "17s" or "57.238747106s" in seconds."""
    if not isinstance(delay, str):
        return None
    try:
        return float(delay.removesuffix("s"))
    except ValueError:
        return None


ADAPTER = GeminiAdapter()
