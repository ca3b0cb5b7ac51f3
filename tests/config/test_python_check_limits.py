"""A python check is user code: one that blocks, raises SystemExit or exits at import must not
hang the run nor end it with a raw traceback. Checks run off the event loop with a per-check
timeout; a check with no verdict leaves the item unknown (passed NULL, the reason in
failed_checks), as a grader's does; Ctrl-C still stops the run (issue 17, item 12)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import hanzo, query, write_job

CHECKS_PY = textwrap.dedent('''
    import sys
    import threading
    from pathlib import Path


    def hangs(answer, row, result):
        Path(__file__).with_name("entered").touch()
        threading.Event().wait()


    def leaves(answer, row, result):
        sys.exit(3)


    def fine(answer, row, result):
        return True
''')


def _job(folder: Path, checks: list[dict[str, object]], repeat: int = 2) -> Path:
    (folder / "checks.py").write_text(CHECKS_PY)
    return write_job(folder, {"targets": ["echo/echo"], "prompts": [{"id": "p", "text": "hi"}], "repeat": repeat,
                              "checks": checks, "output": "out.db"})


def test_a_blocking_check_times_out_and_leaves_the_item_without_a_verdict(isolated: Path) -> None:
    job = _job(isolated, [{"python": "checks.py:fine"}, {"python": "checks.py:hangs", "timeout": 0.5}], repeat=3)
    started = time.monotonic()
    done = hanzo(job, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr  # no verdict is not a pass
    rows = query(isolated / "out.db", "SELECT status, passed, failed_checks FROM results")
    assert len(rows) == 3
    for status, passed, failed in rows:
        assert (status, passed) == ("ok", None)
        assert json.loads(failed) == [{"check": "python", "reason": "hangs gave no verdict within 0.5 s (its "
                                       "timeout); it was left running"}]
    assert query(isolated / "out.db", "SELECT status FROM runs") == [("completed",)]


def test_sys_exit_in_a_check_is_recorded_not_the_end_of_the_run(isolated: Path) -> None:
    job = _job(isolated, [{"python": "checks.py:leaves"}, {"python": "checks.py:fine"}])
    done = hanzo(job, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    rows = query(isolated / "out.db", "SELECT passed, failed_checks FROM results")
    assert len(rows) == 2
    for passed, failed in rows:
        assert passed is None
        assert json.loads(failed) == [{"check": "python", "reason": "leaves raised SystemExit: 3 (checks.py:13)"}]
    # Beside a check that fails, a check without a verdict does not hide the failure.
    job = _job(isolated, [{"python": "checks.py:leaves"}, {"contains": "never said"}])
    assert hanzo(job, timeout=60).returncode == 1
    assert {p for p, in query(isolated / "out.db", "SELECT passed FROM results WHERE run_id = 2")} == {0}


def test_sys_exit_at_import_is_a_validation_problem(isolated: Path) -> None:
    (isolated / "quits.py").write_text("import sys\n\nsys.exit('no checks today')\n")
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"], "checks": [{"python": "quits.py:f"}],
                               "output": "out.db"})
    for command in (("validate", job), (job,)):
        done = hanzo(*command)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[0] == ("job.yaml:6:11: checks[0].python: quits.py:3: importing it failed: "
                                               "SystemExit: no checks today")


def test_timeout_is_a_python_check_option_only(isolated: Path) -> None:
    job = write_job(isolated, {"targets": ["echo/echo"], "prompts": ["hi"],
                               "checks": [{"contains": "x", "timeout": 5}, {"python": "c.py:f", "timeout": 0}]})
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert "checks[0]: timeout applies only to python checks" in done.stderr
    assert "checks[1].timeout: 0 is less than or equal to the minimum of 0" in done.stderr


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_a_run_whose_check_blocks(sent: signal.Signals, isolated: Path) -> None:
    job = _job(isolated, [{"python": "checks.py:hangs"}], repeat=50)  # the default timeout: 10 s
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(job), "--concurrency", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (isolated / "entered").exists():
            assert time.monotonic() < deadline, "the check was never called"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sent)
        _, err = proc.communicate(timeout=30)  # today: never, the event loop is stuck in the check
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert query(isolated / "out.db", "SELECT status FROM runs") == [("interrupted",)]
