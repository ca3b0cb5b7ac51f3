"""Wire protocols, chosen by a provider file's ``protocol``.

Each protocol is one module exposing ``ADAPTER``; the built-in ones register
through the same table a new one would.
"""

from __future__ import annotations

from importlib import import_module

from .base import Adapter, ChatRequest, Completion, ErrorInfo, HttpCall, StreamState

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama", "echo")


def adapter_for(protocol: str) -> Adapter:
    if protocol not in PROTOCOLS:
        raise KeyError(protocol)
    adapter: Adapter = import_module(f"{__name__}.{protocol}").ADAPTER
    return adapter


__all__ = ["PROTOCOLS", "Adapter", "ChatRequest", "Completion", "ErrorInfo", "HttpCall", "StreamState",
           "adapter_for"]
