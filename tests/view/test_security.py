"""Issue 20, security: token on every request, Host header checked, POST only with a CSRF token,
read-only refuses changes, answers are text, non-loopback hosts refused without a flag."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from runner.errors import UsageError
from runner.view.server import check_host
from tests.conftest import REPO, hanzo
from tests.view.conftest import CSRF, PORT, SCRIPT, TOKEN, app_client


def test_no_token_is_403(run_db: Path) -> None:
    with app_client(run_db, login=False) as client:
        for path in ("/", "/api/runs", "/static/app.js", "/no-such-page"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert "open the URL hanzo-run view printed" in answer.text
        assert client.get("/?token=wrong").status_code == 403
        client.cookies.set(f"hanzo_run_view_{PORT}", "wrong")
        assert client.get("/").status_code == 403


def test_the_token_is_traded_for_a_cookie_and_leaves_the_url(run_db: Path) -> None:
    with app_client(run_db, login=False) as client:
        first = client.get(f"/?token={TOKEN}&x=1", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/?x=1"
        cookie = first.headers["set-cookie"]
        assert f"hanzo_run_view_{PORT}={TOKEN}" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.get("/").status_code == 200  # the cookie from now on


def test_a_wrong_host_header_is_403_even_with_the_token(run_db: Path) -> None:
    with app_client(run_db) as client:
        for host in ("evil.example", f"evil.example:{PORT}", "127.0.0.1:1", "localhost"):
            answer = client.get("/", headers={"host": host})
            assert answer.status_code == 403, host
            assert "Host header refused" in answer.text
        for host in (f"localhost:{PORT}", f"127.0.0.1:{PORT}", f"[::1]:{PORT}"):
            assert client.get("/", headers={"host": host}).status_code == 200, host


def test_post_without_the_csrf_token_is_403(run_db: Path) -> None:
    with app_client(run_db) as client:
        assert client.post("/", data={"x": "1"}).status_code == 403
        assert "CSRF" in client.post("/", data={"csrf": "wrong"}).text
        assert client.post("/", headers={"x-csrf-token": "wrong"}).status_code == 403
        # With the token the guard lets it through: the Runs page itself takes no POST.
        assert client.post("/", data={"csrf": CSRF}).status_code == 405
        assert client.post("/", headers={"x-csrf-token": CSRF}).status_code == 405
        # Only GET, HEAD and POST at all.
        assert client.request("DELETE", "/", headers={"x-csrf-token": CSRF}).status_code == 405


def test_read_only_refuses_every_post(run_db: Path) -> None:
    with app_client(run_db, read_only=True) as client:
        answer = client.post("/", data={"csrf": CSRF})
        assert answer.status_code == 403 and "read-only" in answer.text
        assert client.get("/").status_code == 200


def test_every_answer_forbids_inline_scripts_and_framing(run_db: Path) -> None:
    with app_client(run_db) as client:
        for answer in (client.get("/"), client.get("/api/runs"), app_client(run_db, login=False).get("/")):
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
            assert "frame-ancestors 'none'" in policy
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["referrer-policy"] == "no-referrer"


def test_a_script_in_an_answer_is_text(run_db: Path) -> None:
    from tests.conftest import query

    answers = [a for (a,) in query(run_db, "SELECT response_text FROM results WHERE status = 'ok'")]
    assert answers and all(SCRIPT in a for a in answers)  # the fake echoed the prompt
    with app_client(run_db) as web:
        for path in _pages(web):
            html = web.get(path).text
            assert SCRIPT not in html, path
            assert path in ("/", "/compare?a=1&b=1") or "&lt;script&gt;alert(" in html, path  # there, as text
            assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/static/app.js">'], path


def _pages(client: TestClient) -> list[str]:
    """Every page of the app that shows run 1's answers."""
    item = "row=1&prompt=capital&repeat=0"
    return ["/", "/runs/1", "/runs/1?failed=1", f"/runs/1/item?{item}", "/compare?a=1&b=1", "/runs/1?q=script"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.org"])
def test_a_non_loopback_host_needs_read_only_or_allow_remote(host: str) -> None:
    with pytest.raises(UsageError, match=f"--host {host} lets other machines reach"):
        check_host(host, read_only=False, allow_remote=False)
    check_host(host, read_only=True, allow_remote=False)
    check_host(host, read_only=False, allow_remote=True)
    for loopback in ("127.0.0.1", "localhost", "::1"):
        check_host(loopback, read_only=False, allow_remote=False)


def test_the_command_refuses_a_remote_host_with_exit_2(run_db: Path) -> None:
    done = hanzo("view", "--db", run_db, "--host", "0.0.0.0", "--no-open")
    assert done.returncode == 2
    assert "add --read-only to serve results only, or --allow-remote" in done.stderr


def test_the_command_serves_on_loopback_and_prints_the_url(run_db: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "view.log"
    with log.open("w") as stderr, subprocess.Popen(
            [sys.executable, "-m", "runner", "view", "--db", str(run_db), "--port", str(port), "--no-open"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=[\w-]{{20,}}", url), log.read_text()
            answer = _get(url)
            assert answer.status_code == 200 and ">view<" in answer.text  # the job's name in the runs table
            assert _get(f"http://127.0.0.1:{port}/").status_code == 403  # a fresh client has no cookie
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert f"hanzo-run view: {run_db}; open this URL" in log.read_text()


def _get(url: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(url, follow_redirects=True, timeout=5)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)



def test_a_taken_port_is_a_usage_error(closed_port: int) -> None:
    from runner.view.server import bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"view: cannot listen on 127\.0\.0\.1:{port}: .*; choose another --port"):
            bind("127.0.0.1", port)
    sock = bind("127.0.0.1", closed_port)
    assert sock.getsockname()[1] == closed_port
    sock.close()


def test_view_without_a_database_says_so(isolated: Path) -> None:
    done = hanzo("view", "--db", "missing.db", "--no-open")
    assert done.returncode == 2
    assert "no results database at missing.db" in done.stderr
