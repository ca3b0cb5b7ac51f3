"""OpenAI chat-completions shapes for images, JSON output, tools, reasoning and usage details.

Request: image parts are ``image_url`` parts (a data: URL for local files), ``response_format``
``json_schema`` / ``json_object``, ``tools`` of ``type: function`` with ``tool_choice``, and
``reasoning_effort``. Answer: ``message.tool_calls`` (streamed by index, arguments in pieces),
``usage.prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..config.messages import pair_tool_calls
from .base import ChatRequest, Completion, StreamState, as_int
from .features import load_image, parse_arguments, tool_finish, tool_result_text


def wire_messages(request: ChatRequest) -> Any:
    if not request.rich:
        return request.messages  # tuples serialise as JSON arrays: no copy on the text path
    results, calls = pair_tool_calls(request.messages)
    out: list[dict[str, Any]] = []
    for m, message in enumerate(request.messages):
        role, content = message["role"], message.get("content", "")
        if role == "tool":
            out.append({"role": "tool", "tool_call_id": results[m], "content": tool_result_text(content)})
            continue
        wire: dict[str, Any] = {"role": role, "content": _content(content, request.image_limit)}
        if message.get("tool_calls"):
            wire["content"] = wire["content"] or None
            wire["tool_calls"] = [{"id": calls[(m, c)], "type": "function",
                                   "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                                  for c, call in enumerate(message["tool_calls"])]
        out.append(wire)
    return out


def _content(content: Any, limit: int | None) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if "text" in part:
            parts.append({"type": "text", "text": part["text"]})
        else:
            url = part["image"].url or load_image(part, limit).data_url
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def rename_max_tokens(field: str, body: dict[str, Any]) -> None:
    """The output cap under the provider's own name for it (OpenAI's reasoning models: max_completion_tokens)."""
    if "max_tokens" in body:
        body[field] = body.pop("max_tokens")


def schema_as_json_object(body: dict[str, Any]) -> None:
    """llama-cpp-python's server refuses ``response_format`` ``json_schema`` and takes the schema beside
    ``json_object`` instead (its own extension; seen with llama-cpp-python 0.3)."""
    asked = body.get("response_format")
    if asked and asked.get("type") == "json_schema":
        body["response_format"] = {"type": "json_object", "schema": asked["json_schema"]["schema"]}


def add_asks(body: dict[str, Any], request: ChatRequest) -> None:
    """response_format, tools, tool_choice and reasoning_effort, as the job asked."""
    response = request.response
    if response is not None:
        if response.schema is None:
            body["response_format"] = {"type": "json_object"}
        else:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": response.name, "schema": response.schema, "strict": response.strict}}
    tools = request.tools
    if tools is not None:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                            "parameters": t.parameters}} for t in tools.tools]
        forced = tools.forced
        body["tool_choice"] = {"type": "function", "function": {"name": forced}} if forced else tools.choice
    reasoning = request.params.get("reasoning")
    if reasoning and reasoning.get("effort"):
        body["reasoning_effort"] = reasoning["effort"]  # OpenAI takes an effort, not a budget


def read_tool_calls(completion: Completion, message: Mapping[str, Any]) -> None:
    calls = message.get("tool_calls")
    if calls:
        completion.tool_calls = [{"name": c["function"]["name"],
                                  "arguments": parse_arguments(c["function"].get("arguments"))} for c in calls]
        completion.finish_reason = tool_finish(completion.finish_reason, completion.tool_calls)


def on_tool_delta(state: StreamState, deltas: list[Mapping[str, Any]]) -> None:
    """Tool calls streamed by index: the name once, then the arguments' JSON in pieces."""
    if state.tool_parts is None:
        state.tool_parts = {}
    for position, delta in enumerate(deltas):
        index = delta.get("index", position)
        entry = state.tool_parts.setdefault(index, [""])
        function = delta.get("function") or {}
        if function.get("name"):
            entry[0] = function["name"]
        if function.get("arguments"):
            entry.append(function["arguments"])


def read_usage_details(into: Completion | StreamState, usage: Mapping[str, Any]) -> None:
    prompt = usage.get("prompt_tokens_details")
    if isinstance(prompt, dict):
        into.cached_input_tokens = as_int(prompt.get("cached_tokens"))
        if prompt.get("cache_write_tokens") is not None:  # OpenRouter
            into.cache_write_tokens = as_int(prompt.get("cache_write_tokens"))
    output = usage.get("completion_tokens_details")
    if isinstance(output, dict):
        # Included in completion_tokens already: recorded, never added to it.
        into.reasoning_tokens = as_int(output.get("reasoning_tokens"))
