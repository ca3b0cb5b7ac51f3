"""Which run a command means, and what the database says about it: the only code that reads the
``runs`` table for the commands (``runs``, ``show``, ``diff``, ``report``, ``rescore``, ``batches``)
and for ``--resume``. Rows come back as ``RunRecord``s (runner/store/records.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlite_utils

from .records import RunRecord


def resolve_run(db: sqlite_utils.Database, run_id: int | None, *, job_path: str | None = None,
                unfinished: bool = False, sent: bool = False) -> RunRecord | None:
    """Run ``run_id``; without one, the newest run of ``job_path`` (one not completed, when ``unfinished``;
    one that sent its items, not a rescore, when ``sent``), or of the whole database when no job is named.
    None when there is no such run."""
    if run_id is not None:
        row = next(db.query("SELECT * FROM runs WHERE id = ?", [run_id]), None)
    else:
        where = ["job_path = ?"] if job_path is not None else []
        if unfinished:
            where.append("status != 'completed'")
        if sent:  # a rescore holds graded copies: --resume and --retry-errors have nothing to send to it
            where.append("source_run_id IS NULL")
        sql = f"SELECT * FROM runs {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT 1"
        row = next(db.query(sql, [job_path] if job_path is not None else []), None)
    return RunRecord.from_row(row) if row is not None else None


def previous_run(db: sqlite_utils.Database, run: RunRecord) -> RunRecord | None:
    """The run of the same job just before ``run``."""
    row = next(db.query("SELECT * FROM runs WHERE id < ? AND job_path IS ? ORDER BY id DESC LIMIT 1",
                        [run.id, run.job_path]), None)
    return RunRecord.from_row(row) if row is not None else None


def run_targets(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """The targets the run has results for, by name."""
    return [r["target"] for r in db.query("SELECT DISTINCT target FROM results WHERE run_id = ? ORDER BY target",
                                          [run_id])]


def run_shape(db: sqlite_utils.Database, run_id: int) -> set[tuple[str, str]]:
    """The (target, prompt id) pairs the run has results for: what its items can be matched on."""
    return {(r["target"], r["prompt_id"]) for r in db.query(
        "SELECT DISTINCT target, prompt_id FROM results WHERE run_id = ?", [run_id])}


def run_providers(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """The providers that answered the run's items, in the order they first did."""
    return [r["provider"] for r in db.query("SELECT provider FROM results WHERE run_id = ? GROUP BY provider"
                                            " ORDER BY min(id)", [run_id])]


def result_count(db: sqlite_utils.Database, run_id: int) -> int:
    return int(next(db.query("SELECT count(*) AS n FROM results WHERE run_id = ?", [run_id]))["n"])


def answered_rows(db: sqlite_utils.Database, run_id: int) -> set[tuple[str | None, int]]:
    """The data rows the run's results answered: (row hash, None when written before row hashes; index)."""
    return {(r["row_hash"], r["row_index"]) for r in db.query(
        "SELECT DISTINCT row_hash, row_index FROM results WHERE run_id = ? AND row_index IS NOT NULL", [run_id])}


def stored_results(db: sqlite_utils.Database, run_id: int, provider: str, page: int = 500
                   ) -> Iterator[dict[str, Any]]:
    """The run's results from ``provider``, in the order written, read ``page`` rows at a time."""
    last = 0
    while True:
        rows = list(db.query("SELECT * FROM results WHERE run_id = ? AND provider = ? AND id > ? ORDER BY id LIMIT ?",
                             [run_id, provider, last, page]))
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]
