"""Wire protocols, chosen by a provider file's ``protocol``.

Each protocol is one module exposing ``ADAPTER`` (an ``Adapter``); the built-in ones
register in ``PROTOCOLS`` through the same line a new one would. The provider schema's
``protocol`` enum lists the same names (a test holds the two equal).
"""

from __future__ import annotations

from ..config.providers import ProtocolName
from . import anthropic, echo, gemini, ollama, openai
from .base import Adapter, ChatRequest, Completion, ErrorInfo, HttpCall, JsonApi, StreamState

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


__all__ = ["PROTOCOLS", "Adapter", "ChatRequest", "Completion", "ErrorInfo", "HttpCall", "JsonApi", "ProtocolName",
           "StreamState", "adapter_for"]
