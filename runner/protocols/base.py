"""The one interface every wire protocol implements.

An adapter is pure translation: it turns a ``ChatRequest`` into an ``HttpCall`` and
reads answers, stream events and error bodies back. It never does I/O; sending,
timing, retrying and error classification by HTTP status live in ``runner/client.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import ErrorCode, ProviderError


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the job asks of one model, before any protocol's format is applied.

    ``messages`` hold roles ``system``, ``user`` and ``assistant``; the job's system
    prompt is the first message when set. ``params`` holds the job's common
    parameters: ``temperature``, ``max_tokens``, ``top_p``, ``stop`` (a list),
    ``seed`` and ``extra`` (a dict merged over the body as-is).
    """

    model: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    stream: bool = False


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One HTTP request, relative to the provider's ``base_url``."""

    path: str
    json: dict[str, Any]
    query: Mapping[str, str] | None = None
    method: str = "POST"


@dataclass(slots=True)
class Completion:
    """A finished answer as hanzo-run records it."""

    text: str
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None  # when the provider reports it itself (OpenRouter's usage.cost)


@dataclass(slots=True)
class StreamState:
    """What a stream has told so far; adapters fill it event by event."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    done: bool = False  # the protocol's end marker was seen

    def completion(self) -> Completion:
        return Completion("".join(self.parts), self.finish_reason, self.input_tokens,
                          self.output_tokens, self.cost_usd)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What an error body says, in the provider's own shape.

    ``reason`` is the machine-readable part (OpenAI ``code``/``type``, Anthropic
    ``error.type``, Gemini ``status`` plus ``details[].reason``), used to tell an
    exhausted quota or a bad key from an ordinary rate limit or bad request.
    """

    message: str
    reason: str = ""
    retry_after: float | None = None  # from the body, e.g. Gemini's RetryInfo


class Adapter(Protocol):
    #: How a streamed answer is framed: server-sent events or one JSON object per line.
    stream_format: Literal["sse", "ndjson"]

    def build(self, request: ChatRequest) -> HttpCall:
        """The HTTP call for ``request`` (streaming or not, as it says)."""
        ...

    def parse(self, body: Any) -> Completion:
        """Read a 2xx JSON answer.

        Raise ``ProviderError`` when it carries an error or lacks its fields.
        """
        ...

    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        """Apply one decoded stream event (SSE ``event:`` name or None, and its JSON ``data``).

        Append text to ``state.parts``, record finish reason and usage, set
        ``state.done`` at the protocol's end marker, and raise ``ProviderError`` for an
        error event. SSE ``data: [DONE]`` is handled by the caller, not here.
        """
        ...

    def error_info(self, body: Any) -> ErrorInfo:
        """Read an error body (any JSON value, or a string when it was not JSON)."""
        ...


def invalid_response(message: str) -> ProviderError:
    return ProviderError(ErrorCode.INVALID_RESPONSE, message)


def as_int(value: Any) -> int | None:
    """A token count from a JSON field, None when absent or not a number."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def copy_params(
    params: Mapping[str, Any], names: Mapping[str, str], into: dict[str, Any]
) -> dict[str, Any]:
    """Copy the params in ``names`` that are set into ``into``, under their wire names."""
    for name, wire in names.items():
        value = params.get(name)
        if value is not None:
            into[wire] = value
    return into


_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def excerpt(body: Any, limit: int = 200) -> str:
    """A short single-line view of a body that is not the provider's error JSON (an HTML page)."""
    if body is None or body == "":
        return "(empty body)"
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    if text.lstrip().startswith("<"):  # a proxy's HTML page: keep its words, not its markup
        text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# In-band errors (inside a 2xx answer or stream) have no HTTP status to classify them by,
# so the provider's own reason words decide whether a retry can help.
_SERVER_REASONS = frozenset(
    {"api_error", "overloaded_error", "server_error", "internal", "unavailable"})
_RATE_REASONS = frozenset(
    {"rate_limit_error", "rate_limit_exceeded", "resource_exhausted", "429"})


def inband_error(info: ErrorInfo, default: ErrorCode) -> ProviderError:
    """The ProviderError for an error the provider sent inside a successful HTTP answer."""
    words = info.reason.lower().split()
    server = any(w in _SERVER_REASONS or (w.isdigit() and 500 <= int(w) <= 599) for w in words)
    if server or "overload" in info.message.lower():
        code = ErrorCode.SERVER_ERROR
    elif any(w in _RATE_REASONS for w in words):
        code = ErrorCode.RATE_LIMIT_EXCEEDED
    else:
        code = default
    return ProviderError(code, info.message, retry_after=info.retry_after)


def merge_extra(body: dict[str, Any], params: Mapping[str, Any]) -> None:
    """The job's ``params.extra``, sent as-is over the mapped fields (provider-specific options)."""
    extra = params.get("extra")
    if extra:
        body.update(extra)


def answer_object(body: Any, adapter: Adapter) -> dict[str, Any]:
    """A 2xx answer as a JSON object; an error inside it (LM Studio's 200 ``{"error": ...}``) raised."""
    if not isinstance(body, dict):
        raise invalid_response(f"expected a JSON object, got: {excerpt(body)}")
    if body.get("error") is not None or body.get("type") == "error":
        raise inband_error(adapter.error_info(body), ErrorCode.INVALID_RESPONSE)
    return body
