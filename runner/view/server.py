"""Serving the app: the host policy, the socket, the printed URL, the browser, uvicorn."""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UsageError
from ..store.database import open_db
from .security import Secrets, host_header_names, is_loopback, new_secret

DEFAULT_PORT = 8642
WILDCARDS = ("0.0.0.0", "::", "")


def check_host(host: str, read_only: bool, allow_remote: bool) -> None:
    """A non-loopback address serves other machines: only read-only, or when the user says so."""
    if not is_loopback(host) and not (read_only or allow_remote):
        raise UsageError(f"view: --host {host} lets other machines reach your results and keys; add --read-only to "
                         "serve results only, or --allow-remote if you mean it (keep the printed URL's token secret)")


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket: ``port``, or DEFAULT_PORT, or when that is taken any free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in ([port] if port is not None else [DEFAULT_PORT, 0]):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as e:
            sock.close()
            if port is None and candidate == DEFAULT_PORT:
                continue
            raise UsageError(f"view: cannot listen on {host}:{candidate}: {e.strerror}; choose another --port"
                             ) from None
        sock.listen(128)
        return sock
    raise AssertionError("port 0 always binds")


def serve(db_path: Path, db_shown: str, *, host: str, port: int | None, open_browser: bool, read_only: bool,
          allow_remote: bool, providers_dirs: tuple[str, ...] = ()) -> None:
    """Serve until interrupted; the URL with its token goes to stdout, the rest to stderr."""
    import uvicorn

    from .app import create_app

    check_host(host, read_only, allow_remote)
    open_db(db_path).close()  # migrated once here; requests then only read
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    secrets = Secrets(token=new_secret(), csrf=new_secret(), port=actual, read_only=read_only,
                      hosts=None if host in WILDCARDS else host_header_names(host, actual))
    app = create_app(db_path, secrets, db_shown, providers_dirs)
    shown_host = "127.0.0.1" if host in WILDCARDS or is_loopback(host) else host
    url = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{actual}/?token={secrets.token}"
    print(f"hanzo-run view: {db_shown}{' (read-only)' if read_only else ''}; open this URL (Ctrl-C stops):",
          file=sys.stderr)
    print(url, flush=True)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def serving(db_path: Path) -> Iterator[str]:
    """The app on a free loopback port, served by uvicorn on a thread of this process until the block
    ends; the URL ``hanzo-run view`` would print (with the token). For a browser test or a screenshot."""
    import uvicorn

    from .app import create_app

    open_db(db_path).close()
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    secrets = Secrets(token=new_secret(), csrf=new_secret(), port=port, hosts=host_header_names("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(create_app(db_path, secrets), log_level="warning", lifespan="off",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("hanzo-run view did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/?token={secrets.token}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
