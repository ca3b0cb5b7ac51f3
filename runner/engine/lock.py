"""One run of a job per database at a time (cron overlap), by an advisory file lock.

The lock is ``flock`` on a file beside the database, one per job, so different jobs
may share a database. The kernel releases it when the process ends, even by
SIGKILL, so a crash never leaves a stale lock behind; a run that ends removes the
file too, so a folder of jobs does not fill with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import UsageError


class RunLock:
    def __init__(self, db_path: Path, job_path: Path) -> None:
        digest = hashlib.sha256(str(job_path.resolve()).encode()).hexdigest()[:12]
        self.path = db_path.with_name(f".{db_path.name}.{digest}.lock")
        self.job_path = job_path
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> RunLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                if not wait:
                    os.close(fd)
                    raise UsageError(f"{self.job_path} is already running on this database ({holder}); "
                                     "wait for it, or pass --wait to queue behind it") from None
                fcntl.flock(fd, fcntl.LOCK_EX)  # --wait: block until the running one ends
            if self._still_at_path(fd):
                break
            # The run we waited for removed this file as it ended; a newcomer may hold the next one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self._fd = fd
        return self

    def _still_at_path(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            # Removed while still held: whoever locks the old file after this sees it is gone and starts over.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
