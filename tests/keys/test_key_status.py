"""What may be shown about a provider's key: where it comes from and its last 4 characters, never more."""

from __future__ import annotations

import pytest

from runner.config.providers import ProviderRegistry, provider_dirs
from runner.keys.lookup import key_status, mask
from runner.keys.store import KeyStore, host_of


def provider(provider_id: str):  # type: ignore[no-untyped-def]
    return ProviderRegistry(provider_dirs()).get(provider_id)


def test_mask_shows_the_last_four_characters_of_a_long_key_only() -> None:
    assert mask("sk-abcdefgh1234") == "…1234"
    assert mask("short-key") == "****"  # too short: even 4 characters would be much of it


def test_a_key_from_the_environment_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-the-env-9876")
    status = key_status(provider("groq"))
    assert (status.source, status.where, status.shown, status.problem, status.stored_for) == (
        "GROQ_API_KEY", "GROQ_API_KEY", "…9876", None, None)
    assert "gsk-from-the-env" not in repr(status)


def test_a_stored_key_says_store_and_its_host() -> None:
    openai = provider("openai")
    KeyStore().set("openai", "sk-stored-key-5555", host_of(openai.base_url))
    status = key_status(openai)
    assert (status.source, status.shown, status.stored_for) == ("store", "…5555", "api.openai.com")


def test_a_key_stored_for_another_host_is_not_shown_and_says_why() -> None:
    KeyStore().set("openai", "sk-stored-key-5555", "old.example.com")
    status = key_status(provider("openai"))
    assert (status.source, status.shown, status.stored_for) == ("missing", "", "old.example.com")
    assert status.where == "store (saved for old.example.com; not sent to this host)"
    assert status.problem is not None and "api.openai.com" in status.problem


def test_a_missing_key_says_how_to_get_one_and_a_keyless_provider_needs_none() -> None:
    status = key_status(provider("anthropic"))
    assert (status.source, status.shown, status.stored_for) == ("missing", "", None)
    assert status.problem == ("no API key for anthropic: set HANZO_API_KEY_ANTHROPIC or ANTHROPIC_API_KEY or run: "
                              "hanzo-run keys set anthropic; get one at https://console.anthropic.com/settings/keys")
    assert key_status(provider("echo")).source == "not needed"
