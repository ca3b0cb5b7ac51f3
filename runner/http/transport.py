"""The HTTP transport real requests go through: httpx's interface on aiohttp's engine,
and a direct path for the one request that matters for speed, a chat call.

httpx's own pool (httpcore) scans every pooled connection on every request; at 64
connections that cost about 2 ms of CPU a request, ten times aiohttp. Measured with
``python -m bench --scenarios a`` (5,000 requests, 64 at a time, loopback): 15.2 s of
CPU with httpcore, 3.5 s with httpx on this transport. Of those 3.5 s, httpx's own
Request/Response layer above the transport was still about a quarter, so ``fetch``
sends a chat call straight through the same aiohttp session, and ``stream`` opens a
streamed one the same way.

httpx-aiohttp maps aiohttp's errors to httpx's, but files a refused and a dropped
connection under ``ConnectTimeout`` and lets a malformed answer through as an aiohttp
error; here they become the httpx errors the client classifies as such, on both paths.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


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
    except httpx.TimeoutException as e:
        if isinstance(e.__cause__, aiohttp.ConnectionTimeoutError):  # sock_connect: not a read timeout
            raise httpx.ConnectTimeout(str(e)) from e.__cause__
        raise
    except aiohttp.ClientError as e:
        raise httpx.RemoteProtocolError(str(e) or type(e).__name__) from e


class PooledTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with httpx_errors():
            return await super().handle_async_request(request)

    async def fetch(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None, timeouts: httpx.Timeout,
                    total: float | None) -> tuple[int, Mapping[str, str], bytes]:
        """One request read in full, without httpx's Request and Response objects: status, headers, body.

        ``timeouts.read`` bounds each wait for the answer; ``total``, when set, the whole request,
        reading the answer included (aiohttp raises TimeoutError).
        """
        with httpx_errors():
            async with self._request(method, url, headers, body, query, timeouts, total) as response:
                return response.status, response.headers, await response.read()


    @asynccontextmanager
    async def stream(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                     query: Mapping[str, str] | None, timeouts: httpx.Timeout,
                     total: float | None) -> AsyncIterator[StreamedAnswer]:
        """A request whose answer is read as it arrives (server-sent events, NDJSON); ``total`` as in ``fetch``."""
        with httpx_errors():
            async with self._request(method, url, headers, body, query, timeouts, total) as response:
                yield StreamedAnswer(response)

    def _request(self, method: str, url: str, headers: Mapping[str, str], body: bytes,
                 query: Mapping[str, str] | None, timeouts: httpx.Timeout,
                 total: float | None) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client.request(method, url, headers=headers, data=body, params=query, allow_redirects=False,
                                   timeout=_client_timeout(timeouts.connect, timeouts.read, timeouts.pool, total))


class StreamedAnswer:
    """What the client reads of a streamed httpx.Response, on an aiohttp response."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk


@functools.cache
def _client_timeout(connect: float | None, read: float | None, pool: float | None,
                    total: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read, connect=pool)


def pooled_transport(connections: int) -> PooledTransport:
    """A keep-alive pool of up to ``connections`` connections (the provider's concurrency)."""
    return PooledTransport(verify=_verified_tls(), limits=httpx.Limits(max_connections=connections,
                                                                        max_keepalive_connections=connections))


@functools.cache
def _verified_tls() -> ssl.SSLContext:
    """The TLS settings every provider's pool shares: httpx's defaults (certifi's certificates, SSL_CERT_FILE
    and SSL_CERT_DIR honoured), loaded once; each load took 20 ms of a run's start, per provider."""
    return httpx.create_ssl_context()


def proxy_configured() -> bool:
    """Whether the environment names a proxy. The fast aiohttp path does not read these variables
    (doing so per request costs a netrc lookup), so a proxied run uses httpx's transport instead."""
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


def choose_transport(given: httpx.AsyncBaseTransport | None, offline: httpx.AsyncBaseTransport | None,
                     connections: int) -> httpx.AsyncBaseTransport | None:
    """The transport a client uses: the one it was given, the protocol's in-process one, the pooled
    aiohttp one, or (None) httpx's own, which routes through HTTP(S)_PROXY / ALL_PROXY and honours NO_PROXY."""
    if given is not None:
        return given
    if offline is not None:
        return offline
    return None if proxy_configured() else pooled_transport(connections)
