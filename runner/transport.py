"""The HTTP transport real requests go through: httpx's interface on aiohttp's engine,
and a direct path for the one request that matters for speed, a chat call.

httpx's own pool (httpcore) scans every pooled connection on every request; at 64
connections that cost about 2 ms of CPU a request, ten times aiohttp. Measured with
``python -m bench --scenarios a`` (5,000 requests, 64 at a time, loopback): 15.2 s of
CPU with httpcore, 3.5 s with httpx on this transport. Of those 3.5 s, httpx's own
Request/Response layer above the transport was still about a quarter, so ``fetch``
sends a chat call straight through the same aiohttp session.

httpx-aiohttp maps aiohttp's errors to httpx's, but files a refused and a dropped
connection under ``ConnectTimeout`` and lets a malformed answer through as an aiohttp
error; here they become the httpx errors the client classifies as such, on both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions


@contextmanager
def httpx_errors() -> Iterator[None]:
    """aiohttp's exceptions as the httpx ones they mean."""
    try:
        with map_aiohttp_exceptions():
            yield
    except httpx.ConnectTimeout as e:
        cause = e.__cause__
        if cause is None or isinstance(cause, asyncio.TimeoutError):
            raise
        message = str(cause) or type(cause).__name__
        if isinstance(cause, aiohttp.ClientConnectorError):
            raise httpx.ConnectError(message) from cause
        raise httpx.RemoteProtocolError(message) from cause
    except aiohttp.ClientError as e:
        raise httpx.RemoteProtocolError(str(e) or type(e).__name__) from e


class PooledTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with httpx_errors():
            return await super().handle_async_request(request)

    async def fetch(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None, timeouts: httpx.Timeout) -> tuple[int, Mapping[str, str], bytes]:
        """One request read in full, without httpx's Request and Response objects: status, headers, body."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        with httpx_errors():
            async with self.client.request(
                method, url, headers=headers, data=body, params=query, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeouts.connect, sock_read=timeouts.read,
                                              connect=timeouts.pool),
            ) as response:
                return response.status, response.headers, await response.read()


def pooled_transport(connections: int) -> PooledTransport:
    """A keep-alive pool of up to ``connections`` connections (the provider's concurrency)."""
    return PooledTransport(limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))
