"""Merging the results databases of a job's shards (runner/store/merge.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from runner.errors import UsageError
from runner.store.database import RunStore, open_db
from runner.store.merge import MergeError, merge_databases
from runner.store.records import AttemptRow, ResultRow


def result(run_id: int, key: str, status: str, cost: float | None) -> ResultRow:
    row: dict[str, Any] = dict.fromkeys(ResultRow._fields)
    row.update(run_id=run_id, item_key=key, target="openai/gpt-4o-mini", provider="openai", model="gpt-4o-mini",
               status=status, attempts=1, cost_usd=cost, repeat_index=0, response_text=f"answer {key}")
    return ResultRow(**row)


def attempt(run_id: int, key: str, n: int) -> AttemptRow:
    row: dict[str, Any] = dict.fromkeys(AttemptRow._fields)
    row.update(run_id=run_id, item_key=key, attempt=n, started_at=f"2026-01-01T00:00:0{n}Z", http_status=200)
    return AttemptRow(**row)


def shard(path: Path, index: int, keys: dict[str, str], *, status: str = "completed", job: str = "j",
          job_hash: str = "h1", started: str = "2026-01-01T10:00:00.000Z",
          finished: str = "2026-01-01T11:00:00.000Z") -> Path:
    """A results database with one run of shard ``index``/3: item key -> result status."""
    db = open_db(path)
    store = RunStore.start(db, job_name=job, job_path=f"/machine{index}/{job}.yaml", job_hash=job_hash,
                           items_total=len(keys), version="0.9", pid=100 + index,
                           options=json.dumps({"concurrency": 4, "shard": f"{index}/3"}))
    store.write([result(store.run_id, k, s, 0.25 if s == "ok" else None) for k, s in keys.items()],
                [attempt(store.run_id, k, n) for k in keys for n in (1, 2)])
    store.finish(status)
    db["runs"].update(store.run_id, {"started_at": started, "finished_at": finished})
    db.close()
    return path


def rows(path: Path, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    db = sqlite_utils.Database(path)
    try:
        return list(db.query(sql, params))
    finally:
        db.close()


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    return [
        shard(tmp_path / "s0.db", 0, {"a": "ok", "b": "ok"}, started="2026-01-01T10:05:00.000Z"),
        shard(tmp_path / "s1.db", 1, {"c": "ok", "d": "error"}, started="2026-01-01T09:59:00.000Z",
              finished="2026-01-01T12:00:00.000Z"),
        shard(tmp_path / "s2.db", 2, {"e": "ok"}),
    ]


def test_shards_of_one_job_become_one_run(tmp_path: Path, shards: list[Path]) -> None:
    out = tmp_path / "merged.db"
    summary = merge_databases(out, shards)
    assert summary.source_runs == 3 and summary.results == 5 and summary.attempts == 10
    assert len(summary.run_ids) == 1 and summary.statuses == {summary.run_ids[0]: "completed"}
    (run,) = rows(out, "SELECT * FROM runs")
    assert run["id"] == summary.run_ids[0] and run["job_name"] == "j" and run["job_hash"] == "h1"
    assert (run["status"], run["items_total"], run["items_ok"], run["items_failed"], run["cost_usd"]) == (
        "completed", 5, 4, 1, 1.0)
    assert run["started_at"] == "2026-01-01T09:59:00.000Z" and run["finished_at"] == "2026-01-01T12:00:00.000Z"
    options = json.loads(run["options"])
    assert options["concurrency"] == 4 and "shard" not in options
    assert options["shards"] == ["0/3", "1/3", "2/3"]
    assert [(m["shard"], m["run_id"], m["status"]) for m in options["merged_from"]] == [
        ("0/3", 1, "completed"), ("1/3", 1, "completed"), ("2/3", 1, "completed")]
    results = rows(out, "SELECT run_id, item_key, status, response_text FROM results ORDER BY item_key")
    assert [(r["item_key"], r["status"]) for r in results] == [
        ("a", "ok"), ("b", "ok"), ("c", "ok"), ("d", "error"), ("e", "ok")]
    assert {r["run_id"] for r in results} == {run["id"]} and results[0]["response_text"] == "answer a"
    attempts = rows(out, "SELECT run_id, item_key, attempt FROM attempts")
    assert len(attempts) == 10 and {a["run_id"] for a in attempts} == {run["id"]}
    # the merged database is a normal results database: the report's view reads it
    (summary_row,) = rows(out, "SELECT items, ok, errors FROM target_summary")
    assert (summary_row["items"], summary_row["ok"], summary_row["errors"]) == (5, 4, 1)


@pytest.mark.parametrize(("statuses", "merged"), [
    (("completed", "interrupted", "completed"), "interrupted"),
    (("running", "failed", "interrupted"), "failed"),
    (("completed", "running", "completed"), "running"),
])
def test_merged_run_completed_only_if_every_shard_was(tmp_path: Path, statuses: tuple[str, ...],
                                                      merged: str) -> None:
    sources = [shard(tmp_path / f"s{i}.db", i, {f"k{i}": "ok"}, status=s) for i, s in enumerate(statuses)]
    summary = merge_databases(tmp_path / "out.db", sources)
    assert list(summary.statuses.values()) == [merged]
    assert rows(tmp_path / "out.db", "SELECT status FROM runs") == [{"status": merged}]


def test_different_jobs_are_refused_unless_allowed(tmp_path: Path) -> None:
    one = shard(tmp_path / "a.db", 0, {"a": "ok"}, job="alpha")
    other = shard(tmp_path / "b.db", 1, {"a": "ok"}, job="beta", job_hash="h2")
    same_name_other_content = shard(tmp_path / "c.db", 2, {"a": "ok"}, job="alpha", job_hash="h3")
    out = tmp_path / "out.db"
    with pytest.raises(MergeError) as refused:
        merge_databases(out, [one, other])
    assert "'alpha'" in str(refused.value) and "'beta'" in str(refused.value)
    assert isinstance(refused.value, UsageError) and not out.exists()
    with pytest.raises(MergeError, match="h3"):
        merge_databases(out, [one, same_name_other_content])
    summary = merge_databases(out, [one, other], allow_different_jobs=True)
    assert len(summary.run_ids) == 2
    merged = rows(out, "SELECT job_name, items_total FROM runs ORDER BY job_name")
    assert merged == [{"job_name": "alpha", "items_total": 1}, {"job_name": "beta", "items_total": 1}]
    with pytest.raises(MergeError, match="different jobs"):  # the output's own runs count too
        merge_databases(tmp_path / "out.db", [same_name_other_content])


def test_merging_again_changes_nothing(tmp_path: Path, shards: list[Path]) -> None:
    out = tmp_path / "out.db"
    merge_databases(out, shards)
    before = {t: rows(out, f"SELECT * FROM {t} ORDER BY id") for t in ("runs", "results", "attempts")}
    again = merge_databases(out, [*shards, shards[0]])  # every source again, one of them twice
    assert again.attempts == 0 and again.run_ids == (before["runs"][0]["id"],)
    after = {t: rows(out, f"SELECT * FROM {t} ORDER BY id") for t in ("runs", "results", "attempts")}
    assert after == before


def test_shards_merged_one_at_a_time_make_the_same_run(tmp_path: Path, shards: list[Path]) -> None:
    out = tmp_path / "out.db"
    first = merge_databases(out, shards[:1])
    assert first.missing_shards == {first.run_ids[0]: ["1/3", "2/3"]}  # not complete until every shard is in
    assert rows(out, "SELECT items_total, status FROM runs") == [{"items_total": 2, "status": "interrupted"}]
    late = shard(tmp_path / "late.db", 1, {"c": "ok"}, status="interrupted")
    merge_databases(out, [late])
    assert rows(out, "SELECT items_total, status FROM runs") == [{"items_total": 3, "status": "interrupted"}]
    merge_databases(out, shards[1:])  # shard 1 finished in another database
    (run,) = rows(out, "SELECT * FROM runs")
    assert (run["items_total"], run["items_ok"], run["items_failed"]) == (5, 4, 1)
    assert run["status"] == "interrupted"  # the interrupted source run is still part of it
    assert len(json.loads(run["options"])["merged_from"]) == 4


def test_an_ok_answer_is_not_replaced_by_a_failure(tmp_path: Path) -> None:
    good = shard(tmp_path / "good.db", 0, {"a": "ok", "b": "error"})
    retry = shard(tmp_path / "retry.db", 0, {"a": "error", "b": "ok"})
    out = tmp_path / "out.db"
    merge_databases(out, [good, retry])
    assert rows(out, "SELECT item_key, status FROM results ORDER BY item_key") == [
        {"item_key": "a", "status": "ok"}, {"item_key": "b", "status": "ok"}]
    assert rows(out, "SELECT items_ok, items_failed, cost_usd FROM runs") == [
        {"items_ok": 2, "items_failed": 0, "cost_usd": 0.5}]


def test_batches_rows_come_along_when_present(tmp_path: Path, shards: list[Path]) -> None:
    for i, path in enumerate(shards[:2]):
        db = sqlite_utils.Database(path)
        db["batches"].insert_all([{"id": 1, "run_id": 1, "target": "openai/m", "provider": "openai", "model": "m",
                                   "api": "openai", "tag": f"t{i}", "provider_batch_id": f"batch_{i}",
                                   "status": "completed", "request_count": 2,
                                   "created_at": "2025-01-01T00:00:00.000Z"}], pk="id")
        db.close()
    out = tmp_path / "out.db"
    summary = merge_databases(out, shards)
    assert summary.batches == 2
    assert rows(out, "SELECT run_id, provider_batch_id FROM batches ORDER BY provider_batch_id") == [
        {"run_id": summary.run_ids[0], "provider_batch_id": "batch_0"},
        {"run_id": summary.run_ids[0], "provider_batch_id": "batch_1"}]
    assert merge_databases(out, shards).batches == 0


def test_sources_are_only_read(tmp_path: Path, shards: list[Path]) -> None:
    before = [p.read_bytes() for p in shards]
    merge_databases(tmp_path / "out.db", shards)
    assert [p.read_bytes() for p in shards] == before


def test_bad_sources_are_refused(tmp_path: Path, shards: list[Path]) -> None:
    with pytest.raises(MergeError, match="no such results database"):
        merge_databases(tmp_path / "out.db", [tmp_path / "missing.db"])
    with pytest.raises(MergeError, match="is the output database"):
        merge_databases(shards[0], shards)
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["t"].insert({"x": 1})
    with pytest.raises(MergeError, match="not a hanzo-run results database"):
        merge_databases(tmp_path / "out.db", [other])
    with pytest.raises(MergeError, match="nothing to merge"):
        merge_databases(tmp_path / "out.db", [])
