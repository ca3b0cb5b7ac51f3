"""The results database: migrations, WAL, batched upserts, final counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.store.database import RunStore, migrations, open_db
from runner.store.records import AttemptRow, ResultRow


def result(run_id: int, key: str, status: str, cost: float | None = None) -> ResultRow:
    row: dict[str, Any] = dict.fromkeys(ResultRow._fields)
    row.update(run_id=run_id, item_key=key, target="echo/echo", provider="echo", model="echo", status=status,
               attempts=1, cost_usd=cost, repeat_index=0)
    return ResultRow(**row)


def attempt(run_id: int, key: str, n: int) -> AttemptRow:
    row: dict[str, Any] = dict.fromkeys(AttemptRow._fields)
    row.update(run_id=run_id, item_key=key, attempt=n, started_at="2026-01-01T00:00:00Z")
    return AttemptRow(**row)


def start(db_path: Path) -> RunStore:
    return RunStore.start(open_db(db_path), job_name="j", job_path="/j.yaml", job_hash="h", items_total=3,
                          version="0", pid=1, options="{}")


def test_migrations_apply_once_and_wal_is_on(tmp_path: Path) -> None:
    db = open_db(tmp_path / "r.db")
    assert migrations.pending(db) == []
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    again = open_db(tmp_path / "r.db")  # reopening applies nothing twice
    assert migrations.pending(again) == []
    assert {"runs", "results", "attempts"} <= set(again.table_names())


def test_results_are_upserted_by_item_key_and_counted(tmp_path: Path) -> None:
    store = start(tmp_path / "r.db")
    store.write([result(store.run_id, "a", "error"), result(store.run_id, "b", "ok", 0.5)],
                [attempt(store.run_id, "a", 1), attempt(store.run_id, "b", 1)])
    store.write([result(store.run_id, "a", "ok", 0.25)], [attempt(store.run_id, "a", 2)])  # a resumed item
    assert store.done_keys() == frozenset({"a", "b"})
    counts = store.finish("completed")
    # The run has 3 items and only 2 have a row: it is not completed, it stays resumable.
    assert counts == {"items": 2, "ok": 2, "failed": 0, "cost_usd": 0.75, "missing": 1}
    db = store.db
    assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 3
    assert db.execute("SELECT status, items_ok, cost_usd FROM runs").fetchone() == ("interrupted", 2, 0.75)
    store.write([result(store.run_id, "c", "ok", 0.25)], [attempt(store.run_id, "c", 1)])
    assert store.finish("completed")["missing"] == 0
    assert db.execute("SELECT status FROM runs").fetchone() == ("completed",)


def test_reopen_marks_the_run_running_again(tmp_path: Path) -> None:
    store = start(tmp_path / "r.db")
    store.finish("interrupted")
    again = RunStore.reopen(store.db, store.run_id)
    assert again.db.execute("SELECT status, finished_at FROM runs").fetchone() == ("running", None)
