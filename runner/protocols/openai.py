"""OpenAI-compatible chat completions (OpenAI, Groq, OpenRouter, SambaNova, LM Studio, ...)."""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ErrorCode, ProviderError
from .base import (
    ChatRequest,
    Completion,
    ErrorInfo,
    HttpCall,
    StreamState,
    answer_object,
    as_int,
    copy_params,
    excerpt,
    inband_error,
    invalid_response,
    merge_extra,
)

# ``max_tokens`` rather than ``max_completion_tokens``: every compatible server accepts it;
# a job that targets o-series models can send the other one through ``extra``.
_PARAMS = {name: name for name in ("temperature", "max_tokens", "top_p", "stop", "seed")}


class OpenAIAdapter:
    stream_format: Literal["sse", "ndjson"] = "sse"

    def build(self, request: ChatRequest) -> HttpCall:
        # Tuples serialise as JSON arrays, so the messages go out without a copy.
        body = copy_params(request.params, _PARAMS,
                           {"model": request.model, "messages": request.messages})
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
        text = (choice.get("message") or {}).get("content") or ""
        if not isinstance(text, str):
            raise invalid_response(f"message content is not text: {excerpt(text)}")
        completion = Completion(text, choice.get("finish_reason"))
        usage = body.get("usage")
        if usage:
            completion.input_tokens = as_int(usage.get("prompt_tokens"))
            completion.output_tokens = as_int(usage.get("completion_tokens"))
            completion.cost_usd = _cost(usage)
        return completion

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if not isinstance(data, dict):
            raise invalid_response(f"unexpected stream chunk: {excerpt(data)}")
        if data.get("error") is not None:
            # OpenRouter reports failures after the 200 this way.
            raise inband_error(self.error_info(data), ErrorCode.REQUEST_FAILED)
        choices = data.get("choices")
        if choices:  # the usage chunk has choices: []
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                text = delta.get("content")
                if text:
                    state.parts.append(text)
            finish = choice.get("finish_reason")
            if finish:
                state.finish_reason = finish
        usage = data.get("usage")
        groq = data.get("x_groq")
        if groq:
            if groq.get("error"):  # Groq stopped the stream early
                raise ProviderError(ErrorCode.REQUEST_FAILED, str(groq["error"]))
            usage = usage or groq.get("usage")
        if usage:
            state.input_tokens = as_int(usage.get("prompt_tokens"))
            state.output_tokens = as_int(usage.get("completion_tokens"))
            cost = _cost(usage)
            if cost is not None:
                state.cost_usd = cost

    def error_info(self, body: Any) -> ErrorInfo:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):  # LM Studio, Ollama native
            return ErrorInfo(error)
        if not isinstance(error, dict):
            return ErrorInfo(excerpt(body))
        # type is absent on OpenRouter, code absent or an int (the HTTP status) on some servers.
        kind, code = error.get("type"), error.get("code")
        reason = " ".join(str(part) for part in (kind, code) if part is not None)
        message = error.get("message")
        return ErrorInfo(str(message) if message else excerpt(error), reason)


def _cost(usage: dict[str, Any]) -> float | None:
    cost = usage.get("cost")  # OpenRouter reports the charge itself, in USD
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None


ADAPTER = OpenAIAdapter()
