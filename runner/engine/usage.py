"""Token estimates, for when nothing better is known.

Used before a request (the input weight against rate limits and budgets, the dry run) and
after an answer that reported no usage (llama.cpp streams send none): its cost is then
estimated (runner/engine/costing.py) from the prompt and the answer's length.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4  # about four characters a token for English text


def estimate_tokens(messages: tuple[Any, ...]) -> int:
    """A rough input token count: about four characters a token, plus a few per message."""
    return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 4 * len(messages)
