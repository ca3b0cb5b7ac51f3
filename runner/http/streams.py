"""Reading a streamed answer's framing: server-sent events or newline-delimited JSON.

The lines come from either transport (httpx's or the direct aiohttp path); the
decoded events go to the protocol adapter's ``on_event``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from .transport import StreamedAnswer


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events as (event name, data); comment lines (``: keep-alive``) skipped."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith(":"):
            continue
        elif line.lstrip().startswith(("{", "[")):
            data.append(line)  # Gemini sends errors as raw JSON lines inside an SSE stream
    if data:
        yield event, "\n".join(data)


async def ndjson_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """One JSON value per non-empty line, as (None, line)."""
    async for line in lines:
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
