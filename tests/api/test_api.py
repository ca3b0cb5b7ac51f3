"""The typed Python API, in process, against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

import runner
from runner.keys.store import host_of
from tests.fakes import FakeServer

pytestmark = pytest.mark.usefixtures("providers_env")


def test_key_lifecycle(fake: FakeServer) -> None:
    assert runner.has_api_key("groq") is False
    check = runner.set_api_key("groq", fake.keys["groq"])
    assert check is not None and check.ok
    assert runner.get_api_key("groq") == fake.keys["groq"]
    assert runner.has_api_key("groq") is True
    with pytest.raises(runner.KeyRejectedError) as e:
        runner.set_api_key("groq", "gsk-wrong-0000000000")
    assert e.value.check.status == "invalid"
    assert runner.get_api_key("groq") == fake.keys["groq"]  # a refused key replaces nothing
    assert runner.remove_api_key("groq") is True
    assert runner.remove_api_key("groq") is False
    with pytest.raises(runner.UsageError, match="echo takes no API key"):
        runner.set_api_key("echo", "x")


def test_providers_local_connection_and_models(fake: FakeServer, tmp_path: Path) -> None:
    providers, problems = runner.get_all_providers()
    assert problems == []
    assert {p.id for p in providers} >= {"openai", "ollama", "lmstudio", "echo"}
    assert runner.get_provider("groq").base_url == fake.base_url("groq")
    with pytest.raises(runner.UsageError, match="unknown provider 'nope'"):
        runner.get_provider("nope")
    status = runner.test_local_connection("ollama")
    assert (status.up, status.loaded) == (True, ("llama3.2:latest",))
    assert runner.cached_models("sambanova") == {}
    runner.set_api_key("sambanova", fake.keys["sambanova"], validate=False)
    models = runner.fetch_models("sambanova")
    learned = runner.cached_models("sambanova")
    assert learned == {m.id: m for m in models}
    assert learned["DeepSeek-V3-0324"].pricing == runner.Pricing(1.0, 2.0, "discovered via sambanova /models")
    exported = tmp_path / "out.json"
    assert runner.export_settings(exported) == 1
    runner.remove_api_key("sambanova")
    assert runner.import_settings(exported) == 1
    assert runner.get_api_key("sambanova") == fake.keys["sambanova"]
    assert runner.KeyCheck  # noqa: B018 - resolvable from the package
    assert host_of(fake.base_url("groq")).startswith("127.0.0.1:")
