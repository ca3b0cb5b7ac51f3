"""Adaptive limits: learned from the providers' headers and 429s, never above the declared ones."""

from __future__ import annotations

import datetime
import time

import anyio
import pytest

from runner.config.providers import Limits
from runner.engine.limits import ProviderLimits, TokenLimiter
from runner.protocols import anthropic, openai
from runner.protocols.ratelimit import parse_reset


@pytest.mark.parametrize(("value", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012),
                                                ("2m59.56s", 179.56), ("1h2m", 3720.0), ("", None), ("soon", None)])
def test_reset_durations(value: str, seconds: float | None) -> None:
    assert parse_reset(value) == seconds


def test_reset_as_a_timestamp() -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    assert 28 < (parse_reset(when.isoformat().replace("+00:00", "Z")) or 0) <= 30


def test_headers_pause_only_when_nothing_is_left() -> None:
    exhausted_for = openai.ADAPTER.rate_limit_pause  # each protocol reads its own headers
    assert exhausted_for({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "1s"}) is None
    assert exhausted_for({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
                          "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}) == 360.0
    exhausted_for = anthropic.ADAPTER.rate_limit_pause
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)).isoformat()
    assert 4 < (exhausted_for({"anthropic-ratelimit-requests-remaining": "0",
                               "anthropic-ratelimit-requests-reset": later}) or 0) <= 5


def test_429_halves_concurrency_and_successes_grow_it_back_to_the_declared_cap() -> None:
    limits = ProviderLimits(Limits(requests=100, window=1, tokens=None, concurrency=8))
    seen = []
    for _ in range(4):
        limits.observe(429, {})
        seen.append(limits.concurrency)
    assert seen == [4, 2, 1, 1]
    for _ in range(200):
        limits.observe(200, {})
    assert limits.concurrency == 8  # grown back, never past the declared 8


def test_admit_waits_for_the_servers_reset() -> None:
    limits = ProviderLimits(Limits(requests=1000, window=1, tokens=None, concurrency=8),
                            openai.ADAPTER.rate_limit_pause)
    limits.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"})

    async def admit() -> float:
        began = time.monotonic()
        await limits.admit(1)
        return time.monotonic() - began

    assert 0.28 < anyio.run(admit, backend="asyncio") < 0.6


def test_token_windows_hold_no_more_than_declared_by_weight() -> None:
    """Requests of uneven weight, started as fast as allowed: no window of the log exceeds the limit,
    and a reservation whose request never starts is given back."""
    limiter = TokenLimiter(100, 0.2)
    starts: list[tuple[float, int]] = []

    async def one(weight: int) -> None:
        entry = await limiter.reserve(weight)
        starts.append((time.monotonic(), min(weight, 100)))
        limiter.started(entry)

    async def main() -> None:
        dropped = await limiter.reserve(60)
        limiter.cancel(dropped)
        async with anyio.create_task_group() as tg:
            for weight in (40, 70, 30, 90, 10, 150, 20):
                tg.start_soon(one, weight)

    anyio.run(main, backend="asyncio")
    window = limiter.window
    for t, _ in starts:
        assert sum(w for s, w in starts if t <= s < t + window) <= 100
    assert len(starts) == 7
