"""Issue 17 item 11: merge takes one run per source, notices missing shards and merges idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from runner.store.merge import merge_databases
from tests.conftest import hanzo
from tests.store.test_merge import rows, shard


def test_one_run_per_source_the_latest_unless_asked(tmp_path: Path) -> None:
    nightly = [shard(tmp_path / f"s{i}.db", i, {f"k{i}": "ok"}) for i in range(3)]
    for i, path in enumerate(nightly):  # the next night, the same databases: a second run in each
        shard(path, i, {f"k{i}": "ok", f"new{i}": "error"})
    out = tmp_path / "out.db"
    summary = merge_databases(out, nightly)
    assert summary.source_runs == 3
    assert rows(out, "SELECT items_total, items_ok, items_failed FROM runs") == [
        {"items_total": 6, "items_ok": 3, "items_failed": 3}]
    assert {m["run_id"] for m in json.loads(rows(out, "SELECT options FROM runs")[0]["options"])["merged_from"]} \
        == {2}
    first_night = merge_databases(tmp_path / "first.db", nightly, runs=[1])
    assert first_night.items == {first_night.run_ids[0]: 3}


def test_a_missing_shard_leaves_the_merged_run_interrupted_and_named(tmp_path: Path) -> None:
    sources = [shard(tmp_path / f"s{i}.db", i, {f"k{i}": "ok"}) for i in (0, 2)]
    done = hanzo("merge", tmp_path / "out.db", *sources)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "out.db", "SELECT status FROM runs") == [{"status": "interrupted"}]
    assert done.stderr.strip() == (f"hanzo-run merge: run 1 is interrupted: shard 1/3 is missing; merge its "
                                   f"database into {tmp_path / 'out.db'} too")
    assert done.stdout.strip() == (f"merged 2 runs from 2 databases into {tmp_path / 'out.db'}: run 1 (interrupted, "
                                   "2 results); 2 results written, 4 attempts and 0 batches added")


def test_merging_again_after_the_batches_ended_adds_nothing(tmp_path: Path) -> None:
    sources = [shard(tmp_path / f"s{i}.db", i, {f"k{i}": "ok"}) for i in range(3)]
    for i, path in enumerate(sources):
        db = sqlite_utils.Database(path)
        db["batches"].insert({"id": 1, "run_id": 1, "target": "openai/m", "provider": "openai", "model": "m",
                              "api": "openai", "tag": f"t{i}", "provider_batch_id": f"batch_{i}",
                              "status": "running", "request_count": 1, "created_at": "2026-01-01T00:00:00.000Z"},
                             pk="id")
        db["batch_items"].insert({"batch": 1, "item_key": f"k{i}", "custom_id": f"c{i}"})
        db.close()
    out = tmp_path / "out.db"
    assert merge_databases(out, sources).batches == 3
    for path in sources:  # the batches ended and were collected since
        db = sqlite_utils.Database(path)
        db.execute("UPDATE batches SET status = 'completed', ended_at = '2026-01-02T00:00:00.000Z',"
                   " collected_at = '2026-01-02T00:00:01.000Z', ok_count = 1")
        db.conn.commit()
        db.close()
    again = merge_databases(out, sources)
    assert (again.batches, again.attempts) == (0, 0)
    assert rows(out, "SELECT count(*) AS n FROM batches") == [{"n": 3}]
    assert rows(out, "SELECT count(*) AS n FROM batch_items") == [{"n": 3}]
    assert rows(out, "SELECT count(*) AS n FROM results") == [{"n": 3}]
    assert rows(out, "SELECT DISTINCT status, collected_at FROM batches") == [
        {"status": "completed", "collected_at": "2026-01-02T00:00:01.000Z"}]
