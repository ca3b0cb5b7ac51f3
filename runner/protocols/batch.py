"""The providers' batch APIs: their wire shapes, one object per API (provider file ``batch.api``).

    openai     a JSONL file uploaded to ``/files`` (multipart, purpose=batch), ``POST /batches``,
               poll ``/batches/{id}``, results in the output and error files (any order)
    anthropic  ``POST /v1/messages/batches`` with custom_id + params, poll processing_status,
               results JSONL from ``results_url`` (any order)
    gemini     ``POST /models/{model}:batchGenerateContent`` with inline requests named by
               ``metadata.key``, poll the operation (``BATCH_STATE_*``), ``inlinedResponses``

The request bodies are the synchronous ones (the protocol adapter's ``build``, not streamed);
each answer body is read by the adapter's ``parse`` and each failed one by its ``error_info`` and
``classify``, so a batch result row is the row a synchronous answer would have made. Like the
adapters these objects do no I/O of their own: they are handed a ``BatchIO``.

Every batch carries a ``tag`` (unique per batch row of a results database): OpenAI in its
metadata, Gemini in its display name. Anthropic batches have neither, so an orphan (created, but
the process died before its id was committed) is recognised by its request count and creation
time; see ``AnthropicBatches.find``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..config.providers import BatchSettings

# What became of a batch as a whole, whatever the API calls it.
BatchState = Literal["running", "ended", "failed", "expired", "cancelled"]
# What became of one request in it.
LineKind = Literal["ok", "error", "expired", "cancelled"]
LIST_PAGES = 20  # pages of a provider's batch listing searched for an orphan (newest first)
ORPHAN_SKEW_S = 300.0  # clock difference allowed between this machine and the provider


class BatchIO(Protocol):
    """The requests a batch API makes; runner/http/client.py's ProviderClient implements them."""

    async def fetch(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                    body: Any = None, within: float | None = None) -> Any:
        ...

    async def upload(self, path: str, fields: Mapping[str, str], filename: str, content: bytes) -> Any:
        ...

    async def download(self, path: str) -> bytes:
        ...


@dataclass(frozen=True)
class BatchEntry:
    """One request of a batch: its custom id and the synchronous request body."""

    custom_id: str
    body: dict[str, Any]


@dataclass
class BatchStatus:
    """A provider's batch as last seen."""

    batch_id: str
    state: BatchState
    provider_status: str
    total: int | None = None
    ok: int | None = None
    failed: int | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    message: str | None = None  # why a failed batch failed
    created_at: float | None = None  # Unix time, as the provider says
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BatchLine:
    """One request's outcome: an answer body or an error body (with the HTTP status it stands for)."""

    custom_id: str
    kind: LineKind
    status: int | None = None
    body: Any = None


class BatchApi(Protocol):
    #: How much of ``max_bytes`` one entry uses (its JSONL line, its share of the create body).
    def entry_size(self, entry: BatchEntry) -> int:
        ...

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        """Create the batch; its status right after (its id above all)."""
        ...

    async def status(self, io: BatchIO, batch_id: str) -> BatchStatus:
        ...

    async def results(self, io: BatchIO, status: BatchStatus) -> list[BatchLine]:
        """The lines of an ended batch (any order; match them by custom_id)."""
        ...

    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        ...

    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        """A batch created with ``tag`` whose id was never recorded, or None."""
        ...


def _counts(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unix(value: Any) -> float | None:
    """Unix seconds from a number or an RFC 3339 time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _jsonl(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                yield value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class OpenAIBatches:
    """OpenAI's Batch API and the OpenAI-compatible ones (Groq): files + batches."""

    def __init__(self, settings: BatchSettings) -> None:
        self.window = settings.completion_window
        self.files = settings.paths.get("files", "/files")
        self.batches = settings.paths.get("batches", "/batches")
        self.endpoint = settings.paths.get("endpoint", "/v1/chat/completions")
        self._sized: dict[str, bytes] = {}  # custom id -> its line, from entry_size until create

    def _line(self, entry: BatchEntry) -> str:
        # One model per file; no "stream" in a body (the builder is asked for a plain request).
        return _dumps({"custom_id": entry.custom_id, "method": "POST", "url": self.endpoint, "body": entry.body})

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
        return BatchStatus(str(obj["id"]), state, status, _counts(counts.get("total")),
                           _counts(counts.get("completed")), _counts(counts.get("failed")),
                           obj.get("input_file_id"), obj.get("output_file_id"), obj.get("error_file_id"),
                           message, _unix(obj.get("created_at")), obj)

    async def results(self, io: BatchIO, status: BatchStatus) -> list[BatchLine]:
        lines: list[BatchLine] = []
        for file_id in (status.output_file_id, status.error_file_id):
            if not file_id:
                continue
            for line in _jsonl(await io.download(f"{self.files}/{file_id}/content")):
                custom_id = str(line.get("custom_id"))
                response = line.get("response")
                error = line.get("error")
                if isinstance(response, dict) and response.get("status_code") is not None:
                    code = int(response["status_code"])
                    lines.append(BatchLine(custom_id, "ok" if code < 400 else "error", code, response.get("body")))
                elif isinstance(error, dict) and error.get("code") == "batch_expired":
                    lines.append(BatchLine(custom_id, "expired", None, error))
                elif isinstance(error, dict) and error.get("code") == "batch_cancelled":
                    lines.append(BatchLine(custom_id, "cancelled", None, error))
                else:
                    lines.append(BatchLine(custom_id, "error", None, {"error": error}))
        return lines

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
            oldest = _unix(data[-1].get("created_at")) if data else None
            if not page.get("has_more") or not data or (oldest is not None and oldest < created_after - ORPHAN_SKEW_S):
                return None
            query = {"limit": "100", "after": str(data[-1]["id"])}
        return None


# Anthropic's error types and the HTTP status each stands for (errors page), so a batch line
# is classified exactly as the synchronous answer would have been.
ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                    "api_error": 500, "overloaded_error": 529}


class AnthropicBatches:
    """Anthropic's Message Batches."""

    def __init__(self, settings: BatchSettings) -> None:
        self.batches = settings.paths.get("batches", "/v1/messages/batches")

    def entry_size(self, entry: BatchEntry) -> int:
        return len(_dumps({"custom_id": entry.custom_id, "params": entry.body}).encode()) + 1

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
        values = [_counts(counts.get(k)) or 0 for k in ("processing", "succeeded", "errored", "canceled", "expired")]
        state: BatchState = "running"
        if status == "ended":  # a cancelled batch ends too; what ran before the cancel has its results
            state = "cancelled" if obj.get("cancel_initiated_at") else "ended"
        return BatchStatus(str(obj["id"]), state, status, sum(values),
                           values[1], sum(values[2:]), created_at=_unix(obj.get("created_at")), raw=obj)

    async def results(self, io: BatchIO, status: BatchStatus) -> list[BatchLine]:
        url = status.raw.get("results_url") or f"{self.batches}/{status.batch_id}/results"
        lines: list[BatchLine] = []
        for line in _jsonl(await io.download(str(url))):
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
            oldest = _unix(data[-1].get("created_at")) if data else None
            if not page.get("has_more") or not data or (oldest is not None and oldest < created_after - ORPHAN_SKEW_S):
                break
            query = {"limit": "100", "after_id": str(data[-1]["id"])}
        return found


# google.rpc.Code -> the HTTP status it maps to (google.rpc code.proto)
RPC_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
              12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
GEMINI_STATES: dict[str, BatchState] = {
    "BATCH_STATE_SUCCEEDED": "ended", "BATCH_STATE_FAILED": "failed", "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired", "JOB_STATE_SUCCEEDED": "ended", "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_EXPIRED": "expired"}


class GeminiBatches:
    """Gemini Batch Mode with inline requests."""

    def __init__(self, settings: BatchSettings) -> None:
        self.batches = settings.paths.get("batches", "/batches")

    def entry_size(self, entry: BatchEntry) -> int:
        return len(_dumps({"request": entry.body, "metadata": {"key": entry.custom_id}}).encode()) + 1

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        model = model.removeprefix("models/")
        made = await io.fetch("POST", f"/models/{model}:batchGenerateContent", body={"batch": {
            "display_name": f"hanzo-{tag}",
            "input_config": {"requests": {"requests": [
                {"request": e.body, "metadata": {"key": e.custom_id}} for e in entries]}}}})
        return self._status(made)

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
                           _counts(stats.get("requestCount")), _counts(stats.get("successfulRequestCount")),
                           _counts(stats.get("failedRequestCount")), message=message,
                           created_at=_unix(meta.get("createTime")), raw=op)

    async def results(self, io: BatchIO, status: BatchStatus) -> list[BatchLine]:
        op = status.raw
        output = op.get("response") or (op.get("metadata") or {}).get("output") or {}
        inlined = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
        lines: list[BatchLine] = []
        for n, entry in enumerate(inlined):
            key = (entry.get("metadata") or {}).get("key")
            custom_id = str(key) if key is not None else str(n)  # without a key Gemini keeps input order
            if "response" in entry:
                lines.append(BatchLine(custom_id, "ok", 200, entry["response"]))
            else:
                error = entry.get("error") or {}
                code = RPC_STATUS.get(_counts(error.get("code")) or 2, 500)
                lines.append(BatchLine(custom_id, "error", code, {"error": {
                    "code": code, "message": error.get("message") or "request failed", "details": []}}))
        return lines

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


def batch_api(settings: BatchSettings) -> BatchApi:
    """The batch API object for a provider file's ``batch`` block."""
    if settings.api == "openai":
        return OpenAIBatches(settings)
    if settings.api == "anthropic":
        return AnthropicBatches(settings)
    return GeminiBatches(settings)
