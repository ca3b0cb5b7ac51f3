"""What a check looks at: the answer and how it was produced (runner/config/checks.py and the output
checks of runner/config/outputs.py read it; the engine and rescore fill it in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Observed:
    """What a check looks at: the answer and how it was produced."""

    text: str
    output_tokens: int | None
    latency_ms: float | None
    fields: Mapping[str, Any] | None = None  # the result's fields, for python checks (Checks.wants_fields)
    tool_calls: Sequence[Mapping[str, Any]] | None = None  # [{name, arguments}], when the model called tools
