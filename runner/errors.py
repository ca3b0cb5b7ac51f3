"""Every error hanzo-run raises on purpose.

    HanzoError
    ├── UsageError            bad command line or invalid files; nothing was sent (exit 2)
    │   └── ConfigError       provider/job files with problems, each with file:line:col
    ├── ProviderError         one request failed; becomes a result row, never a crash
    └── BatchUndecided        an orphan batch cannot be told apart yet; asked again later

Third-party exceptions (httpx, yaml, jsonschema, sqlite) are translated at the
boundary where they happen and never escape to the user as tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    """The design's error codes. Retryable ones are decided in runner/engine/retry.py.

    A ``StrEnum``: each member is its plain string (``str(ErrorCode.TIMEOUT) == "TIMEOUT"``),
    which is what the database stores and what users see.
    """

    API_KEY_REQUIRED = "API_KEY_REQUIRED"
    INVALID_API_KEY = "INVALID_API_KEY"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
    CLIENT_ERROR = "CLIENT_ERROR"
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
    SERVER_ERROR = "SERVER_ERROR"
    TIMEOUT = "TIMEOUT"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    INVALID_RESPONSE = "INVALID_RESPONSE"
    FETCH_MODELS_FAILED = "FETCH_MODELS_FAILED"
    REQUEST_FAILED = "REQUEST_FAILED"
    MAX_RETRIES_EXCEEDED = "MAX_RETRIES_EXCEEDED"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    CANCELLED = "CANCELLED"


class HanzoError(Exception):
    """Base of every error hanzo-run raises on purpose."""


class UsageError(HanzoError):
    """The command line or a file is wrong; exit 2 before anything is sent."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, printed compiler-style."""

    file: str
    line: int | None
    col: int | None
    path: str  # JSON path inside the document, "" for the whole file
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.col is not None:
                place += f":{self.col}"
        where = f" {self.path}:" if self.path else ""
        return f"{place}:{where} {self.message}"


class ConfigError(UsageError):
    """One or more problems in provider or job files."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(eq=False)
class ProviderError(HanzoError):
    """A request to a provider failed. Recorded as the item's error, never raised to the user."""

    code: ErrorCode
    message: str
    status: int | None = None
    provider: str | None = None
    retry_after: float | None = None  # seconds the server asked us to wait, when it said
    attempts: int = field(default=1, compare=False)
    # Worth another try whatever its code says: a stream cut before its end marker is an
    # INVALID_RESPONSE (and recorded as one when retries run out) that a new attempt may complete.
    transient: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.code = ErrorCode(self.code)  # a plain string from outside runner/ must still be a design code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BatchUndecided(HanzoError):
    """Whether a provider's batch is the orphan of a batch row cannot be told yet (Anthropic: its
    custom ids show only in its results, once it has ended); the row waits and is asked again."""
