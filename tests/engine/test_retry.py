"""Retry decisions and delays, recorded by a fake sleep instead of slept."""

from __future__ import annotations

import anyio
import pytest

from runner.config.providers import RetryPolicy
from runner.engine.retry import is_retryable, retrying
from runner.errors import ProviderError

POLICY = RetryPolicy(max_retries=4, initial_delay=1.0, max_delay=5.0, multiplier=2.0, max_elapsed=300)


def attempts_and_sleeps(errors: list[ProviderError | None], policy: RetryPolicy = POLICY) -> tuple[int, list[float],
                                                                                                     str]:
    """Run a call that fails with ``errors`` in turn (None = success); what was tried and slept."""
    sleeps: list[float] = []
    calls = 0

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main() -> str:
        nonlocal calls
        try:
            async for attempt in retrying(policy, fake_sleep):
                with attempt:
                    error = errors[calls]
                    calls += 1
                    if error:
                        raise error
            return "ok"
        except ProviderError as e:
            return e.code

    outcome = anyio.run(main, backend="asyncio")
    return calls, sleeps, outcome


def err(code: str, retry_after: float | None = None) -> ProviderError:
    return ProviderError(code, "x", retry_after=retry_after)


@pytest.mark.parametrize("code", ["RATE_LIMIT_EXCEEDED", "SERVER_ERROR", "TIMEOUT", "CONNECTION_FAILED"])
def test_transient_codes_are_retried(code: str) -> None:
    assert is_retryable(err(code))
    calls, sleeps, outcome = attempts_and_sleeps([err(code), None])
    assert (calls, outcome, len(sleeps)) == (2, "ok", 1)


@pytest.mark.parametrize("code", ["INVALID_API_KEY", "QUOTA_EXHAUSTED", "CLIENT_ERROR", "MODEL_NOT_FOUND",
                                  "INVALID_RESPONSE", "API_KEY_REQUIRED"])
def test_permanent_codes_are_not_retried(code: str) -> None:
    calls, sleeps, outcome = attempts_and_sleeps([err(code), None])
    assert (calls, sleeps, outcome) == (1, [], code)


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    calls, sleeps, outcome = attempts_and_sleeps([err("SERVER_ERROR")] * 5)
    assert (calls, outcome) == (5, "SERVER_ERROR")  # 1 try + max_retries 4
    lows = [1.0, 2.0, 4.0, 5.0]  # initial_delay * multiplier ** n, capped at max_delay
    for slept, low in zip(sleeps, lows, strict=True):
        assert low <= slept <= min(low + 1.0, 5.0)  # jitter up to initial_delay, never past max_delay


def test_server_hint_wins_over_backoff() -> None:
    calls, sleeps, outcome = attempts_and_sleeps([err("RATE_LIMIT_EXCEEDED", retry_after=7.5), None])
    assert sleeps == [7.5]
    assert outcome == "ok"


def test_a_wait_past_max_elapsed_gives_up_instead_of_sleeping() -> None:
    policy = RetryPolicy(max_retries=5, initial_delay=1.0, max_delay=10.0, multiplier=2.0, max_elapsed=30)
    calls, sleeps, outcome = attempts_and_sleeps([err("RATE_LIMIT_EXCEEDED", retry_after=3600), None], policy)
    assert (calls, sleeps, outcome) == (1, [], "RATE_LIMIT_EXCEEDED")


def test_zero_retries_disables_retrying() -> None:
    policy = RetryPolicy(max_retries=0, initial_delay=1.0, max_delay=10.0, multiplier=2.0, max_elapsed=30)
    assert attempts_and_sleeps([err("SERVER_ERROR"), None], policy) == (1, [], "SERVER_ERROR")
