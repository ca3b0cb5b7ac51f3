"""Money: the one module that turns tokens and prices into USD.

    model price   provider file's ``known`` pricing, else the genai-prices dataset shipped with the package,
                  else what discovery learned (PriceBook)
    batch price   that price at the provider's (or the model's) batch discount
    answer cost   the provider's reported cost, else tokens x price at the answer's date, else an estimate
    worst case    input estimate + ``max_tokens`` of output: what a budget reserves before sending
    estimate      the dry run's typical and worst case per target

No price is ``None``, never 0: the result's cost stays NULL and reports say "unpriced".
OpenRouter's own reported ``usage.cost`` beats every price and is taken per answer.
Cached input tokens cost ``pricing.cached_input`` (cache writes ``cache_write``) when the price gives it;
output tokens include reasoning tokens on every protocol, so reasoning is billed once.

The dataset (pydantic's genai-prices) knows dated price changes, prompt-size tiers and cache rates: an
answer it prices is priced by it at the answer's date. Only the data bundled in the installed package is
read, never its auto-update, so prices work offline and ``price_source`` names the exact version.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config.providers import Pricing, Provider
from ..protocols import Completion
from .usage import CHARS_PER_TOKEN, estimate_tokens

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo as DatasetModel
    from genai_prices.types import Provider as DatasetProvider

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


@dataclass(frozen=True)
class DatasetPricing(Pricing):
    """A price from the genai-prices dataset. Its flat fields are today's base rates (what estimates and
    listings show); ``usd`` prices one request exactly: at its date, with the prompt-size tier it falls in."""

    entry: DatasetModel | None = field(default=None, compare=False, repr=False)
    vendor: DatasetProvider | None = field(default=None, compare=False, repr=False)
    discount: float = 1.0  # a batch API's fraction of the price
    tiered: bool = False  # long prompts cost more than the flat fields say

    def usd(self, input_tokens: int, output_tokens: int, cached: int | None, written: int | None,
            at: datetime.datetime | None) -> float:
        from genai_prices.types import Usage

        assert self.entry is not None and self.vendor is not None
        cached = min(cached or 0, input_tokens)  # the dataset counts cache tokens as parts of the input
        written = min(written or 0, input_tokens - cached)
        at = at or _now()
        rates = _flat_rates(self.entry.get_prices(at))
        if rates is not None:
            return _flat_usd(rates, input_tokens, output_tokens, cached, written) * self.discount
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached,
                      cache_write_tokens=written)
        calc = self.entry.calc_price(usage, self.vendor, genai_request_timestamp=at)
        return float(calc.total_price) * self.discount


#: The dataset's price keys a chat answer's four token counts are priced by.
_TOKEN_RATES = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
#: Prices of tool uses (OpenAI's web and file searches): an answer's usage here never counts them, so they add 0.
_UNCOUNTED = {"web_searches_kcount", "storage_searches_kcount"}
_flat: dict[int, tuple[float | None, ...] | None] = {}


def _flat_rates(prices: Any) -> tuple[float | None, ...] | None:
    """A dataset price's four token rates, when it has no other that applies: no tier, no per-request fee,
    no audio or image rate. Such a price is linear in the token counts, so ``_flat_usd`` gives what genai-prices'
    calc_price does at a fiftieth of its cost (that was a fifth of a run's CPU); any other goes through it.
    Kept by identity: the dataset's price objects live as long as the process and are never changed."""
    key = id(prices)
    if key not in _flat:
        given = {name: value for name, value in vars(prices).items()
                 if value is not None and name[0] != "_" and name not in _UNCOUNTED}
        simple = given.keys() <= set(_TOKEN_RATES) and all(isinstance(v, Decimal) for v in given.values())
        _flat[key] = tuple(None if given.get(k) is None else float(given[k]) for k in _TOKEN_RATES) \
            if simple and "input_mtok" in given else None
    return _flat[key]


def _flat_usd(rates: tuple[float | None, ...], input_tokens: int, output_tokens: int, cached: int,
              written: int) -> float:
    """genai-prices' sum for a flat price: cache reads and writes are parts of the input, priced at their own
    rate when the price has one (and then taken out of the input), else at the input rate."""
    input_rate, output_rate, read_rate, write_rate = rates
    assert input_rate is not None
    usd = output_tokens * (output_rate or 0.0)
    if read_rate is not None:
        usd += cached * read_rate
        input_tokens -= cached
    if write_rate is not None:
        usd += written * write_rate
        input_tokens -= written
    return (usd + input_tokens * input_rate) / 1_000_000


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@cache
def dataset_version() -> str:
    """``genai-prices X.Y.Z``: the package, and so the price data bundled in it."""
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


def dataset_pricing(provider: Provider, model: str) -> DatasetPricing | None:
    """The dataset's price of ``model`` at ``provider``, read from the data bundled in the package.

    The provider is found by its API's address, else by its id (``gemini`` is the dataset's ``google``);
    a local server is never priced: the dataset's prices are for the cloud APIs.
    """
    if provider.kind == "local":
        return None
    vendor = _dataset_vendor(provider.base_url, provider.id)
    entry = vendor.find_model(model, all_providers=_bundled()) if vendor is not None else None
    if vendor is None or entry is None:
        return None
    rates = entry.get_prices(_now())
    flat = {key: _base(getattr(rates, key)) for key in ("input_mtok", "output_mtok", "cache_read_mtok",
                                                        "cache_write_mtok")}
    if flat["input_mtok"] is None or flat["output_mtok"] is None:
        return None  # not a chat model's price (an embedding, an image model)
    tiered = any(getattr(getattr(rates, key), "tiers", None) for key in ("input_mtok", "output_mtok"))
    return DatasetPricing(flat["input_mtok"], flat["output_mtok"], dataset_version(), flat["cache_read_mtok"],
                          flat["cache_write_mtok"], entry=entry, vendor=vendor, tiered=tiered)


def _base(rate: Any) -> float | None:
    """A dataset rate as USD per 1M tokens; a tiered rate's base, the price below its first tier."""
    if rate is None:
        return None
    return float(getattr(rate, "base", rate))


def _bundled() -> list[DatasetProvider]:
    # genai_prices.data is the data shipped in the package; its snapshot getter would prefer prices an
    # UpdatePrices (of any library in the process) downloaded, which would not be the version named.
    from genai_prices.data import providers

    return providers


@cache
def _dataset_vendor(base_url: str, provider_id: str) -> DatasetProvider | None:
    from genai_prices.data_snapshot import find_provider_by_id

    vendors = _bundled()
    by_address = next((v for v in vendors if re.match(v.api_pattern, base_url)), None)
    return by_address or find_provider_by_id(vendors, provider_id)


def model_pricing(provider: Provider, model: str) -> Pricing | None:
    """The provider file's price, else the dataset's, else what discovery learned; None when none knows it."""
    info = provider.known.get(model)
    if info is not None and info.pricing is not None:
        return info.pricing
    return dataset_pricing(provider, model) or learned_pricing(provider, model)


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
    written = None if pricing.cache_write is None else pricing.cache_write * discount
    batch = replace(pricing, input=pricing.input * discount, output=pricing.output * discount, cached_input=cached,
                    cache_write=written, source=f"{pricing.source} (batch {discount * 100:g}%)")
    return replace(batch, discount=batch.discount * discount) if isinstance(batch, DatasetPricing) else batch


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
          cached_input_tokens: int | None = None, cache_write_tokens: int | None = None) -> float | None:
    """USD for these token counts at the flat rates; None (never 0) when the price or a token count is unknown.

    Estimates sum many requests' tokens, so they use the flat rates: a prompt-size tier is per request.
    """
    if pricing is None or input_tokens is None or output_tokens is None:
        return None
    cost = input_tokens * pricing.input + output_tokens * pricing.output
    cached = min(cached_input_tokens or 0, input_tokens)
    if cached and pricing.cached_input is not None:
        cost -= cached * (pricing.input - pricing.cached_input)
    written = min(cache_write_tokens or 0, input_tokens - cached)
    if written and pricing.cache_write is not None:
        cost += written * (pricing.cache_write - pricing.input)
    return cost / 1_000_000


def request_cost(pricing: Pricing, input_tokens: int, output_tokens: int, cached_input_tokens: int | None = None,
                 cache_write_tokens: int | None = None, at: datetime.datetime | None = None) -> float:
    """USD of one request: the dataset's price at ``at`` (now by default) in the tier the request falls in,
    else the flat rates."""
    if isinstance(pricing, DatasetPricing):
        return pricing.usd(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, at)
    usd = price(pricing, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
    assert usd is not None
    return usd


def estimated_cost(pricing: Pricing, messages: tuple[Any, ...], text: str, input_tokens: int | None,
                   output_tokens: int | None, at: datetime.datetime | None = None) -> float:
    """USD of an answer whose usage is partly unknown: the known counts, else the estimates."""
    tokens_in = input_tokens if input_tokens is not None else estimate_tokens(messages)
    tokens_out = output_tokens if output_tokens is not None else -(-len(text) // CHARS_PER_TOKEN)
    return request_cost(pricing, tokens_in, tokens_out, at=at)


def answer_cost(pricing: Pricing | None, completion: Completion, messages: tuple[Any, ...],
                at: datetime.datetime | None = None) -> Cost:
    """What one answer cost: the provider's own figure, else its tokens at ``pricing`` on the answer's date
    ``at`` (now by default); when it reported no usage (llama.cpp streams), estimated from ``messages`` and
    its text, and marked so."""
    c = completion
    if c.cost_usd is not None:
        return Cost(c.cost_usd, REPORTED)
    if pricing is None:
        return UNKNOWN
    if c.input_tokens is not None and c.output_tokens is not None:
        return Cost(request_cost(pricing, c.input_tokens, c.output_tokens, c.cached_input_tokens,
                                 c.cache_write_tokens, at), pricing.source)
    if pricing.input == pricing.output == 0:  # a free model is still $0 without usage
        return Cost(0.0, pricing.source)
    return Cost(estimated_cost(pricing, messages, c.text or "", c.input_tokens, c.output_tokens, at), ESTIMATED)


def worst_case(pricing: Pricing, input_tokens: int, max_tokens: int) -> float:
    """USD of a request if its answer uses all of ``max_tokens``: what a budget reserves before sending it
    (a long prompt in its tier's price)."""
    return request_cost(pricing, input_tokens, max_tokens)


def spent_with(answer: float | None, judges: float | None) -> float | None:
    """An item's cost with its judges' (None when either is unknown)."""
    return None if answer is None or judges is None else answer + judges


__all__ = ["ESTIMATED", "REPORTED", "UNKNOWN", "Cost", "DatasetPricing", "PriceBook", "answer_cost", "batch_discount",
           "dataset_pricing", "dataset_version", "discounted", "estimated_cost", "model_pricing", "price",
           "request_cost", "spent_with", "worst_case"]
