"""Reading a streamed answer's framing: server-sent events or newline-delimited JSON.

The bytes come from either transport (httpx's or the direct aiohttp path); the
events go to the protocol adapter's ``on_event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Literal

import httpx

from .transport import StreamedAnswer

#: One event of a stream: its name (SSE ``event:``, else None) and its data, undecoded.
Event = tuple[str | None, bytes]


async def sse_events(chunks: AsyncIterator[bytes], progress: Callable[[], None]) -> AsyncIterator[list[Event]]:
    """Server-sent events as (event name, data), a list of them per piece of the body read.

    Lines are cut with bytes operations and the events of one piece come out together, so a
    streamed answer costs a loop turn per piece read, not an async step per line. Comment lines
    (``: keep-alive``), ``id:`` and ``retry:`` are skipped. Each piece read is told to ``progress``
    (a stream's timer: bytes arriving are a sign of life, a comment or half a line alike).
    """
    event: str | None = None
    data: list[bytes] = []
    async for lines in lines_of(chunks, progress):
        out: list[Event] = []
        for line in lines:
            if not line:
                if data:
                    out.append((event, data[0] if len(data) == 1 else b"\n".join(data)))
                event, data = None, []
            elif line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
            elif line.lstrip().startswith((b"{", b"[")):
                data.append(line)  # Gemini sends errors as raw JSON lines inside an SSE stream
        if out:
            yield out
    if data:  # the last event, not closed by a blank line
        yield [(event, b"\n".join(data))]


async def ndjson_events(chunks: AsyncIterator[bytes], progress: Callable[[], None]) -> AsyncIterator[list[Event]]:
    """One JSON value per non-empty line, as (None, line), a list per piece read (as ``sse_events``)."""
    async for lines in lines_of(chunks, progress):
        out: list[Event] = [(None, line) for line in lines if line.strip()]
        if out:
            yield out


def _nothing() -> None:
    pass


async def lines_of(chunks: AsyncIterator[bytes],
                   progress: Callable[[], None] = _nothing) -> AsyncIterator[list[bytes]]:
    """The complete lines of each piece read (``\n`` or ``\r\n`` ended, ends removed), a list per piece; a
    last line without an end, at the end. Only a piece and a partial line are ever held."""
    pending = b""
    async for chunk in chunks:
        progress()
        if pending:
            chunk = pending + chunk
        cut = chunk.rfind(b"\n") + 1
        if not cut:  # no line ends in it yet
            pending = chunk
            continue
        pending = chunk[cut:]  # a "\r" at its very end waits there for its "\n"
        whole = chunk[:cut]
        if b"\r" in whole:
            whole = whole.replace(b"\r\n", b"\n")
        yield whole[:-1].split(b"\n")
    if pending:
        yield [pending[:-1] if pending.endswith(b"\r") else pending]


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
    """Bounds a streamed answer: the wait for its first bytes, every gap between two reads, and
    optionally the whole attempt. A stream that keeps sending is never cut by the gap bound.

    Used as ``async with timer:`` around the request, ``stamp`` called for each piece of the body
    read (by the event readers above, so no generator layer is added). Each piece only stamps the
    time (the first also moves the timer to the gap bound, which only grows from then on).
    When the one timer fires it re-arms itself at the next deadline
    unless that has passed, and else cancels the attempt through ``asyncio.timeout``: a
    ``TimeoutError`` out of the block, ``expired`` naming the bound. No timer per read: the
    bound costs a clock read per read.
    """

    def __init__(self, first_byte: float, idle: float, total: float | None) -> None:
        self.first_byte = first_byte
        self.idle = idle
        self.total = total
        self.lines = 0  # 1 once bytes came (then the gap bound applies)
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
        """Bytes came: the stream is alive (from now on the gap bound applies)."""
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
