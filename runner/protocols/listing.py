"""Helpers the protocols share for reading model listings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..config.providers import Provider
from ..errors import ErrorCode, ProviderError

PAGE_SIZE = 1000  # the largest page Anthropic and Gemini serve
MAX_PAGES = 100  # a listing that never ends is a broken server, not a big catalogue


def entries(body: Any, key: str) -> list[dict[str, Any]]:
    """The objects in a listing's ``key`` array."""
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ProviderError(ErrorCode.INVALID_RESPONSE, f"the model list has no '{key}' array")
    return [i for i in items if isinstance(i, dict)]


def positive_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def first_int(*values: Any) -> int | None:
    return next((v for v in map(positive_int, values) if v is not None), None)


def flags(value: Any) -> tuple[str, ...]:
    """Capabilities given as a list of names or a mapping of name -> bool / {supported: bool}."""
    if isinstance(value, list):
        return tuple(sorted({"tools" if v in ("tool_use", "trained_for_tool_use") else str(v) for v in value}))
    if isinstance(value, dict):
        on = [k for k, v in value.items() if v is True or (isinstance(v, dict) and v.get("supported"))]
        return tuple(sorted({"tools" if k in ("tool_use", "trained_for_tool_use") else k for k in on}))
    return ()


def server_root(provider: Provider) -> str:
    """The server's own root for native endpoints: the base URL without its OpenAI-style ``/v1``."""
    if provider.base_url.endswith("/v1"):
        return provider.base_url.removesuffix("/v1")
    parts = urlsplit(provider.base_url)
    return f"{parts.scheme}://{parts.netloc}"
