"""Ollama native chat (``POST /api/chat``), streamed as NDJSON."""

from __future__ import annotations

from typing import Any, Literal

import anyio

from ..config.providers import ModelInfo, Provider
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
    classify_status,
    copy_params,
    excerpt,
    inband_error,
    invalid_response,
    merge_extra,
)
from .listing import entries, positive_int
from .ollama_shapes import add_asks, on_tool_calls, read_tool_calls, wire_messages

_OPTIONS = {"temperature": "temperature", "max_tokens": "num_predict", "top_p": "top_p",
            "stop": "stop", "seed": "seed"}
SHOW_CONCURRENCY = 4  # /api/show requests in flight at once


class OllamaAdapter(Adapter):
    stream_format: Literal["sse", "ndjson"] = "ndjson"

    def build(self, request: ChatRequest) -> HttpCall:
        # "stream" is always sent: Ollama streams unless told not to.
        body: dict[str, Any] = {"model": request.model, "messages": wire_messages(request),
                                "stream": request.stream}
        options = copy_params(request.params, _OPTIONS, {})
        if options:
            body["options"] = options
        add_asks(body, request)
        merge_extra(body, request.params)
        return HttpCall("/api/chat", body)

    def parse(self, body: Any) -> Completion:
        body = answer_object(body, self)
        message = body.get("message")
        if not isinstance(message, dict):
            raise invalid_response(f"answer has no message: {excerpt(body)}")
        completion = Completion(message.get("content") or "", body.get("done_reason"),
                                as_int(body.get("prompt_eval_count")), as_int(body.get("eval_count")))
        read_tool_calls(completion, message)
        return completion

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise invalid_response(f"unexpected stream line: {excerpt(data)}")
        if data.get("error") is not None:  # mid-stream failure; the HTTP status stays 200
            raise inband_error(self, self.error_info(data), ErrorCode.REQUEST_FAILED)
        message = data.get("message")
        if message:
            text = message.get("content")
            if text:
                state.parts.append(text)
            if message.get("tool_calls"):
                on_tool_calls(state, message)
        if data.get("done"):  # the last line carries the reason and the counts
            state.finish_reason = data.get("done_reason")
            state.input_tokens = as_int(data.get("prompt_eval_count"))
            state.output_tokens = as_int(data.get("eval_count"))
            state.done = True

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        # Ollama's errors are bare text: the status, then its words, are all there is. A cloud
        # model's 429 "you (x) have reached your weekly usage limit, upgrade for higher limits"
        # (also hourly / session) outlasts any retry: classify_status reads "usage limit" as a quota.
        return classify_status(status, info.message)

    def error_info(self, body: Any) -> ErrorInfo:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):
            # The text is all there is, e.g. "model 'x' not found": it doubles as the reason.
            return ErrorInfo(error, error)
        if isinstance(error, dict) and error.get("message"):  # OpenAI-style, from a proxy
            return ErrorInfo(str(error["message"]), str(error.get("type") or ""))
        return ErrorInfo(excerpt(body))

    async def list_models(self, api: JsonApi, provider: Provider) -> list[ModelInfo]:
        """Names from /api/tags; context lengths from /api/show, one request per model."""
        assert provider.list_path
        names = [str(e["name"]) for e in entries(await api.get(provider.list_path), "models") if e.get("name")]
        details: dict[str, ModelInfo] = {}
        limiter = anyio.CapacityLimiter(SHOW_CONCURRENCY)

        async def show(name: str) -> None:
            async with limiter:
                try:
                    info = await api.fetch("POST", "/api/show", body={"model": name})
                except ProviderError:
                    details[name] = ModelInfo(name)  # listed but not described: still worth showing
                    return
            model_info = info.get("model_info") if isinstance(info, dict) else None
            context = next((positive_int(v) for k, v in (model_info or {}).items()
                            if k.endswith(".context_length")), None)
            caps = info.get("capabilities") if isinstance(info, dict) else None
            details[name] = ModelInfo(name, context, capabilities=tuple(
                sorted(str(c) for c in caps or () if c != "completion")))

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(show, name)
        return [details[n] for n in names]

    async def loaded_models(self, api: JsonApi, provider: Provider, within: float) -> tuple[str, ...]:
        body = await api.get("/api/ps", within=within)
        return tuple(str(m.get("name")) for m in body.get("models", []) if isinstance(m, dict))


ADAPTER = OllamaAdapter()
