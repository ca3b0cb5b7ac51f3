"""Messages beyond plain text: content parts (text and images), earlier tool calls and tool results.

A job's message is ``{role, content}`` where content is a string or a list of parts
``{text: ...}`` / ``{image: SOURCE}``; an assistant message may carry ``tool_calls``
(``[{name, arguments, id?}]``) and a ``tool`` message answers one (``name``, ``content``,
``id?``). Rendering fills ``{{var}}`` from the row and turns image sources into
``ImageRef`` (read later, when the request is built). Plain messages never come here:
they keep the fast path of runner/config/jobs.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .media import ImageRef, image_problem
from .templating import Row, render, render_strings


def is_rich(message: Mapping[str, Any]) -> bool:
    """Whether a job message needs more than the plain ``{role, content: str}`` path."""
    return not isinstance(message.get("content"), str) or len(message) != 2


def render_message(message: Mapping[str, Any], row: Row, base: Path) -> Mapping[str, Any]:
    """One rich message with the row's values in, images as ``ImageRef``."""
    out: dict[str, Any] = {"role": message["role"]}
    content = message.get("content")
    if isinstance(content, str):
        out["content"] = render(content, row)
    elif isinstance(content, list):
        out["content"] = tuple(
            MappingProxyType({"text": render(part["text"], row)}) if "text" in part
            else MappingProxyType({"image": ImageRef(render(part["image"], row), base)})
            for part in content)
    else:
        out["content"] = ""
    if message.get("tool_calls"):
        out["tool_calls"] = tuple(
            MappingProxyType({"name": render(c["name"], row),
                              "arguments": render_strings(c.get("arguments") or {}, row),
                              "id": render(c.get("id") or "", row)})
            for c in message["tool_calls"])
    for key in ("name", "id"):
        if message.get(key):
            out[key] = render(message[key], row)
    return MappingProxyType(out)


def text_of(content: Any) -> str:
    """What the results' prompt column shows for a message's content: text, and images by reference."""
    if isinstance(content, str):
        return content
    return " ".join(part["text"] if "text" in part else part["image"].reference() for part in content)


def image_sources(message: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """(part index, source template) of each image part of a job message."""
    content = message.get("content")
    if isinstance(content, list):
        for k, part in enumerate(content):
            if "image" in part:
                yield k, part["image"]


def check_images(source: str, rows: Iterator[tuple[int | None, Row]], base: Path,
                 targets: dict[str, tuple[str, int | None]], limit: int = 10) -> list[str]:
    """What is wrong with an image source for the job's targets, per data row when it is templated
    (at most ``limit`` messages: a broken pattern over 100,000 rows says so without 100,000 lines)."""
    if not source.strip():
        return []  # the schema says it is empty
    if "{{" not in source:
        problem = image_problem(source, base, targets)
        return [problem] if problem else []
    problems: list[str] = []
    for index, row in rows:
        problem = image_problem(render(source, row), base, targets)
        if problem:
            problems.append(f"{problem} (data row {index})")
            if len(problems) >= limit:
                problems.append("(further rows not checked)")
                break
    return problems


def unanswered_tool_results(messages: Iterator[Mapping[str, Any]] | tuple[Mapping[str, Any], ...]
                            ) -> Iterator[tuple[int, str]]:
    """(index, tool name) of each tool message that no earlier assistant message called: every provider
    refuses such a conversation."""
    called: set[str] = set()
    for j, message in enumerate(messages):
        called.update(str(call.get("name")) for call in message.get("tool_calls") or ())
        if message.get("role") == "tool" and str(message.get("name")) not in called:
            yield j, str(message.get("name"))


def pair_tool_calls(messages: tuple[Mapping[str, Any], ...]) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    """Call ids for protocols that pair results with calls by id (OpenAI, Anthropic).

    Returns (tool message index -> call id, (message index, call index) -> call id): a call
    without an id gets ``call_<m>_<c>``; a result without one answers the latest unanswered call
    of its tool.
    """
    call_ids: dict[tuple[int, int], str] = {}
    open_calls: list[tuple[str, str]] = []  # (tool name, id) not answered yet
    result_ids: dict[int, str] = {}
    for m, message in enumerate(messages):
        for c, call in enumerate(message.get("tool_calls") or ()):
            cid = call.get("id") or f"call_{m}_{c}"
            call_ids[(m, c)] = cid
            open_calls.append((call["name"], cid))
        if message["role"] == "tool":
            cid = message.get("id") or next((i for n, i in reversed(open_calls) if n == message.get("name")),
                                            f"call_{m}")
            open_calls = [(n, i) for n, i in open_calls if i != cid]
            result_ids[m] = cid
    return result_ids, call_ids
