"""Anthropic's Message Batches: ``POST /v1/messages/batches`` with custom_id + params, poll
``processing_status``, results JSONL from ``results_url`` (any order).

A Message Batch has no metadata, so the batch's tag rides in each request's custom id
(``<tag>_<custom id>``, within Anthropic's 64 characters) and an orphan is recognised by its
results, once it has ended. ``results_url`` is read on the provider's own base_url: the key
never goes to the host the URL names (behind a proxy it would go around it).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

from ..config.providers import BatchSettings
from ..errors import BatchUndecided, ErrorCode, ProviderError
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
    refused_for_good,
    unix_time,
)

# Anthropic's error types and the HTTP status each stands for (errors page), so a batch line
# is classified exactly as the synchronous answer would have been.
ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                    "api_error": 500, "overloaded_error": 529}
TAG_ROOM = len("0123456789abcdef_")  # what the tag adds to each custom id (a 16-hex-digit tag and "_")


def tagged(tag: str, custom_id: str) -> str:
    """The custom id sent for ``custom_id`` in the batch tagged ``tag``."""
    return f"{tag}_{custom_id}"


def untagged(sent: str) -> str:
    """The custom id a sent one stands for (as sent when it has no tag: a batch from before tags)."""
    return sent.partition("_")[2] or sent


class AnthropicBatches(BatchApi):
    """Anthropic's Message Batches."""

    def __init__(self, settings: BatchSettings) -> None:
        self.batches = settings.paths.get("batches", "/v1/messages/batches")

    def entry_size(self, entry: BatchEntry) -> int:
        return len(compact_json({"custom_id": entry.custom_id, "params": entry.body}).encode()) + 1 + TAG_ROOM

    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        made = await io.fetch("POST", self.batches, body={
            "requests": [{"custom_id": tagged(tag, e.custom_id), "params": e.body} for e in entries]})
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

    def _results_path(self, status: BatchStatus) -> str:
        """Where the results are read: ``results_url``'s path from the batches path on, under base_url."""
        url = str(status.raw.get("results_url") or f"{self.batches}/{status.batch_id}/results")
        parts = urlsplit(url)
        start = parts.path.find(self.batches + "/")
        if start < 0:
            raise ProviderError(ErrorCode.CLIENT_ERROR, f"the batch {status.batch_id}'s results_url {url} is not "
                                f"under the batches path {self.batches}: not followed, the key goes only to the "
                                "provider's base_url")
        return parts.path[start:] + (f"?{parts.query}" if parts.query else "")

    async def results(self, io: BatchIO, status: BatchStatus) -> AsyncGenerator[BatchLine, None]:
        async for line in jsonl_objects(io, self._results_path(status)):
            custom_id = untagged(str(line.get("custom_id")))
            result = line.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                yield BatchLine(custom_id, "ok", 200, result.get("message"))
            elif kind == "errored":
                error = result.get("error") or {}
                inner: dict[str, Any] = error["error"] if isinstance(error.get("error"), dict) else error
                code = ANTHROPIC_STATUS.get(str(inner.get("type")), 500)
                yield BatchLine(custom_id, "error", code, {"type": "error", "error": inner})
            elif kind == "canceled":
                yield BatchLine(custom_id, "cancelled")
            elif kind == "expired":
                yield BatchLine(custom_id, "expired")
            else:
                yield BatchLine(custom_id, "error", None, {"error": {"message": f"unknown result: {line}"}})

    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        await io.fetch("POST", f"{self.batches}/{batch_id}/cancel")

    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        """The unknown batch whose results carry ``tag``; BatchUndecided while a batch that could be it
        still runs (its results, and so its custom ids, exist only once it has ended)."""
        query = {"limit": "100"}
        running: list[str] = []
        for _ in range(LIST_PAGES):
            page = await io.fetch("GET", self.batches, query=query)
            data = page.get("data") or []
            for obj in data:  # newest first
                status = self._status(obj)
                # Request count and creation time only narrow the search; the tag decides.
                if status.batch_id in known or status.total != count or \
                        (status.created_at or 0.0) < created_after - ORPHAN_SKEW_S:
                    continue
                if status.state == "running":  # the listing may lag behind the batch itself
                    status = await self.status(io, status.batch_id)
                if status.state == "running":
                    running.append(status.batch_id)
                elif await self._carries(io, status, tag):
                    return status
            oldest = unix_time(data[-1].get("created_at")) if data else None
            if not page.get("has_more") or not data or (oldest is not None and oldest < created_after - ORPHAN_SKEW_S):
                break
            query = {"limit": "100", "after_id": str(data[-1]["id"])}
        if running:
            raise BatchUndecided(f"batch {', '.join(running)} may be the one created before the last run stopped; "
                                 "it is told apart by its results, once it has ended")
        return None

    async def _carries(self, io: BatchIO, status: BatchStatus, tag: str) -> bool:
        """Whether the ended batch's requests carry ``tag`` (False when its results are gone for good)."""
        prefix = tagged(tag, "")
        try:
            async with aclosing(jsonl_objects(io, self._results_path(status))) as lines:
                async for line in lines:  # every line of a batch carries its tag: the first one tells
                    return str(line.get("custom_id")).startswith(prefix)
        except ProviderError as error:
            if refused_for_good(error):
                return False
            raise
        return False
