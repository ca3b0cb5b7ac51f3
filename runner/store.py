"""The results database: runs, results and attempts in SQLite, through sqlite-utils.

The schema grows by migrations (sqlite-utils ``Migrations``), so a database written
by an older hanzo-run opens in a newer one. Writes come from one writer only and
are batched, one transaction per batch, in WAL mode so readers (Datasette, the
``report`` command) never block the run.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

RESULT_COLUMNS = (
    "run_id", "item_key", "target", "provider", "model", "prompt_id", "row_index", "repeat_index",
    "prompt", "status", "response_text", "finish_reason", "error_code", "error_message", "http_status",
    "attempts", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "passed",
    "started_at", "finished_at",
)
ATTEMPT_COLUMNS = (
    "run_id", "item_key", "attempt", "started_at", "latency_ms", "http_status", "error_code",
    "retry_after_s",
)

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


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the results database at ``path``."""
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA busy_timeout = 10000")
    db.enable_wal()
    db.conn.execute("PRAGMA synchronous = NORMAL")  # safe under WAL: a crash loses no committed batch
    migrations.apply(db)
    return db


def _upsert_sql(table: str, columns: Sequence[str], conflict: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"


_RESULT_UPSERT = _upsert_sql("results", RESULT_COLUMNS, ("run_id", "item_key"))
_ATTEMPT_INSERT = (f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)})"
                   f" VALUES ({', '.join('?' for _ in ATTEMPT_COLUMNS)})")


class RunStore:
    """Writes one run's rows. Only the engine's writer task calls ``write``."""

    def __init__(self, db: sqlite_utils.Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id

    @classmethod
    def start(cls, db: sqlite_utils.Database, *, job_name: str, job_path: str, job_hash: str,
              items_total: int | None, version: str, pid: int, options: str) -> RunStore:
        with db.atomic():
            cursor = db.execute(
                "INSERT INTO runs (job_name, job_path, job_hash, status, started_at, items_total, version, pid,"
                " options) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                [job_name, job_path, job_hash, utcnow(), items_total, version, pid, options],
            )
        assert cursor.lastrowid is not None
        return cls(db, cursor.lastrowid)

    def write(self, results: Iterable[Sequence[Any]], attempts: Iterable[Sequence[Any]]) -> None:
        """One batch, one transaction: rows in RESULT_COLUMNS / ATTEMPT_COLUMNS order."""
        with self.db.atomic():
            self.db.conn.executemany(_RESULT_UPSERT, results)
            self.db.conn.executemany(_ATTEMPT_INSERT, attempts)

    def finish(self, status: str) -> Mapping[str, Any]:
        """Close the run with its final counts, taken from the rows themselves."""
        with self.db.atomic():
            row = self.db.execute(
                "SELECT count(*), sum(status = 'ok'), sum(status != 'ok'), sum(cost_usd) FROM results WHERE run_id = ?",
                [self.run_id],
            ).fetchone()
            total, ok, failed, cost = row
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, items_ok = ?, items_failed = ?, cost_usd = ?,"
                " items_total = coalesce(items_total, ?) WHERE id = ?",
                [status, utcnow(), ok or 0, failed or 0, cost, total, self.run_id],
            )
        return {"items": total, "ok": ok or 0, "failed": failed or 0, "cost_usd": cost}
