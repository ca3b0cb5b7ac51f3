"""What the fake server does with images, JSON output, tools and reasoning (used by fakeserver.py).

Asked by the request itself: a request that declares tools gets a call to the forced tool (else
the first one), its string arguments set to the prompt's last word; a request that asks for
JSON gets an object made from the schema (strings: the prompt's last word). Asked by model name:
a model whose name contains ``novision`` refuses images (HTTP 400, like a text-only model);
``think`` reports 3 reasoning tokens, ``cache`` reports up to 4 input tokens read from the cache,
each in its protocol's own usage fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

REASONING_TOKENS = 3
CACHED_TOKENS = 4


def last_word(prompt: str) -> str:
    words = re.findall(r"[\w-]+", prompt)
    return words[-1] if words else "x"


def example(schema: Any, word: str) -> Any:
    """A value that matches a (simple) JSON Schema."""
    if not isinstance(schema, dict):
        return word
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {k: example(v, word) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example(schema.get("items") or {}, word)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.5, schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return word


def has_image(family: str, body: dict[str, Any]) -> bool:
    if family == "gemini":
        return any("inlineData" in p or "fileData" in p for c in body.get("contents") or ()
                   for p in c.get("parts") or ())
    for m in body.get("messages") or ():
        if m.get("images"):
            return True
        content = m.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") in ("image_url", "image")
                                             for b in content):
            return True
    return False


def wanted_json(family: str, body: dict[str, Any]) -> tuple[bool, Any]:
    """(JSON asked for, its schema or None)."""
    if family == "openai":
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return True, fmt["json_schema"]["schema"]
        return fmt.get("type") == "json_object", None
    if family == "anthropic":
        fmt = (body.get("output_config") or {}).get("format") or {}
        return fmt.get("type") == "json_schema", fmt.get("schema")
    if family == "gemini":
        config = body.get("generationConfig") or {}
        return config.get("responseMimeType") == "application/json", config.get("responseJsonSchema")
    fmt = body.get("format")
    return fmt is not None, fmt if isinstance(fmt, dict) else None


def wanted_tool(family: str, body: dict[str, Any]) -> tuple[str, Any] | None:
    """(name, parameters schema) of the tool to call, None when no tool is offered or calls are off."""
    if family == "gemini":
        decls = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        if not decls or config.get("mode") == "NONE":
            return None
        forced = (config.get("allowedFunctionNames") or [None])[0]
        tools = {d["name"]: d.get("parametersJsonSchema") or d.get("parameters") for d in decls}
    elif family == "anthropic":
        choice = body.get("tool_choice") or {}
        if not body.get("tools") or choice.get("type") == "none":
            return None
        forced = choice.get("name")
        tools = {t["name"]: t.get("input_schema") for t in body["tools"]}
    else:
        choice = body.get("tool_choice")
        if not body.get("tools") or choice == "none":
            return None
        forced = choice["function"]["name"] if isinstance(choice, dict) else None
        tools = {t["function"]["name"]: t["function"].get("parameters") for t in body["tools"]}
    name = forced if forced in tools else next(iter(tools))
    return name, tools[name]


def refuse_image(family: str) -> tuple[int, str]:
    return 400, {"anthropic": "This model does not support image input.",
                 "gemini": "This model does not support image input.",
                 "ollama": "this model is missing data required for image input"}.get(
        family, "Invalid content type. image_url is only supported by certain models.")


def arguments_text(arguments: Any) -> str:
    return json.dumps(arguments)
