"""Soak: thousands of items against the fake server with about 10% injected faults of
mixed kinds. Every item gets exactly one result row, every HTTP attempt one attempts row,
and the run's memory stays flat as the item count grows.

The size is HANZO_SOAK_ITEMS (default 3,000 so the suite stays quick); the full soak is

    HANZO_SOAK_ITEMS=20000 .venv/bin/python -m pytest tests/engine/test_soak.py -s
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FLAVORS, point_at, write_job, write_providers
from tests.fakes import FakeServer

ITEMS = int(os.environ.get("HANZO_SOAK_ITEMS", "3000"))
PROVIDERS = ["openai", "anthropic", "gemini", "ollama"]
# (kind, probability, options): about 10% of chat requests fail, each kind with its own seed.
FAULTS: list[tuple[str, float, dict[str, Any]]] = [
    ("429", 0.02, {"retry_after_ms": 1}), ("500", 0.02, {}), ("503", 0.01, {}), ("disconnect", 0.015, {}),
    ("malformed", 0.01, {}), ("error_200", 0.01, {}), ("missing_fields", 0.01, {}), ("html", 0.01, {}),
]
MAX_RSS_MB = 400  # generous: a run holds its lanes' in-flight items and one write batch, not the job

# Runs the real command and writes its own peak RSS (KiB on Linux) to the file named first.
MEASURED = """\
import atexit, resource, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
sys.argv[0] = "hanzo-run"
runpy.run_module("runner", run_name="__main__", alter_sys=True)
"""


def soak(fake: FakeServer, folder: Path, items: int) -> dict[str, Any]:
    """Run ``items`` items through a real hanzo-run process; counts, timings and its peak RSS."""
    fake.clear()
    for i, (kind, probability, options) in enumerate(FAULTS):
        fake.add_fault(kind, probability=probability, seed=1000 + i, **options)
    folder.mkdir()
    providers = {}
    for pid in PROVIDERS:
        data = point_at(fake, pid, limits={"requests": 100_000, "window": 1, "concurrency": 32})
        data["retry"] = {"max_retries": 2, "initial_delay": 0.001, "max_delay": 0.005, "multiplier": 2,
                         "max_elapsed": 30}
        providers[pid] = data
    write_providers(folder / "providers.d", providers)
    rows = -(-items // len(PROVIDERS))
    with (folder / "rows.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"n": i}) + "\n")
    job = write_job(folder, {"targets": [f"{p}/m" for p in PROVIDERS], "prompts": ["item {{n}}"],
                             "data": "rows.jsonl", "concurrency": 128, "output": "soak.db"})
    rss_file = folder / "rss"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURED, str(rss_file), str(job), "--quiet"], cwd=folder,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HANZO_RUN_PROVIDERS_DIR": str(folder / "providers.d")})
    seconds = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr  # some items failed for good: the run says so
    conn = sqlite3.connect(folder / "soak.db")
    try:
        q = conn.execute
        results, distinct = q("SELECT count(*), count(DISTINCT item_key) FROM results").fetchone()
        ok, failed = (q("SELECT count(*) FROM results WHERE status = ?", (s,)).fetchone()[0] for s in ("ok", "error"))
        attempts_rows, attempts_sum = q("SELECT (SELECT count(*) FROM attempts), sum(attempts) FROM results").fetchone()
        per_item = q("SELECT count(*) FROM (SELECT item_key, count(*) c FROM attempts GROUP BY item_key) "
                     "JOIN results USING (item_key) WHERE c != attempts").fetchone()[0]
        run = q("SELECT status, items_total, items_ok, items_failed FROM runs").fetchall()
        codes = dict(q("SELECT error_code, count(*) FROM results WHERE status = 'error' GROUP BY 1").fetchall())
    finally:
        conn.close()
    figures = {"items": rows * len(PROVIDERS), "results": results, "distinct": distinct, "ok": ok, "failed": failed,
               "attempts_rows": attempts_rows, "attempts_sum": attempts_sum, "attempts_mismatched": per_item,
               "chat_requests": sum(1 for r in list(fake.requests) if r.chat and r.flavor in FLAVORS.values()),
               "run": run, "codes": codes, "seconds": round(seconds, 1),
               "rss_mb": round(int(rss_file.read_text()) / 1024, 1)}
    print(f"\nsoak: {figures}")
    return figures


def check(figures: dict[str, Any]) -> None:
    items = figures["items"]
    assert figures["results"] == figures["distinct"] == items  # one row per item: none lost, none twice
    assert figures["ok"] + figures["failed"] == items
    assert 0 < figures["failed"] < items * 0.2  # the faults did land, and retries rescued most
    assert figures["attempts_rows"] == figures["attempts_sum"] == figures["chat_requests"]
    assert figures["attempts_mismatched"] == 0
    assert figures["run"] == [("completed", items, figures["ok"], figures["failed"])]
    assert set(figures["codes"]) <= {"INVALID_RESPONSE", "MAX_RETRIES_EXCEEDED"}
    assert figures["rss_mb"] < MAX_RSS_MB


@pytest.mark.slow
def test_soak_every_item_once_every_attempt_recorded_memory_flat(fake: FakeServer, tmp_path: Path,
                                                                 keys: dict[str, str]) -> None:
    small = soak(fake, tmp_path / "small", max(ITEMS // 4, 200))
    check(small)
    full = soak(fake, tmp_path / "full", ITEMS)
    check(full)
    # Four times the items may not cost more than a little more memory (no per-item state kept).
    assert full["rss_mb"] < small["rss_mb"] * 1.25 + 20, (small["rss_mb"], full["rss_mb"])
