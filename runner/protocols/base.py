"""The one interface every wire protocol implements.

An adapter is everything hanzo-run knows about one protocol, and pure translation:
it turns a ``ChatRequest`` into an ``HttpCall``, reads answers, stream events, error
bodies and rate-limit headers back, and names the design error code for a failed
answer. It never does I/O itself: where it needs more requests (listing models page
by page) it is handed a ``JsonApi``, which ``runner/http/client.py`` implements.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from ..config.outputs import ResponseSpec, ToolSet
from ..config.providers import ModelInfo, Provider
from ..errors import ErrorCode, ProviderError
from .features import assemble_tool_calls, tool_finish


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the job asks of one model, before any protocol's format is applied.

    ``messages`` hold roles ``system``, ``user`` and ``assistant``; the job's system
    prompt is the first message when set. ``params`` holds the job's common
    parameters: ``temperature``, ``max_tokens``, ``top_p``, ``stop`` (a list),
    ``seed``, ``reasoning`` and ``extra`` (a dict merged over the body as-is).

    When ``rich``, messages may also have content parts (text, images), assistant
    ``tool_calls`` and ``tool`` results (runner/config/messages.py); ``response`` asks for
    JSON, ``tools`` offers tools; ``image_limit`` is the provider's size limit per image.
    """

    model: str
    messages: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any]
    stream: bool = False
    response: ResponseSpec | None = None
    tools: ToolSet | None = None
    rich: bool = False
    image_limit: int | None = None


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
    tool_calls: list[dict[str, Any]] | None = None  # [{name, arguments}], arguments parsed when JSON
    reasoning_tokens: int | None = None  # part of output_tokens (every protocol counts them there)
    cached_input_tokens: int | None = None  # part of input_tokens, read from the provider's cache
    cache_write_tokens: int | None = None  # part of input_tokens, written to the cache (Anthropic)


@dataclass(slots=True)
class StreamState:
    """What a stream has told so far; adapters fill it event by event."""

    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    done: bool = False  # the protocol's end marker was seen
    # Tool calls as they arrive, by the protocol's index: [name, argument pieces or a parsed object].
    tool_parts: dict[int, list[Any]] | None = None
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None

    def completion(self) -> Completion:
        completion = Completion("".join(self.parts), self.finish_reason, self.input_tokens,
                                self.output_tokens, self.cost_usd, None, self.reasoning_tokens,
                                self.cached_input_tokens, self.cache_write_tokens)
        if self.tool_parts is not None:
            completion.tool_calls = assemble_tool_calls(self.tool_parts)
            completion.finish_reason = tool_finish(completion.finish_reason, completion.tool_calls)
        return completion


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


class JsonApi(Protocol):
    """The requests an adapter may make beyond the chat call: JSON answers, failures as ProviderError."""

    async def get(self, path: str, query: Mapping[str, str] | None = None, *,
                  within: float | None = None) -> Any:
        """GET ``path`` (relative to the base URL, or absolute)."""
        ...

    async def fetch(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                    body: Any = None, within: float | None = None) -> Any:
        """Any other method, with a JSON ``body``."""
        ...


class Adapter(Protocol):
    """A wire protocol. Subclass it: the four methods without a body are required, the rest
    are defaults a protocol overrides where its wire differs."""

    #: How a streamed answer is framed: server-sent events or one JSON object per line.
    stream_format: Literal["sse", "ndjson"]
    #: Query for the key check's GET, where that GET is a model list: its smallest page.
    key_check_query: Mapping[str, str] | None = None

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

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        """The design's error code for an HTTP error answer whose body said ``info``."""
        return classify_http(status, info.reason, info.message)

    def output_cap_field(self, provider: Provider) -> str | None:
        """The request field that replaces ``max_tokens`` for ``provider``, None to keep it."""
        return None

    def rate_limit_pause(self, headers: Mapping[str, str]) -> float | None:
        """Seconds until the server's reset when its rate-limit headers say nothing is left, else None."""
        return None

    async def list_models(self, api: JsonApi, provider: Provider) -> list[ModelInfo]:
        """Every model the provider's listing offers (``provider.list_path`` is set)."""
        return list(provider.known.values())

    async def loaded_models(self, api: JsonApi, provider: Provider, within: float) -> tuple[str, ...]:
        """The models a local server has loaded now (or offers, when it cannot tell)."""
        return ()

    def transport(self) -> httpx.AsyncBaseTransport | None:
        """An in-process transport for an offline protocol; None to go over the network."""
        return None


def classify_http(status: int, reason: str, message: str) -> ErrorCode:
    """The shared reading of an HTTP error answer: its status, refined by the provider's reason words."""
    r = f"{reason} {message}".lower()
    if status == 402 or any(s in r for s in ("insufficient_quota", "spend_limit", "billing", "perday",
                                             "per_day", "credit")):
        return ErrorCode.QUOTA_EXHAUSTED
    if status == 401 or any(s in r for s in ("api_key_invalid", "invalid_api_key", "authentication_error")):
        return ErrorCode.INVALID_API_KEY
    if status == 403:
        return ErrorCode.CLIENT_ERROR if any(s in r for s in ("moderation", "flagged")) else ErrorCode.INVALID_API_KEY
    if status in (404, 410):
        return ErrorCode.MODEL_NOT_FOUND if "model" in r or "not_found" in r else ErrorCode.CLIENT_ERROR
    if status == 408:
        return ErrorCode.TIMEOUT
    if status in (429, 498):
        return ErrorCode.RATE_LIMIT_EXCEEDED
    if status >= 500:
        return ErrorCode.SERVER_ERROR
    return ErrorCode.CLIENT_ERROR


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
