"""Issue 17 item 4: a target's label is part of its items, and a target listed twice is an error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import MappingProxyType

from runner.config.jobs import Prompt, Target, item_key, items_hash
from tests.conftest import hanzo, query, write_job
from tests.fakes import FakeServer


def test_two_labels_of_one_model_keep_their_own_rows(fake: FakeServer, fake_providers: Path, keys: dict[str, str],
                                                       isolated: Path) -> None:
    job = write_job(isolated, {
        "targets": [{"provider": "openai", "model": "gpt-4o-mini", "label": "first"},
                    {"provider": "openai", "model": "gpt-4o-mini", "label": "second"}],
        "prompts": ["one", "two"], "output": "runs.db"})
    done = hanzo(job, "--providers-dir", fake_providers, "--quiet")
    assert done.returncode == 0, done.stderr
    assert fake.count("openai", "chat/completions") == 4
    db = isolated / "runs.db"
    assert query(db, "SELECT target, count(*) FROM results GROUP BY target ORDER BY target") == [
        ("first", 2), ("second", 2)]
    assert query(db, "SELECT status, items_total, items_ok FROM runs") == [("completed", 4, 4)]


def test_an_unlabelled_target_keeps_the_key_older_runs_resume_by() -> None:
    target = Target("openai", "gpt-4o-mini", MappingProxyType({"temperature": 0}), "openai/gpt-4o-mini")
    messages = ({"role": "user", "content": "hi"},)
    before = json.dumps(["openai", "gpt-4o-mini", "p1", None, messages, target.params, 0], sort_keys=True,
                        separators=(",", ":"), default=str)
    assert item_key(target, "p1", None, messages, 0) == hashlib.sha256(before.encode()).hexdigest()[:24]
    labelled = Target("openai", "gpt-4o-mini", target.params, "mine")
    assert item_key(labelled, "p1", None, messages, 0) != item_key(target, "p1", None, messages, 0)
    # A labelled job's hash changes too: resuming a run written before labels counted refuses (--force
    # continues) instead of sending those items again beside their old rows.
    prompt = Prompt("p1", messages)
    old_hash = hashlib.sha256(json.dumps([[("openai", "gpt-4o-mini", {"temperature": 0})], [("p1", messages)], 1,
                                          None], sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert items_hash([target], [prompt], None, 1) == old_hash
    assert items_hash([labelled], [prompt], None, 1) != old_hash


def test_a_target_listed_twice_names_both_places(isolated: Path) -> None:
    job = isolated / "job.yaml"
    job.write_text("targets:\n  - echo/echo\n  - {provider: echo, model: other, label: x}\n"
                   "  - {provider: echo, model: echo}\nprompts: [hi]\n")
    done = hanzo("validate", job)
    assert done.returncode == 2
    assert ("job.yaml:4:5: targets[2]: target 'echo/echo' is listed twice (also targets[0], line 2); "
            "give one a different label") in done.stderr
