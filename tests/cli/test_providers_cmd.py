"""``hanzo-run providers``, ``providers show``, ``ping`` and the secrets guarantee."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakes import FAULT_KINDS, FakeServer


def test_providers_json_has_key_status_reachability_and_docs_url(fake: FakeServer, providers_env: Path,
                                                                 isolated: Path, closed_port: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-some-key-000000")
    extra = write_providers(isolated / "extra", {"lmstudio": point_at(
        fake, "lmstudio", base_url=f"http://127.0.0.1:{closed_port}/v1")})
    done = hanzo("providers", "--json", env={"HANZO_RUN_PROVIDERS_DIR": f"{providers_env}:{extra}"})
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows["groq"] == {"id": "groq", "name": "Groq", "kind": "cloud", "protocol": "openai",
                            "base_url": fake.base_url("groq"), "key": "GROQ_API_KEY"}
    assert rows["ollama"]["reachable"] is True
    assert rows["lmstudio"]["reachable"] is False
    assert rows["anthropic"]["key"] == "missing"
    assert rows["anthropic"]["docs_url"] == "https://console.anthropic.com/settings/keys"
    table = hanzo("providers")
    assert table.returncode == 0
    assert "get a key: https://console.anthropic.com/settings/keys" in table.stdout
    assert "gsk-some-key" not in done.stdout + table.stdout


def test_providers_show_prints_the_resolved_file_never_the_key(fake: FakeServer, providers_env: Path,
                                                               keys: dict[str, str]) -> None:
    done = hanzo("providers", "show", "groq")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"file:      {providers_env / 'groq.yaml'}" in lines
    assert f"folder:    {providers_env}" in lines
    assert "limits:    10000 requests / 1 s, concurrency 8" in lines
    assert ("retry:     max_retries 2, initial_delay 0.01 s, max_delay 0.05 s, multiplier 2, max_elapsed 30 s"
            in lines)
    assert "key:       GROQ_API_KEY" in lines
    assert keys["groq"] not in done.stdout
    assert hanzo("providers", "show", "nosuch").returncode == 2


def test_ping_local_up_lists_loaded_models_and_down_exits_1(fake: FakeServer, providers_env: Path, isolated: Path,
                                                            closed_port: int) -> None:
    done = hanzo("ping", "ollama")
    assert (done.returncode, done.stdout) == (
        0, f"ollama: up ({fake.base_url('ollama')}/api/version answered); models loaded: llama3.2:latest\n")
    done = hanzo("ping", "lmstudio")
    assert done.returncode == 0
    assert done.stdout.endswith("models loaded: qwen2.5-7b-instruct\n")
    write_providers(isolated / "down", {"ollama": point_at(fake, "ollama", base_url=f"http://127.0.0.1:{closed_port}")})
    done = hanzo("ping", "ollama", env={"HANZO_RUN_PROVIDERS_DIR": str(isolated / "down")})
    assert done.returncode == 1
    assert done.stdout.startswith(f"ollama: down: CONNECTION_FAILED: cannot connect to http://127.0.0.1:{closed_port}"
                                  "/api/version")


def test_ping_cloud_checks_the_key(fake: FakeServer, providers_env: Path, keys: dict[str, str]) -> None:
    assert hanzo("ping", "openai").returncode == 0
    done = hanzo("ping", "openai", env={"OPENAI_API_KEY": "sk-wrong-key-00000"})
    assert done.returncode == 1
    assert done.stdout.startswith("openai: invalid: the key was refused: INVALID_API_KEY: HTTP 401")
    assert hanzo("use", "openai").returncode == 0
    assert hanzo("ping").returncode == 0  # the default provider


def test_commands_have_help_with_an_example() -> None:
    for command in (["providers"], ["providers", "show"], ["models"], ["ping"], ["use"], ["keys"]):
        done = hanzo(*command, "--help")
        assert done.returncode == 0
        assert f"hanzo-run {command[0]}" in done.stdout.split("Example:")[1]


def test_a_sentinel_key_never_leaks_whatever_fails(fake: FakeServer, isolated: Path, tmp_path: Path) -> None:
    sentinel = "sk-SENTINEL-7f3a9c1e5b2d4f60"
    write_providers(isolated / "providers.d", {"openai": point_at(fake, "openai", timeout=1)})
    assert hanzo("keys", "set", "openai", "--value", sentinel, "--no-validate").returncode == 0
    outputs: list[str] = []
    job = write_job(isolated, {"name": "leak", "targets": ["openai/gpt-4o-mini"], "stream": False,
                               "prompts": [f"p{i}" for i in range(len(FAULT_KINDS) + 2)], "output": "runs.db"})
    real_key = fake.keys["openai"]
    fake.keys["openai"] = sentinel  # the fake accepts the sentinel, then fails in every way it can
    try:
        for kind in FAULT_KINDS:
            fake.add_fault(kind, flavor="openai", **({"delay": 2} if kind == "slow" else {}))
        done = hanzo(job, "--json")
        outputs += [done.stdout, done.stderr]
        for args in (["keys", "list"], ["keys", "get", "openai"], ["keys", "validate", "--all"],
                     ["providers", "--json"], ["providers", "show", "openai"], ["ping", "openai"],
                     ["models", "openai", "--refresh"], ["keys", "export", tmp_path / "export.json"]):
            done = hanzo(*args)
            outputs += [done.stdout, done.stderr]
        fake.keys["openai"] = real_key  # now the provider refuses it, and may echo it
        for args in (["keys", "validate", "openai"], ["models", "openai", "--refresh"]):
            done = hanzo(*args)
            outputs += [done.stdout, done.stderr]
        done = hanzo(job, "--json", "--db", isolated / "refused.db")
        outputs += [done.stdout, done.stderr]
    finally:
        fake.keys["openai"] = real_key
    assert any("INVALID_API_KEY" in o for o in outputs)
    for output in outputs:
        assert sentinel not in output
    for db in (isolated / "runs.db", isolated / "refused.db"):
        dump = "\n".join(sqlite3.connect(db).iterdump())
        assert "SERVER_ERROR" in dump or "INVALID_API_KEY" in dump
        assert sentinel not in dump
    allowed = {isolated.parent / "home" / "keys.json", tmp_path / "export.json"}
    for path in tmp_path.rglob("*"):  # logs, caches, databases: every file but the store and the export
        if path.is_file() and path not in allowed:
            assert sentinel.encode() not in path.read_bytes(), path
    assert sentinel in (tmp_path / "export.json").read_text()
