"""Judges worth trusting (issue 19, part 2): every check's outcome kept in ``results.checks`` in each
mode, a judge's own prompt with its variables (and their errors at file:line), a score threshold,
grader replies cached like answers, and the answer's cost kept apart from the judges' and from what
a run paid, on new and old databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from runner import run_job
from runner.store.database import migrations
from runner.store.merge import merge_databases
from tests.conftest import dict_rows, hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer

GRADER = "anthropic/claude-haiku-4-5"
FRANCE = {"country": "France", "capital": "Paris"}


@pytest.fixture
def providers(fake: FakeServer, tmp_path: Path) -> Path:
    return write_providers(tmp_path / "providers", {p: point_at(fake, p) for p in ("openai", "anthropic")})


def judged(folder: Path, checks: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None,
           **extra: Any) -> Path:
    return write_job(folder, {
        "targets": ["openai/gpt-4o-mini"], "judge_target": GRADER, "output": "out.db",
        "prompts": [{"id": "cap", "text": "What is the capital of {{country}}?", "checks": checks}],
        "data": rows or [FRANCE], **extra})


def results(folder: Path, run_id: int = 1) -> list[dict[str, Any]]:
    return dict_rows(folder / "out.db", "SELECT * FROM results WHERE run_id = ? ORDER BY row_index", run_id)


def grader_requests(fake: FakeServer) -> list[Any]:
    return [r for r in fake.requests if r.flavor == "anthropic"]


def test_every_checks_outcome_is_kept_passing_ones_too(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                       providers: Path) -> None:
    (isolated / "checks.py").write_text("def three_quarters(answer, row, result):\n    return 0.75\n")
    fake.add_reply('{"pass": true, "score": 0.9, "reason": "names Paris"}', flavor="anthropic")
    job = judged(isolated, [{"contains": "capital"}, {"python": "checks.py:three_quarters"},
                            {"judge": {"rubric": "Names {{capital}}."}}])
    done = hanzo(job, "--providers-dir", providers)
    assert done.returncode == 0, done.stderr
    row = results(isolated)[0]
    assert (row["passed"], row["failed_checks"]) == (1, None)
    checks = json.loads(row["checks"])
    assert checks[:2] == [
        {"name": "contains", "passed": True, "score": None, "reason": "answer contains 'capital'"},
        {"name": "python", "passed": True, "score": 0.75,
         "reason": "three_quarters returned the score 0.75, at or above the threshold 0.5"}]
    assert checks[2] == {"name": "judge", "passed": True, "score": 0.9, "reason": f"{GRADER}: names Paris (score 0.9)",
                         "grader": GRADER, "cached": False, "cost_usd": pytest.approx(row["judge_cost_usd"])}
    shown = json.loads(hanzo("show", "--db", isolated / "out.db", "--json").stdout)[0]
    assert [c["name"] for c in shown["checks"]] == ["contains", "python", "judge"]
    panel = hanzo("show", "--db", isolated / "out.db").stdout
    assert "✓ python (score 0.75): three_quarters returned" in panel
    assert f"✓ judge (score 0.9): {GRADER}: names Paris" in panel


def test_a_threshold_decides_on_the_graders_score(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                 providers: Path) -> None:
    fake.add_reply('{"pass": true, "score": 0.6, "reason": "close"}', flavor="anthropic", contains="France")
    fake.add_reply('{"pass": false, "score": 0.8, "reason": "good enough"}', flavor="anthropic", contains="Japan")
    fake.add_reply('{"pass": true, "reason": "fine"}', flavor="anthropic", contains="Peru")
    job = judged(isolated, [{"judge": {"rubric": "Names {{capital}}."}, "threshold": 0.7}],
                 [FRANCE, {"country": "Japan", "capital": "Tokyo"}, {"country": "Peru", "capital": "Lima"}])
    assert hanzo("validate", job).returncode == 0
    assert hanzo(job, "--providers-dir", providers).returncode == 1
    got = results(isolated)
    assert [r["passed"] for r in got] == [0, 1, None]  # the score, not the grader's "pass"
    assert [json.loads(r["checks"])[0]["score"] for r in got] == [0.6, 0.8, None]
    assert json.loads(got[2]["failed_checks"]) == [{"check": "judge", "reason": (
        f'no verdict from {GRADER}: the verdict has no "score", which the threshold 0.7 needs: '
        '{"pass": true, "reason": "fine"}')}]


def test_a_judges_own_prompt_gets_its_variables(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                               providers: Path) -> None:
    (isolated / "grade.txt").write_text("Q: {{prompt}}\nA: {{answer}}\nWant: {{rubric}} / {{reference}} / "
                                        "{{ country }}\n")
    fake.add_reply('{"pass": true, "score": 1, "reason": "ok"}', flavor="anthropic")
    job = judged(isolated, [{"judge": {"prompt": "grade.txt", "rubric": "Names {{capital}}.",
                                       "reference": "{{capital}}"}},
                            {"judge": {"prompt": "Is {{answer}} right for {{country}}?"}}])
    assert hanzo(job, "--providers-dir", providers).returncode == 0
    asked = [r.json["messages"][0]["content"] for r in grader_requests(fake)]
    answer = "gpt-4o-mini says: What is the capital of France?"
    assert sorted(asked) == sorted([
        f"Q: What is the capital of France?\nA: {answer}\nWant: Names Paris. / Paris / France\n",
        f"Is {answer} right for France?"])
    assert all('"pass": true or false' in r.json["system"] for r in grader_requests(fake))  # the reply format


def test_a_judge_prompts_errors_name_the_file_line_and_variable(isolated: Path) -> None:
    (isolated / "grade.md").write_text("Grade it.\nAnswer: {{answr}}\nReference: {{reference}}\n")
    job = write_job(isolated, {
        "targets": ["echo/echo"], "judge_target": "echo/echo", "data": [FRANCE],
        "prompts": [{"id": "cap", "text": "Capital of {{country}}?", "checks": [
            {"judge": {"prompt": "grade.md"}},
            {"judge": {"prompt": "Grade {{answer}} for {{city}}"}},
            {"judge": {"prompt": "missing.txt"}},
            {"judge": {"rubric": "x"}, "timeout": 3}]}]})
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert done.stderr.splitlines()[:-1] == [
        "job.yaml:17:5: prompts[0].checks[3]: timeout applies only to python checks",
        "grade.md:2:9: {{answr}} is not a judge variable nor defined by every data row (answer, prompt, rubric, "
        "reference; row variables: capital, country)",
        "grade.md:3:12: {{reference}} is used but the judge has no reference: give it reference: ...",
        "job.yaml:14:15: prompts[0].checks[1].judge.prompt: {{city}} is not a judge variable nor defined by every "
        "data row (answer, prompt, rubric, reference; row variables: capital, country)",
        "job.yaml:16:15: prompts[0].checks[2].judge.prompt: judge prompt file missing.txt not found (relative to "
        "the job file); give a file next to the job, or the prompt's text"]
    write_job(isolated, {"targets": ["echo/echo"], "judge_target": "echo/echo",
                         "prompts": [{"text": "hi", "checks": [{"judge": {"target": "echo/echo"}}]}]})
    assert hanzo("validate", job).stderr.splitlines()[0] == (
        "job.yaml:8:7: prompts[0].checks[0].judge: a judge needs a rubric: (what a good answer does) or its own "
        "prompt: (a file or text)")


def test_grader_replies_are_cached_like_answers(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                               providers: Path, cache_dir: Path) -> None:
    """A cached re-run and a rescore pay no grader again; the costs stay apart: what the answer and the
    verdict cost (a cached one at what it first cost) and what each run paid."""
    verdict = '{"pass": true, "score": 1, "reason": "names Paris"}'
    fake.add_reply(verdict, flavor="anthropic")
    job = judged(isolated, [{"judge": {"rubric": "Names {{capital}}."}}], cache=True)
    assert hanzo(job, "--providers-dir", providers).returncode == 0
    assert len(grader_requests(fake)) == 1
    first = results(isolated)[0]
    assert first["answer_cost_usd"] > 0 and first["judge_cost_usd"] > 0
    assert first["cost_usd"] == pytest.approx(first["answer_cost_usd"] + first["judge_cost_usd"])

    fake.clear()
    fake.add_reply(verdict, flavor="anthropic")
    again = hanzo(job, "--providers-dir", providers)
    assert again.returncode == 0, again.stderr
    assert fake.requests == []  # neither the answer nor the grader is asked again
    second = results(isolated, 2)[0]
    assert (second["cached"], second["passed"], second["cost_usd"]) == (1, 1, 0.0)
    assert second["answer_cost_usd"] == pytest.approx(first["answer_cost_usd"])  # not just the graders' cost
    assert second["judge_cost_usd"] == pytest.approx(first["judge_cost_usd"])
    assert json.loads(second["checks"])[0]["cached"] is True
    assert "; from the cache: 1 answer, 1 verdict (paid $0.0000); results in" in again.stderr
    report = json.loads(hanzo("report", "2", "--db", isolated / "out.db", "--json").stdout)["targets"][0]
    assert (report["cost_usd"], report["answer_cost_usd"], report["judge_cost_usd"]) == (
        0.0, pytest.approx(first["answer_cost_usd"]), pytest.approx(first["judge_cost_usd"]))
    table = hanzo("report", "2", "--db", isolated / "out.db").stdout
    assert "answer $" in table and "judge $" in table
    shown = json.loads(hanzo("show", "2", "--db", isolated / "out.db", "--json").stdout)[0]
    assert (shown["cached"], shown["answer_cost_usd"]) == (1, pytest.approx(first["answer_cost_usd"]))

    rescored = hanzo("rescore", "1", job, "--providers-dir", providers)
    assert rescored.returncode == 0, rescored.stderr
    assert fake.requests == []
    third = results(isolated, 3)[0]
    assert json.loads(third["checks"])[0]["cached"] is True
    assert third["cost_usd"] == pytest.approx(first["answer_cost_usd"])  # the source's answer; no grader paid
    assert hanzo("rescore", "1", job, "--providers-dir", providers, "--no-cache").returncode == 0
    assert len(grader_requests(fake)) == 1  # asked when the cache is off


def test_checks_are_kept_in_batch_mode(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                       providers: Path) -> None:
    fake.add_reply('{"pass": false, "score": 0.2, "reason": "no"}', flavor="anthropic")
    job = judged(isolated, [{"contains": "capital"}, {"judge": {"rubric": "Names {{capital}}."}}], batch=True)
    outcome = run_job(job, providers_dirs=(str(providers),), poll_interval=0.01)
    assert outcome.status == "completed"
    row = results(isolated)[0]
    assert row["via"] == "batch" and row["passed"] == 0
    assert [(c["name"], c["passed"], c["score"]) for c in json.loads(row["checks"])] == [
        ("contains", True, None), ("judge", False, 0.2)]
    assert row["cost_usd"] == pytest.approx(row["answer_cost_usd"] + row["judge_cost_usd"])


def old_database(path: Path) -> Path:
    """A results database as a hanzo-run before m009_checks wrote it: a fresh judged answer, and a cached one."""
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m009_checks")
    common = {"target": "openai/a", "provider": "openai", "model": "a", "prompt_id": "p", "repeat_index": 0,
              "prompt": "q", "status": "ok", "response_text": "a", "attempts": 1, "passed": 1,
              "started_at": "2025-01-01T00:00:00.000Z", "finished_at": "2025-01-01T00:00:01.000Z"}
    db["runs"].insert({"id": 1, "job_name": "old", "status": "completed", "started_at": "2025-01-01T00:00:00.000Z"})
    db["results"].insert_all([
        {**common, "run_id": 1, "item_key": "k0", "row_index": 0, "cost_usd": 0.005, "judge_cost_usd": 0.002},
        {**common, "run_id": 1, "item_key": "k1", "row_index": 1, "cost_usd": 0.002, "judge_cost_usd": 0.002,
         "cached": 1, "cached_cost_usd": 0.003}])
    db.close()
    return path


@pytest.mark.parametrize("merged", [False, True])
def test_a_database_written_before_the_checks_column_reads_with_its_costs_apart(isolated: Path,
                                                                                merged: bool) -> None:
    path = old_database(isolated / "old.db")
    if merged:  # merged into a new database, the source left as it is
        merge_databases(isolated / "new.db", [path])
        path = isolated / "new.db"
    done = hanzo("report", "1", "--db", path, "--json")
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)["targets"][0]
    assert (target["cost_usd"], target["answer_cost_usd"], target["judge_cost_usd"]) == (
        pytest.approx(0.007), pytest.approx(0.006), pytest.approx(0.004))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT checks FROM results").fetchall() == [(None,), (None,)]


def test_a_rescore_asks_no_grader_for_an_answer_whose_row_is_gone(fake: FakeServer, keys: dict[str, str],
                                                                  isolated: Path, providers: Path) -> None:
    fake.add_reply('{"pass": true, "score": 1, "reason": "ok"}', flavor="anthropic")
    japan = {"country": "Japan", "capital": "Tokyo"}
    job = judged(isolated, [{"judge": {"rubric": "Names {{capital}}."}}], [FRANCE, japan])
    assert hanzo(job, "--providers-dir", providers).returncode == 0
    fake.clear()
    fake.add_reply('{"pass": true, "score": 1, "reason": "ok"}', flavor="anthropic")
    judged(isolated, [{"judge": {"rubric": "Names {{capital}}."}}], [japan])
    assert hanzo("rescore", "1", job, "--providers-dir", providers).returncode == 1
    assert [r.json["messages"][0]["content"].count("Japan") > 0 for r in grader_requests(fake)] == [True]
    gone = results(isolated, 2)[0]
    assert (gone["passed"], gone["judge_cost_usd"]) == (None, None)
    assert json.loads(gone["checks"]) == [{"name": "data row", "passed": None, "score": None, "reason": (
        "data row 0 of run 1 is not in the job's data any more (changed or removed); not graded")}]
