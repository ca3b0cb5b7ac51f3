"""Shared fixtures: no network beyond loopback, an isolated config folder, the fake
provider server, and a providers folder pointing every built-in provider at it."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.resources import builtin_providers_dir
from tests.fakes import FakeServer

REPO = Path(__file__).resolve().parent.parent

# Built-in provider id -> the fake server flavor that speaks its wire format.
FLAVORS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "groq": "groq",
    "openrouter": "openrouter",
    "sambanova": "sambanova",
    "ollama": "ollama",
    "lmstudio": "lmstudio",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The environment as the developer's shell had it, before fixtures hide real keys (tests/test_live.py).
REAL_ENV = dict(os.environ)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # hanzo-run runs anyio on its asyncio backend


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback only: a real provider host is refused at name lookup."""
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK and host is not None:
            raise OSError(f"test tried to reach {host}: tests use loopback only")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh config folder, response cache and working directory; no real key from the developer's shell."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HANZO_RUN_HOME", str(home))
    # Else a test's cached answers land in the user's cache, and the next run's test reads them back.
    monkeypatch.setenv("HANZO_RUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HANZO_RUN_PROVIDERS_DIR", raising=False)
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_API_TOKEN")) or name.startswith("HANZO_API_KEY_"):
            monkeypatch.delenv(name)
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):  # the fake server is on loopback
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def cache_dir(isolated: Path, tmp_path: Path) -> Path:
    """The test's own response cache folder (HANZO_RUN_CACHE_DIR, set by ``isolated``)."""
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeServer) -> Iterator[FakeServer]:
    fake_server.clear()
    yield fake_server
    fake_server.clear()


def point_at(fake: FakeServer, provider_id: str, **overrides: Any) -> dict[str, Any]:
    """A built-in provider file's data, aimed at the fake server, retrying fast."""
    data = yaml.safe_load((builtin_providers_dir() / f"{provider_id}.yaml").read_text())
    data["base_url"] = fake.base_url(FLAVORS[provider_id])
    data["limits"] = {"requests": 10_000, "window": 1, "concurrency": 8}
    data["retry"] = {"max_retries": 2, "initial_delay": 0.01, "max_delay": 0.05, "multiplier": 2, "max_elapsed": 30}
    data.pop("timeouts", None)
    data["timeout"] = 10  # the older spelling: first_byte and idle at once
    for key, value in overrides.items():
        data[key] = value
    if "timeouts" in overrides:  # one spelling or the other, never both
        data.pop("timeout")
    return data


def write_providers(folder: Path, providers: dict[str, dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for provider_id, data in providers.items():
        (folder / f"{provider_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture
def fake_providers(fake: FakeServer, tmp_path: Path) -> Path:
    """A providers folder with every built-in provider pointed at the fake server."""
    return write_providers(tmp_path / "fake-providers", {pid: point_at(fake, pid) for pid in FLAVORS})


@pytest.fixture
def keys(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The fake server's keys, set as each provider's conventional environment variable."""
    names = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
             "groq": "GROQ_API_KEY", "openrouter": "OPENROUTER_API_KEY", "sambanova": "SAMBANOVA_API_KEY"}
    for provider_id, name in names.items():
        monkeypatch.setenv(name, fake.keys[FLAVORS[provider_id]])
    return {pid: fake.keys[FLAVORS[pid]] for pid in names}


def write_job(folder: Path, data: dict[str, Any], name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a results database as tuples (the database is opened and closed around the query)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def dict_rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of a results database as dicts by column name."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def hanzo(*args: str | Path, timeout: float = 120, env: dict[str, str] | None = None,
          input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``hanzo-run`` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "runner", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, input=input,
    )


# ---------------------------------------------------------------- keys, providers and models (issue 3)


@pytest.fixture
def canned() -> Iterator[Any]:
    """A loopback server answering every request with one canned response (see tests/fakes/canned.py)."""
    from tests.fakes import CannedServer

    with CannedServer() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def providers_env(fake_providers: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every built-in provider pointed at the fake server, for in-process calls and subprocesses alike."""
    monkeypatch.setenv("HANZO_RUN_PROVIDERS_DIR", str(fake_providers))
    return fake_providers


def _result(run_id: int, n: int, target: str, status: str, latency: float | None, ttft: float | None,
            tokens: tuple[int, int] | None, cost: float | None, passed: int | None,
            failed_checks: str | None = None) -> dict[str, Any]:
    provider, _, model = target.partition("/")
    return {"run_id": run_id, "item_key": f"k{n}", "target": target, "provider": provider, "model": model,
            "prompt_id": "cap", "row_index": n, "repeat_index": 0, "prompt": f"question {n}", "status": status,
            "response_text": f"answer {n}" if status == "ok" else None,
            "error_code": None if status == "ok" else "MAX_RETRIES_EXCEEDED",
            "error_message": None if status == "ok" else "gave up after 3 attempts; last: HTTP 503",
            "attempts": 1, "latency_ms": latency, "ttft_ms": ttft,
            "input_tokens": tokens[0] if tokens else None, "output_tokens": tokens[1] if tokens else None,
            "cost_usd": cost, "answer_cost_usd": cost, "passed": passed, "failed_checks": failed_checks,
            "started_at": "2025-01-01T00:00:00.000Z", "finished_at": "2025-01-01T00:00:01.000Z"}


@pytest.fixture
def fixed_runs(tmp_path: Path) -> Path:
    """A results database with two small runs whose report figures are computed by hand in the tests.

    Run 1: openai/a has 3 ok answers (100/200/300 ms, one failing its check) and 1 error;
    local/b has 2 ok, unpriced answers. Run 2: openai/a has 2 ok, passing answers.
    """
    from runner.store.database import open_db

    path = tmp_path / "fixed.db"
    db = open_db(path)
    failed = '[{"check": "contains", "reason": "answer does not contain \'Paris\'"}]'
    with db.atomic():
        for run_id, started, finished in ((1, "2025-01-01T00:00:00.000Z", "2025-01-01T00:01:30.500Z"),
                                          (2, "2025-01-02T00:00:00.000Z", "2025-01-02T00:00:10.000Z")):
            db["runs"].insert({"id": run_id, "job_name": "fixed", "status": "completed", "started_at": started,
                               "finished_at": finished})
        db["results"].insert_all([
            _result(1, 0, "openai/a", "ok", 100, 10, (10, 20), 0.001, 1),
            _result(1, 1, "openai/a", "ok", 200, 20, (10, 30), 0.002, 0, failed),
            _result(1, 2, "openai/a", "ok", 300, 30, (10, 50), 0.003, 1),
            _result(1, 3, "openai/a", "error", 5000, None, None, None, None),
            _result(1, 4, "local/b", "ok", 50, None, (5, 10), None, 1),
            _result(1, 5, "local/b", "ok", 150, None, (5, 10), None, 1),
            _result(2, 0, "openai/a", "ok", 100, 10, (10, 20), 0.001, 1),
            _result(2, 1, "openai/a", "ok", 100, 10, (10, 20), 0.001, 1),
        ])
    db.close()
    return path
