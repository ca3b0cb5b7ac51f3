"""hanzo-run: a declarative batch runner for LLM APIs.

The public Python API is listed in ``__all__``. It is imported on first use, so
``import runner`` (and ``hanzo-run --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__  # re-exported: runner.__version__

if TYPE_CHECKING:
    from .api import (
        KeyRejectedError,
        arun_job,
        cached_models,
        export_settings,
        fetch_models,
        get_all_providers,
        get_api_key,
        get_cloud_providers,
        get_local_providers,
        get_provider,
        get_selected_model,
        get_selected_provider,
        get_settings,
        has_api_key,
        import_settings,
        remove_api_key,
        requires_api_key,
        run_job,
        set_api_key,
        test_local_connection,
        update_settings,
        use,
        validate_all_keys,
        validate_api_key,
    )
    from .ask import ChatResult, achat, chat
    from .config.providers import ModelInfo, Pricing, Provider
    from .config.settings import Settings
    from .engine.launch import RunOptions, RunOutcome
    from .errors import ProviderError, UsageError
    from .probes.keycheck import KeyCheck
    from .probes.local import LocalStatus

__all__ = [
    "ChatResult",
    "KeyCheck",
    "KeyRejectedError",
    "LocalStatus",
    "ModelInfo",
    "Pricing",
    "Provider",
    "ProviderError",
    "RunOptions",
    "RunOutcome",
    "Settings",
    "UsageError",
    "achat",
    "arun_job",
    "cached_models",
    "chat",
    "export_settings",
    "fetch_models",
    "get_all_providers",
    "get_api_key",
    "get_cloud_providers",
    "get_local_providers",
    "get_provider",
    "get_selected_model",
    "get_selected_provider",
    "get_settings",
    "has_api_key",
    "import_settings",
    "remove_api_key",
    "requires_api_key",
    "run_job",
    "set_api_key",
    "test_local_connection",
    "update_settings",
    "use",
    "validate_all_keys",
    "validate_api_key",
]

_HOMES = {
    "ChatResult": "ask",
    "KeyCheck": "probes.keycheck",
    "LocalStatus": "probes.local",
    "ModelInfo": "config.providers",
    "Pricing": "config.providers",
    "Provider": "config.providers",
    "ProviderError": "errors",
    "RunOptions": "engine.launch",
    "RunOutcome": "engine.launch",
    "Settings": "config.settings",
    "UsageError": "errors",
    "achat": "ask",
    "chat": "ask",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    module = importlib.import_module(f".{_HOMES.get(name, 'api')}", __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value
