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


def test_bench_user_shaped_jobs_and_the_scale_curve_run_at_tiny_sizes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--runs", "1", "--requests", "20", "--scenarios", "ghijks",
         "--scale-sizes", "20,40", "--scale-run-max", "20", "--scale-inline-max", "20"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for scenario in "ghijk":
        assert f"| {scenario} |" in done.stdout
    curve = done.stdout.split("scale curve:")[1]
    assert "| 20 |" in curve and "| 40 |" in curve and "not run (over --scale-run-max 20)" in curve
