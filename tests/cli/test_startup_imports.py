"""Startup stays light: ``--help`` imports no network, database or schema stack, and ``validate`` none
but the schema's (a subprocess, so nothing the tests imported counts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("httpx", "httpcore", "anyio", "sqlite_utils", "sqlite3", "aiohttp", "tenacity", "aiolimiter", "jsonschema",
         "starlette", "uvicorn", "jinja2", "pyarrow")


def imported_after(*args: str) -> set[str]:
    """The heavy modules ``hanzo-run ARGS`` has imported when it ends."""
    code = ("import sys\nfrom runner.cli.main import cli\n"
            f"try:\n    cli.main({list(args)!r}, prog_name='hanzo-run')\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(done.stdout.split()) & set(HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["validate", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    assert imported_after(*args) == set()


def test_validate_imports_only_the_schema_stack(isolated: Path) -> None:
    (isolated / "job.yaml").write_text("targets: [echo/echo]\nprompts: ['{{a}}']\ndata: [{a: 1}]\n")
    assert imported_after("validate", "job.yaml") == {"jsonschema"}


@pytest.mark.parametrize("args", [["keys", "list"], ["keys", "get", "openai"], ["use"]])
def test_commands_that_read_only_files_and_keys_import_no_network_stack(
        args: list[str], isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-startup-test-1234")
    assert imported_after(*args) <= {"jsonschema", "anyio"}
