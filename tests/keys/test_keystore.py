"""The key store: file modes, atomic writes, refusal of unsafe files, lookup order,
the host binding of a stored key, and settings used by a run."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from runner.config.providers import ProviderRegistry, provider_dirs
from runner.config.settings import load_settings, select, settings_path
from runner.errors import UsageError
from runner.keys.lookup import find_key
from runner.keys.store import KeyStore, host_of, keys_path
from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer


def provider(provider_id: str = "openai"):  # type: ignore[no-untyped-def]
    return ProviderRegistry(provider_dirs()).get(provider_id)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_is_created_0600_in_a_0700_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "fresh" / "config"
    monkeypatch.setenv("HANZO_RUN_HOME", str(home))
    KeyStore().set("openai", "sk-test-0123456789", "api.openai.com")
    assert keys_path() == home / "keys.json"
    assert mode(home / "keys.json") == 0o600
    assert mode(home) == 0o700
    assert [p.name for p in home.iterdir()] == ["keys.json"]  # no temp file left behind


def test_a_crash_mid_write_leaves_the_old_store_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore()
    store.set("openai", "sk-old-0123456789", "api.openai.com")

    def crash(*args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.set("groq", "gsk-new-0123456789", "api.groq.com")
    monkeypatch.undo()
    assert store.get("openai") is not None and store.get("openai").key == "sk-old-0123456789"  # type: ignore[union-attr]
    assert store.get("groq") is None
    assert [p.name for p in store.path.parent.iterdir()] == ["keys.json"]


def test_a_store_other_users_can_read_is_refused() -> None:
    store = KeyStore()
    store.set("openai", "sk-test-0123456789", "api.openai.com")
    store.path.chmod(0o644)
    with pytest.raises(UsageError) as e:
        store.all()
    assert str(e.value) == (f"hanzo-run: refusing to read {store.path}: other users can access it (mode 0644); "
                            f"run: chmod 600 {store.path}")
    done = hanzo("keys", "list")
    assert done.returncode == 2
    assert "other users can access it (mode 0644)" in done.stderr


def test_lookup_order_is_own_variable_then_provider_variable_then_store(monkeypatch: pytest.MonkeyPatch) -> None:
    openai = provider()
    KeyStore().set("openai", "from-the-store-0001", host_of(openai.base_url))
    assert (find_key(openai).source, find_key(openai).key) == ("store", "from-the-store-0001")
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-var-0002")
    assert (find_key(openai).source, find_key(openai).key) == ("OPENAI_API_KEY", "from-openai-var-0002")
    monkeypatch.setenv("HANZO_API_KEY_OPENAI", "from-own-var-0003")
    assert (find_key(openai).source, find_key(openai).key) == ("HANZO_API_KEY_OPENAI", "from-own-var-0003")


def test_a_stored_key_is_not_sent_to_another_host(fake: FakeServer, isolated: Path) -> None:
    KeyStore().set("openai", fake.keys["openai"], "api.openai.com")  # saved for the real host
    write_providers(isolated / "providers.d", {"openai": point_at(fake, "openai")})
    new_host = host_of(fake.base_url("openai"))
    lookup = find_key(provider())
    assert lookup.key is None
    assert lookup.problem == (
        f"the stored key for openai was saved for api.openai.com, but providers.d/openai.yaml points openai at "
        f"{new_host}; it is not sent there. Save a key for {new_host} with: hanzo-run keys set openai")

    job = write_job(isolated, {"name": "bound", "targets": ["openai/gpt-4o-mini"], "prompts": ["hi"],
                               "output": "runs.db"})
    done = hanzo(job, "--quiet")
    assert done.returncode == 1, done.stderr
    assert fake.count("openai") == 0  # nothing was sent, least of all the key
    row = sqlite3.connect(isolated / "runs.db").execute("select error_code, error_message from results").fetchone()
    assert row == ("API_KEY_REQUIRED", lookup.problem)
    listed = hanzo("keys", "list").stdout
    assert "store (saved for api.openai.com; not sent to this host)" in listed


def test_a_stored_key_for_the_same_host_is_used_by_a_run(fake: FakeServer, isolated: Path) -> None:
    write_providers(isolated / "providers.d", {"openai": point_at(fake, "openai")})
    KeyStore().set("openai", fake.keys["openai"], host_of(fake.base_url("openai")))
    job = write_job(isolated, {"name": "stored", "targets": ["openai/gpt-4o-mini"], "prompts": ["hi"],
                               "output": "runs.db"})
    done = hanzo(job, "--quiet")
    assert done.returncode == 0, done.stderr
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.keys['openai']}"


def test_settings_are_private_and_pick_the_model_of_a_provider_only_target(fake: FakeServer, isolated: Path,
                                                                           keys: dict[str, str]) -> None:
    write_providers(isolated / "providers.d", {"openai": point_at(fake, "openai")})
    done = hanzo("use", "openai/gpt-4o")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "default provider: openai; model: gpt-4o\n"
    assert mode(settings_path()) == 0o600
    assert load_settings().default_provider == "openai"
    assert json.loads(settings_path().read_text())["models"] == {"openai": "gpt-4o"}
    job = write_job(isolated, {"name": "sel", "targets": ["openai"], "prompts": ["hi"], "output": "runs.db"})
    assert hanzo(job, "--quiet").returncode == 0
    assert fake.requests[-1].json["model"] == "gpt-4o"
    select("openai", None)  # choosing the provider again keeps its model
    assert load_settings().models == {"openai": "gpt-4o"}


def test_use_refuses_an_unknown_provider() -> None:
    done = hanzo("use", "nosuch/model")
    assert done.returncode == 2
    assert done.stderr.startswith("hanzo-run: unknown provider 'nosuch'; known: anthropic, echo, gemini")
