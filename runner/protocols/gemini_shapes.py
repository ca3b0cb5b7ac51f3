"""Gemini generateContent shapes for images, JSON output, tools, thinking and usage details.

Request: ``inlineData {mimeType, data}`` parts (``fileData {mimeType, fileUri}`` for an https
URL), ``generationConfig.responseMimeType: application/json`` + ``responseJsonSchema``,
``tools[].functionDeclarations`` (``parametersJsonSchema``) with
``toolConfig.functionCallingConfig``, earlier calls as ``functionCall`` parts answered by
``functionResponse`` parts, ``generationConfig.thinkingConfig.thinkingBudget``. Answer:
``functionCall`` parts (whole, also when streamed), ``usageMetadata.thoughtsTokenCount`` and
``cachedContentTokenCount``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..config.media import url_type
from ..config.messages import text_of
from .base import ChatRequest, Completion, StreamState, as_int
from .features import load_image, thinking_budget, tool_finish, tool_result_text

_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def wire_contents(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, contents); tool results are user turns of functionResponse parts, next to each other."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        role, content = message["role"], message.get("content", "")
        if role == "system":
            system.append(content if isinstance(content, str) else text_of(content))
            continue
        if role == "tool":
            part = {"functionResponse": {"name": message["name"], "response": _response(content)}}
            if contents and contents[-1]["role"] == "user" and all("functionResponse" in p
                                                                   for p in contents[-1]["parts"]):
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        parts = _parts(content, request.image_limit)
        for call in message.get("tool_calls") or ():
            parts.append({"functionCall": {"name": call["name"], "args": call["arguments"]}})
        contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    return system, contents


def _response(content: Any) -> Any:
    """A tool result as the object functionResponse.response must be: its JSON object, else {result: text}."""
    text = tool_result_text(content)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _parts(content: Any, limit: int | None) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if "text" in part:
            parts.append({"text": part["text"]})
        elif part["image"].url:
            url = part["image"].url
            parts.append({"fileData": {"mimeType": url_type(url) or "image/jpeg", "fileUri": url}})
        else:
            image = load_image(part, limit)
            parts.append({"inlineData": {"mimeType": image.media_type, "data": image.base64}})
    return parts


def add_asks(body: dict[str, Any], request: ChatRequest) -> None:
    """responseMimeType/responseJsonSchema, tools, toolConfig and thinkingConfig, as the job asked."""
    response = request.response
    if response is not None:
        config = body.setdefault("generationConfig", {})
        config["responseMimeType"] = "application/json"
        if response.schema is not None:
            config["responseJsonSchema"] = response.schema
    tools = request.tools
    if tools is not None:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters}
            for t in tools.tools]}]
        forced = tools.forced
        calling: dict[str, Any] = {"mode": "ANY" if forced else _MODES[tools.choice]}
        if forced:
            calling["allowedFunctionNames"] = [forced]
        body["toolConfig"] = {"functionCallingConfig": calling}
    reasoning = request.params.get("reasoning")
    if reasoning:
        budget = thinking_budget(reasoning)
        if budget is not None:
            body.setdefault("generationConfig", {})["thinkingConfig"] = {"thinkingBudget": budget}


def function_calls(candidate: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = (candidate.get("content") or {}).get("parts") or ()
    return [{"name": p["functionCall"]["name"], "arguments": p["functionCall"].get("args") or {}}
            for p in parts if isinstance(p, dict) and p.get("functionCall")]


def read_tool_calls(completion: Completion, candidate: Mapping[str, Any]) -> None:
    calls = function_calls(candidate)
    if calls:
        completion.tool_calls = calls
        completion.finish_reason = tool_finish(completion.finish_reason, calls)


def on_function_calls(state: StreamState, candidate: Mapping[str, Any]) -> None:
    """Gemini streams each function call whole, in the chunk that carries it."""
    state.add_whole_calls(function_calls(candidate))


def read_usage_details(into: Completion | StreamState, usage: Mapping[str, Any]) -> None:
    # thoughtsTokenCount is reported beside candidatesTokenCount; the adapter adds it to output_tokens.
    if usage.get("thoughtsTokenCount") is not None:
        into.reasoning_tokens = as_int(usage.get("thoughtsTokenCount"))
    if usage.get("cachedContentTokenCount") is not None:
        into.cached_input_tokens = as_int(usage.get("cachedContentTokenCount"))
