"""A job tightens a provider's limits without a provider file of its own (issue 19, part 5)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runner import run_job
from runner.config.jobs import load_job
from runner.config.providers import ProviderRegistry, provider_dirs
from runner.errors import ConfigError
from tests.conftest import hanzo, write_job
from tests.fakes import FakeServer

ITEMS = 8


def _job(folder: Path, **extra: Any) -> Path:
    return write_job(folder, {"targets": ["openai/gpt-4o-mini"], "prompts": ["question {{n}}"],
                              "data": [{"n": n} for n in range(ITEMS)], **extra})


def _run(job: Path, providers: Path) -> None:
    outcome = run_job(job, providers_dirs=(str(providers),))
    assert outcome.ok == ITEMS


def test_the_run_obeys_the_jobs_tighter_concurrency(fake: FakeServer, keys: dict[str, str], fake_providers: Path,
                                                    isolated: Path) -> None:
    fake.add_fault("slow", flavor="openai", times=ITEMS, delay=0.2)
    _run(_job(isolated, name="free"), fake_providers)  # the provider file allows 8 at once: all 8 go together
    assert fake.max_concurrent["openai"] == ITEMS
    fake.clear()
    fake.max_concurrent["openai"] = 0
    fake.add_fault("slow", flavor="openai", times=ITEMS, delay=0.2)
    _run(_job(isolated, name="tight", limits={"openai": {"concurrency": 2}}), fake_providers)
    assert fake.max_concurrent["openai"] == 2


def test_the_run_obeys_the_jobs_tighter_rate(fake: FakeServer, keys: dict[str, str], fake_providers: Path,
                                             isolated: Path) -> None:
    started = time.monotonic()
    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["question {{n}}"],
                               "data": [{"n": n} for n in range(3)],
                               "limits": {"openai": {"requests": 2, "window": 1}}})
    assert run_job(job, providers_dirs=(str(fake_providers),)).ok == 3
    assert time.monotonic() - started >= 0.9  # the provider file allows 10,000 a second
    assert fake.max_in_window("openai", 0.9) <= 2


def _line(job: Path, key: str) -> int:
    """The line of ``key:`` inside the job's ``limits:`` block."""
    lines = job.read_text().splitlines()
    start = lines.index("limits:")
    return next(n for n, line in enumerate(lines[start:], start + 1) if line.strip().startswith(f"{key}:"))


def _problems(job: Path, providers: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_job(job, ProviderRegistry(provider_dirs((str(providers),))))
    return [str(p) for p in raised.value.problems]


def test_a_looser_limit_is_an_error_naming_the_place_and_the_fix(fake_providers: Path, isolated: Path) -> None:
    # The fake providers allow 10,000 requests / 1 s, concurrency 8.
    job = _job(isolated, limits={"openai": {"requests": 5, "window": 0.0001}, "anthropic": {"concurrency": 9}})
    problems = _problems(job, fake_providers)
    assert len(problems) == 2
    assert problems[0].startswith(f"job.yaml:{_line(job, 'openai')}:") and "limits.openai:" in problems[0]
    assert "5 requests / 0.0001 s is more than the provider's 10000 / 1 s" in problems[0]
    assert "lower the job's value, or raise it in the provider file" in problems[0]
    assert "concurrency 9 is more than the provider's 8" in problems[1]


def test_an_unknown_provider_in_limits_is_an_error_at_its_line(fake_providers: Path, isolated: Path) -> None:
    job = _job(isolated, limits={"gemini": {"requests": 5}, "gemeni": {"requests": 5}})
    [problem] = _problems(job, fake_providers)
    assert problem.startswith(f"job.yaml:{_line(job, 'gemeni')}:") and "unknown provider 'gemeni'" in problem
    done = hanzo("validate", job, "--providers-dir", fake_providers)
    assert done.returncode == 2 and "unknown provider 'gemeni'" in done.stderr


def test_tightening_keeps_the_providers_other_limits(fake_providers: Path, isolated: Path) -> None:
    job = load_job(_job(isolated, limits={"openai": {"requests": 5}}),
                   ProviderRegistry(provider_dirs((str(fake_providers),))))
    limits = job.limits["openai"]
    assert (limits.requests, limits.window, limits.concurrency) == (5, 1, 8)
    assert set(job.limits) == {"openai"}


def test_the_shipped_cloud_providers_name_the_tier_of_their_limits(isolated: Path) -> None:
    from runner.api import get_cloud_providers

    tiers = {p.id: p.limits.tier for p in get_cloud_providers()}
    assert tiers == {"openai": "tier 1", "anthropic": "tier 1", "gemini": "free", "groq": "free",
                     "openrouter": "paid", "sambanova": "free"}
    shown = hanzo("providers", "show", "gemini")
    assert "limits:    10 requests / 60 s, concurrency 2 (free tier)" in shown.stdout
