"""What every provider batch API shares: the interface (``BatchApi``), the shapes a batch and its
lines are read into, and small wire helpers. Each API lives beside its protocol
(``openai_batch``, ``anthropic_batch``, ``gemini_batch``) and registers in ``BATCH_APIS``
(runner/protocols/__init__.py), chosen by a provider file's ``batch.api``.

The request bodies are the synchronous ones (the protocol adapter's ``build``, not streamed);
each answer body is read by the adapter's ``parse`` and each failed one by its ``error_info`` and
``classify``, so a batch result row is the row a synchronous answer would have made. Like the
adapters these objects do no I/O of their own: they are handed a ``BatchIO``.

Every batch carries a ``tag`` (unique per batch row of a results database) where the API lets
it: an orphan (created, but the process died before its id was committed) is recognised by it.
"""

from __future__ import annotations

import datetime
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import ErrorCode, ProviderError

# What became of a batch as a whole, whatever the API calls it.
BatchState = Literal["running", "ended", "failed", "expired", "cancelled"]
# What became of one request in it.
LineKind = Literal["ok", "error", "expired", "cancelled"]
LIST_PAGES = 20  # pages of a provider's batch listing searched for an orphan (newest first)
ORPHAN_SKEW_S = 300.0  # clock difference allowed between this machine and the provider


class BatchIO(Protocol):
    """The requests a batch API makes; runner/http/client.py's ProviderClient implements them."""

    @property
    def base_url(self) -> str:
        ...

    async def fetch(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                    body: Any = None, within: float | None = None) -> Any:
        ...

    async def upload(self, path: str, fields: Mapping[str, str], filename: str, content: bytes) -> Any:
        ...

    async def exchange(self, method: str, path: str, *, headers: Mapping[str, str],
                       content: bytes) -> tuple[Mapping[str, str], Any]:
        """One request of raw ``content`` with extra ``headers``; the answer's headers and JSON body."""
        ...

    def download_lines(self, path: str) -> AsyncGenerator[list[bytes], None]:
        """A file's lines as they arrive (a batch's JSONL results), never the whole file at once."""
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


class BatchApi(ABC):
    """One provider batch API: pure wire shapes, its requests made through the ``BatchIO`` it is handed."""

    #: How much of ``max_bytes`` one entry uses (its JSONL line, its share of the create body).
    @abstractmethod
    def entry_size(self, entry: BatchEntry) -> int:
        ...

    @abstractmethod
    async def create(self, io: BatchIO, model: str, entries: Sequence[BatchEntry], tag: str,
                     metadata: Mapping[str, str]) -> BatchStatus:
        """Create the batch; its status right after (its id above all)."""
        ...

    @abstractmethod
    async def status(self, io: BatchIO, batch_id: str) -> BatchStatus:
        ...

    @abstractmethod
    def results(self, io: BatchIO, status: BatchStatus) -> AsyncGenerator[BatchLine, None]:
        """The lines of an ended batch as they are read (any order; match them by custom_id). A results
        file is read as it downloads, never whole; reading again starts from its first line."""
        ...

    @abstractmethod
    async def cancel(self, io: BatchIO, batch_id: str) -> None:
        ...

    @abstractmethod
    async def find(self, io: BatchIO, tag: str, *, created_after: float, count: int,
                   known: frozenset[str]) -> BatchStatus | None:
        """A batch created with ``tag`` whose id was never recorded, or None when there is none.

        Recognised by the tag the batch carries, never by its size and time; ``BatchUndecided``
        when the API cannot tell yet."""
        ...


def refused_for_good(error: ProviderError) -> bool:
    """Whether asking again will not change it: a 4xx answer other than a timeout or a rate limit, or a
    request refused before it was sent (a URL off the provider's host, which no retry puts back on it)."""
    if error.status is None:
        return error.code is ErrorCode.CLIENT_ERROR
    return 400 <= error.status < 500 and error.status not in (408, 429)


def count_of(value: Any) -> int | None:
    """A count from a JSON number or a numeric string (Gemini sends int64 as strings); None otherwise."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def unix_time(value: Any) -> float | None:
    """Unix seconds from a number or an RFC 3339 time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


async def jsonl_objects(io: BatchIO, path: str) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON objects of the JSON-lines file at ``path``, as it downloads (blank lines and non-objects
    skipped; bad JSON raises ValueError)."""
    async with aclosing(io.download_lines(path)) as pieces:  # a reader that stops early ends the download
        async for lines in pieces:
            for line in lines:
                if line.strip():
                    value = json.loads(line.decode("utf-8", "replace"))
                    if isinstance(value, dict):
                        yield value


def compact_json(value: Any) -> str:
    """A body as one line, as sent (its length counts against the provider's byte limit)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
