"""The command that continues a run, printed for a person to copy and paste.

It repeats every option that decides where the requests go and which items belong to
the run (each ``--providers-dir``, ``--db``, the run's own ``--only`` and ``--limit``, the
budget), shell-quoted: followed as printed, the rest of the run goes to the same
servers as its start. ``--resume`` checks that too (runner/engine/identity.py).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..engine.launch import RunOutcome


def resume_command(job: Path, outcome: RunOutcome, options: dict[str, Any]) -> str:
    words: list[str] = ["hanzo-run", str(job), "--resume", str(outcome.run_id)]
    for folder in options.get("providers_dirs") or ():
        words += ["--providers-dir", str(folder)]
    if options.get("db"):
        words += ["--db", str(options["db"])]
    for target in outcome.only:
        words += ["--only", target]
    if outcome.limit is not None:
        words += ["--limit", str(outcome.limit)]
    if options.get("max_cost") is not None:
        words += ["--max-cost", f"{options['max_cost']:g}"]
    if options.get("allow_unpriced"):
        words.append("--allow-unpriced")
    if options.get("shard"):
        words += ["--shard", str(options["shard"])]
    if options.get("batch") is not None:
        words.append("--batch" if options["batch"] else "--no-batch")
    return shlex.join(words)
