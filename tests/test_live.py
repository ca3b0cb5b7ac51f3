"""Against the real providers, only when their keys are in the environment; skipped otherwise.

    OPENAI_API_KEY=... python -m pytest tests/test_live.py -m live
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import REAL_ENV, hanzo, write_job

CLOUD = {
    "openai": ("OPENAI_API_KEY", "gpt-4o-mini"),
    "anthropic": ("ANTHROPIC_API_KEY", "claude-haiku-4-5"),
    "gemini": ("GEMINI_API_KEY", "gemini-2.5-flash-lite"),
    "groq": ("GROQ_API_KEY", "openai/gpt-oss-20b"),
    "openrouter": ("OPENROUTER_API_KEY", "meta-llama/llama-3.1-8b-instruct"),
    "sambanova": ("SAMBANOVA_API_KEY", "Meta-Llama-3.3-70B-Instruct"),
}


@pytest.mark.live
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", sorted(CLOUD))
def test_real_provider_answers(provider: str, stream: bool, isolated: Path) -> None:
    variable, model = CLOUD[provider]
    if not REAL_ENV.get(variable):
        pytest.skip(f"{variable} is not set")
    job = write_job(isolated, {"targets": [f"{provider}/{model}"], "prompts": ["Reply with the word: pong"],
                               "params": {"max_tokens": 200}, "stream": stream})
    done = hanzo(job, env={variable: REAL_ENV[variable]})
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(isolated / "hanzo-runs.db")
    status, text, tokens_in, tokens_out = conn.execute(
        "SELECT status, response_text, input_tokens, output_tokens FROM results").fetchone()
    conn.close()
    assert status == "ok" and text and tokens_in and tokens_out
    assert REAL_ENV[variable] not in done.stdout + done.stderr
