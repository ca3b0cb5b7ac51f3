"""``--dry-run``: what a job would send and what it could cost, without sending anything.

Approximations (no tokenizer is downloaded):
  * input tokens: ``runner.engine.usage.estimate_tokens``, about four characters a token plus
    four per message (English prose; code and other scripts run higher);
  * worst case: every answer uses all of ``max_tokens`` (else the model's known
    ``max_output_tokens``; with neither, the worst case is unbounded and shown as such);
  * typical: answers of TYPICAL_OUTPUT_TOKENS tokens (a paragraph), at most ``max_tokens``.
Prices come from runner/engine/costing.py (provider file, then discovery's cache); a model
without one is "unpriced" and left out of the totals, which say so.

Judge checks cost too: each grader has a row of its own (``judge``), one request per answer
and judge check, reading the question, the answer and the rubric. Typical: a typical answer
and a short verdict; worst case: answers of the target's max_tokens, verdicts of the grader's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from ..config.jobs import Job, Target
from ..config.providers import Pricing, ProviderRegistry
from .costing import PriceBook, batch_discount, price
from .judge import judge_request
from .usage import CHARS_PER_TOKEN, estimate_tokens

TYPICAL_OUTPUT_TOKENS = 150
TYPICAL_VERDICT_TOKENS = 60  # {"pass": ..., "score": ..., "reason": "one short sentence"}


@dataclass(frozen=True)
class TargetEstimate:
    target: str
    items: int
    input_tokens: int
    max_output_tokens: int | None  # per item; None when nothing bounds it
    typical_output_tokens: int  # per item
    price_source: str | None
    typical_cost_usd: float | None
    worst_cost_usd: float | None  # None when unpriced or unbounded
    batch_discount: float | None = None  # batch mode: the fraction of the price the batch API charges
    batch_typical_cost_usd: float | None = None
    batch_worst_cost_usd: float | None = None
    judge: bool = False  # a grader's requests (judge checks), not answers


def estimate_job(job: Job, registry: ProviderRegistry, limit: int | None = None, *,
                 batch: bool = False) -> list[TargetEstimate]:
    """Per target; with ``batch``, also the batch price of the targets whose provider has a batch API."""
    prices = PriceBook()
    return [_estimate(job, t, registry, prices, limit, batch) for t in job.targets] + _grading(job, registry, prices,
                                                                                             limit)


def _grading(job: Job, registry: ProviderRegistry, prices: PriceBook, limit: int | None) -> list[TargetEstimate]:
    """Per grader: its requests if every answer gets graded, each answer of typical length."""
    judges = job.compile_checks().judges
    if not judges:
        return []
    answer = "x" * (TYPICAL_OUTPUT_TOKENS * CHARS_PER_TOKEN)
    # grader label -> [requests, input tokens, input tokens at the longest answers, most output tokens]
    asked: dict[str, list[int]] = {}
    graders: dict[str, Target] = {}
    for target in job.targets:
        longest: int = target.params.get("max_tokens") or 0  # what an answer may add to the grader's input
        for item in itertools.islice(job.items_for(target), limit):
            for check in judges.get(item.prompt.id, ()):
                assert check.judge is not None and check.judge.target is not None  # validation saw to both
                grader = job.graders[check.judge.target]
                request = judge_request(check.judge, grader.model, item.prompt_text, answer, item.row)
                counts = asked.setdefault(grader.label, [0, 0, 0, 0])
                graders[grader.label] = grader
                tokens = estimate_tokens(request.messages)
                counts[0] += 1
                counts[1] += tokens
                counts[2] += tokens + max(longest - TYPICAL_OUTPUT_TOKENS, 0)
                counts[3] += int(request.params["max_tokens"])
    estimates = []
    for label, (requests, input_tokens, most_in, most_out) in asked.items():
        grader = graders[label]
        pricing = prices.get(registry.get(grader.provider), grader.model)
        most_each = -(-most_out // requests)
        typical = min(TYPICAL_VERDICT_TOKENS, most_each)
        estimates.append(TargetEstimate(f"{label} (judge)", requests, input_tokens, most_each, typical,
                                        pricing.source if pricing else None,
                                        price(pricing, input_tokens, typical * requests),
                                        price(pricing, most_in, most_out), judge=True))
    return estimates


def _estimate(job: Job, target: Target, registry: ProviderRegistry, prices: PriceBook,
              limit: int | None, batch: bool) -> TargetEstimate:
    items = input_tokens = 0
    for item in itertools.islice(job.items_for(target), limit):
        items += 1
        input_tokens += estimate_tokens(item.messages)
    provider = registry.get(target.provider)
    known = provider.known.get(target.model)
    max_tokens: int | None = target.params.get("max_tokens") or (known.max_output_tokens if known else None)
    typical = min(TYPICAL_OUTPUT_TOKENS, max_tokens) if max_tokens else TYPICAL_OUTPUT_TOKENS
    pricing = prices.get(provider, target.model)
    estimate = TargetEstimate(target.label, items, input_tokens, max_tokens, typical,
                              pricing.source if pricing else None, *_costs(pricing, items, input_tokens, typical,
                                                                          max_tokens))
    discount = batch_discount(provider, target.model) if batch else None
    if discount is None:
        return estimate
    typical_usd, worst_usd = _costs(prices.batch(provider, target.model), items, input_tokens, typical, max_tokens)
    return replace(estimate, batch_discount=discount, batch_typical_cost_usd=typical_usd,
                   batch_worst_cost_usd=worst_usd)


def _costs(pricing: Pricing | None, items: int, input_tokens: int, typical: int,
           max_tokens: int | None) -> tuple[float | None, float | None]:
    """(typical, worst case) USD of ``items`` answers at ``pricing``; the worst case None when unbounded."""
    worst = price(pricing, input_tokens, max_tokens * items) if max_tokens is not None else None
    return price(pricing, input_tokens, typical * items), worst


def totals(estimates: list[TargetEstimate]) -> dict[str, Any]:
    """Sums over the targets; costs over the priced ones only, which ``unpriced`` names."""
    judged = [e for e in estimates if e.judge]
    return {
        "items": sum(e.items for e in estimates if not e.judge),
        **({"judge_requests": sum(e.items for e in judged)} if judged else {}),
        "input_tokens": sum(e.input_tokens for e in estimates),
        "typical_cost_usd": sum(e.typical_cost_usd or 0.0 for e in estimates),
        "worst_cost_usd": None if any(e.max_output_tokens is None for e in estimates)
        else sum(e.worst_cost_usd or 0.0 for e in estimates),
        "batch_typical_cost_usd": sum((e.batch_typical_cost_usd if e.batch_discount else e.typical_cost_usd) or 0.0
                                      for e in estimates) if any(e.batch_discount for e in estimates) else None,
        "unpriced": [e.target for e in estimates if e.typical_cost_usd is None],
        "unbounded": [e.target for e in estimates if e.max_output_tokens is None],
    }
