"""Ollama /api/chat shapes for images, JSON output, tools and thinking.

Request: a message's images go in its ``images`` list as base64 (Ollama takes no image URLs:
job validation refuses them); ``format`` is the JSON Schema (or ``"json"``); ``tools`` of
``type: function``; earlier calls as the assistant's ``tool_calls``, results as ``role: tool``
with ``tool_name``; ``think: true``. Ollama has no tool_choice: ``none`` sends no tools, and
``required`` or a tool's name cannot be forced (the tools are offered, the model decides).
Answer: ``message.tool_calls`` with arguments as an object, whole also when streamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import ChatRequest, Completion, StreamState
from .features import load_image, parse_arguments, tool_finish, tool_result_text


def wire_messages(request: ChatRequest) -> Any:
    if not request.rich:
        return request.messages
    out: list[dict[str, Any]] = []
    for message in request.messages:
        role, content = message["role"], message.get("content", "")
        if role == "tool":
            out.append({"role": "tool", "tool_name": message["name"], "content": tool_result_text(content)})
            continue
        wire: dict[str, Any] = {"role": role}
        if isinstance(content, str):
            wire["content"] = content
        else:
            wire["content"] = "\n".join(p["text"] for p in content if "text" in p)
            images = [load_image(p, request.image_limit).base64 for p in content if "image" in p]
            if images:
                wire["images"] = images
        if message.get("tool_calls"):
            wire["tool_calls"] = [{"function": {"name": c["name"], "arguments": c["arguments"]}}
                                  for c in message["tool_calls"]]
        out.append(wire)
    return out


def add_asks(body: dict[str, Any], request: ChatRequest) -> None:
    """format, tools and think, as the job asked."""
    response = request.response
    if response is not None:
        body["format"] = response.schema if response.schema is not None else "json"
    tools = request.tools
    if tools is not None and tools.choice != "none":
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                            "parameters": t.parameters}} for t in tools.tools]
    if request.params.get("reasoning"):
        body["think"] = True


def _calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": c["function"]["name"], "arguments": parse_arguments(c["function"].get("arguments") or {})}
            for c in message.get("tool_calls") or ()]


def read_tool_calls(completion: Completion, message: Mapping[str, Any]) -> None:
    calls = _calls(message)
    if calls:
        completion.tool_calls = calls
        completion.finish_reason = tool_finish(completion.finish_reason, calls)


def on_tool_calls(state: StreamState, message: Mapping[str, Any]) -> None:
    state.add_whole_calls(_calls(message))
