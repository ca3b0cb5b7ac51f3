"""A model's price, and where it came from.

In order: the provider file's ``known`` pricing, then what model discovery learned and
cached (OpenRouter and SambaNova publish prices in their listings; read without network).
OpenRouter's own reported ``usage.cost`` beats both and is taken per answer by the engine.
No price is ``None``, never 0: the result's cost stays NULL and reports say "unpriced".
"""

from __future__ import annotations

from ..config.providers import Pricing, Provider

REPORTED = "reported by the provider"  # price_source of a cost the provider stated itself


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


class PriceBook:
    """Prices looked up once per (provider, model) for a whole run: the cache file is read once."""

    def __init__(self) -> None:
        self._prices: dict[tuple[str, str], Pricing | None] = {}

    def get(self, provider: Provider, model: str) -> Pricing | None:
        key = (provider.id, model)
        if key not in self._prices:
            self._prices[key] = model_pricing(provider, model)
        return self._prices[key]
