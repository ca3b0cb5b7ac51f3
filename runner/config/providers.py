"""Provider files: the folders they come from, and the frozen objects built from them.

Folders are read in this order, a later file with the same id replacing an earlier
one: built-in, the user's config folder, ``./providers.d``, then each
``--providers-dir`` / ``HANZO_RUN_PROVIDERS_DIR`` entry. Files are parsed only when
a provider is asked for, so one broken file does not stop a job that does not use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ..errors import ConfigError, Problem
from ..paths import config_dir
from ..resources import builtin_providers_dir
from .files import Document, check_schema, read_document

ProviderKind = Literal["cloud", "local"]  # the schema allows these two


@dataclass(frozen=True)
class Auth:
    header: str
    scheme: str
    env: tuple[str, ...]
    required: bool

    def header_value(self, key: str) -> str:
        return f"{self.scheme} {key}" if self.scheme else key


@dataclass(frozen=True)
class Limits:
    requests: int
    window: float
    tokens: int | None
    concurrency: int
    tier: str | None = None  # the account tier they are for ("free", "tier 1"): the shipped defaults say which


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    initial_delay: float
    max_delay: float
    multiplier: float
    max_elapsed: float


@dataclass(frozen=True)
class Timeouts:
    """Seconds each wait of one attempt may take (see the schema's ``timeouts``)."""

    connect: float
    first_byte: float  # to the first byte of the answer (a stream: its first line)
    idle: float  # between two lines of a stream
    total: float | None  # the whole attempt; None: unbounded while the server keeps sending

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeouts:
        """From a validated provider dict. The older ``timeout: N`` is first_byte and idle at once."""
        given = dict(data["timeouts"])
        if "timeout" in data:
            given["first_byte"] = given["idle"] = float(data["timeout"])
        total = given["total"]
        return cls(float(given["connect"]), float(given["first_byte"]), float(given["idle"]),
                   None if total is None else float(total))


@dataclass(frozen=True)
class Pricing:
    input: float  # USD per 1M tokens
    output: float
    source: str  # where the figure came from: the provider file, discovery, ...
    cached_input: float | None = None  # USD per 1M input tokens read from the provider's cache
    cache_write: float | None = None  # USD per 1M input tokens written to the provider's cache (Anthropic)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_length: int | None = None
    max_output_tokens: int | None = None
    pricing: Pricing | None = None
    capabilities: tuple[str, ...] = ()
    batch_discount: float | None = None  # overrides the provider's batch discount for this model


BatchApiName = Literal["openai", "anthropic", "gemini"]


@dataclass(frozen=True)
class BatchSettings:
    """A provider file's ``batch`` block: which batch API it speaks and its limits."""

    api: BatchApiName
    max_requests: int
    max_bytes: int
    discount: float  # the batch price as a fraction of the synchronous one
    completion_window: str
    paths: Mapping[str, str]  # files, batches, endpoint: where they differ from the API's usual ones


#: The wire protocols a provider file may name; runner/protocols registers one adapter for each.
ProtocolName = Literal["openai", "anthropic", "gemini", "ollama", "echo"]


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    kind: ProviderKind
    protocol: ProtocolName
    base_url: str
    auth: Auth | None
    headers: Mapping[str, str]
    limits: Limits
    retry: RetryPolicy
    timeouts: Timeouts
    list_path: str | None
    default_model: str | None
    known: Mapping[str, ModelInfo]
    validate_path: str | None
    docs_url: str | None
    max_tokens_field: str
    json_schema_style: str
    source: Path = field(compare=False)
    batch: BatchSettings | None = None  # None: the provider has no batch API (or none hanzo-run speaks)
    max_image_bytes: int | None = None  # overrides the protocol's limit per image (config/media.py)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path) -> Provider:
        """Build from a schema-validated dict (defaults already filled in)."""
        auth = data["auth"]
        models = data["models"]
        known = {
            m["id"]: ModelInfo(
                id=m["id"],
                context_length=m.get("context_length"),
                max_output_tokens=m.get("max_output_tokens"),
                pricing=Pricing(m["pricing"]["input"], m["pricing"]["output"], f"provider file {source.name}",
                                m["pricing"].get("cached_input"), m["pricing"].get("cache_write"))
                if "pricing" in m
                else None,
                capabilities=tuple(m.get("capabilities", ())),
                batch_discount=m.get("batch_discount"),
            )
            for m in models["known"]
        }
        return cls(
            id=data["id"],
            name=data["name"],
            kind=data["kind"],
            protocol=data["protocol"],
            base_url=data["base_url"].rstrip("/"),
            auth=Auth(auth["header"], auth["scheme"], tuple(auth["env"]), auth["required"]) if auth else None,
            headers=MappingProxyType(dict(data["headers"])),
            limits=Limits(**data["limits"]),
            retry=RetryPolicy(**data["retry"]),
            timeouts=Timeouts.from_dict(data),
            list_path=models["list_path"],
            default_model=models["default"],
            known=MappingProxyType(known),
            validate_path=data["validate_path"] or models["list_path"],
            docs_url=data["docs_url"],
            max_tokens_field=data["max_tokens_field"],
            json_schema_style=data["json_schema_style"],
            source=source,
            batch=_batch_settings(data.get("batch")),
            max_image_bytes=data.get("max_image_bytes"),
        )

    @property
    def timeout(self) -> float:
        """The longest single wait for the server: what ``timeout:`` meant before ``timeouts``."""
        return max(self.timeouts.first_byte, self.timeouts.idle)

    @property
    def key_env(self) -> tuple[str, ...]:
        """Environment variables that may hold this provider's key, in lookup order."""
        own = "HANZO_API_KEY_" + "".join(c if c.isalnum() else "_" for c in self.id.upper())
        return (own, *(self.auth.env if self.auth else ()))


def _batch_settings(data: dict[str, Any] | None) -> BatchSettings | None:
    if data is None:
        return None
    return BatchSettings(data["api"], data["max_requests"], data["max_bytes"], float(data["discount"]),
                         data["completion_window"], MappingProxyType(dict(data["paths"])))


def provider_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The provider folders in override order (later wins), without duplicates."""
    env_dirs = [d for d in os.environ.get("HANZO_RUN_PROVIDERS_DIR", "").split(os.pathsep) if d]
    candidates = [
        builtin_providers_dir(),
        config_dir() / "providers.d",
        Path.cwd() / "providers.d",
        *map(Path, env_dirs),
        *map(Path, extra),
    ]
    seen: set[Path] = set()
    dirs = []
    for d in candidates:
        resolved = d.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        dirs.append(d)
    return dirs


class ProviderRegistry:
    """Provider ids mapped to their winning file; each file is validated when first used."""

    def __init__(self, dirs: Iterable[Path]) -> None:
        self.files: dict[str, Path] = {}
        for d in dirs:
            if d.is_dir():
                for path in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
                    self.files[path.stem] = path
        self._loaded: dict[str, Provider] = {}

    def ids(self) -> list[str]:
        return sorted(self.files)

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self.files

    def load(self, provider_id: str) -> tuple[Provider | None, list[Problem]]:
        if provider_id in self._loaded:
            return self._loaded[provider_id], []
        provider, problems = load_provider_file(self.files[provider_id])
        if provider:
            self._loaded[provider_id] = provider
        return provider, problems

    def get(self, provider_id: str) -> Provider:
        """The provider, or ConfigError naming its file's problems."""
        provider, problems = self.load(provider_id)
        if provider is None:
            raise ConfigError(problems)
        return provider


def load_provider_file(path: Path) -> tuple[Provider | None, list[Problem]]:
    return provider_from_document(path, *read_document(path, display_path(path)))


def provider_from_document(path: Path, doc: Document | None, problems: list[Problem]) -> tuple[Provider | None,
                                                                                               list[Problem]]:
    """``load_provider_file`` of a file already read (``read_document``'s answer)."""
    if doc is None or problems:
        return None, problems
    problems = check_schema(doc, "provider")
    if problems:
        return None, problems
    if doc.data["id"] != path.stem:
        return None, [
            doc.problem(["id"], f"id '{doc.data['id']}' must equal the file name; rename the file to "
                        f"{doc.data['id']}.yaml or set id: {path.stem}")
        ]
    return Provider.from_dict(doc.data, path), []


def display_path(path: Path) -> str:
    """A path as short as it can be shown: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
