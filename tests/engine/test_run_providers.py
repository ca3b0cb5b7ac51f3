"""The real ``hanzo-run`` command against the fake server, for every built-in provider."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import hanzo, write_job

TARGETS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash-lite",
    "groq": "openai/gpt-oss-20b",
    "openrouter": "meta-llama/llama-3.1-8b-instruct",
    "sambanova": "Meta-Llama-3.3-70B-Instruct",
    "ollama": "llama3.2",
    "lmstudio": "qwen2.5-7b-instruct",
}
SYSTEM = "Answer in one word."


def all_providers_job(folder: Path, *, stream: bool) -> Path:
    return write_job(folder, {
        "name": "all-providers",
        "targets": [f"{p}/{m}" for p, m in TARGETS.items()],
        "system": SYSTEM,
        "prompts": [{"id": "capital", "text": "What is the capital of {{country}}?"}, "Say hi"],
        "data": [{"country": "France"}, {"country": "Japan"}],
        "params": {"temperature": 0, "max_tokens": 50},
        "stream": stream,
        "output": "out.db",
    })


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_every_builtin_provider_end_to_end(stream: bool, fake_providers: Path, keys: dict[str, str],
                                          isolated: Path) -> None:
    job = all_providers_job(isolated, stream=stream)
    done = hanzo(job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr + done.stdout

    results = rows(isolated / "out.db", "SELECT * FROM results ORDER BY provider, prompt_id, row_index")
    assert len(results) == len(TARGETS) * 4
    for r in results:
        assert r["status"] == "ok", dict(r)
        assert r["model"] == TARGETS[r["provider"]]
        assert r["response_text"] == f"{r['model']} says: {r['prompt']}"
        assert r["input_tokens"] == len(SYSTEM.split()) + len(r["prompt"].split())
        assert r["output_tokens"] == len(r["response_text"].split())
        assert r["latency_ms"] > 0
        assert r["attempts"] == 1
        assert (r["ttft_ms"] is not None) == stream
        if stream:
            assert 0 < r["ttft_ms"] <= r["latency_ms"]
    assert {r["provider"] for r in results} == set(TARGETS)
    capital = [r for r in results if r["prompt_id"] == "capital"]
    assert {r["prompt"] for r in capital} == {"What is the capital of France?", "What is the capital of Japan?"}

    run = rows(isolated / "out.db", "SELECT * FROM runs")[0]
    assert (run["status"], run["items_total"], run["items_ok"], run["items_failed"]) == ("completed", 32, 32, 0)
    # One HTTP attempt per item, recorded with its status.
    attempts = rows(isolated / "out.db", "SELECT http_status, error_code FROM attempts")
    assert [tuple(a) for a in attempts] == [(200, None)] * 32
    # The table a person sees names every target.
    for provider, model in TARGETS.items():
        assert f"{provider}/{model}" in done.stdout


def test_requests_carry_each_providers_auth_and_format(fake, fake_providers: Path, keys: dict[str, str],
                                                       isolated: Path) -> None:
    job = all_providers_job(isolated, stream=False)
    assert hanzo(job, "--providers-dir", fake_providers, "--limit", "1").returncode == 0
    seen = {r.flavor: r for r in fake.requests}
    assert seen["openai"].headers["authorization"] == f"Bearer {keys['openai']}"
    # OpenAI's reasoning models refuse max_tokens; the provider file names the field it takes.
    assert seen["openai"].json["max_completion_tokens"] == 50 and "max_tokens" not in seen["openai"].json
    assert seen["groq"].json["max_tokens"] == 50
    assert seen["anthropic"].headers["x-api-key"] == keys["anthropic"]
    assert seen["anthropic"].headers["anthropic-version"] == "2023-06-01"
    assert seen["anthropic"].json["system"] == SYSTEM
    assert seen["anthropic"].json["max_tokens"] == 50
    assert seen["gemini"].headers["x-goog-api-key"] == keys["gemini"]
    assert seen["gemini"].json["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert seen["gemini"].json["generationConfig"] == {"temperature": 0, "maxOutputTokens": 50}
    assert seen["ollama"].json["stream"] is False
    assert seen["ollama"].json["options"] == {"temperature": 0, "num_predict": 50}
    assert "authorization" not in seen["ollama"].headers
    assert "authorization" not in seen["lmstudio"].headers


def test_missing_key_fails_only_that_target(fake_providers: Path, keys: dict[str, str], isolated: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY")
    job = write_job(isolated, {"targets": ["groq/openai/gpt-oss-20b", "openai/gpt-4o-mini"], "prompts": ["hi"]})
    done = hanzo(job, "--providers-dir", fake_providers)
    assert done.returncode == 1
    by_provider = {r["provider"]: r for r in rows(isolated / "hanzo-runs.db", "SELECT * FROM results")}
    assert by_provider["openai"]["status"] == "ok"
    groq = by_provider["groq"]
    assert (groq["status"], groq["error_code"], groq["attempts"]) == ("error", "API_KEY_REQUIRED", 0)
    assert "HANZO_API_KEY_GROQ or GROQ_API_KEY" in groq["error_message"]
    # The end of the run says what to do, not just the code.
    assert "groq/openai/gpt-oss-20b: 1 x API_KEY_REQUIRED: no API key for groq: set HANZO_API_KEY_GROQ or " \
           "GROQ_API_KEY or run: hanzo-run keys set groq" in done.stderr


def test_hello_job_runs_offline_with_no_key(isolated: Path) -> None:
    from tests.conftest import REPO

    db = isolated / "hello.db"
    done = hanzo(REPO / "jobs" / "hello.yaml", "--db", db)
    assert done.returncode == 0, done.stderr
    results = rows(db, "SELECT status, response_text, prompt FROM results")
    assert len(results) == 6
    assert all(r["status"] == "ok" and r["response_text"] == r["prompt"] for r in results)
