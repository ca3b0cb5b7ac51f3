"""Finding a provider's API key: ``HANZO_API_KEY_<ID>``, then the provider's
``auth.env`` variables, then the key store. A key never leaves this process
except in the auth header of a request to its own provider.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config.providers import Provider, display_path
from .store import KeyStore, host_of


@dataclass(frozen=True)
class KeyLookup:
    key: str | None
    source: str  # the environment variable's name, "store", "missing" or "not needed"
    problem: str | None = None  # why no key could be used, for the API_KEY_REQUIRED message

    def __repr__(self) -> str:  # never show the key itself
        return f"KeyLookup(source={self.source!r}, key={'set' if self.key else None})"


def find_key(provider: Provider) -> KeyLookup:
    if provider.auth is None:
        return KeyLookup(None, "not needed")
    for name in provider.key_env:
        value = os.environ.get(name, "").strip()
        if value:
            return KeyLookup(value, name)
    stored = KeyStore().get(provider.id)
    host = host_of(provider.base_url)
    if stored and stored.host == host:
        return KeyLookup(stored.key, "store")
    if not provider.auth.required:
        return KeyLookup(None, "not needed")
    if stored:
        # A providers.d file moved this id to another host: the key must not follow it there.
        return KeyLookup(None, "missing", (
            f"the stored key for {provider.id} was saved for {stored.host}, but {display_path(provider.source)} points "
            f"{provider.id} at {host}; it is not sent there. Save a key for {host} with: "
            f"hanzo-run keys set {provider.id}"))
    names = " or ".join(provider.key_env)
    hint = f"; get one at {provider.docs_url}" if provider.docs_url else ""
    return KeyLookup(None, "missing", f"no API key for {provider.id}: set {names} or run: hanzo-run keys set "
                     f"{provider.id}{hint}")


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any long fragment of it) replaced."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[REDACTED]")
    return text
