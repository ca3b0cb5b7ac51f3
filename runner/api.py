"""The typed Python API behind the commands: running jobs, keys, providers and models.

Every function resolves providers the way a run does (built-in, user, ./providers.d,
``providers_dirs``) and reads keys with ``runner.keys.find_key``. Network calls run
their own event loop; from async code use ``runner.keycheck``/``runner.discovery``.

    >>> from runner import set_api_key, fetch_models
    >>> set_api_key("groq", "gsk_...")            # checked against Groq, then stored
    >>> [m.id for m in fetch_models("groq")]
    >>> outcome = run_job("jobs/hello.yaml", limit=5)     # or: await arun_job(...) in a notebook
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Unpack

import anyio

from .config.providers import ModelInfo, Provider, ProviderRegistry, provider_dirs
from .config.settings import Settings, load_settings, save_settings, select, selected_model
from .errors import HanzoError, Problem, UsageError
from .keys.lookup import KeyLookup, find_key
from .keys.store import KeyStore, StoredKey, host_of
from .private_files import read_private_json, write_private_json

# The engine and the probes (the HTTP stack) are imported by the functions that use them: a command that
# only reads files and keys (``keys list``, ``use``) starts in a tenth of a second, not half a second.
if TYPE_CHECKING:
    from .engine.launch import RunKwargs, RunOutcome
    from .engine.progress import Progress
    from .probes.keycheck import KeyCheck
    from .probes.local import LocalStatus
    from .probes.overview import ProviderStatus

Dirs = Iterable[str | Path]


class KeyRejectedError(HanzoError):
    """A key failed its check and was not saved (the command ran; exit 1, not a usage error)."""

    def __init__(self, check: KeyCheck) -> None:
        self.check = check
        super().__init__(f"{check.provider}: key not saved: {check.detail}")


def registry(providers_dirs: Dirs = ()) -> ProviderRegistry:
    return ProviderRegistry(provider_dirs(providers_dirs))


async def arun_job(path: str | Path, *, progress: Progress | None = None, handle_signals: bool = False,
                   **options: Unpack[RunKwargs]) -> RunOutcome:
    """Run the job file at ``path`` in the running event loop (a notebook's, a server's); its outcome.

    ``options`` are RunOptions' fields (``limit=5``, ``db=Path("runs.db")``, ``only=("openai",)``).
    The job and its providers are checked first: ConfigError, and nothing is sent, when a file
    is invalid. ``handle_signals`` is for command-line programs: Ctrl-C and SIGTERM then stop
    taking new items, let requests in flight finish and leave the run "interrupted".

        >>> outcome = await arun_job("jobs/hello.yaml", db=Path("runs.db"))
        >>> outcome.ok, outcome.failed
    """
    from .engine.launch import RunOptions, prepare, run_prepared

    run_options = RunOptions(**options)
    job, registry = prepare(Path(path), run_options)
    return await run_prepared(job, registry, run_options, progress=progress, handle_signals=handle_signals)


def run_job(path: str | Path, *, progress: Progress | None = None, handle_signals: bool = False,
            **options: Unpack[RunKwargs]) -> RunOutcome:
    """``arun_job`` in an event loop of its own: for scripts (inside a running loop, await arun_job)."""
    return anyio.run(functools.partial(arun_job, path, progress=progress, handle_signals=handle_signals, **options),
                     backend="asyncio")


def get_all_providers(providers_dirs: Dirs = ()) -> tuple[list[Provider], list[Problem]]:
    """Every provider whose file is valid, and the problems of those that are not."""
    reg = registry(providers_dirs)
    providers, problems = [], []
    for provider_id in reg.ids():
        provider, found = reg.load(provider_id)
        if provider:
            providers.append(provider)
        problems.extend(found)
    return providers, problems


def get_provider_statuses(providers_dirs: Dirs = (), *, loaded_models: bool = False,
                          ) -> tuple[list[ProviderStatus], list[Problem]]:
    """Every valid provider's key status and, for a local server, whether it is up now (probed at once;
    ``loaded_models`` also asks which models it has loaded); and the problems of the invalid files."""
    from .probes.overview import provider_statuses

    providers, problems = get_all_providers(providers_dirs)

    async def go() -> list[ProviderStatus]:
        return await provider_statuses(providers, with_models=loaded_models)

    return anyio.run(go, backend="asyncio"), problems


def get_provider(provider_id: str, providers_dirs: Dirs = ()) -> Provider:
    """The provider with this id; UsageError naming the known ids when there is none."""
    reg = registry(providers_dirs)
    if provider_id not in reg:
        raise UsageError(f"hanzo-run: unknown provider '{provider_id}'; known: {', '.join(reg.ids())}")
    return reg.get(provider_id)


def find_provider_key(provider_id: str, providers_dirs: Dirs = ()) -> tuple[Provider, KeyLookup]:
    provider = get_provider(provider_id, providers_dirs)
    return provider, find_key(provider)


def set_api_key(provider_id: str, key: str, *, validate: bool = True, providers_dirs: Dirs = ()) -> KeyCheck | None:
    """Save ``key`` for the provider's current host, after checking it (unless ``validate=False``).

    Raises KeyRejectedError, saving nothing, when the check does not prove the key valid.
    """
    provider = get_provider(provider_id, providers_dirs)
    key = key.strip()
    if provider.auth is None:
        raise UsageError(f"hanzo-run: {provider_id} takes no API key")
    if not key:
        raise UsageError("hanzo-run: the key is empty")
    check = None
    if validate:
        check = validate_api_key(provider_id, key, providers_dirs=providers_dirs)
        if not check.ok:
            raise KeyRejectedError(check)
    KeyStore().set(provider_id, key, host_of(provider.base_url))
    return check


def get_api_key(provider_id: str, providers_dirs: Dirs = ()) -> str | None:
    """The key a run would send to this provider (environment first, then the store)."""
    return find_provider_key(provider_id, providers_dirs)[1].key


def has_api_key(provider_id: str, providers_dirs: Dirs = ()) -> bool:
    return get_api_key(provider_id, providers_dirs) is not None


def remove_api_key(provider_id: str) -> bool:
    """Remove the stored key; False when none was stored. Environment variables are untouched."""
    return KeyStore().remove(provider_id)


def validate_api_key(provider_id: str, key: str | None = None, *, providers_dirs: Dirs = ()) -> KeyCheck:
    """Check ``key`` (default: the key a run would use) without spending tokens."""
    from .probes.keycheck import KeyCheck, check_key

    provider, lookup = find_provider_key(provider_id, providers_dirs)
    if key is None:
        if provider.auth is None:
            return KeyCheck(provider_id, "no_check", f"{provider_id} needs no key", "")
        key = lookup.key
        if key is None and provider.auth.required:
            return KeyCheck(provider_id, "missing", lookup.problem or f"no API key for {provider_id}", "")
    return anyio.run(check_key, provider, key, backend="asyncio")


def validate_all_keys(providers_dirs: Dirs = ()) -> list[KeyCheck]:
    """Check, at once, every provider that has a key to check."""
    from .probes.keycheck import check_keys

    pairs = [(p, find_key(p).key) for p in get_all_providers(providers_dirs)[0] if p.auth is not None]
    pairs = [(p, key) for p, key in pairs if key]

    async def go() -> list[KeyCheck]:
        return await check_keys(pairs)

    return anyio.run(go, backend="asyncio")


def fetch_models(provider_id: str, *, refresh: bool = False, providers_dirs: Dirs = ()) -> list[ModelInfo]:
    """The provider's models (cached 24 h); ProviderError FETCH_MODELS_FAILED on failure."""
    from .probes.models import fetch_models as discover_models

    provider, lookup = find_provider_key(provider_id, providers_dirs)

    async def go() -> list[ModelInfo]:
        return await discover_models(provider, lookup.key, refresh=refresh, key_hint=lookup.problem)

    return anyio.run(go, backend="asyncio")


def cached_models(provider: Provider | str, providers_dirs: Dirs = ()) -> dict[str, ModelInfo]:
    """Models (with learned prices) from the last discovery, read without network."""
    from .probes.models import cached_models as cached_discovered_models

    return cached_discovered_models(provider if isinstance(provider, Provider)
                                    else get_provider(provider, providers_dirs))


def test_local_connection(provider_id: str, providers_dirs: Dirs = ()) -> LocalStatus:
    """Whether a local server answers now, and which models it has loaded."""
    from .probes.local import check_local

    provider, lookup = find_provider_key(provider_id, providers_dirs)

    async def go() -> LocalStatus:
        return await check_local(provider, lookup.key)

    return anyio.run(go, backend="asyncio")


test_local_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def get_cloud_providers(providers_dirs: Dirs = ()) -> list[Provider]:
    """The valid providers that run in the cloud (a key is usually needed)."""
    return [p for p in get_all_providers(providers_dirs)[0] if p.kind == "cloud"]


def get_local_providers(providers_dirs: Dirs = ()) -> list[Provider]:
    """The valid providers that run on this machine or network (Ollama, LM Studio, ...)."""
    return [p for p in get_all_providers(providers_dirs)[0] if p.kind == "local"]


def requires_api_key(provider_id: str, providers_dirs: Dirs = ()) -> bool:
    """Whether requests to the provider fail without a key (a local server's optional key does not count)."""
    auth = get_provider(provider_id, providers_dirs).auth
    return auth is not None and auth.required


def get_settings() -> Settings:
    """The saved choices: the default provider and the model selected per provider."""
    return load_settings()


def update_settings(*, default_provider: str | None = None, models: Mapping[str, str | None] | None = None,
                    providers_dirs: Dirs = ()) -> Settings:
    """Change the saved choices; ``models`` maps a provider id to its selected model (None: unselect it).
    Every provider named must exist. The settings as saved."""
    for provider_id in {*(models or {}), *([default_provider] if default_provider else [])}:
        get_provider(provider_id, providers_dirs)
    current = load_settings()
    chosen = {**current.models, **(models or {})}
    updated = Settings(default_provider or current.default_provider,
                       MappingProxyType({pid: m for pid, m in sorted(chosen.items()) if m}))
    save_settings(updated)
    return updated


def get_selected_provider() -> str | None:
    """The default provider chosen with ``use`` (or ``update_settings``), if any."""
    return load_settings().default_provider


def get_selected_model(provider_id: str | None = None, providers_dirs: Dirs = ()) -> str | None:
    """The model a call or a job target naming only the provider runs: the one selected for it, else the
    provider file's default. ``provider_id`` defaults to the selected provider (None when there is none)."""
    provider_id = provider_id or get_selected_provider()
    if provider_id is None:
        return None
    return selected_model(provider_id) or get_provider(provider_id, providers_dirs).default_model


def use(provider_id: str, model: str | None = None, providers_dirs: Dirs = ()) -> Settings:
    """Make the provider the default and, when given, ``model`` its selected model."""
    get_provider(provider_id, providers_dirs)
    return select(provider_id, model)


def export_settings(path: str | Path) -> int:
    """Write settings and stored keys to ``path`` (mode 0600); the number of keys written."""
    keys = KeyStore().all()
    write_private_json(Path(path), {
        "hanzo_run_export": 1,
        "settings": load_settings().to_dict(),
        "keys": {pid: {"key": k.key, "host": k.host, "saved_at": k.saved_at} for pid, k in keys.items()},
    })
    return len(keys)


def import_settings(path: str | Path) -> int:
    """Read an export: its keys replace stored keys of the same provider; its settings replace
    the current ones. The number of keys imported."""
    path = Path(path)
    data: dict[str, Any] = read_private_json(path)
    if data.get("hanzo_run_export") != 1:
        raise UsageError(f"hanzo-run: {path} is not a hanzo-run export (made with: hanzo-run keys export FILE)")
    store = KeyStore()
    entries = store.all()
    imported = {pid: StoredKey(str(e["key"]), str(e.get("host", "")), str(e.get("saved_at", "")))
                for pid, e in (data.get("keys") or {}).items() if isinstance(e, dict) and e.get("key")}
    store.replace({**entries, **imported})
    save_settings(Settings.from_dict(data.get("settings") or {}))
    return len(imported)

