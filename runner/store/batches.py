"""The provider batches of a run (tables ``batches`` and ``batch_items``): every query batch mode makes.

A ``batches`` row and its items are committed before the batch is created at the provider, and
its ``provider_batch_id`` the moment the provider returns it (runner/engine/batching.py says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from ..protocols.batch import BatchStatus
from .records import utcnow

LIVE_STATES = ("pending", "running", "cancelling")


class BatchStore:
    """One run's batches."""

    def __init__(self, db: sqlite_utils.Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id

    def not_to_send(self, target: str, *, retry_errors: bool) -> set[str]:
        """Item keys of the target that must not be sent by batch now: answered (ok; or by a batch at all,
        unless failed ones are retried), or in a batch still live."""
        answered = "status = 'ok'" if retry_errors else "(status = 'ok' OR via = 'batch')"
        keys = {r["item_key"] for r in self.db.query(
            f"SELECT item_key FROM results WHERE run_id = ? AND target = ? AND {answered}", [self.run_id, target])}
        keys.update(r["item_key"] for r in self.db.query(
            "SELECT i.item_key FROM batch_items i JOIN batches b ON b.id = i.batch"
            " WHERE b.run_id = ? AND b.target = ? AND b.collected_at IS NULL", [self.run_id, target]))
        return keys

    def add(self, *, target: str, provider: str, model: str, api: str, tag: str, created_at: str,
            items: Sequence[tuple[str, str]]) -> int:
        """A batch about to be created, with its (item key, custom id) pairs; its row id."""
        with self.db.atomic():
            row_id: int = self.db.execute(
                "INSERT INTO batches (run_id, target, provider, model, api, tag, status, request_count, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                [self.run_id, target, provider, model, api, tag, len(items), created_at]).lastrowid or 0
            self.db.conn.executemany("INSERT INTO batch_items (batch, item_key, custom_id) VALUES (?, ?, ?)",
                                     [(row_id, key, cid) for key, cid in items])
        return row_id

    def created(self, row_id: int, status: BatchStatus) -> None:
        """The provider created it: its id, at once."""
        with self.db.atomic():
            self.db.execute("UPDATE batches SET provider_batch_id = ?, status = 'running', provider_status = ?,"
                            " input_file_id = ? WHERE id = ?",
                            [status.batch_id, status.provider_status, status.input_file_id, row_id])

    def refused(self, row_id: int, message: str, count: int) -> None:
        """The provider refused to create it."""
        now = utcnow()
        with self.db.atomic():
            self.db.execute("UPDATE batches SET status = 'failed', message = ?, ended_at = ?, collected_at = ?,"
                            " error_count = ? WHERE id = ?", [message, now, now, count, row_id])

    def known_ids(self, provider: str) -> frozenset[str]:
        """The provider's batch ids this database knows, in any run."""
        return frozenset(r["provider_batch_id"] for r in self.db.query(
            "SELECT provider_batch_id FROM batches WHERE provider = ? AND provider_batch_id IS NOT NULL",
            [provider]))

    def orphans(self, target: str) -> list[dict[str, Any]]:
        """Rows committed before a create whose id never was."""
        return list(self.db.query(
            "SELECT * FROM batches WHERE run_id = ? AND target = ? AND provider_batch_id IS NULL"
            " AND collected_at IS NULL ORDER BY id", [self.run_id, target]))

    def forget(self, row_id: int) -> None:
        """A batch never created: its items are sent again like any unsent item."""
        with self.db.atomic():
            self.db.execute("DELETE FROM batch_items WHERE batch = ?", [row_id])
            self.db.execute("DELETE FROM batches WHERE id = ?", [row_id])

    def live(self, targets: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The run's batches not collected yet (of ``targets``, when given), orphans without an id included."""
        sql = "SELECT * FROM batches WHERE run_id = ? AND collected_at IS NULL"
        args: list[Any] = [self.run_id]
        if targets is not None:
            labels = list(targets)
            sql += f" AND target IN ({', '.join('?' for _ in labels)})"
            args += labels
        return list(self.db.query(sql + " ORDER BY id", args))

    def running(self) -> list[dict[str, Any]]:
        """The run's batches still running at the provider."""
        return [r for r in self.live() if r["provider_batch_id"] is not None and r["status"] in LIVE_STATES]

    def live_targets(self) -> set[str]:
        """Targets with a batch not collected yet (a resume collects them whatever the mode)."""
        if not self.db["batches"].exists():
            return set()
        return {r["target"] for r in self.db.query(
            "SELECT DISTINCT target FROM batches WHERE run_id = ? AND collected_at IS NULL", [self.run_id])}

    def seen(self, row_id: int, state: str, status: BatchStatus) -> None:
        """What the provider says of the batch now."""
        with self.db.atomic():
            self.db.execute("UPDATE batches SET status = ?, provider_status = ?, ok_count = ?, error_count = ?,"
                            " output_file_id = ?, error_file_id = ?, message = coalesce(?, message),"
                            " ended_at = CASE WHEN ? THEN coalesce(ended_at, ?) END WHERE id = ?",
                            [state, status.provider_status, status.ok, status.failed, status.output_file_id,
                             status.error_file_id, status.message, status.state != "running", utcnow(), row_id])

    def cancelling(self, row_id: int) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE batches SET status = 'cancelling', message = 'cancel requested' WHERE id = ?",
                            [row_id])

    def members(self, row_id: int) -> dict[str, str]:
        """custom id -> item key of the batch's requests."""
        return {r["custom_id"]: r["item_key"] for r in self.db.query(
            "SELECT custom_id, item_key FROM batch_items WHERE batch = ?", [row_id])}

    def answered_by(self, batch_id: str) -> set[str]:
        """Item keys whose result rows the provider batch ``batch_id`` gave in this run (a collect cut short)."""
        return {r["item_key"] for r in self.db.query(
            "SELECT item_key FROM results WHERE run_id = ? AND batch_id = ?", [self.run_id, batch_id])}

    def times_sent(self, row_id: int) -> dict[str, int]:
        """How many batches of the run each item of this batch went out in (this one included)."""
        return {r["item_key"]: r["n"] for r in self.db.query(
            "SELECT i.item_key, count(*) AS n FROM batch_items i JOIN batches b ON b.id = i.batch"
            " WHERE b.run_id = ? AND i.item_key IN (SELECT item_key FROM batch_items WHERE batch = ?)"
            " GROUP BY i.item_key", [self.run_id, row_id])}

    def attempts_before(self, row_id: int) -> dict[str, tuple[int, int]]:
        """Per item of the batch: (highest attempt number, attempts recorded) of its answer so far."""
        return {r["item_key"]: (r["last"], r["n"]) for r in self.db.query(
            "SELECT item_key, max(attempt) AS last, count(*) AS n FROM attempts WHERE run_id = ?"
            " AND purpose = 'answer' AND item_key IN (SELECT item_key FROM batch_items WHERE batch = ?)"
            " GROUP BY item_key", [self.run_id, row_id])}

    def collected(self, row_id: int, message: str | None) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE batches SET collected_at = ?, message = coalesce(?, message) WHERE id = ?",
                            [utcnow(), message, row_id])


__all__ = ["LIVE_STATES", "BatchStore"]
