"""One chat request from a program: ``chat`` and ``achat``, the request a job's item makes, without a job.

    >>> from runner import chat
    >>> result = chat("groq", "What is the capital of France?", temperature=0)
    >>> result.text, result.cost_usd
    >>> await achat("anthropic", [{"role": "system", "content": "Be brief."},
    ...                           {"role": "user", "content": "Hi"}], "claude-3-5-haiku-20241022")

A call is sent the way a run sends an item (runner/engine/attempt.py): the key a run would use
(runner/keys/lookup.py), the provider's rate limits and concurrency, retries that wait what the
server asked (Retry-After), the design's error codes, and the answer priced like a result row.
Calls share one lane per provider and event loop, so limits hold across calls: concurrent
``achat`` calls in one loop, and every sync ``chat`` call of the process (they run on one
background loop, which also keeps each provider's connections open between calls).
A failed request raises ProviderError (code, message, status, provider); bad arguments, UsageError.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from jsonschema import Draft202012Validator

from .api import get_provider
from .config.jobs import parse_target
from .config.providers import Provider
from .config.settings import selected_model
from .engine.attempt import Sender
from .engine.costing import PriceBook
from .engine.lanes import Lane
from .errors import ProviderError, UsageError
from .http.client import STREAMED_TEXT, Answer
from .keys.lookup import find_key
from .protocols import ChatRequest
from .resources import load_schema
from .store.records import AttemptRow

Messages = str | Sequence[Mapping[str, Any]]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatResult:
    """One answer, as a job's result row would record it."""

    text: str
    provider: str
    model: str
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None  # None when the model has no known price, never a guessed 0
    price_source: str | None  # where the price came from ("estimated" when usage was not reported)
    latency_ms: float
    ttft_ms: float | None  # streamed answers only: until the first text arrived
    attempts: int  # requests sent, retries included
    http_status: int
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_tokens: int | None = None
    cached_input_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def achat(provider: str, messages: Messages, model: str | None = None, *, stream: bool = False,
                on_text: Callable[[str], None] | None = None, providers_dirs: Iterable[str | Path] = (),
                **params: Any) -> ChatResult:
    """Ask ``provider``'s ``model`` (default: the one chosen with ``use``, else the provider file's) once.

    ``messages``: a string (one user message) or a list of ``{"role", "content"}`` with roles system,
    user and assistant. ``params``: a job's params (temperature, max_tokens, top_p, stop, seed,
    reasoning, extra). ``stream=True`` streams the answer (its ``ttft_ms`` is measured) and tells
    ``on_text`` each piece of text as it arrives; a stream cut short is asked again from the start.
    """
    if model is None and "/" in provider:  # a job's target spelling: provider/model
        provider, _, model = provider.partition("/")
    found = get_provider(provider, tuple(providers_dirs))
    target = parse_target(f"{provider}/{model}" if model else provider, checked_params(params),
                          lambda pid: selected_model(pid) or found.default_model)
    if isinstance(target, str):
        raise UsageError(f"hanzo-run: {target}")
    request = ChatRequest(target.model, as_messages(messages), target.params, stream)
    lane = await _lane(found)
    lane.stopped = None  # a provider stops for the rest of a run; each call here stands alone
    sender = Sender(0, PriceBook(), sleep=anyio.sleep, budget=None, in_flight=nullcontext())
    attempts: list[AttemptRow] = []
    token = STREAMED_TEXT.set(on_text)
    try:
        outcome, cost = await sender.send(lane, request, "chat", attempts)
    finally:
        STREAMED_TEXT.reset(token)
    if isinstance(outcome, ProviderError):
        raise outcome
    return _result(found, target.model, outcome, cost.usd, cost.source, len(attempts))


def chat(provider: str, messages: Messages, model: str | None = None, *, stream: bool = False,
         on_text: Callable[[str], None] | None = None, providers_dirs: Iterable[str | Path] = (),
         **params: Any) -> ChatResult:
    """``achat`` for scripts: it runs on the process's background loop and waits for the answer.
    In async code (a notebook, a server), ``await achat(...)`` instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError("hanzo-run: chat() was called inside a running event loop; use await achat(...)")
    future = asyncio.run_coroutine_threadsafe(
        achat(provider, messages, model, stream=stream, on_text=on_text, providers_dirs=providers_dirs, **params),
        _background_loop())
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()  # the request in flight is dropped, not left running
        raise


def as_messages(messages: Messages) -> tuple[dict[str, str], ...]:
    """``messages`` as a request's: a string is one user message."""
    if isinstance(messages, str):
        return ({"role": "user", "content": messages},)
    found = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ROLES \
                or not isinstance(message.get("content"), str):
            raise UsageError(f"hanzo-run: messages[{index}] must be {{'role': {' | '.join(ROLES)}, "
                             f"'content': text}}; got {message!r:.100}")
        found.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "user" for m in found):
        raise UsageError("hanzo-run: messages hold no user message; pass a string or add {'role': 'user', ...}")
    return tuple(found)


def checked_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` if a job's ``params`` could hold them; else UsageError naming the first problem."""
    error = next(iter(_params_validator().iter_errors(dict(params))), None)
    if error is not None:
        place = ".".join(str(p) for p in error.absolute_path)
        known = ", ".join(load_schema("job")["$defs"]["params"]["properties"])
        raise UsageError(f"hanzo-run: parameter{' ' + place if place else ''}: {error.message} (parameters: {known})")
    return dict(params)


@cache
def _params_validator() -> Draft202012Validator:
    defs = load_schema("job")["$defs"]
    return Draft202012Validator({"$ref": "#/$defs/params", "$defs": defs})


def _result(provider: Provider, model: str, answer: Answer, cost: float | None, source: str | None,
            attempts: int) -> ChatResult:
    c = answer.completion
    return ChatResult(c.text, provider.id, model, c.finish_reason, c.input_tokens, c.output_tokens, cost, source,
                      answer.latency_ms, answer.ttft_ms, attempts, answer.http_status, c.tool_calls,
                      c.reasoning_tokens, c.cached_input_tokens)


@dataclass
class _LoopLanes:
    """One event loop's lanes by provider id: (the provider as loaded, its key, its lane). A lane's limiters and
    connections belong to the loop they were made on; a changed provider file or key gets a new lane."""

    lanes: dict[str, tuple[Provider, str | None, Lane]]
    closer: asyncio.Task[None]  # closes the lanes' connections when the loop ends (asyncio.run cancels it)


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopLanes] = weakref.WeakKeyDictionary()


async def _lane(provider: Provider) -> Lane:
    loop = asyncio.get_running_loop()
    if loop not in _loops:
        lanes: dict[str, tuple[Provider, str | None, Lane]] = {}
        _loops[loop] = _LoopLanes(lanes, loop.create_task(_close_when_cancelled(lanes), name="hanzo-run-lanes"))
    lanes = _loops[loop].lanes
    key = find_key(provider).key
    known = lanes.get(provider.id)
    if known is not None and known[0] == provider and known[1] == key:
        return known[2]
    lane = Lane.open(provider, iter(()))
    lanes[provider.id] = (provider, key, lane)
    if known is not None and known[2].client is not None:
        await known[2].client.aclose()
    return lane


async def _close_when_cancelled(lanes: dict[str, tuple[Provider, str | None, Lane]]) -> None:
    try:
        await asyncio.get_running_loop().create_future()  # never set: waits for the loop's end
    finally:
        for _, _, lane in lanes.values():
            if lane.client is not None:
                await lane.client.aclose()
        lanes.clear()


_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The loop sync ``chat`` calls run on, started on first use in a daemon thread (it never holds up exit)."""
    global _background
    with _background_lock:
        if _background is None:
            _background = asyncio.new_event_loop()
            threading.Thread(target=_background.run_forever, name="hanzo-run-chat", daemon=True).start()
            atexit.register(_close_background)
        return _background


def _close_background() -> None:
    """At exit: close the background loop's connections (else aiohttp warns of unclosed sessions)."""
    loop = _background
    entry = _loops.get(loop) if loop is not None else None
    if loop is None or entry is None:
        return

    async def close() -> None:
        entry.closer.cancel()
        await asyncio.gather(entry.closer, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=5)
    except Exception:  # noqa: BLE001 (exiting anyway: a slow close must not hang or fail the exit)
        pass


__all__ = ["ChatResult", "achat", "as_messages", "chat", "checked_params"]
