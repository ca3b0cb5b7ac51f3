"""Merge the results databases of a job's shards into one (the core of ``hanzo-run merge``).

Each shard of a job writes its own results database. Merging them gives one database in which
the shards' runs of one job are ONE run: its results and attempts point at that run, its counts
come from the merged results rows, it is ``completed`` only if every shard run was and every
shard K/N of 0..N-1 is there, it started when the first shard started and finished when the
last one finished. One run is taken from each source: its latest, or the one asked for (a shard
database reused every night holds every night's run).

A job is known by its name and ``job_hash`` (by its name and ``job_path`` when a run has no hash):
shards run on other machines see the job file under other paths but with the same content.
Runs of different jobs are refused unless asked for; then each job gets its own merged run.

Merging is idempotent: the merged run keeps, in its ``options`` JSON, which source runs it was
made from (``merged_from``), so merging a source again updates it instead of counting it twice.
Results are upserted by ``(run_id, item_key)`` (an ok answer is never replaced by a failed one
for the same item), attempts already present are not copied again, and a batch already present
(known by its ``tag``) is updated in place, its items added once.
Sources are only read; columns a source lacks (an older schema) are left empty.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from runner.errors import UsageError
from runner.store.database import ANSWER_COST_OF_OLD_ROWS, open_db

TABLES = ("runs", "results", "attempts", "batches")
# Worst first: the status a merged run gets when not every shard run completed.
STATUS_ORDER = ("failed", "interrupted", "running")


class MergeError(UsageError):
    """The sources cannot be merged (different jobs, not a results database, ...)."""


@dataclass(frozen=True)
class MergeSummary:
    out: Path
    run_ids: tuple[int, ...]  # the merged runs in ``out`` that this merge wrote to
    source_runs: int  # runs read from the sources (one per source database)
    results: int  # result rows written (inserted or updated)
    attempts: int  # attempt rows inserted (already present ones are skipped)
    batches: int = 0  # batches rows inserted
    statuses: dict[int, str] = field(default_factory=dict)  # merged run id -> its status
    items: dict[int, int] = field(default_factory=dict)  # merged run id -> its results now
    missing_shards: dict[int, list[str]] = field(default_factory=dict)  # merged run id -> shards not merged


@dataclass
class _SourceRun:
    source: Path
    db: sqlite_utils.Database
    row: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.source}#run {self.row['id']}"


def _job_key(run: dict[str, Any]) -> tuple[str, str, str]:
    if run.get("job_hash"):
        return (str(run["job_name"]), "hash", str(run["job_hash"]))
    return (str(run["job_name"]), "path", str(run.get("job_path")))


def _describe(run: dict[str, Any], where: str) -> str:
    return (f"job {run['job_name']!r} ({run.get('job_path') or 'no path'}, hash {run.get('job_hash') or 'none'})"
            f" in {where}")


def _options(run: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(run.get("options") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _open_source(path: Path) -> sqlite_utils.Database:
    if not path.is_file():
        raise MergeError(f"{path}: no such results database")
    try:
        db = sqlite_utils.Database(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))
        tables = set(db.table_names())
    except sqlite3.DatabaseError as exc:
        raise MergeError(f"{path}: not a results database ({exc})") from exc
    if not {"runs", "results"} <= tables:
        raise MergeError(f"{path}: not a hanzo-run results database (no runs/results tables)")
    return db


def _columns(db: sqlite_utils.Database, table: str) -> list[str]:
    return [c.name for c in db[table].columns] if db[table].exists() else []


def _status(statuses: Iterable[str]) -> str:
    seen = set(statuses)
    if seen <= {"completed"}:
        return "completed"
    for status in STATUS_ORDER:
        if status in seen:
            return status
    return sorted(seen - {"completed"})[0]


def merge_databases(out: Path, sources: list[Path], *, allow_different_jobs: bool = False,
                    runs: Sequence[int] = ()) -> MergeSummary:
    """Merge one run of each of ``sources`` (its latest; ``runs``: one id for every source, or one per
    source) with its results, attempts and batches into ``out`` (created if missing)."""
    if not sources:
        raise MergeError("nothing to merge: give at least one source database")
    if len(runs) not in (0, 1, len(sources)):
        raise MergeError(f"give one run id for every source, or one per source: {len(runs)} run ids for "
                         f"{len(sources)} sources")
    picks: dict[tuple[Path, int | None], Path] = {}  # the same run named twice is merged once
    for i, source in enumerate(sources):
        picks.setdefault((source.resolve(), runs[i] if len(runs) > 1 else runs[0] if runs else None), source)
    for source in sources:
        if source.exists() and out.exists() and source.resolve() == out.resolve():
            raise MergeError(f"{source} is the output database; merge into a new file")
    dbs: dict[Path, sqlite_utils.Database] = {}
    try:
        for (resolved, _), source in picks.items():
            if resolved not in dbs:
                dbs[resolved] = _open_source(source)
        runs_read = [_SourceRun(source, dbs[resolved], _pick_run(dbs[resolved], source, run_id))
                     for (resolved, run_id), source in picks.items()]
        _check_one_job([], runs_read, out, allow_different_jobs)  # before ``out`` is created
        target = open_db(out)
        try:
            return _merge(target, out, runs_read, allow_different_jobs)
        finally:
            target.close()
    finally:
        for db in dbs.values():
            db.close()


def _pick_run(db: sqlite_utils.Database, source: Path, run_id: int | None) -> dict[str, Any]:
    """The source's run ``run_id``, else its latest."""
    if run_id is None:
        row = next(db.query("SELECT * FROM runs ORDER BY id DESC LIMIT 1"), None)
        if row is None:
            raise MergeError(f"{source}: has no runs to merge")
        return row
    row = next(db.query("SELECT * FROM runs WHERE id = ?", [run_id]), None)
    if row is None:
        there = ", ".join(str(r["id"]) for r in db.query("SELECT id FROM runs ORDER BY id")) or "none"
        raise MergeError(f"{source}: has no run {run_id} (its runs: {there})")
    return row


def _merge(target: sqlite_utils.Database, out: Path, runs: list[_SourceRun],
           allow_different_jobs: bool) -> MergeSummary:
    existing = list(target.query("SELECT * FROM runs ORDER BY id"))
    _check_one_job(existing, runs, out, allow_different_jobs)
    merged: dict[tuple[str, str, str], int] = {}
    for row in existing:
        if "merged_from" in _options(row):
            merged.setdefault(_job_key(row), int(row["id"]))
    counts = {"results": 0, "attempts": 0, "batches": 0}
    touched: list[int] = []
    with target.atomic():
        for run in runs:
            key = _job_key(run.row)
            if key not in merged:
                merged[key] = _new_run(target, run.row)
            run_id = merged[key]
            if run_id not in touched:
                touched.append(run_id)
            _record_source(target, run_id, run)
            counts["results"] += _copy_results(target, run, run_id)
            counts["attempts"] += _copy_new_rows(target, run, run_id, "attempts")
            counts["batches"] += _copy_batches(target, run, run_id)
        statuses = {run_id: _recount(target, run_id) for run_id in touched}
    items = {run_id: next(target.query("SELECT count(*) AS n FROM results WHERE run_id = ?", [run_id]))["n"]
             for run_id in touched}
    missing = {run_id: m for run_id in touched if (m := _missing_shards(target, run_id))}
    return MergeSummary(out, tuple(touched), len(runs), counts["results"], counts["attempts"], counts["batches"],
                        statuses, items, missing)


def _check_one_job(existing: list[dict[str, Any]], runs: list[_SourceRun], out: Path, allowed: bool) -> None:
    jobs: dict[tuple[str, str, str], str] = {}
    for row in existing:
        jobs.setdefault(_job_key(row), _describe(row, str(out)))
    for run in runs:
        jobs.setdefault(_job_key(run.row), _describe(run.row, str(run.source)))
    if len(jobs) > 1 and not allowed:
        first, second = list(jobs.values())[:2]
        raise MergeError(f"refusing to merge runs of different jobs: {first} and {second}"
                         " (allow different jobs to merge them anyway, one run per job)")


def _new_run(target: sqlite_utils.Database, row: dict[str, Any]) -> int:
    options = {k: v for k, v in _options(row).items() if k != "shard"}
    options["merged_from"] = []
    record = {c: row.get(c) for c in _columns(target, "runs") if c != "id"}
    record.update(options=json.dumps(options), pid=None, items_ok=0, items_failed=0, items_total=None,
                  cost_usd=None)
    table = target.table("runs")
    table.insert(record)
    assert table.last_pk is not None
    return int(table.last_pk)


def _record_source(target: sqlite_utils.Database, run_id: int, run: _SourceRun) -> None:
    """Note the source run in the merged run's options, replacing an earlier note of the same run."""
    row = next(target.query("SELECT options FROM runs WHERE id = ?", [run_id]))
    options = _options(row)
    entry = {"source": str(run.source.resolve()), "run_id": run.row["id"], "status": run.row["status"],
             "shard": _options(run.row).get("shard"), "started_at": run.row["started_at"],
             "finished_at": run.row.get("finished_at"), "items_total": run.row.get("items_total")}
    notes = [n for n in options.get("merged_from", []) if isinstance(n, dict)]
    same = [i for i, n in enumerate(notes) if (n.get("source"), n.get("run_id")) == (entry["source"], entry["run_id"])]
    if same:
        notes[same[0]] = entry  # merged before: its place stays, its state is refreshed
    else:
        notes.append(entry)
    options["merged_from"] = notes
    options["shards"] = sorted({n["shard"] for n in options["merged_from"] if n.get("shard")})
    target.execute("UPDATE runs SET options = ? WHERE id = ?", [json.dumps(options), run_id])


def _copy_results(target: sqlite_utils.Database, run: _SourceRun, run_id: int) -> int:
    columns = [c for c in _columns(run.db, "results") if c in set(_columns(target, "results")) and c != "id"]
    ok_keys = {r["item_key"] for r in target.query(
        "SELECT item_key FROM results WHERE run_id = ? AND status = 'ok'", [run_id])}
    rows = []
    for row in run.db.query(f"SELECT {', '.join(columns)} FROM results WHERE run_id = ? ORDER BY id",
                            [run.row["id"]]):
        if row["item_key"] in ok_keys and row["status"] != "ok":
            continue  # an ok answer from another shard or run stands
        rows.append({**row, "run_id": run_id})
    if rows:
        target.table("results").upsert_all(rows, pk=("run_id", "item_key"))
        if "answer_cost_usd" not in columns:  # a source older than the column: its answers' cost from its figures
            target.execute(f"UPDATE results SET answer_cost_usd = {ANSWER_COST_OF_OLD_ROWS} WHERE run_id = ?"
                           " AND answer_cost_usd IS NULL", [run_id])
    return len(rows)


def _copy_new_rows(target: sqlite_utils.Database, run: _SourceRun, run_id: int, table: str) -> int:
    """Rows of ``table`` for the source run that ``target`` lacks (compared on every column but the id)."""
    source_columns = _columns(run.db, table)
    if "run_id" not in source_columns:
        return 0
    if not target[table].exists():
        schema = run.db[table].schema
        target.execute(schema)
    columns = [c for c in source_columns if c in set(_columns(target, table)) and c != "id"]
    present = {tuple(r[c] for c in columns) for r in target.query(
        f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ?", [run_id])}
    rows = []
    for row in run.db.query(f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? ORDER BY rowid",
                            [run.row["id"]]):
        row["run_id"] = run_id
        key = tuple(row[c] for c in columns)
        if key not in present:
            present.add(key)
            rows.append(row)
    if rows:
        target.table(table).insert_all(rows)
    return len(rows)


def _copy_batches(target: sqlite_utils.Database, run: _SourceRun, run_id: int) -> int:
    """The source run's batches with their items (``batch_items`` re-pointed at the new batch ids): without
    the items a merged run could not tell which results a batch answered, nor collect it later. A batch
    merged before (same tag) is brought up to date: it may have ended and been collected since."""
    if not run.db["batches"].exists():
        return 0
    for table in ("batches", "batch_items"):
        if run.db[table].exists() and not target[table].exists():
            target.execute(run.db[table].schema)
    columns = [c for c in _columns(run.db, "batches") if c in set(_columns(target, "batches")) and c != "id"]
    present = {r["tag"]: r["id"] for r in target.query("SELECT id, tag FROM batches WHERE run_id = ?", [run_id])}
    added = 0
    for row in run.db.query(f"SELECT id, {', '.join(columns)} FROM batches WHERE run_id = ? ORDER BY id",
                            [run.row["id"]]):
        source_id = row.pop("id")
        row["run_id"] = run_id
        key = row["tag"]
        if key in present:
            target.table("batches").update(present[key], row)
        else:
            present[key] = target.table("batches").insert(row).last_pk
            added += 1
        if run.db["batch_items"].exists():
            items = [{**item, "batch": present[key]} for item in run.db.query(
                "SELECT batch, item_key, custom_id FROM batch_items WHERE batch = ?", [source_id])]
            target.table("batch_items").insert_all(items, ignore=True)  # (batch, custom_id) is the key: once each
    return added


def _missing_shards(target: sqlite_utils.Database, run_id: int) -> list[str]:
    """The shards K/N of the merged run's job that no merged source ran (none when it was not sharded)."""
    row = next(target.query("SELECT options FROM runs WHERE id = ?", [run_id]))
    shards = {str(n["shard"]) for n in _options(row).get("merged_from", []) if isinstance(n, dict) and n.get("shard")}
    counts = {int(s.partition("/")[2]) for s in shards}
    return [f"{k}/{n}" for n in sorted(counts) for k in range(n) if f"{k}/{n}" not in shards]


def _recount(target: sqlite_utils.Database, run_id: int) -> str:
    """Counts from the merged results rows; status and times from every source run merged so far."""
    row = next(target.query("SELECT options FROM runs WHERE id = ?", [run_id]))
    notes = [n for n in _options(row).get("merged_from", []) if isinstance(n, dict)]
    status = _status(str(n.get("status")) for n in notes)
    if status == "completed" and _missing_shards(target, run_id):
        status = "interrupted"  # a part of the job was never merged
    started = [str(n["started_at"]) for n in notes if n.get("started_at")]
    finished = [str(n["finished_at"]) for n in notes if n.get("finished_at")]
    counts = next(target.query(
        "SELECT count(*) AS items_total, coalesce(sum(status = 'ok'), 0) AS items_ok,"
        " coalesce(sum(status != 'ok'), 0) AS items_failed, sum(cost_usd) AS cost_usd FROM results WHERE run_id = ?",
        [run_id]))
    update: dict[str, Any] = {**counts, "status": status, "finished_at": max(finished) if finished else None}
    if started:
        update["started_at"] = min(started)
    target.table("runs").update(run_id, update)
    return status
