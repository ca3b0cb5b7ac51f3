"""Finding a provider's API key: ``HANZO_API_KEY_<ID>``, then the provider's
``auth.env`` variables, then the key store. A key never leaves this process
except in the auth header of a request to its own provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config.providers import Provider, display_path
from .store import KeyStore, StoredKey, host_of


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


def mask(key: str) -> str:
    """A key shown as its last four characters (none at all when it is short)."""
    return "…" + key[-4:] if len(key) >= 12 else "****"


@dataclass(frozen=True)
class KeyStatus:
    """Where a provider's key comes from, fit to show anyone: it holds no more of the key than ``mask`` gives."""

    provider: str
    source: str  # as KeyLookup.source
    shown: str  # the key masked, "" when there is none
    problem: str | None  # why no key can be used (KeyLookup.problem)
    stored_for: str | None  # the host of the key in the store for this provider, if one is there

    @property
    def where(self) -> str:
        """The source in words: a stored key kept from another host says so."""
        if self.source == "missing" and self.stored_for:
            return f"store (saved for {self.stored_for}; not sent to this host)"
        return self.source


def key_status(provider: Provider, stored: Mapping[str, StoredKey] | None = None) -> KeyStatus:
    """``provider``'s key status; ``stored`` is the key store's entries when the caller has read them already."""
    lookup = find_key(provider)
    entry = (KeyStore().all() if stored is None else stored).get(provider.id)
    return KeyStatus(provider.id, lookup.source, mask(lookup.key) if lookup.key else "", lookup.problem,
                     entry.host if entry else None)


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any long fragment of it) replaced."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[REDACTED]")
    return text
