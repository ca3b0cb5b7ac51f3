"""Anthropic's Message Batches: ``POST /v1/messages/batches`` with custom_id + params, poll
``processing_status``, results JSONL from ``results_url`` (any order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config.providers import BatchSettings
from .batch import (
    LIST_PAGES,
    ORPHAN_SKEW_S,
    BatchApi,
    BatchEntry,
    BatchIO,
    BatchLine,
    BatchState,
    BatchStatus,
    compact_json,
    count_of,
    jsonl_objects,
    unix_time,
)

# Anthropic's error types and the HTTP status each stands for (errors page), so a batch line
# is classified exactly as the synchronous answer would have been.
ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                    "api_error": 500, "overloaded_error": 529}


class AnthropicBatches(BatchApi):
    """Anthropic's Message Batches."""

    def __init__(self, settings: BatchSettings) -> None:
        self.batches = settings.paths.get("batches", "/v1/messages/batches")

    def entry_size(self, entry: BatchEntry) -> int:
        return len(compact_json({"custom_id": entry.custom_id, "params": entry.body}).encode()) + 1

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        made = await io.fetch("POST", self.batches, body={
            "requests": [{"custom_id": e.custom_id, "params": e.body} for e in entries]})
        return self._status(made)

    async def status(self, io: BatchIO, batch_id: str) -> BatchStatus:
        return self._status(await io.fetch("GET", f"{self.batches}/{batch_id}"))

    @staticmethod
    def _status(obj: dict[str, Any]) -> BatchStatus:
        status = str(obj.get("processing_status"))
        counts = obj.get("request_counts") or {}
        values = [count_of(counts.get(k)) or 0 for k in ("processing", "succeeded", "errored", "canceled", "expired")]
        state: BatchState = "running"
        if status == "ended":  # a cancelled batch ends too; what ran before the cancel has its results
            state = "cancelled" if obj.get("cancel_initiated_at") else "ended"
        return BatchStatus(str(obj["id"]), state, status, sum(values),
                           values[1], sum(values[2:]), created_at=unix_time(obj.get("created_at")), raw=obj)

    async def results(self, io: BatchIO, status: BatchStatus) -> list[BatchLine]:
        url = status.raw.get("results_url") or f"{self.batches}/{status.batch_id}/results"
        lines: list[BatchLine] = []
        for line in jsonl_objects(await io.download(str(url))):
            custom_id = str(line.get("custom_id"))
            result = line.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                lines.append(BatchLine(custom_id, "ok", 200, result.get("message")))
            elif kind == "errored":
                error = result.get("error") or {}
                inner: dict[str, Any] = error["error"] if isinstance(error.get("error"), dict) else error
                code = ANTHROPIC_STATUS.get(str(inner.get("type")), 500)
                lines.append(BatchLine(custom_id, "error", code, {"type": "error", "error": inner}))
            elif kind == "canceled":
                lines.append(BatchLine(custom_id, "cancelled"))
            elif kind == "expired":
                lines.append(BatchLine(custom_id, "expired"))
            else:
                lines.append(BatchLine(custom_id, "error", None, {"error": {"message": f"unknown result: {line}"}}))
        return lines

    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        await io.fetch("POST", f"{self.batches}/{batch_id}/cancel")

    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        """No metadata here: the oldest unknown batch of ``count`` requests created after the row was."""
        query = {"limit": "100"}
        found: BatchStatus | None = None
        for _ in range(LIST_PAGES):
            page = await io.fetch("GET", self.batches, query=query)
            data = page.get("data") or []
            for obj in data:  # newest first: the last match is the oldest
                status = self._status(obj)
                created = status.created_at or 0.0
                if status.batch_id not in known and status.total == count and created >= created_after - ORPHAN_SKEW_S:
                    found = status
            oldest = unix_time(data[-1].get("created_at")) if data else None
            if not page.get("has_more") or not data or (oldest is not None and oldest < created_after - ORPHAN_SKEW_S):
                break
            query = {"limit": "100", "after_id": str(data[-1]["id"])}
        return found
