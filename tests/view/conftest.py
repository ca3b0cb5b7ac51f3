"""The view's tests drive the app through HTTP (Starlette's TestClient) over a database written by
a real run against the fake server: two targets, three data rows, a check, a failed request, and a
prompt that carries ``<script>`` into every answer (the fake echoes the prompt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runner.view.app import create_app
from runner.view.security import Secrets, host_header_names
from tests.conftest import hanzo, write_job
from tests.fakes import FakeServer

TOKEN = "test-token"
CSRF = "test-csrf"
PORT = 8642
ORIGIN = f"http://127.0.0.1:{PORT}"
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def run_db(fake: FakeServer, fake_providers: Path, keys: dict[str, str], isolated: Path) -> Path:
    """Run 1 of job "view": openai/gpt-4o-mini answers all three rows (Paris passes its check, Rome
    and Oslo fail it); anthropic/claude-haiku-4-5 answers two and fails one request (HTTP 500s)."""
    job = write_job(isolated, {
        "name": "view", "targets": ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"],
        "prompts": [{"id": "capital", "text": "Capital of {{city}}? " + SCRIPT}],
        "data": [{"city": "Paris"}, {"city": "Rome"}, {"city": "Oslo"}],
        "checks": [{"contains": "Paris"}], "concurrency": 1, "output": "runs.db"})
    fake.add_fault("500", flavor="anthropic", times=3)  # one item (sent one at a time): its request and both retries
    done = hanzo(job, "--providers-dir", fake_providers, "--quiet")
    assert done.returncode == 1, done.stderr  # failed checks and a failed request
    return isolated / "runs.db"


def app_client(db: Path, *, read_only: bool = False, login: bool = True,
               providers_dirs: tuple[str, ...] = ()) -> TestClient:
    secrets = Secrets(token=TOKEN, csrf=CSRF, port=PORT, hosts=host_header_names("127.0.0.1", PORT),
                      read_only=read_only)
    client = TestClient(create_app(db, secrets, providers_dirs=providers_dirs), base_url=ORIGIN)
    if login:
        assert client.get(f"/?token={TOKEN}").status_code == 200  # the printed URL: token traded for a cookie
    return client


@pytest.fixture
def client(run_db: Path) -> Iterator[TestClient]:
    with app_client(run_db) as c:
        yield c
