"""``get_provider_statuses``: every provider's key status and local reachability, as the CLI's
``providers`` and the view's Providers page show them."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.api import get_provider_statuses
from tests.conftest import point_at, write_providers
from tests.fakes import FakeServer


def test_cloud_keys_and_local_servers_up_with_loaded_models_or_down(
        fake: FakeServer, providers_env: Path, isolated: Path, closed_port: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", fake.keys["groq"])
    down = write_providers(isolated / "down", {"lmstudio": point_at(
        fake, "lmstudio", base_url=f"http://127.0.0.1:{closed_port}/v1")})
    statuses, problems = get_provider_statuses([down], loaded_models=True)
    assert problems == []
    by_id = {s.provider.id: s for s in statuses}
    assert (by_id["groq"].key.source, by_id["groq"].key.shown, by_id["groq"].local) == (
        "GROQ_API_KEY", "…groq", None)
    ollama = by_id["ollama"].local
    assert ollama is not None and (ollama.up, ollama.loaded) == (True, ("llama3.2:latest",))
    lmstudio = by_id["lmstudio"].local
    assert lmstudio is not None and not lmstudio.up
    assert lmstudio.detail.startswith("CONNECTION_FAILED")
    assert [s.provider.id for s in statuses] == sorted(by_id)


def test_without_loaded_models_a_server_is_only_asked_whether_it_is_up(fake: FakeServer,
                                                                      providers_env: Path) -> None:
    statuses, _ = get_provider_statuses()
    ollama = next(s.local for s in statuses if s.provider.id == "ollama")
    assert ollama is not None and (ollama.up, ollama.loaded) == (True, ())
    assert fake.count("ollama", "/api/ps") == 0
