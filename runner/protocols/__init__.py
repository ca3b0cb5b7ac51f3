"""Wire protocols, chosen by a provider file's ``protocol``, and batch APIs, by its ``batch.api``.

Each protocol is one module exposing ``ADAPTER`` (an ``Adapter``); the built-in ones
register in ``PROTOCOLS`` through the same line a new one would. Each batch API is a
``BatchApi`` class beside its protocol, registered in ``BATCH_APIS`` the same way. The
provider schema's enums list the same names (tests hold them equal).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config.providers import BatchApiName, BatchSettings, ProtocolName
from . import anthropic, echo, gemini, ollama, openai
from .anthropic_batch import AnthropicBatches
from .base import Adapter, ChatRequest, Completion, ErrorInfo, HttpCall, JsonApi, StreamState
from .batch import BatchApi
from .gemini_batch import GeminiBatches
from .openai_batch import OpenAIBatches

PROTOCOLS: dict[ProtocolName, Adapter] = {
    "openai": openai.ADAPTER,
    "anthropic": anthropic.ADAPTER,
    "gemini": gemini.ADAPTER,
    "ollama": ollama.ADAPTER,
    "echo": echo.ADAPTER,
}


def adapter_for(protocol: str) -> Adapter:
    """The adapter for ``protocol``; KeyError for a name no module registered (never a fallback)."""
    try:
        return PROTOCOLS[protocol]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}") from None


BATCH_APIS: dict[BatchApiName, Callable[[BatchSettings], BatchApi]] = {
    "openai": OpenAIBatches,
    "anthropic": AnthropicBatches,
    "gemini": GeminiBatches,
}


def batch_api(settings: BatchSettings) -> BatchApi:
    """The batch API object for a provider file's ``batch`` block (the schema allows only registered names)."""
    return BATCH_APIS[settings.api](settings)


__all__ = ["BATCH_APIS", "PROTOCOLS", "Adapter", "BatchApi", "ChatRequest", "Completion", "ErrorInfo", "HttpCall",
           "JsonApi", "ProtocolName", "StreamState", "adapter_for", "batch_api"]
