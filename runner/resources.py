"""Where the shipped schemas and built-in providers live.

In a checkout (or an editable install) they sit at the top of the repository; a
wheel carries them inside the package as ``runner/_data`` (see pyproject.toml).
This is the one place that knows.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def builtin_providers_dir() -> Path:
    return _data_dir("providers.d")


def schema_path(kind: str) -> Path:
    return _data_dir("schemas") / f"{kind}.schema.json"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for ``kind`` ("provider" or "job")."""
    with schema_path(kind).open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema
