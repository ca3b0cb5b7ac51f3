"""Sending one request to one provider, and turning every way it can fail into a
``ProviderError`` with the design's code.

httpx exceptions stop here; nothing above this module sees them. The adapter
translates the wire format and classifies an error answer; this module does the I/O,
the timing and the translation of transport failures. Stream framing is
``streams.py``, Retry-After ``retry_after.py``, the choice of transport ``transport.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx

from ..config.providers import Provider
from ..errors import ErrorCode, ProviderError
from ..keys.lookup import redact
from ..keys.store import host_of
from ..protocols import Adapter, ChatRequest, Completion, HttpCall, StreamState, adapter_for
from ..protocols.base import excerpt, inband_error
from .retry_after import retry_after_from
from .streams import StreamTimer, lines_of, ndjson_events, read_capped, sse_events
from .transport import PooledTransport, StreamedAnswer, choose_transport

MAX_BODY_BYTES = 32 * 1024 * 1024  # a larger answer is refused rather than held in memory
_T = TypeVar("_T")
# Told each piece of a streamed answer's text as it arrives (``hanzo-run ask --stream`` prints them). A context
# variable, not a client attribute: concurrent requests on one client each have their own listener.
STREAMED_TEXT: ContextVar[Callable[[str], None] | None] = ContextVar("STREAMED_TEXT", default=None)


@dataclass(slots=True)
class Answer:
    completion: Completion
    http_status: int
    latency_ms: float
    ttft_ms: float | None


class CallBuilder:
    """A provider's requests as they are sent: its protocol's body, rewritten by the provider's dialect
    (``Adapter.body_dialect``, chosen once). Every path that sends, or keys a request (the cache), builds
    it here, so what is keyed is what is sent."""

    def __init__(self, provider: Provider) -> None:
        self.provider_id = provider.id
        self.adapter: Adapter = adapter_for(provider.protocol)
        self.dialect = self.adapter.body_dialect(provider)

    def build(self, request: ChatRequest) -> HttpCall:
        """The call for ``request``; CLIENT_ERROR when it cannot be built (an image gone since validation),
        before anything is sent."""
        try:
            call = self.adapter.build(request)
        except ProviderError as error:
            raise replace(error, provider=self.provider_id) from None
        if self.dialect is not None:
            self.dialect(call.json)
        return call


def read_completion(read: Callable[..., _T], protocol: str, *args: Any) -> _T:
    """Call an adapter's reader: an answer of the wrong shape is INVALID_RESPONSE, never a crash."""
    try:
        result = read(*args)
    except ProviderError:
        raise
    except (LookupError, TypeError, AttributeError, ValueError) as e:
        shown = "the stream" if isinstance(args[-1], StreamState) else excerpt(args[-1])
        raise ProviderError(ErrorCode.INVALID_RESPONSE, f"answer is not in the {protocol} format "
                            f"({type(e).__name__}: {e}): {shown}") from None
    if isinstance(result, Completion):
        if not isinstance(result.text, str):
            raise ProviderError(ErrorCode.INVALID_RESPONSE, f"answer text is not a string: {excerpt(result.text)}")
        if result.finish_reason is not None and not isinstance(result.finish_reason, str):
            result.finish_reason = str(result.finish_reason)
        if result.output_tokens == 0 and not result.text and not result.tool_calls:
            # The model produced nothing at all: seen from LiteLLM's proxy when the server behind it cut
            # its stream (a well-formed answer, end_turn / STOP, 0 output tokens). Asked again, not kept.
            raise ProviderError(ErrorCode.INVALID_RESPONSE, "the answer is empty: no text, no tool call and "
                                "0 output tokens", transient=True)
    return result


def read_answer(adapter: Adapter, protocol: str, body: Any, status: int, latency_ms: float) -> Answer:
    """A whole 2xx answer body as an Answer, sent alone or as a line of a batch's results."""
    return Answer(read_completion(adapter.parse, protocol, body), status, latency_ms, None)


class ProviderClient:
    """One provider's pooled HTTP client. ``send`` makes exactly one attempt."""

    def __init__(self, provider: Provider, key: str | None, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observe: Callable[[int, Mapping[str, str]], None] | None = None) -> None:
        self.provider = provider
        # Told the status and headers of every chat answer (the lane's adaptive limits).
        self.observe = observe or (lambda status, headers: None)
        self.adapter: Adapter = adapter_for(provider.protocol)
        self._secrets = [key] if key else []
        headers = dict(provider.headers)
        if key and provider.auth:
            headers[provider.auth.header] = provider.auth.header_value(key)
        offline = self.adapter.transport()
        limits = httpx.Limits(max_connections=provider.limits.concurrency,
                              max_keepalive_connections=provider.limits.concurrency)
        t = self.timeouts = provider.timeouts
        # A whole answer arrives at once: first_byte bounds every read of it. A stream's reads are
        # bounded by a StreamTimer instead (first line, then the gap between lines), never by a read timeout.
        self.timeout = httpx.Timeout(connect=t.connect, read=t.first_byte, write=t.first_byte, pool=t.first_byte)
        self._stream_timeout = httpx.Timeout(connect=t.connect, read=None, write=t.first_byte, pool=t.first_byte)
        transport = choose_transport(transport, offline, provider.limits.concurrency)
        # Chat calls skip httpx's Request/Response layer on the real transport (see transport.py).
        self._direct = transport if isinstance(transport, PooledTransport) else None
        self._json_headers = {**headers, "content-type": "application/json"}
        self.calls = CallBuilder(provider)
        self.http = httpx.AsyncClient(
            base_url=provider.base_url if offline is None else "http://echo.invalid",
            headers=headers,
            timeout=self.timeout,
            limits=limits,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, request: ChatRequest) -> Answer:
        return await self.send_call(self.calls.build(request), request.stream)

    async def send_call(self, call: HttpCall, stream: bool) -> Answer:
        """One attempt of a built call (``CallBuilder.build``), streamed or not as it was built."""
        url = self.provider.base_url + call.path
        started = time.perf_counter()
        total = self.timeouts.total
        # On the direct path aiohttp's own timeouts bound the attempt (a stream's, its StreamTimer);
        # an anyio.fail_after per attempt cost a cancel scope (about 5% of the CPU at 0 ms latency).
        bound = nullcontext() if total is None or stream or self._direct else anyio.fail_after(total)
        with self._translated(url, self.timeouts.first_byte), bound:
            if stream:
                return await self._stream(call.method, call.path, call.json, call.query, started)
            if self._direct is not None:
                body = json.dumps(call.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                status, headers, content = await self._direct.fetch(
                    call.method, url, self._json_headers, body.encode(), call.query, self.timeout, total)
            else:
                response = await self.http.request(call.method, call.path, json=call.json, params=call.query)
                status, headers, content = response.status_code, response.headers, response.content
            self.observe(status, headers)
            if status >= 300:
                raise self.error(status, headers, content)
            return read_answer(self.adapter, self.provider.protocol, self._decode(content), status,
                               _ms_since(started))

    async def _stream(self, method: str, path: str, body: dict[str, Any], query: Mapping[str, str] | None,
                      started: float) -> Answer:
        t = self.timeouts
        timer = StreamTimer(t.first_byte, t.idle, t.total)
        state = StreamState()
        try:
            async with timer:
                return await self._read_stream(method, path, body, query, started, timer, state)
        except TimeoutError:
            if timer.expired is None:
                raise
            url = self.provider.base_url + path
            if timer.expired == "first_byte":
                message = f"no answer within {t.first_byte:g} s (timeouts.first_byte) from {url}"
            elif timer.expired == "idle":
                chars = sum(len(p) for p in state.parts if isinstance(p, str))
                message = (f"the stream stalled: nothing for {t.idle:g} s (timeouts.idle) after {chars} characters "
                           f"from {url}")
            else:
                message = f"no complete answer within {t.total:g} s (timeouts.total) from {url}"
            raise self._fail(ErrorCode.TIMEOUT, message) from None

    async def _read_stream(self, method: str, path: str, body: dict[str, Any], query: Mapping[str, str] | None,
                           started: float, timer: StreamTimer, state: StreamState) -> Answer:
        opened: AbstractAsyncContextManager[httpx.Response | StreamedAnswer]
        if self._direct is not None:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            opened = self._direct.stream(method, self.provider.base_url + path, self._json_headers, payload, query,
                                         self._stream_timeout, None)
        else:
            opened = self.http.stream(method, path, json=body, params=query, timeout=self._stream_timeout)
        async with opened as response:
            status = response.status_code
            self.observe(status, response.headers)
            if status >= 300:
                raise self.error(status, response.headers, await read_capped(response, MAX_BODY_BYTES))
            if response.headers.get("content-type", "").startswith(("application/json", "text/html")):
                # Not a stream at all: LM Studio's 200 {"error": ...}, a proxy's or a portal's page.
                data = self._decode(await read_capped(response, MAX_BODY_BYTES))
                if isinstance(data, dict) and data.get("error") is not None:
                    raise inband_error(self.adapter, self.adapter.error_info(data), ErrorCode.INVALID_RESPONSE)
                return read_answer(self.adapter, self.provider.protocol, data, status, _ms_since(started))
            ttft: float | None = None
            received = chunks = 0
            listener = STREAMED_TEXT.get()
            ndjson = self.adapter.stream_format == "ndjson"
            on_event = self.adapter.on_event
            reader = ndjson_events if ndjson else sse_events
            ended = False  # the end marker came: whatever follows is not read
            async with aclosing(reader(response.aiter_bytes(), timer.stamp)) as batches:
                async for events in batches:
                    for event, data in events:
                        if data == b"[DONE]":  # the OpenAI-style trailer; complete only if a finish reason came first
                            ended = True
                            break
                        chunks += 1
                        received += len(data)
                        if received > MAX_BODY_BYTES:  # the same cap as a whole answer's, or memory grows unbounded
                            raise _too_large(received)
                        try:
                            value = json.loads(data)
                        except ValueError:  # not UTF-8 (read as a whole answer is), or not JSON: say which
                            value = self._decode(data.decode("utf-8", "replace"))
                        had = len(state.parts)
                        read_completion(on_event, self.provider.protocol, state, event, value)
                        if len(state.parts) > had:
                            if ttft is None:
                                ttft = _ms_since(started)
                            if listener is not None:
                                for part in state.parts[had:]:
                                    if isinstance(part, str):
                                        listener(part)
                        if state.done and ndjson:
                            ended = True
                            break
                    if ended:
                        break
            if not state.done:
                # Cut short (a dropped upstream, a server shedding load): retried like a dropped
                # connection, and recorded as this INVALID_RESPONSE, never as a partial answer.
                chars = sum(len(p) for p in state.parts if isinstance(p, str))
                raise ProviderError(ErrorCode.INVALID_RESPONSE, "the stream ended before its end marker after "
                                    f"{chars} characters ({chunks} chunk{'' if chunks == 1 else 's'})", status,
                                    transient=True)
            completion = read_completion(StreamState.completion, self.provider.protocol, state)
            return Answer(completion, status, _ms_since(started), ttft)

    async def get(self, path: str, query: Mapping[str, str] | None = None, *,
                  within: float | None = None) -> Any:
        """GET a JSON document (model lists, key checks); failures classified like ``send``'s."""
        return await self.fetch("GET", path, query=query, within=within)

    async def fetch(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                    body: Any = None, within: float | None = None) -> Any:
        """One non-chat request (``path`` relative to the base URL, or absolute) answered with JSON.

        A 200 whose body is only ``{"error": ...}`` (LM Studio's unknown endpoint) is an error too.
        """
        url = self._url(path)
        limit = within or self.timeouts.first_byte
        with self._translated(url, limit):
            response = await self.http.request(method, url, params=query, json=body,
                                               timeout=httpx.Timeout(limit, connect=min(limit, self.timeouts.connect)))
            if response.status_code >= 300:
                raise self.error(response.status_code, response.headers, response.content)
            data = self._decode(response.content)
            if isinstance(data, dict) and "error" in data and len(data) == 1:
                raise self.error(response.status_code, response.headers, response.content)
            return data

    async def upload(self, path: str, fields: Mapping[str, str], filename: str, content: bytes) -> Any:
        """POST a multipart form with one file (a batch input file) to ``path``; its JSON answer."""
        url = self.provider.base_url + path
        with self._translated(url, self.provider.timeout):
            response = await self.http.post(url, data=dict(fields),
                                            files={"file": (filename, content, "application/jsonl")})
            if response.status_code >= 400:
                raise self.error(response.status_code, response.headers, response.content)
            return self._decode(response.content)

    @property
    def base_url(self) -> str:
        return self.provider.base_url

    async def exchange(self, method: str, path: str, *, headers: Mapping[str, str],
                       content: bytes) -> tuple[Mapping[str, str], Any]:
        """One request of raw ``content`` with extra ``headers`` (a step of a resumable upload); the answer's
        headers and its JSON body (None when empty). ``path`` relative, or absolute on the provider's host."""
        url = self._url(path)
        with self._translated(url, self.provider.timeout):
            response = await self.http.request(method, url, headers=dict(headers), content=content)
            if response.status_code >= 300:
                raise self.error(response.status_code, response.headers, response.content)
            return response.headers, self._decode(response.content) if response.content else None

    async def download_lines(self, path: str) -> AsyncGenerator[list[bytes], None]:
        """GET a file (a batch's JSONL results; ``path`` relative or absolute) read as it arrives: its
        complete lines, a list per piece read, so a results file of any size is never held whole."""
        url = self._url(path)
        with self._translated(url, self.provider.timeout):
            async with self.http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise self.error(response.status_code, response.headers,
                                     await read_capped(response, MAX_BODY_BYTES))
                async with aclosing(lines_of(response.aiter_bytes())) as pieces:
                    async for lines in pieces:
                        yield lines

    def _url(self, path: str) -> str:
        """Where a request for ``path`` goes: below the base URL, or an absolute URL on the base URL's own
        scheme and host. The key rides in every request's headers, so it never goes anywhere else."""
        if path.startswith("/") or "://" not in path:
            return self.provider.base_url + path
        if _origin(path) != _origin(self.provider.base_url):
            raise self._fail(ErrorCode.CLIENT_ERROR, f"not sent: {path} is not on {self.provider.id}'s host "
                             f"({_origin(self.provider.base_url)}), and its key goes to that host only")
        return path

    @contextmanager
    def _translated(self, url: str, limit: float) -> Iterator[None]:
        """Every way a request to ``url`` can fail, as a ProviderError naming this provider, key redacted."""
        try:
            yield
        except TimeoutError:  # anyio.fail_after or aiohttp's total: the whole attempt took too long
            raise self._fail(ErrorCode.TIMEOUT, f"no complete answer within {self.timeouts.total or limit:g} s "
                             f"(timeouts.total) from {url}") from None
        except httpx.ConnectTimeout:
            raise self._fail(ErrorCode.TIMEOUT, f"cannot connect to {url} within {self.timeouts.connect:g} s "
                             "(timeouts.connect)") from None
        except httpx.TimeoutException:
            raise self._fail(ErrorCode.TIMEOUT, f"no answer within {limit:g} s from {url}") from None
        except httpx.ConnectError as e:
            raise self._fail(ErrorCode.CONNECTION_FAILED, f"cannot connect to {url}: {_reason(e)}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise self._fail(ErrorCode.CONNECTION_FAILED, f"connection to {url} dropped: {_reason(e)}") from None
        except httpx.HTTPError as e:
            raise self._fail(ErrorCode.REQUEST_FAILED, f"{type(e).__name__}: {_reason(e)}") from None
        except ProviderError as e:
            # Errors built here are redacted already; an adapter's (from an answer's words) is rebuilt
            # redacted, never edited in place, so its args match its message.
            message = redact(e.message, self._secrets)
            if message == e.message and e.provider == self.provider.id:
                raise
            raise replace(e, message=message, provider=self.provider.id) from None

    def _decode(self, raw: bytes | str) -> Any:
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large(len(raw))
        try:
            return json.loads(raw)
        except ValueError:  # an HTML page keeps its words, not its markup
            raise ProviderError(ErrorCode.INVALID_RESPONSE,
                                f"answer is not JSON: {excerpt(_excerpt(raw, 2000))}") from None

    def error(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        """An HTTP error answer as a ProviderError, classified by the provider's protocol."""
        if 300 <= status < 400:  # redirects are not followed: a chat call must not silently change host or method
            location = headers.get("location")
            where = f" to {location}" if location else " with no Location"
            return ProviderError(ErrorCode.CLIENT_ERROR, redact(f"HTTP {status} redirect{where} — check base_url",
                                                                self._secrets), status, self.provider.id)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = _excerpt(raw)
        info = self.adapter.error_info(body)
        retry_after = retry_after_from(headers)
        if retry_after is None:
            retry_after = info.retry_after
        message = info.message or f"HTTP {status}"
        code = self.adapter.classify(status, info)
        return ProviderError(code, redact(f"HTTP {status}: {message}", self._secrets), status, self.provider.id,
                             retry_after)

    def _fail(self, code: ErrorCode, message: str) -> ProviderError:
        return ProviderError(code, redact(message, self._secrets), None, self.provider.id)


def _too_large(size: int) -> ProviderError:
    return ProviderError(ErrorCode.INVALID_RESPONSE, f"answer of {size} bytes or more is larger than the limit of "
                         f"{MAX_BODY_BYTES // 2**20} MB ({MAX_BODY_BYTES} bytes)")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{host_of(url)}"


def _reason(e: Exception) -> str:
    return str(e) or type(e).__name__


def _excerpt(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
