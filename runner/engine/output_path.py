"""Is the results database path usable? Asked before anything is sent.

A folder, a file that is not SQLite, or a place hanzo-run cannot write is a usage
error (exit 2) naming the path and the reason, not an internal error after the run
has begun. The lock file lives beside the database, so its folder is checked too.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import UsageError

SQLITE_HEADER = b"SQLite format 3\x00"
FIX = "set output: in the job or --db to a file path"


def unusable(path: Path, reason: str, fix: str = FIX) -> UsageError:
    return UsageError(f"hanzo-run: cannot use {path} as the results database: {reason}; {fix}")


def check_database_path(path: Path) -> None:
    """Create the database's folder if needed; UsageError when ``path`` cannot be the results database."""
    if path.is_dir():
        raise unusable(path, "it is a folder")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise unusable(path, f"{folder} is a file, not a folder") from None
    except OSError as e:
        raise unusable(path, f"cannot create its folder {folder}: {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite's journal and the run lock are files beside the database.
        raise unusable(path, f"its folder {folder} is not writable",
                       "choose a writable folder in output: or --db")
    if not path.exists():
        return
    if not path.is_file():
        raise unusable(path, "it is not a regular file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise unusable(path, "it is not writable", "make it writable, or choose another file in output: or --db")
    with path.open("rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise unusable(path, "it is not a SQLite database",
                       "set output: in the job or --db to a new file or a hanzo-run database")


def database_error(path: Path, error: sqlite3.Error) -> UsageError:
    """A database that passed the checks but SQLite still refused (corrupt, read-only medium)."""
    return unusable(path, f"SQLite says: {error}", "set output: in the job or --db to another file")
