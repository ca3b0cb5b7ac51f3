"""Re-grading without re-asking: a fixed check's new pass rate from the stored answers, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import hanzo, query, write_job

ROWS = [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"},
        {"country": "Peru", "capital": "Lima"}]


def job_with(folder: Path, checks: list[dict[str, Any]], **extra: Any) -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"],
                              "prompts": [{"id": "cap", "text": "capital of {{country}}"}],
                              "data": ROWS, "checks": checks, "output": "out.db", **extra})


def test_rescore_applies_the_edited_check_and_sends_nothing(fake: Any, keys: dict[str, str], isolated: Path,
                                                            fake_providers: Path) -> None:
    job = job_with(isolated, [{"contains": "France"}])
    first = hanzo(job, "--providers-dir", fake_providers)
    assert first.returncode == 1, first.stderr  # Japan and Peru fail the check
    fake.clear()
    job_with(isolated, [{"contains": "capital of {{country}}"}])  # the fixed check
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr
    assert fake.requests == []
    assert "run 2 rescored run 1" in done.stderr
    db = isolated / "out.db"
    assert query(db, "SELECT id, source_run_id, status, items_ok, items_failed FROM runs ORDER BY id") == [
        (1, None, "completed", 3, 0), (2, 1, "completed", 3, 0)]
    before = query(db, "SELECT item_key, response_text, latency_ms, input_tokens, output_tokens, cost_usd, passed"
                       " FROM results WHERE run_id = 1 ORDER BY item_key")
    after = query(db, "SELECT item_key, response_text, latency_ms, input_tokens, output_tokens, cost_usd, passed"
                      " FROM results WHERE run_id = 2 ORDER BY item_key")
    assert [r[:6] for r in after] == [r[:6] for r in before]  # the answers and their cost, as they were
    assert sorted(r[6] for r in before) == [0, 0, 1] and [r[6] for r in after] == [1, 1, 1]
    assert query(db, "SELECT count(*) FROM attempts WHERE run_id = 2") == [(0,)]
    assert query(db, "SELECT pass_rate FROM target_summary ORDER BY run_id") == [(0.3333,), (1.0,)]


def test_rescore_finds_the_job_from_the_run_and_copies_errors(fake: Any, keys: dict[str, str], isolated: Path,
                                                               fake_providers: Path) -> None:
    fake.add_fault("500", flavor="openai", times=3)  # every try of the first item (a 401 would stop the provider)
    job = job_with(isolated, [{"contains": "Japan"}])
    assert hanzo(job, "--providers-dir", fake_providers, "--concurrency", "1").returncode == 1
    fake.clear()
    job_with(isolated, [{"regex": "says"}])
    done = hanzo("rescore", "1", "--db", isolated / "out.db", "--providers-dir", fake_providers, "--json")
    assert done.returncode == 1, done.stderr  # the failed request is still a failed item
    assert fake.requests == []
    summary = json.loads(done.stdout)
    assert (summary["run_id"], summary["ok"], summary["failed"]) == (2, 2, 1)
    got = query(isolated / "out.db", "SELECT status, error_code, passed FROM results WHERE run_id = 2"
                                     " ORDER BY row_index")
    assert got == [("error", "MAX_RETRIES_EXCEEDED", None), ("ok", None, 1), ("ok", None, 1)]


def test_rescore_with_a_judge_asks_only_the_grader(fake: Any, keys: dict[str, str], isolated: Path,
                                                   fake_providers: Path) -> None:
    job = job_with(isolated, [{"contains": "capital"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 0
    fake.clear()
    fake.add_reply('{"pass": false, "score": 0, "reason": "no city named"}', flavor="anthropic")
    job_with(isolated, [{"contains": "capital"}, {"judge": {"rubric": "Names {{capital}}."}}],
             judge_target="anthropic/claude-haiku-4-5")
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 1, done.stderr
    assert fake.count("openai") == 0 and fake.count("anthropic") == 3
    db = isolated / "out.db"
    rows = query(db, "SELECT r2.passed, r2.cost_usd, r2.judge_cost_usd, r1.cost_usd FROM results r2 JOIN results r1"
                     " ON r1.item_key = r2.item_key AND r1.run_id = 1 WHERE r2.run_id = 2")
    for passed, cost, judge_cost, original in rows:
        assert passed == 0 and judge_cost > 0
        assert cost == original + judge_cost  # the answer's own cost, plus the grading this rescore paid for
    assert query(db, "SELECT purpose, count(*) FROM attempts WHERE run_id = 2 GROUP BY purpose") == [("judge", 3)]


def test_rescore_names_a_missing_run(isolated: Path, fake_providers: Path, keys: dict[str, str]) -> None:
    job = job_with(isolated, [{"contains": "x"}])
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    done = hanzo("rescore", "7", job, "--providers-dir", fake_providers)
    assert done.returncode == 2
    assert "rescore: there is no run 7 in this database" in done.stderr


def test_rescore_keeps_tool_and_json_checks_of_the_stored_answers(fake: Any, keys: dict[str, str], isolated: Path,
                                                                   fake_providers: Path) -> None:
    """Tool calls and asked-for JSON are read back from the stored row: a tool check and the schema check
    give the same verdict on rescore as on the run."""
    weather = {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "output": "out.db", "prompts": [
        {"id": "tool", "text": "Weather in Paris", "tools": [weather], "checks": [{"tool_called": "get_weather"}]},
        {"id": "json", "text": "Name someone", "response_schema": schema}]})
    first = hanzo(job, "--providers-dir", fake_providers)
    assert first.returncode == 0, first.stderr
    done = hanzo("rescore", "latest", job, "--providers-dir", fake_providers)
    assert done.returncode == 0, done.stderr
    got = query(isolated / "out.db", "SELECT run_id, prompt_id, passed, response_json IS NOT NULL FROM results"
                                     " ORDER BY run_id, prompt_id")
    assert got == [(1, "json", 1, 1), (1, "tool", 1, 0), (2, "json", 1, 1), (2, "tool", 1, 0)]
