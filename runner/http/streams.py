"""Reading a streamed answer's framing: server-sent events or newline-delimited JSON.

The lines come from either transport (httpx's or the direct aiohttp path); the
decoded events go to the protocol adapter's ``on_event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Literal

import httpx

from .transport import StreamedAnswer


async def sse_events(lines: AsyncIterator[str], progress: Callable[[], None]) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events as (event name, data); comment lines (``: keep-alive``) skipped. The end of
    each event and each comment is told to ``progress`` (a stream's timer: a sign of life; once an
    event, not once a line, which halves the clock reads)."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            progress()
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith(":"):
            progress()
        elif line.lstrip().startswith(("{", "[")):
            data.append(line)  # Gemini sends errors as raw JSON lines inside an SSE stream
    if data:
        yield event, "\n".join(data)


async def ndjson_events(lines: AsyncIterator[str], progress: Callable[[], None]) -> AsyncIterator[
        tuple[str | None, str]]:
    """One JSON value per non-empty line, as (None, line); every line told to ``progress``."""
    async for line in lines:
        progress()
        if line.strip():
            yield None, line


async def read_capped(response: httpx.Response | StreamedAnswer, limit: int) -> bytes:
    """The body of an error answer or a non-stream, read until it passes ``limit`` bytes."""
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


class StreamTimer:
    """Bounds a streamed answer: the wait for its first line, every gap between two lines, and
    optionally the whole attempt. A stream that keeps sending is never cut by the gap bound.

    Used as ``async with timer:`` around the request, ``stamp`` called for each line read (by the
    event readers above, so no generator layer is added per line). Each line only stamps the
    time (the first also moves the timer to the gap bound, which only grows from then on).
    When the one timer fires it re-arms itself at the next deadline
    unless that has passed, and else cancels the attempt through ``asyncio.timeout``: a
    ``TimeoutError`` out of the block, ``expired`` naming the bound. No timer per line: the
    bound costs a clock read per line.
    """

    def __init__(self, first_byte: float, idle: float, total: float | None) -> None:
        self.first_byte = first_byte
        self.idle = idle
        self.total = total
        self.lines = 0  # 1 once a line came (then the gap bound applies)
        self.expired: Literal["first_byte", "idle", "total"] | None = None
        self._scope = asyncio.timeout(None)

    async def __aenter__(self) -> StreamTimer:
        self._loop = asyncio.get_running_loop()
        self._started = self._last = self._loop.time()
        await self._scope.__aenter__()
        # First look at the sooner of the two bounds: no re-arming when the first line comes (a
        # second timer per stream); a check that finds the deadline not yet reached re-arms itself.
        first = self._started + min(self.first_byte, self.idle)
        self._handle = self._loop.call_at(first if self.total is None else min(first, self._started + self.total),
                                          self._check)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._handle.cancel()
        await self._scope.__aexit__(exc_type, exc, tb)

    def stamp(self) -> None:
        """A line came: the stream is alive (from now on the gap bound applies)."""
        self._last = self._loop.time()
        self.lines = 1

    def _deadline(self) -> float:
        deadline = self._last + (self.idle if self.lines else self.first_byte)
        return deadline if self.total is None else min(deadline, self._started + self.total)

    def _check(self) -> None:
        now = self._loop.time()
        deadline = self._deadline()
        if deadline - now > 0.001:  # a line came since the timer was set: wait for the new deadline
            self._handle = self._loop.call_at(deadline, self._check)
            return
        if self.total is not None and now - self._started >= self.total - 0.001:
            self.expired = "total"
        else:
            self.expired = "idle" if self.lines else "first_byte"
        self._scope.reschedule(now)  # expire now: the attempt is cancelled, TimeoutError raised
