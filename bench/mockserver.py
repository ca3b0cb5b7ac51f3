"""A fast loopback LLM server for benchmarks: OpenAI- and Anthropic-compatible.

Raw asyncio protocol (no framework) so the server costs far less CPU than any client
it measures. Keep-alive HTTP/1.1, fixed latency, injectable faults, streaming, and a
count of requests with the most seen in any window (fixed and sliding).

    python -m bench.mockserver --port 0 --latency-ms 50 --fault-every 100 --window 1

Prints ``PORT <n>`` on stdout once listening. Endpoints:

    POST /v1/chat/completions   OpenAI chat completions ("stream": true -> SSE)
    POST /v1/messages           Anthropic Messages ("stream": true -> SSE)
    GET  /stats                 {"requests", "faults", "max_in_window", "max_in_sliding_window", "window"}
    POST /reset                 forget the counts
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import time
from array import array
from collections.abc import Sequence

OPENAI_BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench server."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
}).encode()
ANTHROPIC_BODY = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
    "content": [{"type": "text", "text": "Hello from the bench server."}],
    "stop_reason": "end_turn", "usage": {"input_tokens": 12, "output_tokens": 6},
}).encode()
WORDS = ["Hello", " from", " the", " bench", " server", "."]


def _sse(events: Sequence[tuple[str | None, object]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


OPENAI_STREAM = _sse(
    [(None, {"id": "c", "object": "chat.completion.chunk", "model": "bench",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": w}, "finish_reason": None}]})
     for w in WORDS]
    + [(None, {"id": "c", "object": "chat.completion.chunk", "model": "bench",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}}),
       (None, "[DONE]")]
)
ANTHROPIC_STREAM = _sse(
    [("message_start", {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
                                                              "model": "bench", "content": [],
                                                              "usage": {"input_tokens": 12, "output_tokens": 0}}}),
     ("content_block_start", {"type": "content_block_start", "index": 0,
                              "content_block": {"type": "text", "text": ""}})]
    + [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": w}}) for w in WORDS]
    + [("content_block_stop", {"type": "content_block_stop", "index": 0}),
       ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                          "usage": {"output_tokens": 6}}),
       ("message_stop", {"type": "message_stop"})]
)
FAULT_BODY = json.dumps({"error": {"message": "injected fault", "type": "server_error"}}).encode()


def _response(status: int, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
            f"{extra}connection: keep-alive\r\n\r\n").encode() + body


RESPONSES = {
    ("/v1/chat/completions", False): _response(200, OPENAI_BODY),
    ("/v1/chat/completions", True): _response(200, OPENAI_STREAM, "text/event-stream"),
    ("/v1/messages", False): _response(200, ANTHROPIC_BODY),
    ("/v1/messages", True): _response(200, ANTHROPIC_STREAM, "text/event-stream"),
}
FAULT = _response(500, FAULT_BODY)
NOT_FOUND = _response(404, b'{"error": {"message": "not found"}}')


class Stats:
    def __init__(self, window: float) -> None:
        self.window = window
        self.arrivals = array("d")  # monotonic arrival times, compact even for millions
        self.faults = 0
        self.connections = 0

    def reset(self) -> None:
        self.arrivals = array("d")
        self.faults = 0
        self.connections = 0

    def summary(self) -> dict[str, object]:
        times = self.arrivals
        fixed: dict[int, int] = {}
        for t in times:
            k = math.floor(t / self.window)
            fixed[k] = fixed.get(k, 0) + 1
        sliding = 0
        for i, t in enumerate(times):  # requests in [t, t + window)
            sliding = max(sliding, bisect.bisect_left(times, t + self.window, i) - i)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return {"requests": len(times), "faults": self.faults, "connections": self.connections,
                "window": self.window, "max_in_window": max(fixed.values(), default=0),
                "max_in_sliding_window": sliding, "span_s": round(span, 4)}


class Handler(asyncio.Protocol):
    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at)
                length = int(lower[at + 15:stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self.server.handle(self, head, body)

    def reply(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class MockServer:
    def __init__(self, latency: float, fault_every: int, window: float) -> None:
        self.latency = latency
        self.fault_every = fault_every
        self.stats = Stats(window)
        self.loop = asyncio.get_running_loop()

    def handle(self, handler: Handler, head: bytes, body: bytes) -> None:
        line = head[:head.find(b"\r\n")].split(b" ")
        method, path = line[0], line[1].decode()
        if method == b"GET" and path == "/stats":
            handler.reply(_response(200, json.dumps(self.stats.summary()).encode()))
            return
        if method == b"POST" and path == "/reset":
            self.stats.reset()
            handler.reply(_response(200, b"{}"))
            return
        self.stats.arrivals.append(time.monotonic())
        stream = b'"stream":true' in body or b'"stream": true' in body
        answer = RESPONSES.get((path, stream), NOT_FOUND)
        if self.fault_every and len(self.stats.arrivals) % self.fault_every == 0:
            self.stats.faults += 1
            answer = FAULT
        if self.latency > 0:
            self.loop.call_later(self.latency, handler.reply, answer)
        else:
            handler.reply(answer)


async def serve(host: str, port: int, latency: float, fault_every: int, window: float) -> None:
    mock = MockServer(latency, fault_every, window)
    server = await asyncio.get_running_loop().create_server(lambda: Handler(mock), host, port, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mockserver", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'PORT n')")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay before every answer")
    parser.add_argument("--fault-every", type=int, default=0, help="answer every Nth request with HTTP 500")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per counting window")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.latency_ms / 1000, args.fault_every, args.window))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
