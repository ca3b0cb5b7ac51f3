"""Money: the one module that turns tokens and prices into USD.

    model price   provider file's ``known`` pricing, else what discovery learned (PriceBook)
    batch price   that price at the provider's (or the model's) batch discount
    answer cost   the provider's reported cost, else tokens x price, else an estimate (marked so)
    worst case    input estimate + ``max_tokens`` of output: what a budget reserves before sending
    estimate      the dry run's typical and worst case per target

No price is ``None``, never 0: the result's cost stays NULL and reports say "unpriced".
OpenRouter's own reported ``usage.cost`` beats every price and is taken per answer.
Cached input tokens cost ``pricing.cached_input`` when the provider file gives it; output
tokens include reasoning tokens on every protocol, so reasoning is billed once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..config.providers import Pricing, Provider
from ..protocols import Completion
from .usage import CHARS_PER_TOKEN, estimate_tokens

REPORTED = "reported by the provider"  # price_source of a cost the provider stated itself
ESTIMATED = "estimated"  # price_source of a cost computed from estimated token counts


class Cost(NamedTuple):
    """What one answer cost and where the figure came from; (None, None) when unknown."""

    usd: float | None
    source: str | None


UNKNOWN = Cost(None, None)


def learned_pricing(provider: Provider, model: str) -> Pricing | None:
    """What the last ``hanzo-run models`` learned about the model's price, from the cache; no network."""
    from ..probes.models import cached_models  # discovery pulls in the HTTP stack; only needed here

    info = cached_models(provider).get(model)
    return info.pricing if info else None


def model_pricing(provider: Provider, model: str) -> Pricing | None:
    info = provider.known.get(model)
    if info is not None and info.pricing is not None:
        return info.pricing
    return learned_pricing(provider, model)


def batch_discount(provider: Provider, model: str) -> float | None:
    """The fraction of the price the provider's batch API charges for ``model`` (a per-model discount wins);
    None when the provider has no batch API."""
    if provider.batch is None:
        return None
    known = provider.known.get(model)
    return known.batch_discount if known and known.batch_discount is not None else provider.batch.discount


def discounted(pricing: Pricing | None, discount: float) -> Pricing | None:
    """``pricing`` at a batch discount, its source saying so."""
    if pricing is None:
        return None
    cached = None if pricing.cached_input is None else pricing.cached_input * discount
    return Pricing(pricing.input * discount, pricing.output * discount,
                   f"{pricing.source} (batch {discount * 100:g}%)", cached)


class PriceBook:
    """Prices looked up once per (provider, model) for a whole run: the cache file is read once."""

    def __init__(self) -> None:
        self._prices: dict[tuple[str, str], Pricing | None] = {}
        self._batch: dict[tuple[str, str], Pricing | None] = {}

    def get(self, provider: Provider, model: str) -> Pricing | None:
        key = (provider.id, model)
        if key not in self._prices:
            self._prices[key] = model_pricing(provider, model)
        return self._prices[key]

    def batch(self, provider: Provider, model: str) -> Pricing | None:
        """The model's price by the provider's batch API."""
        key = (provider.id, model)
        if key not in self._batch:
            discount = batch_discount(provider, model)
            assert discount is not None, "only a provider with a batch API prices batches"
            self._batch[key] = discounted(self.get(provider, model), discount)
        return self._batch[key]


def price(pricing: Pricing | None, input_tokens: int | None, output_tokens: int | None,
          cached_input_tokens: int | None = None) -> float | None:
    """USD for these token counts; None (never 0) when the price or a token count is unknown."""
    if pricing is None or input_tokens is None or output_tokens is None:
        return None
    cost = input_tokens * pricing.input + output_tokens * pricing.output
    if cached_input_tokens and pricing.cached_input is not None:
        cost -= min(cached_input_tokens, input_tokens) * (pricing.input - pricing.cached_input)
    return cost / 1_000_000


def estimated_cost(pricing: Pricing, messages: tuple[Any, ...], text: str, input_tokens: int | None,
                   output_tokens: int | None) -> float:
    """USD of an answer whose usage is partly unknown: the known counts, else the estimates."""
    tokens_in = input_tokens if input_tokens is not None else estimate_tokens(messages)
    tokens_out = output_tokens if output_tokens is not None else -(-len(text) // CHARS_PER_TOKEN)
    return (tokens_in * pricing.input + tokens_out * pricing.output) / 1_000_000


def answer_cost(pricing: Pricing | None, completion: Completion, messages: tuple[Any, ...]) -> Cost:
    """What one answer cost: the provider's own figure, else its tokens at ``pricing``; when it reported no
    usage (llama.cpp streams), estimated from ``messages`` and its text, and marked so."""
    c = completion
    if c.cost_usd is not None:
        return Cost(c.cost_usd, REPORTED)
    if pricing is None:
        return UNKNOWN
    usd = price(pricing, c.input_tokens, c.output_tokens, c.cached_input_tokens)
    if usd is not None:
        return Cost(usd, pricing.source)
    if pricing.input == pricing.output == 0:  # a free model is still $0 without usage
        return Cost(0.0, pricing.source)
    return Cost(estimated_cost(pricing, messages, c.text or "", c.input_tokens, c.output_tokens), ESTIMATED)


def worst_case(pricing: Pricing, input_tokens: int, max_tokens: int) -> float:
    """USD of a request if its answer uses all of ``max_tokens``: what a budget reserves before sending it."""
    return (input_tokens * pricing.input + max_tokens * pricing.output) / 1_000_000


def spent_with(answer: float | None, judges: float | None) -> float | None:
    """An item's cost with its judges' (None when either is unknown)."""
    return None if answer is None or judges is None else answer + judges


__all__ = ["ESTIMATED", "REPORTED", "UNKNOWN", "Cost", "PriceBook", "answer_cost", "batch_discount", "discounted",
           "estimated_cost", "model_pricing", "price", "spent_with", "worst_case"]
