"""The floor: the least a Python client can do per request, a bare aiohttp loop.

One ClientSession, ``concurrency`` worker tasks sharing a counter, each posting the
same chat request and decoding the JSON answer. No retries, no limiter, no database.

    python -m bench.floor URL --requests 5000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiohttp

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}


async def run(url: str, requests: int, concurrency: int, stream: bool) -> int:
    remaining = requests
    failures = 0
    body = {**BODY, "stream": True} if stream else BODY

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            async with session.post(url, json=body) as response:
                if stream:
                    async for _line in response.content:
                        pass
                else:
                    json.loads(await response.read())
                if response.status != 200:
                    failures += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args(argv)
    failures = asyncio.run(run(args.url, args.requests, args.concurrency, args.stream))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
