"""Issue 17 item 15: --no-wait does not say "submitted" and exit 0 while the budget refused items."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import hanzo, point_at, query, write_job, write_providers
from tests.fakes import FakeServer


def test_no_wait_with_items_refused_by_the_budget_exits_1_saying_so(fake: FakeServer, keys: dict[str, str],
                                                                     isolated: Path, tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "providers", {"anthropic": point_at(fake, "anthropic")})
    job = write_job(isolated, {"targets": ["anthropic/claude-haiku-4-5"],
                               "prompts": [{"id": "q", "text": "Question {{n}}"}],
                               "data": [{"n": i} for i in range(10)], "params": {"max_tokens": 50},
                               "batch": True, "output": "out.db"})
    done = hanzo(job, "--providers-dir", providers, "--no-wait", "--max-cost", "0.0008")
    refused = query(isolated / "out.db", "SELECT count(*) FROM results WHERE error_code = 'BUDGET_EXCEEDED'")[0][0]
    assert 0 < refused < 10
    assert done.returncode == 1, done.stdout + done.stderr
    assert "submitted" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"hanzo-run: submitted 1 batches (run 1), but {refused} items were not sent (BUDGET_EXCEEDED {refused}); "
        f"collect the batches with: hanzo-run {job} --resume 1 --providers-dir {providers} --max-cost 0.0008")
