"""The response cache in real runs: a second identical run sends nothing and costs nothing, a changed
prompt sends only its own items, --no-cache overrides, and the cache command reports and clears."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from runner import run_job
from runner.store.cache import CachedAnswer, ResponseCache
from tests.conftest import hanzo, query, write_job


def cached_job(folder: Path, second_prompt: str = "Describe {{country}}.", **extra: Any) -> Path:
    return write_job(folder, {
        "targets": ["openai/gpt-4o-mini"],
        "prompts": [{"id": "cap", "text": "Capital of {{country}}?"}, {"id": "desc", "text": second_prompt}],
        "data": [{"country": "France"}, {"country": "Japan"}], "checks": [{"contains": "says"}],
        "cache": True, "output": "out.db", **extra})


def test_a_second_identical_run_is_answered_from_the_cache(fake: Any, keys: dict[str, str], isolated: Path,
                                                           fake_providers: Path, cache_dir: Path) -> None:
    job = cached_job(isolated)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    assert fake.count("openai") == 4
    fake.clear()
    done = hanzo(job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr
    assert fake.requests == []
    db = isolated / "out.db"
    columns = "item_key, response_text, latency_ms, input_tokens, output_tokens"
    first = query(db, f"SELECT {columns}, cost_usd FROM results WHERE run_id = 1 ORDER BY item_key")
    second = query(db, f"SELECT {columns}, cached_cost_usd, cached, cost_usd, price_source, attempts, passed"
                       " FROM results WHERE run_id = 2 ORDER BY item_key")
    assert [r[:6] for r in second] == first  # the first answer, its latency, tokens, and what it cost then
    assert all(first_cost > 0 for *_, first_cost in first)
    assert {r[6:] for r in second} == {(1, 0.0, "cached", 0, 1)}
    assert query(db, "SELECT cost_usd FROM runs WHERE id = 2") == [(0.0,)]
    assert query(db, "SELECT count(*) FROM attempts WHERE run_id = 2") == [(0,)]
    assert query(db, "SELECT sum(cached) FROM results WHERE run_id = 1") == [(0,)]

    cached_job(isolated, second_prompt="Describe {{country}} in one line.")
    fake.clear()
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    sent = sorted(r.json["messages"][-1]["content"] for r in fake.requests)
    assert sent == ["Describe France in one line.", "Describe Japan in one line."]
    assert query(db, "SELECT prompt_id, cached FROM results WHERE run_id = 3 ORDER BY prompt_id, row_index") == [
        ("cap", 1), ("cap", 1), ("desc", 0), ("desc", 0)]

    fake.clear()
    assert hanzo(job, "--providers-dir", fake_providers, "--no-cache").returncode == 0
    assert fake.count("openai") == 4


def test_the_cache_is_off_unless_asked_and_holds_no_key(fake: Any, keys: dict[str, str], isolated: Path,
                                                        fake_providers: Path, cache_dir: Path) -> None:
    job = cached_job(isolated, cache=False)
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    assert not cache_dir.exists()
    assert hanzo(job, "--providers-dir", fake_providers, "--cache").returncode == 0
    fake.clear()
    assert hanzo(job, "--providers-dir", fake_providers, "--cache").returncode == 0
    assert fake.requests == []
    stored = b"".join(p.read_bytes() for p in cache_dir.iterdir())
    assert b"gpt-4o-mini says: Capital of France?" in stored
    assert keys["openai"].encode() not in stored


def test_the_cache_command(fake: Any, keys: dict[str, str], isolated: Path, fake_providers: Path,
                           cache_dir: Path) -> None:
    assert hanzo(cached_job(isolated), "--providers-dir", fake_providers).returncode == 0
    stats = json.loads(hanzo("cache", "stats", "--json").stdout)
    assert stats["entries"] == 4 and stats["path"] == str(cache_dir / "responses.db")
    cleared = hanzo("cache", "clear", "--older-than", "1h")
    assert (cleared.returncode, cleared.stderr) == (0, "removed 0 cached answer(s)\n")
    assert hanzo("cache", "clear").stderr == "removed 4 cached answer(s)\n"
    assert json.loads(hanzo("cache", "stats", "--json").stdout)["entries"] == 0
    bad = hanzo("cache", "clear", "--older-than", "soon")
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr


def test_cache_ttl_is_checked(isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "cache": True, "cache_ttl": "two weeks"})
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "job.yaml:6:12: cache_ttl: expected seconds, or a number with s, m, h, d or w (e.g. 14d)")


def test_the_cache_keeps_tool_calls_and_tells_apart_what_a_request_asks(fake: Any, keys: dict[str, str],
                                                                       isolated: Path, fake_providers: Path,
                                                                       cache_dir: Path) -> None:
    """A cached answer keeps its tool calls (so a tool check gives the same verdict), and a request that
    asks for another response schema or other tools is another request, sent again."""
    weather = {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}

    def job(schema_key: str) -> Path:
        schema = {"type": "object", "required": [schema_key], "properties": {schema_key: {"type": "string"}}}
        return write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "cache": True, "output": "out.db",
                                    "prompts": [
            {"id": "tool", "text": "Weather in Paris", "tools": [weather], "checks": [{"tool_called": "get_weather"}]},
            {"id": "json", "text": "Name someone", "response_schema": schema}]})

    assert hanzo(job("name"), "--providers-dir", fake_providers).returncode == 0
    fake.clear()
    assert hanzo(job("name"), "--providers-dir", fake_providers).returncode == 0
    assert fake.requests == []
    db = isolated / "out.db"
    assert query(db, "SELECT run_id, prompt_id, cached, passed, tool_calls IS NOT NULL, response_json IS NOT NULL"
                     " FROM results ORDER BY run_id, prompt_id") == [
        (1, "json", 0, 1, 0, 1), (1, "tool", 0, 1, 1, 0), (2, "json", 1, 1, 0, 1), (2, "tool", 1, 1, 1, 0)]
    assert query(db, "SELECT tool_calls FROM results WHERE prompt_id = 'tool' AND run_id = 2") == query(
        db, "SELECT tool_calls FROM results WHERE prompt_id = 'tool' AND run_id = 1")
    fake.clear()
    assert hanzo(job("title"), "--providers-dir", fake_providers).returncode == 0
    assert [r.json["messages"][-1]["content"] for r in fake.requests] == ["Name someone"]


def test_answers_reach_the_cache_after_their_results_are_committed_in_few_transactions(
        fake: Any, keys: dict[str, str], isolated: Path, fake_providers: Path, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's writer stores the cache entries of the rows it has just committed, many to a transaction:
    a crash loses cache entries, never a result, and an entry never exists without its result."""
    transactions: list[int] = []
    unwritten: list[str] = []
    db = isolated / "out.db"
    put_many = ResponseCache.put_many

    def watched(cache: ResponseCache, answers: Iterable[tuple[str, CachedAnswer]]) -> None:
        answers = list(answers)
        transactions.append(len(answers))
        for _, answer in answers:  # read on another connection: only committed rows are seen
            if not query(db, "SELECT 1 FROM results WHERE response_text = ?", answer.response_text):
                unwritten.append(answer.response_text)
        put_many(cache, answers)

    monkeypatch.setattr(ResponseCache, "put_many", watched)
    monkeypatch.setattr(ResponseCache, "put", lambda cache, key, answer: watched(cache, [(key, answer)]))
    countries = [{"country": f"Country {n}"} for n in range(24)]
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["Capital of {{country}}?"],
                               "data": countries, "cache": True, "output": "out.db"})
    assert run_job(job, providers_dirs=(str(fake_providers),)).ok == 24
    assert unwritten == []
    assert sum(transactions) == 24 and len(transactions) < 24
    fake.clear()
    assert run_job(job, providers_dirs=(str(fake_providers),)).ok == 24
    assert fake.requests == []  # every one of them is in the cache
