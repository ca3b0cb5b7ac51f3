"""The key store, ``keys.json`` in the config folder: one key per provider, bound to
the host it was saved for. Written through ``runner.private_files`` (0600, atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from ..paths import config_dir
from ..private_files import read_private_json, write_private_json

KEYS_FILE = "keys.json"


def keys_path() -> Path:
    return config_dir() / KEYS_FILE


def host_of(base_url: str) -> str:
    """The host (with port, when one is given) a provider's requests go to."""
    parts = urlsplit(base_url)
    return (parts.netloc or parts.path).lower()


@dataclass(frozen=True)
class StoredKey:
    key: str
    host: str  # the host the key was saved for; it is never sent anywhere else
    saved_at: str

    def __repr__(self) -> str:  # never show the key itself
        return f"StoredKey(host={self.host!r}, saved_at={self.saved_at!r})"


class KeyStore:
    """``keys.json``: ``{"version": 1, "keys": {provider id: {key, host, saved_at}}}``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or keys_path()

    def all(self) -> dict[str, StoredKey]:
        entries = read_private_json(self.path).get("keys", {})
        return {pid: StoredKey(str(e["key"]), str(e.get("host", "")), str(e.get("saved_at", "")))
                for pid, e in sorted(entries.items()) if isinstance(e, dict) and e.get("key")}

    def get(self, provider_id: str) -> StoredKey | None:
        return self.all().get(provider_id)

    def set(self, provider_id: str, key: str, host: str) -> StoredKey:
        stored = StoredKey(key, host, datetime.now(UTC).isoformat(timespec="seconds"))
        self.replace({**self.all(), provider_id: stored})
        return stored

    def remove(self, provider_id: str) -> bool:
        entries = self.all()
        if entries.pop(provider_id, None) is None:
            return False
        self.replace(entries)
        return True

    def clear(self) -> int:
        count = len(self.all())
        self.replace({})
        return count

    def replace(self, entries: dict[str, StoredKey]) -> None:
        write_private_json(self.path, {"version": 1, "keys": {
            pid: {"key": e.key, "host": e.host, "saved_at": e.saved_at} for pid, e in sorted(entries.items())}})
