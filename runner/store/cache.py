"""The response cache: answers already paid for, so a rerun of an unchanged item asks nobody.

One SQLite file in the user's cache folder (``HANZO_RUN_CACHE_DIR`` when set, else the
platform's), shared by every job and by several hanzo-run processes at once: WAL mode, a
busy timeout, and one short transaction per batch of answers (a run stores them after their
results are committed, never one commit per answer), so two runs never corrupt or block each
other for long. Entries are keyed by ``request_key``, a SHA-256 of the exact request
minus streaming; API keys and headers are never part of the key and never stored. Only
ok answers are cached: an error is worth asking again.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import UsageError

DEFAULT_TTL_S = 14 * 24 * 3600.0
CACHE_FILE = "responses.db"
# Streaming changes how an answer arrives, not what it is: a streamed and a plain request share an entry.
STREAMING_FIELDS = frozenset({"stream", "stream_options"})

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    response_text TEXT NOT NULL,
    finish_reason TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_ms REAL,
    ttft_ms REAL,
    http_status INTEGER,
    cost_usd REAL,
    price_source TEXT,
    tool_calls TEXT,
    reasoning_tokens INTEGER,
    cached_input_tokens INTEGER,
    cache_write_tokens INTEGER,
    created_at REAL NOT NULL
)"""


def request_key(base_url: str, protocol: str, model: str, body: Mapping[str, Any], repeat_index: int) -> str:
    """The cache key of one request: SHA-256 over its canonical JSON, streaming fields left out.

    ``repeat_index`` is part of the key so ``repeat: 5`` still asks five times on the first run.
    """
    request = {
        "base_url": base_url.rstrip("/"),
        "protocol": protocol,
        "model": model,
        "body": {k: v for k, v in body.items() if k not in STREAMING_FIELDS},
        "repeat_index": repeat_index,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    """``HANZO_RUN_CACHE_DIR`` when set, else the platform's user cache folder for hanzo-run."""
    override = os.environ.get("HANZO_RUN_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs  # only needed when the override is unset

    return Path(platformdirs.user_cache_dir("hanzo-run", appauthor=False))


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """The answer fields a result row is rebuilt from; ``cost_usd`` is what the first run paid."""

    response_text: str
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    http_status: int | None = None
    cost_usd: float | None = None
    price_source: str | None = None
    tool_calls: str | None = None  # JSON list of {name, arguments}, as the results column holds it
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    created_at: float | None = None  # epoch seconds; set by the cache when stored

    @classmethod
    def from_result(cls, row: Mapping[str, Any]) -> CachedAnswer:
        """The cacheable part of a result row; only ok rows have an answer worth keeping."""
        if row.get("status") != "ok" or row.get("response_text") is None:
            raise ValueError(f"only ok answers are cached, not status {row.get('status')!r}")
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls) if f.name != "created_at"}
        return cls(**values)

    def result_fields(self) -> dict[str, Any]:
        """The result-row columns this answer fills (``created_at`` is the cache's, not the row's)."""
        out = asdict(self)
        del out["created_at"]
        return out


_COLUMNS = tuple(f.name for f in fields(CachedAnswer))  # created_at last
_GET = f"SELECT {', '.join(_COLUMNS)} FROM responses WHERE key = ?"
_PUT = (f"INSERT OR REPLACE INTO responses (key, {', '.join(_COLUMNS)})"
        f" VALUES (?, {', '.join('?' for _ in _COLUMNS)})")


class ResponseCache:
    """Answers by request key. Open with ``ResponseCache.open()``; close when done."""

    def __init__(self, db: sqlite_utils.Database, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.path = path
        self._clock = clock

    @classmethod
    def open(cls, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> ResponseCache:
        """The cache file at ``path``, else ``responses.db`` in ``cache_dir()``; created when missing."""
        path = path if path is not None else cache_dir() / CACHE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"hanzo-run: the response cache folder {path.parent} is not a folder (a file is in the "
                             "way); point HANZO_RUN_CACHE_DIR at a folder, or run with --no-cache") from None
        try:
            return cls._open(path, clock)
        except sqlite3.DatabaseError as e:
            raise UsageError(f"hanzo-run: the response cache {path} cannot be used: SQLite says: {e}; it holds only "
                             f"cached answers: delete it (rm {path}) and run again, or run with --no-cache") from None

    @classmethod
    def _open(cls, path: Path, clock: Callable[[], float]) -> ResponseCache:
        db = sqlite_utils.Database(path)
        try:
            # Another process may hold the write lock for a moment; wait for it rather than fail.
            db.conn.execute("PRAGMA busy_timeout = 10000")
            # Two processes creating the file at once: switching it to WAL needs the file to itself, and
            # SQLite answers "locked" at once instead of waiting, so the set-up is tried again briefly.
            for attempt in range(100):
                try:
                    if db.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        db.conn.execute("PRAGMA journal_mode = wal")  # persistent: set once per file
                    db.execute(_SCHEMA)
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or attempt == 99:
                        raise
                    time.sleep(0.05)
            db.conn.execute("PRAGMA synchronous = NORMAL")  # a lost last entry costs one request, never corruption
        except BaseException:
            db.close()
            raise
        return cls(db, path, clock)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str, ttl_s: float | None = DEFAULT_TTL_S) -> CachedAnswer | None:
        """The answer stored under ``key``, or None when absent or older than ``ttl_s`` (None: any age)."""
        found = self.db.conn.execute(_GET, [key]).fetchone()  # once per item: no sqlite-utils layer
        if found is None:
            return None
        answer = CachedAnswer(*found)
        if ttl_s is not None and answer.created_at is not None and answer.created_at < self._clock() - ttl_s:
            return None
        return answer

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store (or replace) the answer under ``key``, stamped now, committed at once."""
        self.put_many([(key, answer)])

    def put_many(self, answers: Iterable[tuple[str, CachedAnswer]]) -> None:
        """Store (or replace) each answer under its key, stamped now: one transaction, one commit for them all
        (a commit per answer cost a run 0.15 ms of CPU per item)."""
        now = self._clock()
        with self.db.atomic():
            # getattr per column: asdict() would deep-copy every field, per item
            self.db.conn.executemany(_PUT, ([key, *(getattr(a, c) for c in _COLUMNS[:-1]), now] for key, a in answers))

    def stats(self) -> dict[str, Any]:
        """``entries``, ``bytes`` (the database's size) and the ``oldest``/``newest`` entry times (ISO UTC)."""
        row = next(self.db.query("SELECT count(*) AS entries, min(created_at) AS oldest,"
                                 " max(created_at) AS newest FROM responses"))
        page_count = self.db.conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = self.db.conn.execute("PRAGMA page_size").fetchone()[0]
        return {"entries": row["entries"], "bytes": page_count * page_size,
                "oldest": _iso(row["oldest"]), "newest": _iso(row["newest"])}

    def clear(self, older_than_s: float | None = None) -> int:
        """Delete entries older than ``older_than_s`` seconds (every entry when None); returns how many."""
        if older_than_s is None:
            cursor = self.db.execute("DELETE FROM responses")
        else:
            cursor = self.db.execute("DELETE FROM responses WHERE created_at < ?", [self._clock() - older_than_s])
        return cursor.rowcount


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
