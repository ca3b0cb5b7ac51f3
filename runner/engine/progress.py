"""What a run tells whoever watches it: rows as they land, and notices. The engine prints nothing;
the command line renders these (runner/cli/output.py), an API caller may ignore them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..store.records import ResultRow

log = logging.getLogger("runner")


class Progress:
    """What the engine reports as rows land; the CLI renders it."""

    def start(self, total: int | None) -> None:
        """Before the first item: how many items the run has (None when unknown)."""

    def advance(self, ok: int, failed: int) -> None:
        pass

    def written(self, rows: Sequence[ResultRow]) -> None:
        """The batch of rows just written, after ``advance``. Called per batch, not per request;
        the list is reused afterwards, so read it here and keep nothing of it."""

    def notice(self, text: str) -> None:
        """Something the person running the job should know (an interrupt, a batch found again), one line."""
        log.info(text)

    def status(self, text: str) -> None:
        """A passing state (a batch created, its progress while polled): for a terminal, not for a log."""
        log.debug(text)
