"""bench/view.py runs end to end at a tiny size (no timing asserted: figures from a shared machine
would only make the suite flaky)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_bench_view_times_the_run_page_at_a_tiny_size() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.view", "--items", "200", "--targets", "2", "--repeat", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| Run page | items | first: wall ms |" in done.stdout
    assert "| figures saved at finish | 200 |" in done.stdout
    assert "| figures summed at first view | 200 |" in done.stdout
