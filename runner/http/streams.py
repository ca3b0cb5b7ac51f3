"""Reading a streamed answer's framing: server-sent events or newline-delimited JSON.

The bytes come from either transport (httpx's or the direct aiohttp path); the
events go to the protocol adapter's ``on_event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType
from typing import Literal, Protocol, TypeVar

import httpx

from .transport import StreamedAnswer

_T = TypeVar("_T")

#: One event of a stream: its name (SSE ``event:``, else None) and its data, undecoded.
Event = tuple[str | None, bytes]


class Lines:
    """Cuts pieces of a body into lines (``\n`` or ``\r\n`` ended, ends removed) with bytes operations;
    only a partial line is held between pieces."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines the piece completes."""
        if self.pending:
            chunk = self.pending + chunk
        cut = chunk.rfind(b"\n") + 1
        if not cut:  # no line ends in it yet
            self.pending = chunk
            return []
        self.pending = chunk[cut:]  # a "\r" at its very end waits there for its "\n"
        whole = chunk[:cut]
        if b"\r" in whole:
            whole = whole.replace(b"\r\n", b"\n")
        return whole[:-1].split(b"\n")

    def end(self) -> list[bytes]:
        """The last line, when the body did not end it."""
        last, self.pending = self.pending, b""
        return [last[:-1] if last.endswith(b"\r") else last] if last else []


class ServerSentEvents:
    """Server-sent events as (event name, data). Comment lines (``: keep-alive``), ``id:`` and ``retry:``
    are skipped; Gemini's raw JSON lines (its errors inside an SSE stream) are data."""

    def __init__(self) -> None:
        self.lines = Lines()
        self.event: str | None = None
        self.data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        return self._read(self.lines.feed(chunk))

    def end(self) -> list[Event]:
        """The events the body's end closes: its last line's, and one no blank line closed."""
        return self._read([*self.lines.end(), b""])

    def _read(self, lines: list[bytes]) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            if not line:
                if self.data:
                    out.append((self.event, self.data[0] if len(self.data) == 1 else b"\n".join(self.data)))
                self.event, self.data = None, []
            elif line.startswith(b"data:"):
                self.data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line.startswith(b"event:"):
                self.event = line[6:].strip().decode("utf-8", "replace")
            elif line.lstrip().startswith((b"{", b"[")):
                self.data.append(line)
        return out


class JsonLines:
    """One JSON value per non-empty line, as (None, line)."""

    def __init__(self) -> None:
        self.lines = Lines()

    def feed(self, chunk: bytes) -> list[Event]:
        return [(None, line) for line in self.lines.feed(chunk) if line.strip()]

    def end(self) -> list[Event]:
        return [(None, line) for line in self.lines.end() if line.strip()]


class Framing(Protocol[_T]):
    def feed(self, chunk: bytes) -> list[_T]:
        ...

    def end(self) -> list[_T]:
        ...


async def framed(chunks: AsyncIterator[bytes], framing: Framing[_T],
                 progress: Callable[[], None] | None = None) -> AsyncGenerator[list[_T], None]:
    """What ``framing`` cuts from each piece read, a list per piece (none when a piece completes
    nothing), so a body costs a loop turn per piece read, not an async step per line or event.
    Each piece is told to ``progress`` (a stream's timer: bytes arriving are a sign of life, a
    comment or half a line alike). Closing this closes ``chunks`` (no generator is left for the
    event loop's finalizer, which costs a task and a wake-up each)."""
    try:
        async for chunk in chunks:
            if progress is not None:
                progress()
            if found := framing.feed(chunk):
                yield found
    finally:
        close = getattr(chunks, "aclose", None)  # the transports' readers are async generators
        if close is not None:
            await close()
    if found := framing.end():
        yield found


def sse_events(chunks: AsyncIterator[bytes],
               progress: Callable[[], None] | None = None) -> AsyncGenerator[list[Event], None]:
    """Server-sent events as (event name, data), a list per piece read."""
    return framed(chunks, ServerSentEvents(), progress)


def ndjson_events(chunks: AsyncIterator[bytes],
                  progress: Callable[[], None] | None = None) -> AsyncGenerator[list[Event], None]:
    """Newline-delimited JSON values as (None, line), a list per piece read."""
    return framed(chunks, JsonLines(), progress)


def lines_of(chunks: AsyncIterator[bytes]) -> AsyncGenerator[list[bytes], None]:
    """The complete lines of a body (a batch's results file), a list per piece read."""
    return framed(chunks, Lines())


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
