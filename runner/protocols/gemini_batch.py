"""Gemini Batch Mode: ``POST /models/{model}:batchGenerateContent``, poll the operation (``BATCH_STATE_*``).

Requests up to 20 MB go inline, named by ``metadata.key``; their results come back inline
(``inlinedResponses``). Larger ones go as a JSONL file (``{"key", "request"}`` per line) uploaded
to the File API with Google's resumable upload protocol (a ``start`` request, then the bytes with
``upload, finalize``), and the batch names it (``input_config.file_name``); their results come back
as a file (``responsesFile``), read as it downloads. Uploads and downloads are served beside the
API: ``https://host/upload/v1beta/files``, ``https://host/download/v1beta/files/...``. The batch
carries its tag in its display name."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from ..config.providers import BatchSettings
from ..errors import ErrorCode, ProviderError
from .batch import (
    LIST_PAGES,
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

# The most a batch's inline requests may weigh (Gemini takes a create request under 20 MB; the margin is the
# request's own wrapping and the MB's two readings); a larger batch goes as a file.
INLINE_MAX_BYTES = 19_000_000

# google.rpc.Code -> the HTTP status it maps to (google.rpc code.proto)
RPC_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
              12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
GEMINI_STATES: dict[str, BatchState] = {
    "BATCH_STATE_SUCCEEDED": "ended", "BATCH_STATE_FAILED": "failed", "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired", "JOB_STATE_SUCCEEDED": "ended", "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_EXPIRED": "expired"}


class GeminiBatches(BatchApi):
    """Gemini Batch Mode: inline requests, or a file through the File API."""

    def __init__(self, settings: BatchSettings) -> None:
        self.batches = settings.paths.get("batches", "/batches")

    def entry_size(self, entry: BatchEntry) -> int:
        return len(compact_json({"request": entry.body, "metadata": {"key": entry.custom_id}}).encode()) + 1

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        model = model.removeprefix("models/")
        config: dict[str, Any]
        if sum(map(self.entry_size, entries)) <= INLINE_MAX_BYTES:
            inline = [{"request": e.body, "metadata": {"key": e.custom_id}} for e in entries]
            config = {"requests": {"requests": inline}}
        else:
            content = "".join(compact_json({"key": e.custom_id, "request": e.body}) + "\n" for e in entries).encode()
            config = {"file_name": await self._upload(io, content, f"hanzo-{tag}")}
        made = await io.fetch("POST", f"/models/{model}:batchGenerateContent", body={"batch": {
            "display_name": f"hanzo-{tag}", "input_config": config}})
        return self._status(made)

    async def _upload(self, io: BatchIO, content: bytes, name: str) -> str:
        """The File API's name (``files/...``) of ``content``, uploaded with the resumable protocol."""
        started, _ = await io.exchange("POST", f"{_beside(io.base_url, 'upload')}/files", headers={
            "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(content)),
            "X-Goog-Upload-Header-Content-Type": "application/jsonl", "Content-Type": "application/json"},
            content=compact_json({"file": {"display_name": name}}).encode())
        url = started.get("x-goog-upload-url")
        if not url:
            raise ProviderError(ErrorCode.INVALID_RESPONSE, "the File API started an upload without an upload URL "
                                "(no X-Goog-Upload-URL header)")
        _, done = await io.exchange("POST", url, headers={
            "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0",
            "Content-Type": "application/jsonl"}, content=content)
        file = done.get("file") if isinstance(done, dict) else None
        if not isinstance(file, dict) or not isinstance(file.get("name"), str):
            raise ProviderError(ErrorCode.INVALID_RESPONSE,
                                f"the File API's upload answer names no file: {done!r:.200}")
        return str(file["name"])

    async def status(self, io: BatchIO, batch_id: str) -> BatchStatus:
        return self._status(await io.fetch("GET", f"/{batch_id}"))

    @staticmethod
    def _status(op: dict[str, Any]) -> BatchStatus:
        meta = op.get("metadata") or {}
        provider_status = str(meta.get("state") or ("BATCH_STATE_SUCCEEDED" if op.get("done") else "?"))
        state = GEMINI_STATES.get(provider_status, "running")
        if op.get("done") and state == "running":
            state = "failed" if op.get("error") else "ended"
        stats = meta.get("batchStats") or {}
        error = op.get("error")
        message = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None
        return BatchStatus(str(op.get("name") or meta.get("name")), state, provider_status,
                           count_of(stats.get("requestCount")), count_of(stats.get("successfulRequestCount")),
                           count_of(stats.get("failedRequestCount")), message=message,
                           created_at=unix_time(meta.get("createTime")), raw=op)

    async def results(self, io: BatchIO, status: BatchStatus) -> AsyncGenerator[BatchLine, None]:
        op = status.raw
        output = op.get("response") or (op.get("metadata") or {}).get("output") or {}
        responses_file = output.get("responsesFile")
        if responses_file:  # a batch created from a file answers in a file: {"key", "response" | "error"} lines
            path = f"{_beside(io.base_url, 'download')}/{responses_file}:download?alt=media"
            async for entry in jsonl_objects(io, path):
                yield self._line(entry, entry.get("key"), "")
            return
        inlined = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
        for n, entry in enumerate(inlined):
            yield self._line(entry, (entry.get("metadata") or {}).get("key"), str(n))  # no key: input order

    @staticmethod
    def _line(entry: dict[str, Any], key: Any, otherwise: str) -> BatchLine:
        custom_id = str(key) if key is not None else otherwise
        if "response" in entry:
            return BatchLine(custom_id, "ok", 200, entry["response"])
        error = entry.get("error") or entry.get("status") or {}  # a google.rpc.Status
        code = RPC_STATUS.get(count_of(error.get("code")) or 2, 500)
        return BatchLine(custom_id, "error", code, {"error": {
            "code": code, "message": error.get("message") or "request failed", "details": []}})

    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        await io.fetch("POST", f"/{batch_id}:cancel")

    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        query = {"pageSize": "100"}
        for _ in range(LIST_PAGES):
            page = await io.fetch("GET", self.batches, query=query)
            for op in page.get("operations") or []:
                if (op.get("metadata") or {}).get("displayName") == f"hanzo-{tag}":
                    return self._status(op)
            token = page.get("nextPageToken")
            if not token:
                return None
            query = {"pageSize": "100", "pageToken": str(token)}
        return None


def _beside(base_url: str, service: str) -> str:
    """Where Google serves ``service`` (upload, download) for the API at ``base_url``: before its version,
    https://host/v1beta -> https://host/upload/v1beta."""
    head, _, version = base_url.rstrip("/").rpartition("/")
    return f"{head}/{service}/{version}"
