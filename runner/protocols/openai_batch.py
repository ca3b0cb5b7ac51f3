"""OpenAI's Batch API and the OpenAI-compatible ones: a JSONL file uploaded to ``/files`` (multipart,
purpose=batch), ``POST /batches``, poll ``/batches/{id}``, results in the output and error files
(any order). The batch carries its tag in its metadata (``hanzo_tag``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
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


class OpenAIBatches(BatchApi):
    """OpenAI's Batch API and the OpenAI-compatible ones (Groq): files + batches."""

    def __init__(self, settings: BatchSettings) -> None:
        self.window = settings.completion_window
        self.files = settings.paths.get("files", "/files")
        self.batches = settings.paths.get("batches", "/batches")
        self.endpoint = settings.paths.get("endpoint", "/v1/chat/completions")
        self._sized: dict[str, bytes] = {}  # custom id -> its line, from entry_size until create

    def _line(self, entry: BatchEntry) -> str:
        # One model per file; no "stream" in a body (the builder is asked for a plain request).
        return compact_json({"custom_id": entry.custom_id, "method": "POST", "url": self.endpoint, "body": entry.body})

    def entry_size(self, entry: BatchEntry) -> int:
        line = self._sized[entry.custom_id] = self._line(entry).encode() + b"\n"  # serialised once, kept for create
        return len(line)

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        sized = self._sized
        content = b"".join(sized.pop(e.custom_id, b"") or self._line(e).encode() + b"\n" for e in entries)
        file = await io.upload(self.files, {"purpose": "batch"}, f"hanzo-{tag}.jsonl", content)
        made = await io.fetch("POST", self.batches, body={
            "input_file_id": file["id"], "endpoint": self.endpoint, "completion_window": self.window,
            "metadata": {**metadata, "hanzo_tag": tag}})
        return self._status(made)

    async def status(self, io: BatchIO, batch_id: str) -> BatchStatus:
        return self._status(await io.fetch("GET", f"{self.batches}/{batch_id}"))

    @staticmethod
    def _status(obj: dict[str, Any]) -> BatchStatus:
        status = str(obj.get("status"))
        state: BatchState = {"completed": "ended", "failed": "failed", "expired": "expired",
                             "cancelled": "cancelled"}.get(status, "running")  # type: ignore[assignment]
        counts = obj.get("request_counts") or {}
        message = None
        errors = (obj.get("errors") or {}).get("data") or []
        if errors:
            first = errors[0]
            line = f" (line {first['line']})" if first.get("line") else ""
            message = f"{first.get('code')}: {first.get('message')}{line}"
            if len(errors) > 1:
                message += f"; and {len(errors) - 1} more"
        return BatchStatus(str(obj["id"]), state, status, count_of(counts.get("total")),
                           count_of(counts.get("completed")), count_of(counts.get("failed")),
                           obj.get("input_file_id"), obj.get("output_file_id"), obj.get("error_file_id"),
                           message, unix_time(obj.get("created_at")), obj)

    async def results(self, io: BatchIO, status: BatchStatus) -> AsyncGenerator[BatchLine, None]:
        for file_id in (status.output_file_id, status.error_file_id):
            if not file_id:
                continue
            async for line in jsonl_objects(io, f"{self.files}/{file_id}/content"):
                custom_id = str(line.get("custom_id"))
                response = line.get("response")
                error = line.get("error")
                if isinstance(response, dict) and response.get("status_code") is not None:
                    code = int(response["status_code"])
                    yield BatchLine(custom_id, "ok" if code < 400 else "error", code, response.get("body"))
                elif isinstance(error, dict) and error.get("code") == "batch_expired":
                    yield BatchLine(custom_id, "expired", None, error)
                elif isinstance(error, dict) and error.get("code") == "batch_cancelled":
                    yield BatchLine(custom_id, "cancelled", None, error)
                else:
                    yield BatchLine(custom_id, "error", None, {"error": error})

    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        await io.fetch("POST", f"{self.batches}/{batch_id}/cancel")

    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        query = {"limit": "100"}
        for _ in range(LIST_PAGES):
            page = await io.fetch("GET", self.batches, query=query)
            data = page.get("data") or []
            for obj in data:
                if (obj.get("metadata") or {}).get("hanzo_tag") == tag:
                    return self._status(obj)
            oldest = unix_time(data[-1].get("created_at")) if data else None
            if not page.get("has_more") or not data or (oldest is not None and oldest < created_after - ORPHAN_SKEW_S):
                return None
            query = {"limit": "100", "after": str(data[-1]["id"])}
        return None
