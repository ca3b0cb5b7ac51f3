"""The user's choices, kept in ``settings.json`` beside the key store: a default
provider and a selected model per provider (``hanzo-run use PROVIDER[/MODEL]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..paths import config_dir
from ..private_files import read_private_json, write_private_json

SETTINGS_FILE = "settings.json"


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


@dataclass(frozen=True)
class Settings:
    default_provider: str | None = None
    models: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "default_provider": self.default_provider, "models": dict(self.models)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        models = data.get("models") or {}
        return cls(data.get("default_provider") or None,
                   MappingProxyType({str(k): str(v) for k, v in sorted(models.items()) if v}))


def load_settings(path: Path | None = None) -> Settings:
    return Settings.from_dict(read_private_json(path or settings_path()))


def save_settings(settings: Settings, path: Path | None = None) -> None:
    write_private_json(path or settings_path(), settings.to_dict())


def select(provider_id: str, model: str | None, path: Path | None = None) -> Settings:
    """Make ``provider_id`` the default provider and, when given, ``model`` its selected model."""
    current = load_settings(path)
    models = dict(current.models)
    if model:
        models[provider_id] = model
    updated = Settings(provider_id, MappingProxyType(models))
    save_settings(updated, path)
    return updated


def selected_model(provider_id: str) -> str | None:
    """The model chosen with ``hanzo-run use`` for this provider, if any."""
    return load_settings().models.get(provider_id)
