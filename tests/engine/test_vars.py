"""Issue 19.1: each result stores its data row's variables (``results.vars``), whichever way it was answered:
sent one by one, taken from the response cache, sent in a provider batch, or graded again by rescore."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from runner import run_job
from runner.config.jobs import Prompt, Target, WorkItem
from runner.engine.rows import VALUE_KEPT, VALUE_LIMIT, stored_vars
from tests.conftest import dict_rows, hanzo, write_job
from tests.fakes import FakeServer

ROWS = [{"country": "India", "capital": "New Delhi"}, {"country": "France", "capital": "Paris"}]


def capital_job(folder: Path, **extra: Any) -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"],
                              "prompts": [{"id": "capital", "text": "capital of {{country}}"}],
                              "data": ROWS, "checks": [{"contains": "{{country}}"}], "output": "out.db", **extra})


def stored(db: Path, run_id: int) -> list[dict[str, Any]]:
    return [{**r, "vars": json.loads(r["vars"])} for r in dict_rows(
        db, "SELECT row_index, vars, cached, via, status FROM results WHERE run_id = ? ORDER BY row_index", run_id)]


def test_sent_and_cached_answers_store_the_rows_variables(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                          fake_providers: Path) -> None:
    job = capital_job(isolated, cache=True)
    for _ in range(2):
        assert run_job(job, providers_dirs=(str(fake_providers),)).status == "completed"
    sent, cached = stored(isolated / "out.db", 1), stored(isolated / "out.db", 2)
    assert [r["vars"] for r in sent] == [r["vars"] for r in cached] == ROWS
    assert [r["cached"] for r in sent] == [0, 0] and [r["cached"] for r in cached] == [1, 1]
    assert list(sent[0]["vars"]) == ["country", "capital"]  # the data's column order


def test_batch_answers_store_the_rows_variables(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                fake_providers: Path) -> None:
    job = capital_job(isolated, batch=True)
    assert run_job(job, providers_dirs=(str(fake_providers),), poll_interval=0.01).status == "completed"
    got = stored(isolated / "out.db", 1)
    assert [r["via"] for r in got] == ["batch", "batch"] and [r["vars"] for r in got] == ROWS


def test_failed_requests_store_the_rows_variables(fake: FakeServer, keys: dict[str, str], isolated: Path,
                                                  fake_providers: Path) -> None:
    fake.add_fault("500", flavor="openai", times=100)  # every try of every item
    run_job(capital_job(isolated), providers_dirs=(str(fake_providers),))
    got = stored(isolated / "out.db", 1)
    assert [r["status"] for r in got] == ["error", "error"] and [r["vars"] for r in got] == ROWS


def test_rescore_carries_the_variables_and_fills_them_for_older_runs(fake: FakeServer, keys: dict[str, str],
                                                                     isolated: Path, fake_providers: Path) -> None:
    job = capital_job(isolated)
    assert run_job(job, providers_dirs=(str(fake_providers),)).status == "completed"
    assert hanzo("rescore", "latest", job, "--providers-dir", fake_providers).returncode == 0
    conn = sqlite3.connect(isolated / "out.db")
    with conn:
        conn.execute("UPDATE results SET vars = NULL WHERE run_id = 1")  # as a hanzo-run before vars wrote it
    conn.close()
    assert hanzo("rescore", "1", job, "--providers-dir", fake_providers).returncode == 0
    assert [r["vars"] for r in stored(isolated / "out.db", 2)] == ROWS
    assert [r["vars"] for r in stored(isolated / "out.db", 3)] == ROWS  # the rows they were graded against


def item(row: dict[str, Any], row_index: int | None = 0) -> WorkItem:
    target = Target("openai", "gpt-4o-mini", {}, "openai/gpt-4o-mini")
    return WorkItem(target, Prompt("p", ()), row_index, 0, (), "key", row)


def test_stored_variables_keep_paths_and_text_but_never_bytes() -> None:
    picture = "data:image/png;base64," + "A" * 30_000
    document = "word " * 5_000
    got = json.loads(stored_vars(item({"image": "images/cat.png", "inline": picture, "doc": document, "n": 3,
                                       "tags": ["a", picture], "none": None})) or "")
    assert got == {"image": "images/cat.png", "inline": "data:image/png URL, 30,022 characters", "n": 3,
                   "doc": document[:VALUE_KEPT] + f"… [{len(document):,} characters]",
                   "tags": ["a", "data:image/png URL, 30,022 characters"], "none": None}
    assert len(document) > VALUE_LIMIT
    assert stored_vars(item({}, None)) is None  # a job without data
    assert json.loads(stored_vars(item({"x": "\ud800"})) or "") == {"x": "\ufffd"}  # SQLite cannot store it
