"""Anthropic Messages shapes for images, JSON output, tools, thinking and cache usage.

Request: ``image`` blocks with ``source.type: base64`` (+ ``media_type``) or ``url``;
structured output through ``output_config.format`` (``type: json_schema``); ``tools`` with
``input_schema`` and ``tool_choice`` ``{type: auto|any|none|tool}``; earlier calls as
``tool_use`` blocks answered by ``tool_result`` blocks in a user turn; ``thinking``
``{type: enabled, budget_tokens}``. Answer: ``tool_use`` blocks (streamed as
``input_json_delta`` pieces), ``usage.cache_read_input_tokens`` / ``cache_creation_input_tokens``.
Thinking tokens are part of ``output_tokens``; the API does not report them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.messages import pair_tool_calls, text_of
from .base import ChatRequest, Completion, StreamState, as_int
from .features import load_image, thinking_budget, tool_finish, tool_result_text

_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
MIN_THINKING = 1024  # the API's smallest budget_tokens


def wire_messages(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, messages) with content blocks; tool results go in user turns, next to each other."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    results, calls = pair_tool_calls(request.messages)
    for m, message in enumerate(request.messages):
        role, content = message["role"], message.get("content", "")
        if role == "system":
            system.append(content if isinstance(content, str) else text_of(content))
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": results[m], "content": tool_result_text(content)}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list) and all(
                    b.get("type") == "tool_result" for b in out[-1]["content"]):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        wire: Any = content if isinstance(content, str) else _blocks(content, request.image_limit)
        if message.get("tool_calls"):
            blocks = [{"type": "text", "text": wire}] if isinstance(wire, str) and wire else (
                wire if isinstance(wire, list) else [])
            blocks += [{"type": "tool_use", "id": calls[(m, c)], "name": call["name"], "input": call["arguments"]}
                       for c, call in enumerate(message["tool_calls"])]
            wire = blocks
        out.append({"role": role, "content": wire})
    return system, out


def _blocks(content: Any, limit: int | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in content:
        if "text" in part:
            blocks.append({"type": "text", "text": part["text"]})
        elif part["image"].url:
            blocks.append({"type": "image", "source": {"type": "url", "url": part["image"].url}})
        else:
            image = load_image(part, limit)
            blocks.append({"type": "image", "source": {"type": "base64", "media_type": image.media_type,
                                                       "data": image.base64}})
    return blocks


def add_asks(body: dict[str, Any], request: ChatRequest) -> None:
    """output_config.format, tools, tool_choice and thinking, as the job asked."""
    response = request.response
    if response is not None and response.schema is not None:
        # Anthropic has no "any JSON object" mode: response_format: json is checked on the answer only.
        body["output_config"] = {"format": {"type": "json_schema", "schema": response.schema}}
    tools = request.tools
    if tools is not None:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                         for t in tools.tools]
        forced = tools.forced
        body["tool_choice"] = {"type": "tool", "name": forced} if forced else _CHOICES[tools.choice]
    reasoning = request.params.get("reasoning")
    if reasoning:
        budget = max(thinking_budget(reasoning) or MIN_THINKING, MIN_THINKING)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if body["max_tokens"] <= budget:  # the answer's own tokens come on top of the thinking budget
            body["max_tokens"] = budget + body["max_tokens"]
        # Thinking refuses a changed temperature or top_p.
        body.pop("temperature", None)
        body.pop("top_p", None)


def read_tool_calls(completion: Completion, content: list[Mapping[str, Any]]) -> None:
    calls = [{"name": b["name"], "arguments": b.get("input") or {}} for b in content if b.get("type") == "tool_use"]
    if calls:
        completion.tool_calls = calls
        completion.finish_reason = tool_finish(completion.finish_reason, calls)


def on_block_start(state: StreamState, data: Mapping[str, Any]) -> None:
    block = data.get("content_block") or {}
    if block.get("type") == "tool_use":
        if state.tool_parts is None:
            state.tool_parts = {}
        state.tool_parts[data.get("index", len(state.tool_parts))] = [block.get("name", "")]


def on_input_json(state: StreamState, data: Mapping[str, Any]) -> None:
    """A piece of a tool_use block's input; pieces for any other block (none are defined) are ignored."""
    entry = (state.tool_parts or {}).get(data.get("index", 0))
    if entry is not None:
        entry.append((data.get("delta") or {}).get("partial_json") or "")


def read_cache_usage(into: Completion | StreamState, usage: Mapping[str, Any]) -> None:
    if usage.get("cache_read_input_tokens") is not None:
        into.cached_input_tokens = as_int(usage.get("cache_read_input_tokens"))
    if usage.get("cache_creation_input_tokens") is not None:
        into.cache_write_tokens = as_int(usage.get("cache_creation_input_tokens"))
