"""A judge check's grader is checked before anything is bought: ``validate`` and the run's
pre-flight refuse a grader whose provider has no key, and ``--dry-run`` counts what grading
would cost (issue 17, item 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.engine.costing import dataset_version
from tests.conftest import hanzo, write_job
from tests.fakes import FakeServer

GRADER = "anthropic/claude-haiku-4-5"  # priced in the built-in anthropic.yaml: $1 / $5 per 1M


def _job(folder: Path, *, job_level: bool) -> Path:
    judge: dict[str, Any] = {"rubric": "Names {{city}}."}
    extra: dict[str, Any] = {"judge_target": GRADER} if job_level else {}
    if not job_level:
        judge["target"] = GRADER
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"], **extra,
                              "prompts": [{"id": "cap", "text": "Which city is {{city}}?"}],
                              "data": [{"city": "Paris"}, {"city": "Rome"}],
                              "checks": [{"contains": "{{city}}"}, {"judge": judge}], "output": "out.db"})


def _place(job: Path, key: str) -> str:
    for number, text in enumerate(job.read_text().splitlines(), start=1):
        if text.lstrip().startswith(f"{key}:"):
            return f"job.yaml:{number}:{text.index(':') + 3}"
    raise AssertionError(key)


@pytest.mark.parametrize("job_level", [False, True])
def test_a_grader_without_a_key_is_refused_before_anything_is_bought(job_level: bool, fake: FakeServer,
                                                                     fake_providers: Path, isolated: Path) -> None:
    job = _job(isolated, job_level=job_level)
    where = f"{_place(job, 'judge_target')}: judge_target" if job_level else \
        f"{_place(job, 'target')}: checks[1].judge.target"
    expected = (f"{where}: the grader {GRADER} has no key, so a run stops before sending anything: no API key for "
                "anthropic: set HANZO_API_KEY_ANTHROPIC or ANTHROPIC_API_KEY or run: hanzo-run keys set anthropic")
    only_openai = {"OPENAI_API_KEY": fake.keys["openai"]}
    for command in ((job,), (job, "--resume")):
        done = hanzo(*command, "--providers-dir", fake_providers, env=only_openai)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[0].startswith(expected), done.stderr
    assert fake.count() == 0
    assert not (isolated / "out.db").exists()
    # validate says so too; as a warning, since the key is set where the job runs, which may not be here (CI).
    checked = hanzo("validate", job, "--providers-dir", fake_providers, env=only_openai)
    assert checked.returncode == 0
    lines = checked.stderr.splitlines()
    assert lines[0].startswith(f"warning: {expected}")
    assert lines[1:] == ["1 file(s) OK, 1 warning(s)"]
    # With the grader's key there is nothing to say.
    both = {**only_openai, "ANTHROPIC_API_KEY": fake.keys["anthropic"]}
    checked = hanzo("validate", job, "--providers-dir", fake_providers, env=both)
    assert (checked.returncode, checked.stderr) == (0, "1 file(s) OK\n")


def test_dry_run_counts_the_graders_requests_and_cost(fake: FakeServer, fake_providers: Path,
                                                      isolated: Path) -> None:
    job = _job(isolated, job_level=False)
    done = hanzo(job, "--providers-dir", fake_providers, "--dry-run", "--json")  # no key needed to estimate
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    answers, grading = got["targets"]
    assert answers["target"] == "openai/gpt-4o-mini" and answers["items"] == 2
    assert grading["target"] == f"{GRADER} (judge)"
    assert grading["judge"] is True
    assert grading["items"] == 2  # one grading request per answer
    assert grading["max_output_tokens"] == 1024  # the grader's default max_tokens
    assert grading["price_source"] == dataset_version()
    # The grader reads the question, a typical answer and the rubric: more than the question alone.
    assert grading["input_tokens"] > answers["input_tokens"] + 2 * 150
    assert grading["typical_cost_usd"] == pytest.approx(
        (grading["input_tokens"] * 1 + 2 * grading["typical_output_tokens"] * 5) / 1e6)
    assert grading["worst_cost_usd"] == pytest.approx((grading["input_tokens"] * 1 + 2 * 1024 * 5) / 1e6)
    totals = got["totals"]
    assert totals["items"] == 2 and totals["judge_requests"] == 2
    assert totals["typical_cost_usd"] == pytest.approx(answers["typical_cost_usd"] + grading["typical_cost_usd"])
    table = hanzo(job, "--providers-dir", fake_providers, "--dry-run")
    assert f"{GRADER} (judge)" in table.stdout
    assert fake.count() == 0
