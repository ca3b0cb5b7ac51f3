"""Issue 17 item 5: the job's system: goes with messages and rich prompts too, unless a prompt has its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hanzo, write_job
from tests.fakes import FakeServer

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")


def system_of(flavor: str, body: dict[str, Any]) -> str | None:
    """The system text of a wire body, wherever its protocol puts it."""
    if flavor == "anthropic":
        return body.get("system")
    if flavor == "gemini":
        instruction = body.get("systemInstruction")
        return instruction["parts"][0]["text"] if instruction else None
    first = body["messages"][0]
    return first["content"] if first["role"] == "system" else None


def last_user_text(flavor: str, body: dict[str, Any]) -> str:
    if flavor == "gemini":
        return str(body["contents"][-1]["parts"][0]["text"])
    content = body["messages"][-1]["content"]
    if isinstance(content, list):
        return str(content[0]["text"])
    return str(content)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_job_system_reaches_every_kind_of_prompt(protocol: str, fake: FakeServer, fake_providers: Path,
                                                 keys: dict[str, str], isolated: Path) -> None:
    job = write_job(isolated, {
        "targets": [f"{protocol}/m-plain"],
        "system": "Answer in one word.",
        "prompts": [
            {"id": "messages", "messages": [{"role": "user", "content": "plain"}]},
            {"id": "rich", "messages": [{"role": "user", "content": [{"text": "rich"}]}]},
            {"id": "own", "messages": [{"role": "system", "content": "Answer in French."},
                                       {"role": "user", "content": "own"}]},
            {"id": "text", "text": "text"}],
        "output": "runs.db"})
    done = hanzo(job, "--providers-dir", fake_providers, "--quiet")
    assert done.returncode == 0, done.stderr
    bodies = {last_user_text(r.flavor or "", r.json): r.json for r in fake.requests if r.chat}
    assert {k: system_of(protocol, b) for k, b in bodies.items()} == {
        "plain": "Answer in one word.", "rich": "Answer in one word.", "own": "Answer in French.",
        "text": "Answer in one word."}


def test_validate_says_which_system_wins(isolated: Path) -> None:
    job = isolated / "job.yaml"
    job.write_text("targets: [echo/echo]\nsystem: Be brief.\nprompts:\n  - messages:\n"
                   "      - {role: system, content: Be long.}\n      - {role: user, content: hi}\n")
    done = hanzo("validate", job)
    assert done.returncode == 0, done.stderr
    assert ("job.yaml:5:9: prompts[0].messages[0]: note: this prompt's own system message is sent; "
            "the job's system: is not applied to it") in done.stderr
