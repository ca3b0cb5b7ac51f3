"""The evaluation loop on the command line: why a run failed, where its results are, every
answer (``show``, ``report --items``), what changed between runs (``diff``), and the progress
the engine reports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import hanzo, write_job
from tests.fakes import FakeServer

ROWS = 40
FAILING = 17  # rows 23..39 say "no" and miss the check


def nightly(folder: Path, *, changed: tuple[int, ...] = (), fixed: tuple[int, ...] = (),
            name: str = "nightly.yaml", **extra: Any) -> Path:
    """40 items on the echo provider (it answers with the prompt); a row that says "no" fails the check.
    ``changed`` rows now say "no", ``fixed`` rows now say "yes"."""
    rows = []
    for n in range(ROWS):
        word = "yes" if n < ROWS - FAILING else "no"
        word = "no" if n in changed else "yes" if n in fixed else word
        rows.append({"n": n, "w": word})
    data: dict[str, Any] = {"name": "nightly", "targets": ["echo/echo"],
                            "prompts": [{"id": "q", "text": "item {{n}} says {{w}}"}], "data": rows,
                            "checks": [{"contains": "yes"}], "output": "nightly.db", **extra}
    return write_job(folder, data, name)


# ---------------------------------------------------------------- say why


def test_a_run_whose_checks_failed_says_so(isolated: Path) -> None:
    job = nightly(isolated)
    done = hanzo(job, "--fail-under", "0.9")
    assert done.returncode == 1, done.stderr
    table = done.stdout.splitlines()
    assert [c for c in table[2].split() if c != "│"][:4] == ["echo/echo", "40", "0", "57.5%"]  # pass column
    assert "checks that failed most" in done.stdout
    assert [c for c in table[-1].split() if c != "│"][:2] == ["contains", "17"]
    assert done.stderr.splitlines()[-2:] == [
        f"run 1: 40 answered, 23 passed, 17 failed checks (pass rate 57.5%, under --fail-under 0.9); 0 request "
        f"errors; results in {isolated / 'nightly.db'}",
        f"hanzo-run: run 1 failed: 17 of 40 answers failed checks (pass rate 57.5% under --fail-under 0.9); "
        f"results in {isolated / 'nightly.db'}"]


def test_quiet_failure_prints_exactly_one_line_saying_why(isolated: Path) -> None:
    job = nightly(isolated)
    done = hanzo(job, "--quiet", "--fail-under", "0.9")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"hanzo-run: run 1 failed: 17 of 40 answers failed checks (pass rate 57.5% under --fail-under 0.9); "
        f"results in {isolated / 'nightly.db'}"]
    done = hanzo(job, "-q")  # without --fail-under any failed check fails the run
    assert done.stderr.splitlines() == [
        f"hanzo-run: run 2 failed: 17 of 40 answers failed checks; results in {isolated / 'nightly.db'}"]
    passing = nightly(isolated, fixed=tuple(range(ROWS)), name="passing.yaml")
    assert (hanzo(passing, "-q").returncode, hanzo(passing, "-q").stderr) == (0, "")


def test_request_errors_are_counted_by_code(isolated: Path) -> None:
    # openai has no key here: its items fail before anything is sent (no network).
    job = write_job(isolated, {"targets": ["echo/echo", "openai/gpt-4o-mini"], "prompts": ["hi", "there"],
                               "output": "out.db"})
    done = hanzo(job)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-2:] == [
        f"run 1: 4 answered, 2 ok, 2 request errors (API_KEY_REQUIRED 2); results in {isolated / 'out.db'}",
        f"hanzo-run: run 1 failed: 2 of 4 requests failed (API_KEY_REQUIRED 2); results in {isolated / 'out.db'}"]
    quiet = hanzo(job, "-q", "--fail-under", "0.75")
    assert quiet.stderr.splitlines() == [
        f"hanzo-run: run 2 failed: 2 of 4 requests failed (API_KEY_REQUIRED 2; ok rate 50.0% under --fail-under "
        f"0.75); results in {isolated / 'out.db'}"]
    assert hanzo(job, "-q", "--fail-under", "0.5").returncode == 0


def test_json_carries_the_same_figures(isolated: Path) -> None:
    done = hanzo(nightly(isolated), "--json", "--fail-under", "0.9")
    assert done.returncode == 1
    got = json.loads(done.stdout)
    assert {k: got[k] for k in ("items", "ok", "failed", "checked", "passed", "answers_failing_checks", "pass_rate",
                                "ok_rate", "fail_under", "request_errors", "checks_failed")} == {
        "items": 40, "ok": 40, "failed": 0, "checked": True, "passed": 23, "answers_failing_checks": 17,
        "pass_rate": 0.575, "ok_rate": 1.0, "fail_under": 0.9, "request_errors": {},
        "checks_failed": {"contains": 17}}
    assert got["checks_failed_by_target"] == {"echo/echo": {"contains": 17}}
    assert got["reason"].startswith("run 1 failed: 17 of 40 answers failed checks")
    assert done.stderr.splitlines() == [f"hanzo-run: {got['reason']}"]


# ---------------------------------------------------------------- find the database


def test_commands_find_the_database_from_a_job_or_alone(isolated: Path) -> None:
    job = nightly(isolated)
    hanzo(job, "-q")
    by_job = hanzo("report", job, "--json")
    assert by_job.returncode == 0, by_job.stderr
    assert json.loads(by_job.stdout)["run_id"] == 1
    alone = hanzo("runs", "--json")  # the one database a job here writes
    assert [r["id"] for r in json.loads(alone.stdout)] == [1]
    assert json.loads(hanzo("runs", job, "--json").stdout) == json.loads(alone.stdout)

    (isolated / "jobs").mkdir()
    write_job(isolated / "jobs", {"targets": ["echo/echo"], "prompts": ["hi"], "output": "other.db"}, "other.yaml")
    assert hanzo(isolated / "jobs" / "other.yaml", "-q").returncode == 0
    several = hanzo("report")
    assert (several.returncode, several.stderr.strip()) == (
        2, "several results databases here: nightly.db, jobs/other.db; choose one with --db PATH or by naming "
           "the job file")
    missing = hanzo("show", "--db", "nope.db")
    assert (missing.returncode, missing.stderr.strip()) == (2, "no results database at nope.db")
    assert not (isolated / "nope.db").exists()


def test_report_help_points_only_at_files_jobs_write() -> None:
    for command in ("runs", "report", "show", "diff"):
        done = hanzo(command, "--help")
        assert done.returncode == 0
        assert "[default: hanzo-runs.db]" not in done.stdout
        assert f"hanzo-run {command}" in done.stdout.split("Example:")[1]


# ---------------------------------------------------------------- show answers


def test_show_failed_items_with_reasons(isolated: Path) -> None:
    hanzo(nightly(isolated), "-q")
    done = hanzo("show", "--failed", "--json")
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)
    assert [i["row_index"] for i in items] == list(range(23, 40))
    first = items[0]
    assert (first["prompt"], first["response_text"], first["status"], first["passed"]) == (
        "item 23 says no", "item 23 says no", "ok", 0)
    assert first["failed_checks"] == [{"check": "contains", "reason": "answer does not contain 'yes'"}]
    assert first["latency_ms"] is not None and first["input_tokens"] == 4 and first["cost_usd"] == 0.0

    one = hanzo("show", "1", "--item", first["item_key"][:10])
    assert one.returncode == 0, one.stderr
    assert "item 23 says no" in one.stdout and "✗ contains: answer does not contain 'yes'" in one.stdout
    assert "item 22 says yes" not in one.stdout
    rows = list(csv.DictReader(io.StringIO(hanzo("show", "--target", "echo/echo", "--csv").stdout)))
    assert len(rows) == 40 and rows[39]["failed_checks"] == json.dumps(first["failed_checks"])
    unknown = hanzo("show", "--target", "openai/x")
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "show: run 1 has no target 'openai/x'; its targets: "
                                                               "echo/echo")


def test_report_items_exports_every_item(isolated: Path) -> None:
    job = nightly(isolated)
    hanzo(job, "-q")
    items = json.loads(hanzo("report", job, "--items", "--json").stdout)
    assert len(items) == 40 and items == json.loads(hanzo("show", "--json").stdout)
    rows = list(csv.DictReader(io.StringIO(hanzo("report", "1", "--items", "--csv").stdout)))
    assert [r["row_index"] for r in rows] == [str(n) for n in range(40)]
    assert {r["prompt"] for r in rows} == {f"item {n} says {'yes' if n < 23 else 'no'}" for n in range(40)}


# ---------------------------------------------------------------- diff


def test_diff_lists_exactly_the_items_that_changed(isolated: Path) -> None:
    job = nightly(isolated)
    hanzo(job, "-q")
    nightly(isolated, changed=(2, 5), fixed=(30,))  # the job's data changes between runs
    hanzo(job, "-q")
    done = hanzo("diff", "1", "2", "--json")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [  # edited rows are matched by their position (issue 17 item 6)
        "hanzo-run: diff: data rows changed between run 1 and run 2: 3 edited, 0 added, 0 removed, 0 moved; "
        "items are matched by the row's content, an edited row by its position",
        "hanzo-run: run 2 regressed against run 1: 2 items went from pass to fail"]
    got = json.loads(done.stdout)
    [target] = got["targets"]
    assert [(c["change"], c["row_index"]) for c in target["changes"]] == [
        ("pass_to_fail", 2), ("pass_to_fail", 5), ("fail_to_pass", 30)]
    assert (target["changes"][0]["a"]["answer"], target["changes"][0]["b"]["answer"]) == (
        "item 2 says yes", "item 2 says no")
    assert got["totals"]["unchanged"] == 37

    table = hanzo("diff", job)  # the job's latest run against the one before
    assert table.returncode == 1
    assert "run 1 → run 2" in table.stdout and "item 5 says yes" in table.stdout and "item 5 says no" in table.stdout
    better = hanzo("diff", "2", "1")
    assert (better.returncode, better.stderr.strip().splitlines()[-1]) == (  # the other way round, row 30 went
        1, "hanzo-run: run 1 regressed against run 2: 1 item went from pass to fail")  # pass -> fail
    same = hanzo("diff", "1", "1")
    assert (same.returncode, same.stderr) == (0, "")


def test_diff_of_fake_server_runs_finds_answers_that_changed_or_errored(
        fake: FakeServer, fake_providers: Path, keys: dict[str, str], isolated: Path) -> None:
    def job(words: dict[int, str]) -> Path:
        return write_job(isolated, {
            "name": "fake", "targets": ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"], "stream": False,
            "prompts": ["item {{n}} says {{w}}"], "data": [{"n": n, "w": words.get(n, "yes")} for n in range(6)],
            "checks": [{"contains": "yes"}], "output": "fake.db"})

    assert hanzo(job({}), "--providers-dir", fake_providers, "-q").returncode == 0
    # A server error on every try of the first item (a bad key would stop the whole provider).
    fake.add_fault("500", flavor="anthropic", model="claude-haiku-4-5", times=3)
    second = hanzo(job({1: "no", 4: "no"}), "--providers-dir", fake_providers, "-q", "--concurrency", "1")
    assert second.returncode == 1
    done = hanzo("diff", "--json")
    assert done.returncode == 1
    changes = {t["target"]: [(c["change"], c["row_index"]) for c in t["changes"]] for t in json.loads(done.stdout)
               ["targets"]}
    assert changes["openai/gpt-4o-mini"] == [("pass_to_fail", 1), ("pass_to_fail", 4)]
    # the first anthropic item got the fault: ok -> error, and rows 1 and 4 changed like openai's
    errored = [row for change, row in changes["anthropic/claude-haiku-4-5"] if change == "ok_to_error"]
    assert len(errored) == 1
    assert sorted(row for change, row in changes["anthropic/claude-haiku-4-5"] if change == "pass_to_fail") == [
        r for r in (1, 4) if r not in errored]


def test_diff_refuses_unrelated_runs_unless_forced(isolated: Path) -> None:
    hanzo(nightly(isolated), "-q")
    other = write_job(isolated, {"name": "other", "targets": ["echo/echo"], "prompts": ["hi"],
                                 "output": "nightly.db"}, "other.yaml")
    hanzo(other, "-q")
    done = hanzo("diff", "1", "2", "--db", "nightly.db")
    assert (done.returncode, done.stderr.strip()) == (2, (
        "diff: run 1 (job nightly) and run 2 (job other) are different jobs with different targets or prompts, so "
        "their items do not match; pass --force to compare them anyway"))
    forced = hanzo("diff", "1", "2", "--db", "nightly.db", "--force", "--json")
    assert forced.returncode == 1  # nothing matched: every item of run 1 lacks a result in run 2 (issue 17 item 7)
    assert forced.stderr.strip().splitlines()[-1] == (
        "hanzo-run: run 2 regressed against run 1: 40 items of run 1 have no result in run 2")
    assert json.loads(forced.stdout)["totals"]["only_in_a"] == 40
    lonely = hanzo("diff", "--db", "nightly.db")
    assert lonely.returncode == 2 and "is the only run of its job" in lonely.stderr


# ---------------------------------------------------------------- progress


def test_the_engine_reports_every_written_row(isolated: Path) -> None:
    from runner import run_job
    from runner.engine.scheduler import Progress
    from runner.store.records import ResultRow

    class Seen(Progress):
        def __init__(self) -> None:
            self.total: int | None = None
            self.counts = [0, 0]
            self.rows: list[ResultRow] = []

        def start(self, total: int | None) -> None:
            self.total = total

        def advance(self, ok: int, failed: int) -> None:  # the old interface still works
            self.counts[0] += ok
            self.counts[1] += failed

        def written(self, rows: Any) -> None:
            self.rows.extend(rows)

    seen = Seen()
    run_job(nightly(isolated), progress=seen)
    assert (seen.total, seen.counts, len(seen.rows)) == (40, [40, 0], 40)
    assert sum(r.passed or 0 for r in seen.rows) == 23 and {r.target for r in seen.rows} == {"echo/echo"}


def test_progress_shows_counts_pass_rate_rate_and_cost() -> None:
    from rich.console import Console

    from runner.cli.output import BarProgress
    from runner.store.records import ResultRow

    def row(target: str, status: str = "ok", passed: int | None = 1, cost: float | None = 0.001) -> ResultRow:
        values: dict[str, Any] = dict.fromkeys(ResultRow._fields)
        values.update(target=target, status=status, passed=passed, cost_usd=cost)
        return ResultRow(**values)

    progress = BarProgress()
    out = io.StringIO()
    progress.bar.live.console = Console(file=out, force_terminal=True, width=160, color_system=None)
    progress.start(100)
    progress.written([row("openai/a"), row("openai/a", passed=0), row("local/b", cost=None),
                      row("local/b", "error", None, None)])
    progress.bar.refresh()
    progress.close()
    lines = [line.strip() for line in out.getvalue().replace("\r", "\n").split("\n")]
    overall = [line for line in lines if "running" in line][-1]  # the last refresh
    assert "4/100" in overall and "pass 50.0%" in overall and "1 error" in overall and "req/s" in overall
    assert "$0.0020 + unpriced" in overall and "ETA" in overall
    assert any("openai/a" in line and "2 done" in line and "0 errors" in line and "$0.0020" in line
               for line in lines)
    assert any("local/b" in line and "1 error" in line and "unpriced" in line for line in lines)


def test_no_progress_without_a_terminal(isolated: Path) -> None:
    done = hanzo(nightly(isolated, fixed=tuple(range(ROWS))))
    assert done.returncode == 0
    assert "running" not in done.stderr and "req/s" not in done.stderr


# ---------------------------------------------------------------- the formats registry


def test_one_registry_of_formats() -> None:
    from runner.reports.formats import FORMATS

    assert list(FORMATS) == ["table", "json", "csv", "junit", "items-table", "items-json", "items-csv"]


@pytest.mark.parametrize("flags", [["--json"], ["--csv"], []], ids=["json", "csv", "table"])
def test_report_writes_through_the_registry(fixed_runs: Path, flags: list[str]) -> None:
    import sqlite_utils

    from runner.reports.formats import FORMATS

    done = hanzo("report", "1", "--db", fixed_runs, *flags)
    out = io.StringIO()
    db = sqlite_utils.Database(fixed_runs)
    FORMATS[{"--json": "json", "--csv": "csv"}[flags[0]] if flags else "table"].write(db, 1, out)
    db.close()
    assert done.stdout == out.getvalue()


def test_readme_names_only_databases_that_jobs_write() -> None:
    from tests.conftest import REPO

    outputs = {"jobs/" + yaml.safe_load(p.read_text())["output"] for p in (REPO / "jobs").glob("*.yaml")}
    readme = (REPO / "README.md").read_text()
    import re

    named = set(re.findall(r"\bjobs/[\w.-]+\.db\b", readme))
    assert named and named <= outputs, named - outputs
