"""What every protocol shares for images, JSON output, tools and reasoning; each protocol's own
wire shapes live beside it (``openai_shapes.py``, ``anthropic_shapes.py``, ...).

Kept apart from the text path so a request that uses none of these features costs nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..config.media import ImageData, ImageRef

# The finish reason of an answer that called tools, whatever the protocol says (tool_use, STOP, stop).
TOOL_FINISH = "tool_calls"
# Reasons that only mean "the model stopped on its own"; length and safety stops are kept as they are.
_PLAIN_STOPS = frozenset({None, "stop", "end_turn", "tool_use", "STOP", "tool_calls"})
# Thinking budgets for a reasoning effort, where a protocol takes a budget (Anthropic, Gemini).
EFFORT_BUDGET = {"low": 1024, "medium": 4096, "high": 16384}


def parse_arguments(value: Any) -> Any:
    """Tool-call arguments as an object: JSON text parsed; text that is not JSON kept as it came."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    try:
        return json.loads(value)
    except ValueError:
        return value


def assemble_tool_calls(parts: Mapping[int, list[Any]]) -> list[dict[str, Any]]:
    """Streamed tool calls, in index order: ``[name, piece, piece, ...]`` or ``[name, object]``."""
    calls = []
    for index in sorted(parts):
        name, *pieces = parts[index]
        if len(pieces) == 1 and not isinstance(pieces[0], str):
            arguments = pieces[0]
        else:
            arguments = parse_arguments("".join(str(p) for p in pieces))
        calls.append({"name": name, "arguments": arguments})
    return calls


def tool_finish(finish: str | None, calls: list[dict[str, Any]] | None) -> str | None:
    return TOOL_FINISH if calls and finish in _PLAIN_STOPS else finish


def load_image(part: Mapping[str, Any], limit: int | None) -> ImageData:
    ref: ImageRef = part["image"]
    return ref.load(limit)


def thinking_budget(reasoning: Mapping[str, Any]) -> int | None:
    """The thinking budget a ``reasoning`` param asks for: its own, else its effort's."""
    budget = reasoning.get("budget_tokens")
    if budget is None and reasoning.get("effort"):
        budget = EFFORT_BUDGET[reasoning["effort"]]
    return budget if isinstance(budget, int) else None


def tool_result_text(content: Any) -> str:
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
