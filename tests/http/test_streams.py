"""Stream framing read with bytes operations: the same events whatever the pieces the body arrives in,
and the events of one piece handed over together (one async step per piece read, not per line)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.http.streams import Event, ndjson_events, sse_events

SSE = (b': keep-alive\r\n\r\n'
       b'data: {"a": 1}\r\n\r\n'
       b'event: message_delta\ndata: {"b":\ndata: 2}\n\n'
       b'id: 7\nretry: 100\ndata:{"c": "\xc3\xa9"}\n\n'
       b'[{"error": {"code": 429}}]\n\n'
       b'data: [DONE]')  # the last event, closed by the end of the body only
SSE_EVENTS: list[Event] = [(None, b'{"a": 1}'), ("message_delta", b'{"b":\n2}'), (None, b'{"c": "\xc3\xa9"}'),
                           (None, b'[{"error": {"code": 429}}]'), (None, b"[DONE]")]
NDJSON = b'{"a": 1}\n\n{"b": 2}\r\n  \n{"c": 3}'
NDJSON_EVENTS: list[Event] = [(None, b'{"a": 1}'), (None, b'{"b": 2}'), (None, b'{"c": 3}')]


async def pieces(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*sorted(set(cuts)), len(body)]:
        if cut > start:
            yield body[start:cut]
            start = cut


def read(reader: object, body: bytes, cuts: list[int]) -> tuple[list[list[Event]], int]:
    """The batches of events read from ``body`` cut at ``cuts``, and how often progress was told."""
    told = []

    async def main() -> list[list[Event]]:
        return [batch async for batch in reader(pieces(body, cuts), lambda: told.append(1))]  # type: ignore[operator]

    return anyio.run(main), len(told)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SSE) - 1), max_size=12),
       st.lists(st.integers(min_value=1, max_value=len(NDJSON) - 1), max_size=8))
def test_the_events_do_not_depend_on_how_the_body_is_cut(sse_cuts: list[int], ndjson_cuts: list[int]) -> None:
    batches, told = read(sse_events, SSE, sse_cuts)
    assert [e for batch in batches for e in batch] == SSE_EVENTS
    assert told == len(set(sse_cuts)) + 1  # every piece read is a sign of life
    batches, _ = read(ndjson_events, NDJSON, ndjson_cuts)
    assert [e for batch in batches for e in batch] == NDJSON_EVENTS


def test_the_events_of_one_piece_come_out_together() -> None:
    body = b"".join(b'data: {"n": %d}\n\n' % n for n in range(8)) + b"data: [DONE]\n\n"
    batches, told = read(sse_events, body, [])
    assert told == 1 and len(batches) == 1 and len(batches[0]) == 9
    batches, _ = read(ndjson_events, b'{"n": 1}\n{"n": 2}\n', [])
    assert batches == [[(None, b'{"n": 1}'), (None, b'{"n": 2}')]]


def test_closing_the_reader_closes_the_body_it_reads() -> None:
    """A stream left at its end marker is closed at once, not left to the event loop's finalizer."""
    closed = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b'data: {"n": 1}\n\ndata: [DONE]\n\n'
            yield b'data: {"after": "the end"}\n\n'
        finally:
            closed.append(True)

    async def main() -> list[Event]:
        async with aclosing(sse_events(body())) as reader:
            async for batch in reader:
                return batch
        return []

    assert anyio.run(main) == [(None, b'{"n": 1}'), (None, b"[DONE]")]
    assert closed == [True]
