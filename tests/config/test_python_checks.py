"""Checks written in Python: what they are called with, what they may return, how their failures read,
and the load problems validate reports with file:line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import hanzo, query, write_job

CHECKS_PY = textwrap.dedent('''
    SEEN = []

    def mentions(answer, row, result):
        return row["capital"] in answer

    def scored(answer, row, result):
        return 0.9 if result["model"] == "gpt-4o-mini" and result["output_tokens"] > 3 else 0.1

    def explained(answer, row, result):
        return False, f"wanted {row['capital']}, got {len(answer)} characters"

    def broken(answer, row, result):
        return {"capital": row["capital"]}["city"]

    def maybe(answer, row, result):
        return None
''')



def test_python_checks_in_a_run(fake: Any, keys: dict[str, str], isolated: Path, fake_providers: Path) -> None:
    (isolated / "checks.py").write_text(CHECKS_PY)
    job = write_job(isolated, {
        "targets": ["openai/gpt-4o-mini"], "prompts": [{"id": "cap", "text": "Is {{capital}} nice?"}],
        "data": [{"capital": "Paris"}],
        "checks": [{"python": "checks.py:mentions"}, {"python": "checks.py:scored", "threshold": 0.95},
                   {"python": "checks.py:scored"}, {"python": "checks.py:explained", "not": True},
                   {"python": "checks.py:broken"}, {"python": "checks.py:broken", "not": True},
                   {"python": "checks.py:maybe"}],
        "output": "out.db"})
    done = hanzo(job, "--providers-dir", fake_providers)
    assert done.returncode == 1, done.stderr  # failed checks fail the item, never the run
    (passed, failed), = query(isolated / "out.db", "SELECT passed, failed_checks FROM results")
    assert passed == 0
    assert json.loads(failed) == [
        {"check": "python", "reason": "scored returned the score 0.9, below the threshold 0.95"},
        {"check": "python", "reason": "broken raised KeyError: 'city' (checks.py:14)"},
        {"check": "not python", "reason": "broken raised KeyError: 'city' (checks.py:14)"},
        {"check": "python", "reason": "maybe returned None; expected a bool, a 0-1 score or (bool, reason)"}]


def test_load_problems_are_validation_errors_with_file_and_line(isolated: Path) -> None:
    (isolated / "checks.py").write_text("def fine(answer, row, result):\n    return True\n")
    (isolated / "bad.py").write_text("import os\n\nVALUE = os.environ['HANZO_NO_SUCH_VARIABLE']\n")
    (isolated / "typo.py").write_text("def f(:\n")
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "checks": [
        {"python": "checks.py:fine"}, {"python": "checks.py:missing"}, {"python": "nothere.py:f"},
        {"python": "bad.py:f"}, {"python": "typo.py:f"}, {"python": "no_such_module_x:f"},
        {"contains": "x", "threshold": 0.2}]})
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert done.stderr.splitlines()[:-1] == [
        "job.yaml:12:3: checks[6]: threshold applies only to python and judge checks",
        "job.yaml:7:11: checks[1].python: checks.py has no function 'missing'",
        "job.yaml:8:11: checks[2].python: python check file nothere.py not found (relative to the job file)",
        "job.yaml:9:11: checks[3].python: bad.py:3: importing it failed: KeyError: 'HANZO_NO_SUCH_VARIABLE'",
        "job.yaml:10:11: checks[4].python: typo.py:1: importing it failed: SyntaxError: invalid syntax "
        "(typo.py, line 1)",
        "job.yaml:11:11: checks[5].python: module 'no_such_module_x' not found (from the job's folder or the "
        "installed packages)"]


def test_a_module_check_next_to_the_job(isolated: Path, fake: Any, keys: dict[str, str],
                                        fake_providers: Path) -> None:
    (isolated / "mychecks.py").write_text("def short(answer, row, result):\n    return len(answer) < 5, 'too long'\n")
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["hello"],
                               "checks": [{"python": "mychecks:short"}], "output": "out.db"})
    assert hanzo(job, "--providers-dir", fake_providers).returncode == 1
    assert query(isolated / "out.db", "SELECT failed_checks FROM results") == [
        ('[{"check": "python", "reason": "too long"}]',)]
