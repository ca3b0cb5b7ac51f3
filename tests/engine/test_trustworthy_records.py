"""Issue 10: every row says exactly what the provider did, and no run goes where it was not sent."""

from __future__ import annotations

import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.engine.test_reliability import job_of, query, start, wait_for_results
from tests.fakes import FakeServer


def two_models(folder: Path, repeat: int = 5) -> Path:
    return write_job(folder, {"name": "pair", "targets": ["openai/gpt-4o-mini", "openai/gpt-4o"],
                              "prompts": ["x"], "repeat": repeat, "output": "runs.db"})


def as_interrupted_with_no_rows(db: Path) -> None:
    """A run stopped before any item had its row (what a Ctrl-C at once leaves)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET status = 'interrupted'")
        conn.execute("DELETE FROM results")
        conn.execute("DELETE FROM attempts")
    conn.close()


# ---------------------------------------------------------------- 5: completed only with every item's row


@pytest.mark.parametrize("narrower", [["--only", "openai/gpt-4o-mini"], ["--limit", "2"]], ids=["only", "limit"])
def test_a_narrower_resume_leaves_the_run_resumable(narrower: list[str], fake_providers: Path,
                                                    keys: dict[str, str], isolated: Path) -> None:
    job = two_models(isolated)
    db = isolated / "runs.db"
    assert hanzo(job, "--providers-dir", fake_providers, "--quiet").returncode == 0
    as_interrupted_with_no_rows(db)

    part = hanzo(job, "--providers-dir", fake_providers, "--resume", *narrower, "--quiet")
    sent = query(db, "SELECT count(*) FROM results")[0][0]
    assert sent in (5, 4)
    assert part.returncode == 1, part.stderr
    assert query(db, "SELECT status FROM runs") == [("interrupted",)]
    assert (f"run 1 is not finished: {10 - sent} of its items have no result yet (not selected by this --only "
            "or --limit)") in part.stderr
    assert f"resume with: hanzo-run {job} --resume 1 --providers-dir {fake_providers}\n" in part.stderr

    rest = hanzo(job, "--providers-dir", fake_providers, "--resume", "--quiet")  # finds the run again
    assert rest.returncode == 0, rest.stderr
    assert query(db, "SELECT status, items_ok FROM runs") == [("completed", 10)]
    assert query(db, "SELECT count(*), count(DISTINCT item_key) FROM results") == [(10, 10)]


# ---------------------------------------------------------------- 6: attempt numbers continue


def test_attempt_numbers_continue_after_retry_errors(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                                     isolated: Path) -> None:
    job = job_of(isolated, 3)
    db = isolated / "runs.db"
    fake.add_fault("500", flavor="openai", times=9)  # 3 items x (1 + 2 retries)
    assert hanzo(job, "--providers-dir", fake_providers, "--quiet").returncode == 1
    assert query(db, "SELECT DISTINCT error_code, attempts FROM results") == [("MAX_RETRIES_EXCEEDED", 3)]
    fake.clear()
    again = hanzo(job, "--providers-dir", fake_providers, "--retry-errors", "--quiet")
    assert again.returncode == 0, again.stderr
    assert query(db, "SELECT DISTINCT status, attempts FROM results") == [("ok", 4)]
    numbers = query(db, "SELECT item_key, group_concat(attempt, ',') FROM (SELECT * FROM attempts ORDER BY attempt)"
                        " GROUP BY item_key")
    assert [n for _, n in numbers] == ["1,2,3,4"] * 3
    assert query(db, "SELECT count(*) FROM results r WHERE attempts != (SELECT count(*) FROM attempts a"
                     " WHERE a.item_key = r.item_key)") == [(0,)]


# ---------------------------------------------------------------- 7: unknown tokens, estimated costs


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("│")]


def test_unknown_tokens_show_as_unknown_and_a_free_model_costs_nothing(fake: FakeServer, tmp_path: Path,
                                                                       keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "openai")
    data["models"]["known"] = [{"id": "free", "pricing": {"input": 0, "output": 0}}]
    providers = write_providers(tmp_path / "p", {"openai": data})
    job = write_job(isolated, {"targets": ["openai/free"], "prompts": ["x"], "repeat": 3})
    fake.add_fault("no_usage", flavor="openai", times=2)
    done = hanzo(job, "--providers-dir", providers)
    assert done.returncode == 0, done.stderr
    [row] = [line for line in done.stdout.splitlines() if "openai/free" in line]
    # 1 of 3 answers reported 1 input and 3 output tokens; 2 reported none: totals with unknown parts.
    assert cells(row)[-3:] == ["1 + ?", "3 + ?", "0.0000"]
    report = hanzo("report", "--db", isolated / "hanzo-runs.db")
    [line] = [line for line in report.stdout.splitlines() if "openai/free" in line]
    assert cells(line)[-4:] == ["1 + ?", "3 + ?", "0.0000", "0.0000"]

    fake.add_fault("no_usage", flavor="openai", times=3)
    none = hanzo(job, "--providers-dir", providers)
    [row] = [line for line in none.stdout.splitlines() if "openai/free" in line]
    assert cells(row)[-3:] == ["?", "?", "0.0000"]


def test_budget_settles_unknown_usage_at_an_estimate(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                     isolated: Path) -> None:
    data = point_at(fake, "openai")
    data["limits"]["concurrency"] = 1
    data["models"]["known"] = [{"id": "priced", "pricing": {"input": 1000.0, "output": 1000.0}}]
    providers = write_providers(tmp_path / "p", {"openai": data})
    # Worst case (4 input estimate + 10 max_tokens) at $1000/1M = $0.014. No usage comes back, so the
    # estimate is 4 input + len("priced says: x") / 4 = 4 output tokens: $0.008 an item.
    job = write_job(isolated, {"targets": ["openai/priced"], "prompts": ["x"], "repeat": 10,
                               "params": {"max_tokens": 10}, "budget_usd": 0.05})
    fake.add_fault("no_usage", flavor="openai", times=100)
    done = hanzo(job, "--providers-dir", providers)
    assert done.returncode == 1
    rows = query(isolated / "hanzo-runs.db", "SELECT status, cost_usd, price_source, input_tokens FROM results"
                                              " WHERE status = 'ok'")
    assert len(rows) == 5  # spent 0.032 + 0.014 fits 0.05; 0.040 + 0.014 does not (kept reservations: 3)
    assert [(round(r[1], 9), r[2], r[3]) for r in rows] == [(0.008, "estimated", None)] * 5


# ---------------------------------------------------------------- 8: a provider that cannot work


def test_a_bad_key_stops_its_provider_and_not_the_others(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                         isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"requests": 100_000, "window": 1, "concurrency": 16}
    providers = write_providers(tmp_path / "p", {"openai": point_at(fake, "openai", limits=limits),
                                                 "anthropic": point_at(fake, "anthropic", limits=limits)})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0000")
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini", "anthropic/claude-haiku"], "prompts": ["x"],
                               "repeat": 200, "concurrency": 32})
    done = hanzo(job, "--providers-dir", providers, "--quiet")
    assert done.returncode == 1
    assert fake.count("openai") <= 16 + 2
    db = isolated / "hanzo-runs.db"
    assert query(db, "SELECT provider, status, error_code, count(*) FROM results GROUP BY 1, 2, 3") == [
        ("anthropic", "ok", None, 200), ("openai", "error", "INVALID_API_KEY", 200)]
    [(message,)] = query(db, "SELECT DISTINCT error_message FROM results WHERE attempts = 0")
    assert message.startswith("not sent: an earlier request to openai failed with INVALID_API_KEY: ")
    assert "sk-wrong" not in message.replace("sk-***", "")  # the key itself is never recorded

    # Not-sent rows are error rows: --retry-errors sends them once the key is right.
    monkeypatch.setenv("OPENAI_API_KEY", keys["openai"])
    again = hanzo(job, "--providers-dir", providers, "--retry-errors", "--quiet")
    assert again.returncode == 0, again.stderr
    assert query(db, "SELECT status, count(*) FROM results GROUP BY 1") == [("ok", 400)]


def test_an_exhausted_quota_stops_its_provider(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                               isolated: Path) -> None:
    job = job_of(isolated, 50)
    fake.add_fault("quota", flavor="openai", times=10_000)
    assert hanzo(job, "--providers-dir", fake_providers, "--quiet").returncode == 1
    assert fake.count("openai") <= 8 + 2
    assert query(isolated / "runs.db", "SELECT error_code, count(*) FROM results GROUP BY 1") == [
        ("QUOTA_EXHAUSTED", 50)]


def test_an_unreachable_host_costs_one_items_retries(fake: FakeServer, tmp_path: Path, keys: dict[str, str],
                                                     isolated: Path, closed_port: int) -> None:
    dead = point_at(fake, "openai", base_url=f"http://127.0.0.1:{closed_port}/v1")
    dead["retry"] = {"max_retries": 2, "initial_delay": 1, "max_delay": 1, "multiplier": 2, "max_elapsed": 30}
    providers = write_providers(tmp_path / "p", {"openai": dead})  # one item's retries: at most 2 s of waits
    job = job_of(isolated, 50)
    began = time.monotonic()
    done = hanzo(job, "--providers-dir", providers, "--quiet")
    assert time.monotonic() - began < 2 + 4
    assert done.returncode == 1
    codes = dict(query(isolated / "runs.db", "SELECT error_code, count(*) FROM results GROUP BY 1"))
    assert sum(codes.values()) == 50 and set(codes) <= {"MAX_RETRIES_EXCEEDED", "CONNECTION_FAILED"}
    assert codes["CONNECTION_FAILED"] >= 50 - 8
    [(message,)] = query(isolated / "runs.db", "SELECT DISTINCT error_message FROM results WHERE attempts = 0")
    assert message.startswith("not sent: an earlier request to openai failed with CONNECTION_FAILED after 3 "
                              "attempts: ")


# ---------------------------------------------------------------- 9: a resumed run goes to the same servers


def test_a_resume_goes_where_the_run_went(fake: FakeServer, tmp_path: Path, keys: dict[str, str], isolated: Path,
                                          closed_port: int) -> None:
    limits = {"requests": 40, "window": 1, "concurrency": 4}
    paced = write_providers(tmp_path / "my proxy", {"openai": point_at(fake, "openai", limits=limits)})
    job = job_of(isolated, 200)
    db = isolated / "runs.db"
    proc = start(job, "--providers-dir", paced, "--db", db)
    wait_for_results(db, 10)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    hint = err.split("resume with: ")[1].splitlines()[0]
    assert hint == f"hanzo-run {job} --resume 1 --providers-dir '{paced}' --db {db}"

    elsewhere = write_providers(tmp_path / "other", {"openai": point_at(
        fake, "openai", base_url=f"http://127.0.0.1:{closed_port}/v1")})
    refused = hanzo(job, "--providers-dir", elsewhere, "--db", db, "--resume")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"--resume: run 1 would now send its requests elsewhere: openai base_url was {fake.base_url('openai')}, "
        f"now http://127.0.0.1:{closed_port}/v1. Pass the same --providers-dir (and keys) as when it started, "
        "or --force to send them to the new place anyway")

    followed = subprocess.run([sys.executable, "-m", "runner", *shlex.split(hint)[1:], "--quiet"],
                              capture_output=True, text=True, timeout=60)
    assert followed.returncode == 0, followed.stderr
    assert query(db, "SELECT status, items_ok FROM runs") == [("completed", 200)]
    # Every request of both parts reached the server the run was started with.
    assert fake.count("openai") == query(db, "SELECT count(*) FROM attempts")[0][0] == 200


# ---------------------------------------------------------------- 10: reported costs count under a budget


def test_reported_costs_stop_unpriced_items_at_the_budget(fake: FakeServer, fake_providers: Path,
                                                          keys: dict[str, str], isolated: Path) -> None:
    data = point_at(fake, "openrouter")
    data["limits"]["concurrency"] = 1
    providers = write_providers(isolated.parent / "or", {"openrouter": data})
    # Each answer: 1 input + 3 output tokens, reported as usage.cost = $0.000007.
    job = write_job(isolated, {"targets": ["openrouter/some/model"], "prompts": ["x"], "repeat": 10})
    done = hanzo(job, "--providers-dir", providers, "--max-cost", "0.00002", "--allow-unpriced")
    assert done.returncode == 1
    rows = query(isolated / "hanzo-runs.db", "SELECT status, error_code, cost_usd, error_message FROM results")
    ok = [r for r in rows if r[0] == "ok"]
    assert len(ok) == 3 and sum(r[2] for r in ok) == pytest.approx(0.000021)
    assert {(r[1], r[3]) for r in rows if r[0] != "ok"} == {
        ("BUDGET_EXCEEDED", "not sent: $0.000021 already spent reaches the budget of $2e-05")}
    assert fake.count("openrouter") == 3


# ---------------------------------------------------------------- 12: kill -9 re-buys nothing


def test_sigkill_loses_no_finished_answer(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                          isolated: Path) -> None:
    items, concurrency = 3000, 8
    job = job_of(isolated, items)
    db = isolated / "runs.db"
    fake.latency = 0.008  # 8 at a time: ~1,000 answers a second
    proc = start(job, "--providers-dir", fake_providers, "--quiet")
    wait_for_results(db, 1)
    time.sleep(random.uniform(0.2, 2.0))
    proc.kill()
    proc.communicate(timeout=10)
    fake.latency = 0.0
    done = hanzo(job, "--providers-dir", fake_providers, "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT count(*), count(DISTINCT item_key), sum(status = 'ok') FROM results") == [
        (items, items, items)]
    assert fake.count("openai") <= items + 2 * concurrency


# ---------------------------------------------------------------- 14: an output path that cannot be the database


@pytest.mark.parametrize("case", ["folder", "not sqlite", "folder is a file"])
def test_an_unusable_output_path_is_a_usage_error(case: str, fake: FakeServer, fake_providers: Path,
                                                  keys: dict[str, str], isolated: Path) -> None:
    reasons: dict[str, Any] = {
        "folder": (isolated / "out", "it is a folder; set output: in the job or --db to a file path"),
        "not sqlite": (isolated / "notes.txt", "it is not a SQLite database; set output: in the job or --db to a "
                                               "new file or a hanzo-run database"),
        "folder is a file": (isolated / "notes.txt" / "r.db", f"{isolated / 'notes.txt'} is a file, not a folder; "
                                                             "set output: in the job or --db to a file path"),
    }
    (isolated / "out").mkdir()
    (isolated / "notes.txt").write_text("not a database\n")
    path, reason = reasons[case]
    job = job_of(isolated, 3, output=str(path))
    done = hanzo(job, "--providers-dir", fake_providers)
    assert (done.returncode, done.stderr.strip()) == (2, f"hanzo-run: cannot use {path} as the results "
                                                         f"database: {reason}")
    assert fake.count() == 0


# ---------------------------------------------------------------- a lone surrogate in an answer


def test_an_answer_with_a_lone_surrogate_is_stored(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                                   isolated: Path) -> None:
    job = job_of(isolated, 3)
    fake.add_fault("surrogate", flavor="openai", times=1)
    done = hanzo(job, "--providers-dir", fake_providers, "--quiet")
    assert done.returncode == 0, done.stderr
    texts = [t for (t,) in query(isolated / "runs.db", "SELECT response_text FROM results")]
    assert len(texts) == 3
    assert sum(t.endswith("\ufffd") for t in texts) == 1
