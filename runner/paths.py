"""The user's config folder: ``HANZO_RUN_HOME`` when set, else the platform's."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    home = os.environ.get("HANZO_RUN_HOME")
    if home:
        return Path(home)
    import platformdirs  # only needed when HANZO_RUN_HOME is unset

    return Path(platformdirs.user_config_dir("hanzo-run", appauthor=False))
