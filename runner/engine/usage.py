"""Token estimates, for when nothing better is known.

Used before a request (the input weight against rate limits and budgets, the dry run) and
after an answer that reported no usage (llama.cpp streams send none): its cost is then
estimated from the prompt and the answer's length and marked ``price_source = "estimated"``,
so a budget gives back the rest of the item's worst-case reservation instead of keeping it.
"""

from __future__ import annotations

from typing import Any

from ..config.providers import Pricing

ESTIMATED = "estimated"  # price_source of a cost computed from estimated token counts
CHARS_PER_TOKEN = 4  # about four characters a token for English text


def estimate_tokens(messages: tuple[Any, ...]) -> int:
    """A rough input token count: about four characters a token, plus a few per message."""
    return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 4 * len(messages)


def estimated_cost(pricing: Pricing, messages: tuple[Any, ...], text: str, input_tokens: int | None,
                   output_tokens: int | None) -> float:
    """USD of an answer whose usage is partly unknown: the known counts, else the estimates."""
    tokens_in = input_tokens if input_tokens is not None else estimate_tokens(messages)
    tokens_out = output_tokens if output_tokens is not None else -(-len(text) // CHARS_PER_TOKEN)
    return (tokens_in * pricing.input + tokens_out * pricing.output) / 1_000_000
