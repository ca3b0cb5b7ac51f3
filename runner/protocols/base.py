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
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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

    def add_whole_calls(self, calls: list[dict[str, Any]]) -> None:
        """Tool calls a stream sends whole (Gemini, Ollama) rather than in pieces, after those seen before."""
        if calls:
            if self.tool_parts is None:
                self.tool_parts = {}
            for call in calls:
                self.tool_parts[len(self.tool_parts)] = [call["name"], call["arguments"]]

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
    status: int | None = None  # the HTTP status the body itself names (OpenRouter's, LiteLLM's, Gemini's code)


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


class Adapter(ABC):
    """A wire protocol. Subclass it: the four abstract methods are required (a subclass missing one
    cannot be instantiated), the rest are defaults a protocol overrides where its wire differs."""

    #: How a streamed answer is framed: server-sent events or one JSON object per line.
    stream_format: Literal["sse", "ndjson"]
    #: Query for the key check's GET, where that GET is a model list: its smallest page.
    key_check_query: Mapping[str, str] | None = None

    @abstractmethod
    def build(self, request: ChatRequest) -> HttpCall:
        """The HTTP call for ``request`` (streaming or not, as it says)."""
        ...

    @abstractmethod
    def parse(self, body: Any) -> Completion:
        """Read a 2xx JSON answer.

        Raise ``ProviderError`` when it carries an error or lacks its fields.
        """
        ...

    @abstractmethod
    def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
        """Apply one decoded stream event (SSE ``event:`` name or None, and its JSON ``data``).

        Append text to ``state.parts``, record finish reason and usage, set
        ``state.done`` at the protocol's end marker, and raise ``ProviderError`` for an
        error event. SSE ``data: [DONE]`` is handled by the caller, not here.
        """
        ...

    @abstractmethod
    def error_info(self, body: Any) -> ErrorInfo:
        """Read an error body (any JSON value, or a string when it was not JSON)."""
        ...

    def classify(self, status: int, info: ErrorInfo) -> ErrorCode:
        """The design's error code for an HTTP error answer whose body said ``info``.

        A protocol reads its own structured fields first (``classify_http``'s ``known``);
        the message's words are only the last resort, where status and fields leave it open.
        """
        return classify_http(status, info)

    def body_dialect(self, provider: Provider) -> Callable[[dict[str, Any]], None] | None:
        """What rewrites a built body for ``provider`` when its server speaks a dialect of the protocol
        (another name for the output cap, another shape of a JSON schema), chosen once per provider and
        applied to every body sent, synchronously or by batch; None when it speaks the protocol as written."""
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


def classify_http(status: int, info: ErrorInfo,
                  known: Mapping[str, ErrorCode] = MappingProxyType({})) -> ErrorCode:
    """An HTTP error answer's code: the first of the protocol's ``known`` reasons (in their order)
    that ``info.reason`` names, else what the status says (``classify_status``)."""
    if known:
        words = set(info.reason.lower().split())
        for reason, code in known.items():
            if reason in words:
                return code
    return classify_status(status, info.message)


# Last resort for a 429 whose body has no machine-readable reason: wording that only an empty
# wallet or a used-up plan uses. Not "billing": rate-limit answers link to the billing page too.
_QUOTA_WORDS = ("insufficient_quota", "exceeded your current quota", "usage limit", "spend limit",
                "insufficient credits", "credit balance")


def classify_status(status: int, message: str = "") -> ErrorCode:
    """What the status says; the message's words only where the status leaves it open."""
    text = message.lower()
    if status == 401:
        return ErrorCode.INVALID_API_KEY
    if status == 402:
        return ErrorCode.QUOTA_EXHAUSTED
    if status == 403:
        moderated = any(s in text for s in ("moderation", "flagged"))
        return ErrorCode.CLIENT_ERROR if moderated else ErrorCode.INVALID_API_KEY
    if status in (404, 410):
        # OpenRouter: "No endpoints found for <model>"; a wrong path is a client error.
        model = "model" in text or "no endpoints found" in text
        return ErrorCode.MODEL_NOT_FOUND if model else ErrorCode.CLIENT_ERROR
    if status == 408:
        return ErrorCode.TIMEOUT
    if status in (429, 498):
        quota = any(s in text for s in _QUOTA_WORDS)
        return ErrorCode.QUOTA_EXHAUSTED if quota else ErrorCode.RATE_LIMIT_EXCEEDED
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


# In-band errors (inside a 2xx answer or stream) have no HTTP status of their own. Where the
# body names one (OpenRouter, LiteLLM, Gemini) it is used; else a reason that marks the request
# itself as wrong reads as a 400, and anything else (a server error, overload, or an unknown
# kind such as Ollama's bare text) as a 500: worth another try, like the same answer over HTTP.
_CLIENT_REASONS = frozenset({"invalid_request_error", "invalid_argument", "failed_precondition",
                             "permission_error", "authentication_error", "not_found_error"})


def inband_error(adapter: Adapter, info: ErrorInfo, default: ErrorCode) -> ProviderError:
    """The ProviderError for an error the provider sent inside a successful HTTP answer.

    Classified by ``adapter`` as the status it stands for; a plain client error becomes
    ``default`` (the caller's word for a failed answer).
    """
    status = info.status
    if status is None or status < 400:
        status = 400 if _CLIENT_REASONS.intersection(info.reason.lower().split()) else 500
    code = adapter.classify(status, info)
    if code is ErrorCode.CLIENT_ERROR:
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
        raise inband_error(adapter, adapter.error_info(body), ErrorCode.INVALID_RESPONSE)
    return body
