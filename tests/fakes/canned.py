"""A loopback HTTP server that answers every request with one canned response.

The fake provider server injects faults into chat requests only; key checks and model
listings are GETs. This serves the failures a GET can meet (429, quota, 5xx, HTML,
slowness) in each provider's real error body, taken from tests.fakeserver.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CannedServer:
    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.delay = 0.0
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.paths.append(self.path)
                if server.delay:
                    time.sleep(server.delay)
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
               content_type: str = "application/json") -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.headers = {"Content-Type": content_type, **(headers or {})}

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
