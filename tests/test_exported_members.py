"""The public Python API is exactly ``runner.__all__``, sorted, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import runner


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert runner.__all__ == sorted(runner.__all__)
    assert {name for name in runner.__all__ if getattr(runner, name, None) is None} == set()
    assert {"get_all_providers", "get_provider", "set_api_key", "get_api_key", "remove_api_key", "has_api_key",
            "validate_api_key", "fetch_models", "test_local_connection", "export_settings",
            "import_settings", "cached_models", "run_job", "arun_job"} <= set(runner.__all__)


def test_importing_runner_loads_no_network_stack() -> None:
    code = "import sys, runner, runner.cli.main; print('httpx' in sys.modules, 'anyio' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False False\n"
