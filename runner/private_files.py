"""Owner-only JSON files in the config folder: the key store, the settings and the
model cache.

Each file is created 0600 in a 0700 folder and replaced atomically (temp file,
fsync, ``os.replace``), so a crash mid-write leaves the old file whole. A secret
file that other users can read is refused rather than used.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from .errors import UsageError


class UnsafeFileError(UsageError):
    """A secrets file is readable by other users, or is not ours, or is not valid JSON."""


def read_private_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when absent); refused when others can read it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if os.name == "posix":
        if info.st_mode & 0o077:
            raise UnsafeFileError(f"hanzo-run: refusing to read {path}: other users can access it "
                                  f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}")
        if info.st_uid != os.getuid():
            raise UnsafeFileError(f"hanzo-run: refusing to read {path}: it belongs to another user "
                                  f"(uid {info.st_uid})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UnsafeFileError(f"hanzo-run: {path} is not valid JSON ({e}); fix or remove it") from None
    if not isinstance(data, dict):
        raise UnsafeFileError(f"hanzo-run: {path} does not hold a JSON object; fix or remove it")
    return data


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, its folder created 0700."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
