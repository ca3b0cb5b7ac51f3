"""The guard in front of every request of ``hanzo-run view``.

The app reads results and, on the settings pages, changes keys: a page any other site could
load or post to would leak answers or set keys. So, as Jupyter does:

- a random token, printed in the URL, is required on every request. ``?token=`` is taken once and
  traded for an HttpOnly, SameSite=Strict cookie (the browser is sent on to the same URL without it,
  so the token leaves the address bar and no Referer carries it);
- the Host header must name this server (a loopback name and its port): a DNS-rebinding page
  reaches the port under a name of its own and is refused;
- only GET, HEAD and POST; a POST changes state and needs the CSRF token (form field ``csrf`` or
  header ``X-CSRF-Token``), which pages embed and other sites cannot read; none in read-only mode;
- every answer carries a Content-Security-Policy without inline scripts, so text that escaped
  escaping still would not run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
SAFE_METHODS = ("GET", "HEAD")
MAX_FORM_BYTES = 1 << 20  # a settings form is a few fields; nothing posts more


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def host_header_names(host: str, port: int) -> frozenset[str]:
    """The Host header values that name this server: each loopback name, and the bound host, with the port."""
    names = {*LOOPBACK_NAMES, host}
    return frozenset(f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names)


@dataclass(frozen=True)
class Secrets:
    token: str  # in the printed URL, then a cookie
    csrf: str  # in every page's forms
    port: int  # names the cookie, so two servers on one host keep their own
    hosts: frozenset[str] | None  # allowed Host headers; None: any (bound to every address, token still needed)
    read_only: bool = False

    @property
    def cookie(self) -> str:
        return f"hanzo_run_view_{self.port}"


class Guard:
    """ASGI middleware: refuses with 403 whatever the module docstring says it must, adds the headers."""

    def __init__(self, app: ASGIApp, secrets: Secrets) -> None:
        self.app = app
        self.secrets = secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            return
        response, receive = await self._check(scope, receive)
        send = _with_headers(send, HEADERS)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        headers = Headers(scope=scope)
        s = self.secrets
        if s.hosts is not None and headers.get("host", "").lower() not in s.hosts:
            return _refuse("this server answers only to its own address (Host header refused)"), receive
        method = scope["method"]
        if method not in (*SAFE_METHODS, "POST"):
            return PlainTextResponse("method not allowed", status_code=405), receive
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if given is not None and method in SAFE_METHODS:
            if not secrets.compare_digest(given.encode(), s.token.encode()):
                return _refuse("wrong token: open the URL hanzo-run view printed"), receive
            return self._trade_for_cookie(scope, query), receive
        cookie = SimpleCookie(headers.get("cookie", "")).get(s.cookie)
        if cookie is None or not secrets.compare_digest(cookie.value.encode(), s.token.encode()):
            return _refuse("no token: open the URL hanzo-run view printed (it carries the token)"), receive
        if method == "POST":
            if s.read_only:
                return _refuse("read-only: this server changes nothing"), receive
            body, receive = await _read_body(receive)
            if body is None:
                return PlainTextResponse("request body too large", status_code=413), receive
            if not secrets.compare_digest(_csrf_of(headers, body).encode(), s.csrf.encode()):
                return _refuse("missing or wrong CSRF token: reload the page and try again"), receive
        return None, receive

    def _trade_for_cookie(self, scope: Scope, query: list[tuple[str, str]]) -> Response:
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
        response.set_cookie(self.secrets.cookie, self.secrets.token, httponly=True, samesite="strict", path="/")
        return response


def _refuse(why: str) -> Response:
    return PlainTextResponse(f"403 forbidden: {why}\n", status_code=403)


def _csrf_of(headers: Headers, body: bytes) -> str:
    if "x-csrf-token" in headers:
        return headers["x-csrf-token"]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return next((v for k, v in parse_qsl(body.decode("latin-1")) if k == "csrf"), "")
    return ""  # multipart and JSON posts send the header


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None past MAX_FORM_BYTES), and a receive that hands it to the app again."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _with_headers(send: Send, extra: Iterable[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
