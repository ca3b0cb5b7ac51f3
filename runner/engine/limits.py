"""Per-provider rate limits and concurrency: the declared ones, and tighter ones
learned from the provider's own answers.

Requests are paced evenly: each takes the next start slot, ``window / requests``
seconds after the one before, which is how providers enforce per-minute limits in
practice (in short sub-windows). And the moment a request really starts is logged:
it may not start until the one ``requests`` starts before it is a whole window old.
So no window of ``window`` seconds ever holds more than ``requests``, even when a
busy event loop wakes some requests late and others on time.

aiolimiter is not used for this. Its bucket of size ``requests`` lets up to twice
the limit through across a window boundary; one of size one paces, but every late
wake-up pushes all later requests back (2.5% of the wall time at 50 requests/s,
measured with ``python -m bench --scenarios c``). Tokens are logged the same way,
by each request's weight (its input estimate plus its ``max_tokens``): a request
reserves its weight before it starts and may start only when the last window's
weights plus its own stay within ``tokens``. (aiolimiter's bucket starts full and
refills while it drains, so it let about twice ``tokens`` into one window.)

On top of that, never above the declared limits:
- rate-limit headers (``x-ratelimit-*`` from OpenAI and Groq,
  ``anthropic-ratelimit-*``, each read by its protocol's ``rate_limit_pause``): when
  the server says nothing is left, new requests wait for its reset instead of
  collecting a 429;
- a 429 halves the concurrency, and each run of successes as long as the current
  concurrency grows it back by one (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

import anyio

from ..config.providers import Limits

# Every window is taken this much longer, so that a request sent a few ms late (a
# busy machine, the network) never puts requests + 1 into one of the server's windows.
WINDOW_SLACK = 0.015
MAX_HEADER_PAUSE = 60.0  # the headers are advice; a retry's own wait is bounded elsewhere

#: Reads one answer's rate-limit headers: seconds until the server's reset when nothing is left, else None.
PauseReader = Callable[[Mapping[str, str]], float | None]


def _never(headers: Mapping[str, str]) -> float | None:
    return None


class RequestLimiter:
    """At most ``count`` request starts in any ``window`` seconds, spread evenly."""

    def __init__(self, count: int, window: float) -> None:
        self.count = count
        self.window = window + WINDOW_SLACK
        self.period = self.window / count
        self._next_slot = 0.0
        self._starts: deque[float] = deque()  # real starts within the last window, oldest first
        self._lock = anyio.Lock()

    async def pace(self) -> None:
        """Wait for this request's slot; slots are handed out in order, one ``period`` apart."""
        now = time.monotonic()
        slot = max(self._next_slot, now)
        self._next_slot = slot + self.period
        if slot > now:
            await anyio.sleep(slot - now)

    async def start(self) -> None:
        """Call right before sending: waits only if the last window already holds ``count`` starts."""
        if not self._lock.locked() and self._try_start(time.monotonic()):
            return  # nobody waits ahead of us: no lock, so no checkpoint
        async with self._lock:
            now = time.monotonic()
            if not self._try_start(now):
                await anyio.sleep(self._starts.popleft() + self.window - now)
                self._starts.append(time.monotonic())

    def _try_start(self, now: float) -> bool:
        """Log a start at ``now`` if the last window has room; no await, so nothing interleaves."""
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()
        if len(self._starts) >= self.count:
            return False
        self._starts.append(now)
        return True


class TokenLimiter:
    """At most ``capacity`` tokens, by weight, in requests started within any ``window`` seconds.

    A reservation counts from the moment it is made until its request has started and a
    whole window has passed since; waiters are served in order.
    """

    PENDING = float("inf")  # a reservation whose request has not started yet

    def __init__(self, capacity: int, window: float) -> None:
        self.capacity = capacity
        self.window = window + WINDOW_SLACK
        self._log: deque[list[float]] = deque()  # [start time or PENDING, weight]
        self._total = 0.0
        self._lock = anyio.Lock()

    async def reserve(self, weight: int) -> list[float]:
        """Wait until ``weight`` fits (a request heavier than the whole limit waits for an empty window)."""
        entry = [self.PENDING, float(min(weight, self.capacity))]
        async with self._lock:
            while True:
                now = time.monotonic()
                self._expire(now)
                if self._total + entry[1] <= self.capacity:
                    self._log.append(entry)
                    self._total += entry[1]
                    return entry
                await anyio.sleep(self._room_at(entry[1]) - now)

    def started(self, entry: list[float]) -> None:
        entry[0] = time.monotonic()

    def cancel(self, entry: list[float]) -> None:
        """Give back the reservation of a request that will not start."""
        if any(e is entry for e in self._log):
            self._log = deque(e for e in self._log if e is not entry)
            self._total -= entry[1]

    def _expire(self, now: float) -> None:
        if self._log and min(e[0] for e in self._log) <= now - self.window:
            kept = deque(e for e in self._log if e[0] > now - self.window)
            self._total = sum(e[1] for e in kept)
            self._log = kept

    def _room_at(self, weight: float) -> float:
        """When enough started entries will have expired for ``weight`` to fit."""
        freed = self._total + weight - self.capacity
        for start, size in sorted(e for e in self._log if e[0] != self.PENDING):
            freed -= size
            if freed <= 0:
                return start + self.window
        return time.monotonic() + self.window / 10  # waiting on requests that have not started yet


class Holding:
    """``async with`` one of a CapacityLimiter's tokens; a free token is taken without a checkpoint.

    anyio's own ``async with limiter`` yields to the event loop even when a token is free:
    a whole loop round trip per attempt. ``acquire_nowait`` still queues behind waiters.
    """

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter

    async def __aenter__(self) -> None:
        try:
            self.limiter.acquire_nowait()
        except anyio.WouldBlock:
            await self.limiter.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.limiter.release()


class ProviderLimits:
    def __init__(self, limits: Limits, pause_for: PauseReader = _never) -> None:
        """``pause_for`` is the provider's protocol's header reader (``Adapter.rate_limit_pause``)."""
        self.limits = limits
        self.pause_for = pause_for
        self.requests = RequestLimiter(limits.requests, limits.window)
        self.tokens = TokenLimiter(limits.tokens, limits.window) if limits.tokens else None
        self.slots = anyio.CapacityLimiter(limits.concurrency)
        self.slot = Holding(self.slots)
        self.resume_at = 0.0  # time.monotonic() before which no request starts (server said: none left)
        self._successes = 0

    async def admit(self, tokens: int) -> list[float] | None:
        """Wait until one request weighing ``tokens`` may start (caller holds a slot); its token
        reservation, to hand to ``start``."""
        wait = self.resume_at - time.monotonic()
        if wait > 0:
            await anyio.sleep(wait)
        reservation = await self.tokens.reserve(tokens) if self.tokens is not None else None
        await self.requests.pace()
        return reservation

    async def start(self, reservation: list[float] | None) -> None:
        """Call right before sending: logs the start for the request and token windows."""
        if reservation is None:
            await self.requests.start()
            return
        assert self.tokens is not None
        try:
            await self.requests.start()
        except BaseException:
            self.tokens.cancel(reservation)
            raise
        self.tokens.started(reservation)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer's status and rate-limit headers."""
        if status == 429:
            self.slots.total_tokens = max(1, int(self.slots.total_tokens) // 2)
            self._successes = 0
        elif status < 400:
            self._successes += 1
            current = int(self.slots.total_tokens)
            if self._successes >= current and current < self.limits.concurrency:
                self.slots.total_tokens = current + 1
                self._successes = 0
        pause = self.pause_for(headers)
        if pause:
            self.resume_at = max(self.resume_at, time.monotonic() + min(pause, MAX_HEADER_PAUSE))

    @property
    def concurrency(self) -> int:
        return int(self.slots.total_tokens)
