"""Model-graded checks: the grader's request and JSON mode per protocol, reading its verdict,
and a real run graded by a second provider of the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.config.checks import Judge
from runner.engine.judge import Verdict, judge_request, parse_verdict
from runner.protocols import adapter_for
from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.conftest import query as results

JUDGE = Judge("Names {{capital}} as the capital.", "{{capital}}", "anthropic", {})
ROW = {"country": "France", "capital": "Paris"}
GRADER = "anthropic/claude-haiku-4-5"
REPLIES = ('{"pass": true, "score": 1, "reason": "names Paris"}',
           'Verdict:\n```json\n{"pass": false, "score": 0.1, "reason": "no Tokyo"}\n```', "Looks good to me!")


@pytest.mark.parametrize(("text", "expected"), [
    ('{"pass": true, "score": 1, "reason": "names Paris"}', Verdict(True, 1.0, "names Paris")),
    ('```json\n{"pass": false, "score": 0.2, "reason": "says Lyon"}\n```', Verdict(False, 0.2, "says Lyon")),
    ('Here is my verdict:\n```json\n{"pass": false, "reason": "wrong"}\n```\nHope it helps {x}.',
     Verdict(False, None, "wrong")),
    ('Sure. {"note": 1} and then {"pass": true} done', Verdict(True, None, "")),
    ("I think it is fine.", "the grader's answer holds no JSON verdict: 'I think it is fine.'"),
    ('{"pass": "yes", "score": 1}', 'the verdict has no true/false "pass": {"pass": "yes", "score": 1}'),
    ('{"pass": true, "score": 7}', 'the verdict\'s "score" is not a number from 0 to 1: {"pass": true, "score": 7}'),
])
def test_verdicts_are_read_from_json_prose_and_fences(text: str, expected: Verdict | str) -> None:
    assert parse_verdict(text) == expected


def test_the_grader_is_told_question_answer_rubric_and_reference() -> None:
    request = judge_request(JUDGE, "claude-haiku-4-5", "Capital of France?", "Paris.", ROW)
    assert request.stream is False and request.messages[0]["role"] == "system"
    assert request.messages[1]["content"] == (
        "Question:\n<<<\nCapital of France?\n>>>\n\nAnswer:\n<<<\nParis.\n>>>\n\n"
        "Rubric:\nNames Paris as the capital.\n\nReference answer:\n<<<\nParis\n>>>\n\n"
        "Does the answer meet the rubric? Reply with the JSON object only.")
    assert '"pass": true or false' in request.messages[0]["content"]


def body(protocol: str, model: str = "m", **params: Any) -> dict[str, Any]:
    judge = Judge("r", None, "x", params)
    return adapter_for(protocol).build(judge_request(judge, model, "q", "a", {})).json


def test_json_mode_is_asked_for_in_each_protocols_own_way() -> None:
    assert body("openai")["response_format"] == {"type": "json_object"}
    assert body("openai")["temperature"] == 0 and body("openai")["max_tokens"] == 1024
    assert body("ollama")["format"] == "json"
    assert body("gemini", max_tokens=200)["generationConfig"] == {
        "temperature": 0, "maxOutputTokens": 200, "responseMimeType": "application/json"}
    anthropic = body("anthropic")
    assert "response_format" not in anthropic and "format" not in anthropic and anthropic["max_tokens"] == 1024



def judged_job(folder: Path, rows: list[dict[str, Any]], **extra: Any) -> Path:
    return write_job(folder, {
        "targets": ["openai/gpt-4o-mini"],
        "prompts": [{"id": "cap", "text": "What is the capital of {{country}}?",
                     "checks": [{"judge": {"rubric": "Names {{capital}}.", "reference": "{{capital}}"}}]}],
        "data": rows, "judge_target": GRADER, "checks": [{"contains": "capital"}], "output": "out.db", **extra})


def test_a_run_graded_by_a_second_provider(fake: Any, keys: dict[str, str], isolated: Path, tmp_path: Path) -> None:
    """Answers from the openai flavor, grader on the anthropic flavor: a pass, a fail, an unparseable verdict."""
    providers = write_providers(tmp_path / "providers", {
        "openai": point_at(fake, "openai"),
        # The grader's own limits: 2 requests a second, so the third verdict waits for the window.
        "anthropic": point_at(fake, "anthropic", limits={"requests": 2, "window": 1, "concurrency": 4})})
    for reply, country in zip(REPLIES, ("France", "Japan", "Peru"), strict=True):
        fake.add_reply(reply, flavor="anthropic", contains=country)
    job = judged_job(isolated, [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"},
                                {"country": "Peru", "capital": "Lima"}])
    done = hanzo(job, "--providers-dir", providers)
    assert done.returncode == 1, done.stderr
    assert fake.count("openai") == 3
    grader_requests = [r for r in fake.requests if r.flavor == "anthropic"]
    assert len(grader_requests) == 3 and all(r.model == "claude-haiku-4-5" for r in grader_requests)
    assert fake.max_in_window("anthropic", 1.0) <= 2  # the grader's requests keep its rate limit
    db = isolated / "out.db"
    got = results(db, "SELECT row_index, status, passed, failed_checks, cost_usd, judge_cost_usd FROM results"
                      " ORDER BY row_index")
    assert [(r[0], r[1], r[2]) for r in got] == [(0, "ok", 1), (1, "ok", 0), (2, "ok", None)]
    assert got[0][3] is None
    assert json.loads(got[1][3]) == [{"check": "judge", "reason": f"{GRADER}: no Tokyo (score 0.1)"}]
    assert json.loads(got[2][3]) == [{"check": "judge", "reason": f"no verdict from {GRADER}: the grader's answer "
                                                                  "holds no JSON verdict: 'Looks good to me!'"}]
    # Each grader request is priced at the grader's price (1.00 / 5.00 per million) from the fake's token counts.
    for (row_index, *_, cost, judge_cost), request in zip(got, sorted(grader_requests, key=_country), strict=True):
        words_in = len(request.json["system"].split()) + len(request.json["messages"][0]["content"].split())
        words_out = len(REPLIES[row_index].split())
        assert judge_cost == pytest.approx((words_in * 1.0 + words_out * 5.0) / 1e6)
        answer_words = len(f"gpt-4o-mini says: {request_prompt(row_index)}".split())
        answer_in = len(request_prompt(row_index).split())
        assert cost == pytest.approx(judge_cost + (answer_in * 0.15 + answer_words * 0.60) / 1e6)
    run_cost = results(db, "SELECT cost_usd FROM runs")[0][0]
    assert run_cost == pytest.approx(sum(r[4] for r in got))
    attempts = results(db, "SELECT purpose, count(*), min(attempt), max(attempt) FROM attempts GROUP BY purpose"
                           " ORDER BY purpose")
    assert attempts == [("answer", 3, 1, 1), ("judge", 3, 1, 1)]


def request_prompt(row_index: int) -> str:
    return f"What is the capital of {['France', 'Japan', 'Peru'][row_index]}?"


def _country(request: Any) -> int:
    text = request.json["messages"][0]["content"]
    return next(i for i, c in enumerate(["France", "Japan", "Peru"]) if c in text)


def test_a_grader_that_fails_leaves_the_check_unknown(fake: Any, keys: dict[str, str], isolated: Path,
                                                       fake_providers: Path) -> None:
    fake.add_fault("401", flavor="anthropic")
    job = judged_job(isolated, [{"country": "France", "capital": "Paris"}])
    done = hanzo(job, "--providers-dir", fake_providers)
    assert done.returncode == 1, done.stderr  # an unknown check is not a pass
    got = results(isolated / "out.db", "SELECT passed, failed_checks, judge_cost_usd FROM results")
    assert got[0][0] is None and got[0][2] == 0
    assert json.loads(got[0][1]) == [{"check": "judge", "reason": f"no verdict from {GRADER}: INVALID_API_KEY: "
                                                                  "HTTP 401: invalid x-api-key"}]
    assert results(isolated / "out.db", "SELECT purpose, http_status, error_code FROM attempts ORDER BY id") == [
        ("answer", 200, None), ("judge", 401, "INVALID_API_KEY")]
    fake.add_fault("401", flavor="anthropic")
    quiet = hanzo(job, "--providers-dir", fake_providers, "--quiet", "--db", isolated / "quiet.db")
    assert (quiet.returncode, quiet.stdout) == (1, "")
    assert quiet.stderr == (f"hanzo-run: run 1 failed: 1 of 1 answers got no verdict from their checks (no verdict "
                            f"from {GRADER}: INVALID_API_KEY: HTTP 401: invalid x-api-key); results in "
                            f"{isolated / 'quiet.db'}\n")


def test_a_judge_check_needs_a_known_grader(isolated: Path) -> None:
    job = write_job(isolated, {
        "targets": ["echo/echo"],
        "prompts": [{"text": "hi", "checks": [{"judge": {"rubric": "polite"}}]},
                    {"text": "yo", "checks": [{"judge": {"rubric": "polite", "target": "nosuch/model"}}]}]})
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert done.stderr.splitlines()[:2] == [
        "job.yaml:7:7: prompts[0].checks[0].judge: a judge check needs a grader: give it target: provider/model, "
        "or set judge_target for the whole job",
        "job.yaml:12:15: prompts[1].checks[0].judge.target: unknown provider 'nosuch'; known: anthropic, echo, gemini,"
        " groq, lmstudio, ollama, openai, openrouter, sambanova (or add providers.d/nosuch.yaml)"]
