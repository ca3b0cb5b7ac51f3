"""The results database: runs, results and attempts in SQLite, through sqlite-utils.

The schema grows by migrations (sqlite-utils ``Migrations``), so a database written
by an older hanzo-run opens in a newer one. Writes come from one writer only and
are batched, one transaction per batch, in WAL mode so readers (Datasette, the
``report`` command) never block the run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ..errors import UsageError
from .queries import save_target_figures
from .records import AttemptRow, ResultRow, RunStatus, utcnow

migrations = Migrations("hanzo-run")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            job_name TEXT NOT NULL,
            job_path TEXT,
            job_hash TEXT,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            items_total INTEGER,
            items_ok INTEGER NOT NULL DEFAULT 0,
            items_failed INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            version TEXT,
            pid INTEGER,
            options TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            item_key TEXT NOT NULL,
            target TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_id TEXT,
            row_index INTEGER,
            repeat_index INTEGER NOT NULL DEFAULT 0,
            prompt TEXT,
            status TEXT NOT NULL,
            response_text TEXT,
            finish_reason TEXT,
            error_code TEXT,
            error_message TEXT,
            http_status INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL,
            ttft_ms REAL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost_usd REAL,
            passed INTEGER,
            started_at TEXT,
            finished_at TEXT,
            UNIQUE (run_id, item_key)
        )"""
    )
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            item_key TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            latency_ms REAL,
            http_status INTEGER,
            error_code TEXT,
            retry_after_s REAL
        )"""
    )
    db.execute("CREATE INDEX results_run_status ON results (run_id, status)")
    db.execute("CREATE INDEX results_run_target ON results (run_id, target)")
    db.execute("CREATE INDEX attempts_run_item ON attempts (run_id, item_key)")


@migrations()
def m002_evaluation(db: sqlite_utils.Database) -> None:
    """Checks and cost provenance per result; indexes and a view for reports and Datasette."""
    db.execute("ALTER TABLE results ADD COLUMN failed_checks TEXT")  # JSON list of {check, reason}
    db.execute("ALTER TABLE results ADD COLUMN price_source TEXT")
    db.execute("CREATE INDEX results_run_passed ON results (run_id, passed)")
    db.execute("CREATE INDEX results_target_run ON results (target, run_id)")
    db.execute("CREATE INDEX runs_job_started ON runs (job_name, started_at)")
    db.execute(_M002_TARGET_SUMMARY_VIEW)


@migrations()
def m003_run_identity(db: sqlite_utils.Database) -> None:
    """Where each provider of a run sent its requests, so a resume cannot go elsewhere."""
    # JSON {provider id: {protocol, base_url, key_source}}; key_source names the variable or "store", never the key.
    db.execute("ALTER TABLE runs ADD COLUMN providers TEXT")


@migrations()
def m004_grading(db: sqlite_utils.Database) -> None:
    """Re-grading, model-graded checks and the response cache (see runner/store/records.py)."""
    db.execute("ALTER TABLE runs ADD COLUMN source_run_id INTEGER REFERENCES runs(id)")  # set by rescore
    # Nullable, so rows written by code that knows no such column (NULL) still insert; NULL means 0.
    db.execute("ALTER TABLE results ADD COLUMN cached INTEGER DEFAULT 0")
    db.execute("ALTER TABLE results ADD COLUMN cached_cost_usd REAL")
    db.execute("ALTER TABLE results ADD COLUMN judge_cost_usd REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN purpose TEXT DEFAULT 'answer'")  # NULL means 'answer' too


@migrations()
def m005_media(db: sqlite_utils.Database) -> None:
    """JSON answers, tool calls, and the reasoning and cached token counts of each result."""
    db.execute("ALTER TABLE results ADD COLUMN response_json TEXT")
    db.execute("ALTER TABLE results ADD COLUMN tool_calls TEXT")
    db.execute("ALTER TABLE results ADD COLUMN reasoning_tokens INTEGER")
    db.execute("ALTER TABLE results ADD COLUMN cached_input_tokens INTEGER")
    db.execute("ALTER TABLE results ADD COLUMN cache_write_tokens INTEGER")


@migrations()
def m006_batches(db: sqlite_utils.Database) -> None:
    """Batch mode: how each result was sent, and the provider batches of a run with their items.

    A ``batches`` row (and its ``batch_items``) is committed before the batch is created at the
    provider, and its ``provider_batch_id`` the moment the provider returns it: a crash in between
    leaves a row without an id, which ``--resume`` looks up at the provider by its ``tag``.
    """
    db.execute("ALTER TABLE results ADD COLUMN via TEXT DEFAULT 'sync'")
    db.execute("ALTER TABLE results ADD COLUMN batch_id TEXT")
    db.execute(
        """CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            target TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            api TEXT NOT NULL,
            tag TEXT NOT NULL,
            provider_batch_id TEXT,
            status TEXT NOT NULL,
            provider_status TEXT,
            request_count INTEGER NOT NULL,
            ok_count INTEGER,
            error_count INTEGER,
            created_at TEXT NOT NULL,
            ended_at TEXT,
            collected_at TEXT,
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            message TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE batch_items (
            batch INTEGER NOT NULL REFERENCES batches(id),
            item_key TEXT NOT NULL,
            custom_id TEXT NOT NULL,
            PRIMARY KEY (batch, custom_id)
        )"""
    )
    db.execute("CREATE INDEX batches_run_status ON batches (run_id, status)")
    db.execute("CREATE INDEX batch_items_item ON batch_items (item_key)")


@migrations()
def m007_row_hash(db: sqlite_utils.Database) -> None:
    """A hash of each result's data row, so rescore and diff find the row by its content when rows move."""
    db.execute("ALTER TABLE results ADD COLUMN row_hash TEXT")  # NULL: no data, or written before this column


# What a result written before answer_cost_usd paid for its answer: cost_usd less the judges', or for a
# cached answer what it first cost (m009, and merge of such a database).
ANSWER_COST_OF_OLD_ROWS = "CASE WHEN cached = 1 THEN cached_cost_usd ELSE cost_usd - coalesce(judge_cost_usd, 0) END"


@migrations()
def m008_vars(db: sqlite_utils.Database) -> None:
    """Each result's data row as the views show it (engine/rows.py ``stored_vars``): the item by its values."""
    db.execute("ALTER TABLE results ADD COLUMN vars TEXT")  # JSON object; NULL: no data, or written before this column


@migrations()
def m009_checks(db: sqlite_utils.Database) -> None:
    """Every check's outcome per result, and the answer's own cost apart from the judges' and from this run's spend."""
    db.execute("ALTER TABLE results ADD COLUMN checks TEXT")  # JSON list of {name, passed, score, reason, ...}
    db.execute("ALTER TABLE results ADD COLUMN answer_cost_usd REAL")
    db.execute(f"UPDATE results SET answer_cost_usd = {ANSWER_COST_OF_OLD_ROWS}")
    db.execute("DROP VIEW target_summary")
    db.execute(TARGET_SUMMARY_VIEW)


@migrations()
def m011_view_indexes(db: sqlite_utils.Database) -> None:
    """``hanzo-run view`` pages a run's items by cell key (runner/store/grid.py), and sums a run's
    figures per target (``target_summary``) from an index alone, latencies read in order: a
    100,000-item run's page is not a scan of its rows."""
    db.execute("CREATE INDEX results_run_grid ON results (run_id, coalesce(row_index, -1), prompt_id, repeat_index,"
               " target, status, passed)")
    db.execute("CREATE INDEX results_run_target_figures ON results (run_id, target, status, latency_ms, ttft_ms,"
               " passed, input_tokens, output_tokens, cost_usd, answer_cost_usd, judge_cost_usd, provider, model)")
    # A finished run's per-target figures, summed once when it finished (store/queries.py): the view's
    # first screen of a million-item run reads one row. Valid while runs.finished_at is the same.
    db.execute("CREATE TABLE run_figures (run_id INTEGER PRIMARY KEY REFERENCES runs(id), finished_at TEXT NOT NULL,"
               " targets TEXT NOT NULL)")


# The view as m002 made it (m009 replaces it): a migration keeps the SQL it ran.
_M002_TARGET_SUMMARY_VIEW = """CREATE VIEW target_summary AS
SELECT run_id, target, provider, model, items, ok, errors,
       round(1.0 * ok / items, 4) AS ok_rate,
       passed,
       CASE WHEN checked > 0 THEN round(1.0 * passed / items, 4) END AS pass_rate,
       avg_latency_ms, input_tokens, output_tokens,
       CASE WHEN gen_ms > 0 THEN round(gen_tokens / (gen_ms / 1000.0), 2) END AS output_tokens_per_s,
       unpriced,
       CASE WHEN unpriced = 0 AND ok > 0 THEN cost_usd END AS cost_usd,
       CASE WHEN unpriced = 0 AND ok > 0 THEN 1000.0 * cost_usd / items END AS cost_per_1k_items,
       first_result_id
FROM (
    SELECT run_id, target, provider, model, count(*) AS items,
           sum(status = 'ok') AS ok,
           sum(status != 'ok') AS errors,
           coalesce(sum(passed), 0) AS passed,
           count(passed) AS checked,
           round(avg(CASE WHEN status = 'ok' THEN latency_ms END), 1) AS avg_latency_ms,
           coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens,
           sum(CASE WHEN status = 'ok' AND output_tokens IS NOT NULL THEN output_tokens END) AS gen_tokens,
           sum(CASE WHEN status = 'ok' AND output_tokens IS NOT NULL THEN latency_ms END) AS gen_ms,
           sum(status = 'ok' AND cost_usd IS NULL) AS unpriced,
           sum(cost_usd) AS cost_usd,
           min(id) AS first_result_id
    FROM results GROUP BY run_id, target
)"""


# m009 builds this view as it is; a change to it is a new migration, and m009 then keeps a frozen copy of
# this text, as m002 keeps its own.
# Per run and target; the report computes percentiles on top (runner/summary.py). Rates are
# over all items, errors counting as not passed; cost (what the run paid) is NULL when any ok
# answer is unpriced; answer cost (cached answers at their first cost) NULL when any answer is
# unpriced; judge cost (the verdicts', cached ones at their first cost) NULL without judges.
TARGET_SUMMARY_VIEW = """CREATE VIEW target_summary AS
SELECT run_id, target, provider, model, items, ok, errors,
       round(1.0 * ok / items, 4) AS ok_rate,
       passed,
       CASE WHEN checked > 0 THEN round(1.0 * passed / items, 4) END AS pass_rate,
       avg_latency_ms, input_tokens, output_tokens,
       CASE WHEN gen_ms > 0 THEN round(gen_tokens / (gen_ms / 1000.0), 2) END AS output_tokens_per_s,
       unpriced,
       CASE WHEN unpriced = 0 AND ok > 0 THEN cost_usd END AS cost_usd,
       CASE WHEN unpriced = 0 AND ok > 0 THEN 1000.0 * cost_usd / items END AS cost_per_1k_items,
       CASE WHEN answers_unpriced = 0 AND ok > 0 THEN answer_cost_usd END AS answer_cost_usd,
       judge_cost_usd,
       first_result_id
FROM (
    SELECT run_id, target, provider, model, count(*) AS items,
           sum(status = 'ok') AS ok,
           sum(status != 'ok') AS errors,
           coalesce(sum(passed), 0) AS passed,
           count(passed) AS checked,
           round(avg(CASE WHEN status = 'ok' THEN latency_ms END), 1) AS avg_latency_ms,
           coalesce(sum(input_tokens), 0) AS input_tokens,
           coalesce(sum(output_tokens), 0) AS output_tokens,
           sum(CASE WHEN status = 'ok' AND output_tokens IS NOT NULL THEN output_tokens END) AS gen_tokens,
           sum(CASE WHEN status = 'ok' AND output_tokens IS NOT NULL THEN latency_ms END) AS gen_ms,
           sum(status = 'ok' AND cost_usd IS NULL) AS unpriced,
           sum(cost_usd) AS cost_usd,
           sum(status = 'ok' AND answer_cost_usd IS NULL) AS answers_unpriced,
           sum(answer_cost_usd) AS answer_cost_usd,
           sum(judge_cost_usd) AS judge_cost_usd,
           min(id) AS first_result_id
    FROM results GROUP BY run_id, target
)"""


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the results database at ``path``.

    A file SQLite cannot use (not a database, corrupt, unreadable) is a UsageError naming it.
    """
    try:
        db = sqlite_utils.Database(path)
    except sqlite3.Error as e:
        raise _unusable(path, e) from None
    try:
        db.conn.execute("PRAGMA busy_timeout = 10000")
        db.enable_wal()
        db.conn.execute("PRAGMA synchronous = NORMAL")  # safe under WAL: a crash loses no committed batch
        migrations.apply(db)
    except sqlite3.DatabaseError as e:
        db.close()
        raise _unusable(path, e) from None
    return db


def read_db(path: Path | str) -> sqlite_utils.Database:
    """A connection to an existing, already migrated results database, for reading while runs write
    (``hanzo-run view`` opens one per request: ``open_db`` once, then this)."""
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA busy_timeout = 10000")
    return db


def _unusable(path: Path | str, error: sqlite3.Error) -> UsageError:
    return UsageError(f"hanzo-run: cannot use {path} as a results database: SQLite says: {error}; give --db "
                      "(or the job's output:) a hanzo-run results database, or a new file name")


def _upsert_sql(table: str, columns: Sequence[str], conflict: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


# The records' fields are the columns, in order: rows go to sqlite3 as they are.
_RESULT_UPSERT = _upsert_sql("results", ResultRow._fields, ("run_id", "item_key"))
_ATTEMPT_INSERT = _insert_sql("attempts", AttemptRow._fields)


class RunStore:
    """Writes one run's rows. Only the engine's writer task calls ``write``."""

    def __init__(self, db: sqlite_utils.Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id
        self.status: RunStatus = "running"

    @classmethod
    def start(cls, db: sqlite_utils.Database, *, job_name: str, job_path: str, job_hash: str,
              items_total: int | None, version: str, pid: int, options: str, providers: str | None = None,
              source_run_id: int | None = None) -> RunStore:
        with db.atomic():
            cursor = db.execute(
                "INSERT INTO runs (job_name, job_path, job_hash, status, started_at, items_total, version, pid,"
                " options, providers, source_run_id) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                [job_name, job_path, job_hash, utcnow(), items_total, version, pid, options, providers,
                 source_run_id],
            )
        assert cursor.lastrowid is not None
        return cls(db, cursor.lastrowid)

    @classmethod
    def reopen(cls, db: sqlite_utils.Database, run_id: int) -> RunStore:
        """Continue an earlier run: it is running again, its finished rows stay."""
        with db.atomic():
            db.execute("UPDATE runs SET status = 'running', finished_at = NULL, pid = ? WHERE id = ?",
                       [os.getpid(), run_id])
        return cls(db, run_id)

    def done_keys(self) -> frozenset[str]:
        """Items of this run that already have an ok result: a resume skips them."""
        rows = self.db.query("SELECT item_key FROM results WHERE run_id = ? AND status = 'ok'", [self.run_id])
        return frozenset(row["item_key"] for row in rows)

    def earlier_attempts(self) -> dict[str, tuple[int, int]]:
        """Per item still to send: (highest attempt number, attempts recorded), so numbering continues on resume."""
        rows = self.db.query(
            "SELECT item_key, max(attempt) AS last, count(*) AS n FROM attempts WHERE run_id = ? AND purpose = 'answer'"
            " AND item_key NOT IN (SELECT item_key FROM results WHERE run_id = ? AND status = 'ok') GROUP BY item_key",
            [self.run_id, self.run_id])
        return {row["item_key"]: (row["last"], row["n"]) for row in rows}

    def options(self) -> dict[str, Any]:
        """The options the run was started with (scope, batch mode, shard), as it recorded them."""
        row = next(self.db.query("SELECT options FROM runs WHERE id = ?", [self.run_id]))
        try:
            options = json.loads(row["options"] or "{}")
        except ValueError:
            return {}
        return options if isinstance(options, dict) else {}

    def spent(self) -> float:
        row = next(self.db.query("SELECT coalesce(sum(cost_usd), 0) AS spent FROM results WHERE run_id = ?",
                                 [self.run_id]))
        return float(row["spent"])

    def write(self, results: Iterable[ResultRow], attempts: Iterable[AttemptRow]) -> None:
        """One batch, one transaction."""
        with self.db.atomic():
            self.db.conn.executemany(_RESULT_UPSERT, results)
            self.db.conn.executemany(_ATTEMPT_INSERT, attempts)

    def finish(self, status: RunStatus) -> Mapping[str, Any]:
        """Close the run with its final counts, taken from the rows themselves.

        A run is "completed" only when every item of its scope (``items_total``) has its row;
        one that ended with items never sent (``--resume --only``) stays "interrupted", so a
        later ``--resume`` finds it. ``missing`` counts those items.
        """
        with self.db.atomic():
            row = next(self.db.query(
                "SELECT count(*) AS total, sum(status = 'ok') AS ok, sum(status != 'ok') AS failed,"
                " sum(cost_usd) AS cost, (SELECT items_total FROM runs WHERE id = ?) AS scope"
                " FROM results WHERE run_id = ?", [self.run_id, self.run_id]))
            total, ok, failed, cost, scope = row["total"], row["ok"], row["failed"], row["cost"], row["scope"]
            missing = max(scope - total, 0) if scope is not None else 0
            if status == "completed" and missing:
                status = "interrupted"
            self.status = status
            finished_at = utcnow()
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, items_ok = ?, items_failed = ?, cost_usd = ?,"
                " items_total = coalesce(items_total, ?) WHERE id = ?",
                [status, finished_at, ok or 0, failed or 0, cost, total, self.run_id],
            )
            save_target_figures(self.db, self.run_id, finished_at)
        return {"items": total, "ok": ok or 0, "failed": failed or 0, "cost_usd": cost, "missing": missing}
