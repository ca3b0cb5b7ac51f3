"""Provider timeouts: connect, first byte, idle gap and an optional total; the older ``timeout: N``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.config.providers import Timeouts, load_provider_file
from runner.resources import builtin_providers_dir

BASE = {"id": "p", "name": "P", "kind": "cloud", "protocol": "openai", "base_url": "https://p.test/v1"}


def load(tmp_path: Path, **extra: Any) -> Any:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return load_provider_file(path)


def test_defaults_come_from_the_schema(tmp_path: Path) -> None:
    provider, problems = load(tmp_path)
    assert problems == []
    assert provider.timeouts == Timeouts(connect=10, first_byte=120, idle=60, total=None)


def test_the_older_timeout_is_first_byte_and_idle_never_the_whole_answer(tmp_path: Path) -> None:
    provider, _ = load(tmp_path, timeout=30)
    assert provider.timeouts == Timeouts(connect=10, first_byte=30, idle=30, total=None)


def test_timeouts_may_set_a_total(tmp_path: Path) -> None:
    provider, _ = load(tmp_path, timeouts={"idle": 5, "total": 600})
    assert provider.timeouts == Timeouts(connect=10, first_byte=120, idle=5, total=600)


def test_timeout_and_timeouts_together_are_refused(tmp_path: Path) -> None:
    provider, problems = load(tmp_path, timeout=30, timeouts={"idle": 5})
    assert provider is None
    assert [p.message for p in problems] == [
        "timeout and timeouts are two spellings of the same bounds: keep timeouts (connect, first_byte, idle, "
        "total) and remove timeout"]


def test_a_misspelt_bound_is_refused(tmp_path: Path) -> None:
    _, problems = load(tmp_path, timeouts={"idel": 5})
    assert [p.message for p in problems] == ["unknown key 'idel'; did you mean 'idle'?"]


def test_builtin_providers_bound_gaps_not_whole_answers() -> None:
    for path in builtin_providers_dir().glob("*.yaml"):
        provider, problems = load_provider_file(path)
        assert provider is not None, problems
        assert provider.timeouts.total is None, path.name
