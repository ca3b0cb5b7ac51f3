"""The offline ``echo`` protocol: answers with the prompt, for trying jobs without
keys or network. It runs through the same client, limits, retries and database
as a real provider; only the transport is in-process.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx

from ..errors import ProviderError
from .base import Adapter, ChatRequest, Completion, ErrorInfo, HttpCall, StreamState
from .features import tool_result_text


class EchoAdapter(Adapter):
    stream_format: Literal["sse", "ndjson"] = "ndjson"

    def build(self, request: ChatRequest) -> HttpCall:
        messages = list(request.messages)
        if request.rich:  # echo answers with text only: parts become their text, tool turns their content
            messages = [{"role": m["role"], "content": tool_result_text(m.get("content") or "")} for m in messages]
        body = {"model": request.model, "messages": messages, "stream": request.stream}
        if "max_tokens" in request.params:
            body["max_tokens"] = request.params["max_tokens"]
        return HttpCall("/echo", body)

    def parse(self, body: Any) -> Completion:
        return Completion(body["text"], body["finish_reason"], body["input_tokens"], body["output_tokens"])

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        if data.get("done"):
            state.finish_reason = data["finish_reason"]
            state.input_tokens = data["input_tokens"]
            state.output_tokens = data["output_tokens"]
            state.done = True
        else:
            state.parts.append(data["delta"])

    def error_info(self, body: Any) -> ErrorInfo:
        return ErrorInfo(str(body.get("error", body)) if isinstance(body, dict) else str(body))

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(_answer)


def _answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    messages = body["messages"]
    words = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "").split(" ")
    limit = body.get("max_tokens")
    finish = "stop"
    if limit is not None and len(words) > limit:
        words, finish = words[:limit], "length"
    usage = {"input_tokens": sum(len(m["content"].split()) for m in messages), "output_tokens": len(words),
             "finish_reason": finish}
    if not body["stream"]:
        return httpx.Response(200, json={"text": " ".join(words), **usage})
    lines = [json.dumps({"delta": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    lines.append(json.dumps({"done": True, **usage}))
    return httpx.Response(200, content="\n".join(lines).encode())


ADAPTER = EchoAdapter()

__all__ = ["ADAPTER", "ProviderError"]
