"""The one interface every wire protocol implements.

An adapter is pure translation: it turns a ``ChatRequest`` into an ``HttpCall`` and
reads answers, stream events and error bodies back. It never does I/O; sending,
timing, retrying and error classification by HTTP status live in ``runner/client.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..errors import ProviderError


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
        return Completion("".join(self.parts), self.finish_reason, self.input_tokens, self.output_tokens,
                          self.cost_usd)


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
        """Read a 2xx JSON answer; raise ``ProviderError`` when it carries an error or lacks its fields."""
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
    return ProviderError("INVALID_RESPONSE", message)


def as_int(value: Any) -> int | None:
    """A token count from a JSON field, None when absent or not a number."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
