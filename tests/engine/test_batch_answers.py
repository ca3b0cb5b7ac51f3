"""Batch answers live the life of synchronous ones: the job's judges grade them through the grader's lane,
the response cache answers items before any batch is made, and ok batch answers go into the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner import run_job
from tests.conftest import dict_rows, point_at, write_job, write_providers
from tests.fakes import FakeServer

GRADER = "anthropic/claude-haiku-4-5"


@pytest.fixture
def providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "providers", {p: point_at(fake, p) for p in ("openai", "anthropic")})


def run(job: Path, providers: Path, **options: Any) -> Any:
    return run_job(job, providers_dirs=(str(providers),), poll_interval=0.01, **options)


def test_a_batch_run_is_graded_by_its_judges(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                            providers: Path) -> None:
    fake.add_reply('{"pass": true, "score": 1, "reason": "names Paris"}', flavor="anthropic", contains="France")
    fake.add_reply('{"pass": false, "score": 0, "reason": "no Tokyo"}', flavor="anthropic", contains="Japan")
    job = write_job(isolated, {
        "targets": ["openai/gpt-4o-mini"], "batch": True, "judge_target": GRADER, "output": "out.db",
        "prompts": [{"id": "cap", "text": "What is the capital of {{country}}?",
                     "checks": [{"judge": {"rubric": "Names {{capital}}."}}]}],
        "data": [{"country": "France", "capital": "Paris"}, {"country": "Japan", "capital": "Tokyo"}]})
    outcome = run(job, providers)
    assert (outcome.status, outcome.ok) == ("completed", 2)
    assert len(fake.batch.created("openai")) == 1 and fake.batch.chat_requests("openai") == 0
    assert fake.batch.chat_requests("anthropic") == 2  # one verdict per answer, through the grader's lane
    got = {r["row_index"]: r for r in dict_rows(isolated / "out.db", "SELECT * FROM results")}
    assert got[0]["via"] == got[1]["via"] == "batch"
    assert (got[0]["passed"], got[1]["passed"]) == (1, 0)
    assert json.loads(got[1]["failed_checks"]) == [{"check": "judge", "reason": f"{GRADER}: no Tokyo (score 0)"}]
    for r in got.values():
        assert r["judge_cost_usd"] > 0 and r["cost_usd"] > r["judge_cost_usd"]  # the answer's batch price + the judge
    assert dict_rows(isolated / "out.db", "SELECT purpose, count(*) AS n FROM attempts GROUP BY purpose"
                                          " ORDER BY purpose") == [{"purpose": "answer", "n": 2},
                                                                   {"purpose": "judge", "n": 2}]
    run_cost = dict_rows(isolated / "out.db", "SELECT cost_usd FROM runs")[0]["cost_usd"]
    assert run_cost == pytest.approx(sum(r["cost_usd"] for r in got.values()))


def cached_job(folder: Path, question: str) -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"], "prompts": [question], "cache": True,
                              "data": [{"n": i} for i in range(6)], "output": "out.db"})


def test_cached_answers_are_not_bought_again_by_batch(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                      providers: Path, cache_dir: Path) -> None:
    job = cached_job(isolated, "Question {{n}}?")
    assert run(job, providers).ok == 6
    assert fake.count("openai") == 6  # answered synchronously, and cached
    fake.clear()
    for _ in range(2):
        outcome = run(job, providers, batch=True)
        assert (outcome.ok, outcome.failed) == (6, 0)
        assert fake.count() == 0 and fake.batch.created() == []  # no batch, no request at all
    got = dict_rows(isolated / "out.db", "SELECT run_id, sum(cached) AS cached FROM results GROUP BY run_id")
    assert got == [{"run_id": 1, "cached": 0}, {"run_id": 2, "cached": 6}, {"run_id": 3, "cached": 6}]


def test_batch_answers_go_into_the_cache(fake: FakeServer, keys: dict[str, str], isolated: Path, providers: Path,
                                         cache_dir: Path) -> None:
    job = cached_job(isolated, "Batch question {{n}}?")
    assert run(job, providers, batch=True).ok == 6
    assert len(fake.batch.created("openai")) == 1
    fake.clear()
    assert run(job, providers, batch=True).ok == 6
    assert fake.count() == 0 and fake.batch.created() == []
    assert run(job, providers).ok == 6  # and synchronously
    assert fake.count() == 0
