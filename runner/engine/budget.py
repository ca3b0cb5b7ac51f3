"""Spending limits: never start an item that could push spend past the budget.

Before an item is sent its worst case is reserved: the input estimate plus
``max_tokens`` of output at the model's price. When it finishes, the reservation
is replaced by what it really cost (an estimate, marked so, when the answer reported
no usage). An item whose model has no known price cannot be bounded, so it is refused
under a budget unless unpriced items are allowed; even then, the costs providers report
count as they arrive, and once the budget is spent no item starts, priced or not.
"""

from __future__ import annotations

from ..config.providers import Pricing
from ..errors import ErrorCode, ProviderError
from .costing import worst_case


class Budget:
    def __init__(self, limit_usd: float, *, allow_unpriced: bool = False, spent_usd: float = 0.0) -> None:
        self.limit = limit_usd
        self.allow_unpriced = allow_unpriced
        self.spent = spent_usd  # a resumed run starts with what it already spent
        self.reserved = 0.0

    def reserve(self, pricing: Pricing | None, input_tokens: int, max_tokens: int, provider: str) -> float:
        """Reserve the worst case of one item, or raise BUDGET_EXCEEDED."""
        if self.spent >= self.limit:  # what answers cost as they arrive (e.g. OpenRouter's usage.cost) counts
            raise ProviderError(ErrorCode.BUDGET_EXCEEDED, f"not sent: ${self.spent:.6f} already spent reaches the "
                                f"budget of ${self.limit:g}", None, provider)
        if pricing is None:
            if self.allow_unpriced:
                return 0.0
            raise ProviderError(ErrorCode.BUDGET_EXCEEDED, "the model has no known price, so a budget cannot bound it; "
                                "add its pricing to the provider file or pass --allow-unpriced", None, provider)
        worst = worst_case(pricing, input_tokens, max_tokens)
        if self.spent + self.reserved + worst > self.limit:
            raise ProviderError(ErrorCode.BUDGET_EXCEEDED, f"not sent: its worst case ${worst:.6f} on top of "
                                f"${self.spent + self.reserved:.6f} spent or reserved would pass the budget "
                                f"of ${self.limit:g}", None, provider)
        self.reserved += worst
        return worst

    def settle(self, reserved: float, cost: float | None) -> None:
        """Replace a reservation by the real cost (the reservation itself when the cost is unknown)."""
        self.reserved -= reserved
        self.spent += reserved if cost is None else cost
