"""The benchmark command runs end to end at tiny sizes. No timing is asserted: bench/ is a
tool for measuring, and figures from a shared test machine would only make the suite flaky."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_bench_command_runs_every_scenario_at_tiny_sizes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--runs", "1", "--requests", "20", "--limit-requests", "6", "--rate", "20",
         "--items", "2000", "--scenarios", "abcdef"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = done.stdout
    for scenario in "abcdef":
        assert f"| {scenario} |" in table
    assert "| ratio |" in table
