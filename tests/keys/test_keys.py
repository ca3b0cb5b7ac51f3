"""``hanzo-run keys``: set/get/list/remove/clear/validate/path/export/import, and every
way a key check can fail, against the fake server (and a canned server for GET faults)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import validate_api_key
from runner.keys.store import KeyStore, host_of
from runner.resources import builtin_providers_dir
from tests.conftest import hanzo, write_providers
from tests.fakes import GEMINI_BAD_KEY, FakeServer, error_body


def test_set_reads_a_piped_key_checks_it_and_stores_it_for_its_host(fake: FakeServer, providers_env: Path) -> None:
    done = hanzo("keys", "set", "groq", input=fake.keys["groq"] + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "groq: key checked and saved (…groq)\n"
    stored = KeyStore().get("groq")
    assert stored is not None and stored.key == fake.keys["groq"]
    assert stored.host == host_of(fake.base_url("groq"))
    assert fake.requests[-1].path == "/groq/openai/v1/models"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {fake.keys['groq']}"


def test_set_refuses_a_key_the_provider_refuses(fake: FakeServer, providers_env: Path) -> None:
    done = hanzo("keys", "set", "anthropic", "--value", "sk-ant-wrong-000000")
    assert done.returncode == 1
    assert done.stderr == (
        "anthropic: key not saved: the key was refused: INVALID_API_KEY: HTTP 401: invalid x-api-key "
        f"(GET {fake.base_url('anthropic')}/v1/models)\n")
    assert KeyStore().get("anthropic") is None


def test_set_refuses_when_the_key_cannot_be_checked_but_no_validate_saves_it(isolated: Path,
                                                                             closed_port: int) -> None:
    data = yaml.safe_load((builtin_providers_dir() / "openai.yaml").read_text())
    data["base_url"] = f"http://127.0.0.1:{closed_port}/v1"
    write_providers(isolated / "providers.d", {"openai": data})
    done = hanzo("keys", "set", "openai", "--value", "sk-unchecked-0000001")
    assert done.returncode == 1
    assert done.stderr.startswith("openai: key not saved: cannot connect; the key was not checked: "
                                  f"CONNECTION_FAILED: cannot connect to http://127.0.0.1:{closed_port}/v1/models")
    assert "refused" not in done.stderr
    done = hanzo("keys", "set", "openai", "--value", "sk-unchecked-0000001", "--no-validate")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "openai: key saved without checking (…0001)\n"


def test_get_masks_unless_reveal_and_list_says_where_each_key_comes_from(fake: FakeServer, providers_env: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    KeyStore().set("openai", "sk-stored-key-abcd", host_of(fake.base_url("openai")))
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env-wxyz")
    got = hanzo("keys", "get", "openai")
    assert (got.returncode, got.stdout, got.stderr) == (0, "…abcd\n", "openai: key from store\n")
    assert hanzo("keys", "get", "openai", "--reveal").stdout == "sk-stored-key-abcd\n"
    missing = hanzo("keys", "get", "anthropic")
    assert missing.returncode == 1
    assert missing.stderr.startswith("anthropic: no API key for anthropic: set HANZO_API_KEY_ANTHROPIC or "
                                     "ANTHROPIC_API_KEY or run: hanzo-run keys set anthropic")
    listed = hanzo("keys", "list", "--json")
    rows = {r["provider"]: r for r in json.loads(listed.stdout)}
    assert rows["openai"] == {"provider": "openai", "source": "store", "key": "…abcd"}
    assert rows["groq"] == {"provider": "groq", "source": "GROQ_API_KEY", "key": "…wxyz"}
    assert rows["anthropic"]["source"] == "missing"
    assert rows["ollama"]["source"] == rows["echo"]["source"] == "not needed"
    text = hanzo("keys", "list").stdout
    assert "openai      …abcd   store" in text
    assert "sk-stored-key" not in listed.stdout + text


def test_remove_clear_and_path() -> None:
    store = KeyStore()
    store.set("openai", "sk-one-0000000001", "api.openai.com")
    store.set("groq", "gsk-two-000000002", "api.groq.com")
    assert hanzo("keys", "path").stdout.strip() == str(store.path)
    done = hanzo("keys", "remove", "openai")
    assert (done.returncode, done.stderr) == (0, "openai: key removed from the store\n")
    done = hanzo("keys", "remove", "openai")
    assert (done.returncode, done.stderr) == (1, "openai: no key in the store\n")
    refused = hanzo("keys", "clear", input="n\n")
    assert refused.returncode == 130 and store.get("groq") is not None
    done = hanzo("keys", "clear", "--yes")
    assert (done.returncode, done.stderr) == (0, "removed 1 key(s)\n")
    assert store.all() == {}


def test_export_then_import_gives_the_same_keys_and_settings(isolated: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore()
    store.set("openai", "sk-export-me-000001", "api.openai.com")
    store.set("gemini", "AIza-export-me-0002", "generativelanguage.googleapis.com")
    assert hanzo("use", "openai/gpt-4o").returncode == 0
    before_keys, before_settings = store.all(), json.loads((tmp_path / "home" / "settings.json").read_text())
    backup = tmp_path / "backup.json"
    done = hanzo("keys", "export", backup)
    assert done.returncode == 0
    assert done.stdout == ""
    assert done.stderr == (f"exported 2 key(s) and settings to {backup}\n"
                           f"warning: {backup} holds your API keys in plain text; keep it private and delete it "
                           "when done\n")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    monkeypatch.setenv("HANZO_RUN_HOME", str(tmp_path / "other-home"))
    assert KeyStore().all() == {}
    done = hanzo("keys", "import", backup)
    assert (done.returncode, done.stderr) == (0, f"imported 2 key(s) and settings from {backup}\n")
    assert KeyStore().all() == before_keys
    assert json.loads((tmp_path / "other-home" / "settings.json").read_text()) == before_settings

    (tmp_path / "not-export.json").write_text("{}")
    (tmp_path / "not-export.json").chmod(0o600)
    done = hanzo("keys", "import", tmp_path / "not-export.json")
    assert done.returncode == 2
    assert "is not a hanzo-run export" in done.stderr


# ---------------------------------------------------------------- key validation, every outcome


@pytest.mark.parametrize("provider_id", ["openai", "anthropic", "gemini", "groq", "openrouter", "sambanova"])
def test_validate_knows_a_good_key_from_a_bad_one(provider_id: str, fake: FakeServer, keys: dict[str, str],
                                                  providers_env: Path) -> None:
    good = validate_api_key(provider_id)
    assert (good.status, good.ok) == ("valid", True)
    expected_path = {"openrouter": "/openrouter/api/v1/key", "gemini": "/gemini/v1beta/models",
                     "anthropic": "/anthropic/v1/models"}.get(provider_id, "/models")
    assert fake.requests[-1].path.endswith(expected_path)
    bad = validate_api_key(provider_id, "wrong-key-123456")
    assert (bad.status, bad.ok) == ("invalid", False)
    assert bad.detail.startswith("the key was refused: INVALID_API_KEY: HTTP ")
    assert "wrong-key-123456" not in bad.detail
    assert fake.count(path_contains="chat") == 0 and fake.count(path_contains="messages") == 0


def test_gemini_bad_key_is_its_400_api_key_invalid(fake: FakeServer, providers_env: Path) -> None:
    bad = validate_api_key("gemini", "AIza-wrong-key-0000")
    assert bad.status == "invalid"
    assert bad.detail == ("the key was refused: INVALID_API_KEY: HTTP 400: API key not valid. Please pass a valid "
                          f"API key. (GET {fake.base_url('gemini')}/models)")
    assert fake.requests[-1].query == {"pageSize": "1"}


def canned_provider(isolated: Path, url: str, provider_id: str, flavor_path: str = "/v1") -> None:
    data = yaml.safe_load((builtin_providers_dir() / f"{provider_id}.yaml").read_text())
    data["base_url"] = url + flavor_path
    data.pop("timeouts", None)
    data["timeout"] = 1
    write_providers(isolated / "providers.d", {provider_id: data})


FAILURES: list[tuple[str, str, int, Any, dict[str, str], str, str]] = [
    # provider, flavor, status, body, headers, expected status, expected detail start
    ("openai", "openai", 429, error_body("openai", 429, "Rate limit reached for requests", code="rate_limit_exceeded"),
     {"Retry-After": "20"}, "rate_limited",
     "rate-limited; the key may be fine, try again later: RATE_LIMIT_EXCEEDED: HTTP 429: Rate limit reached"),
    ("openai", "openai", 429, error_body("openai", 429, "You exceeded your current quota", etype="insufficient_quota",
                                          code="insufficient_quota"), {}, "quota",
     "the key is out of quota or credit: QUOTA_EXHAUSTED: HTTP 429: You exceeded your current quota"),
    ("openrouter", "openrouter", 402, error_body("openrouter", 402, "Insufficient credits"), {}, "quota",
     "the key is out of quota or credit: QUOTA_EXHAUSTED: HTTP 402: Insufficient credits"),
    ("anthropic", "anthropic", 529, error_body("anthropic", 529, "Overloaded"), {}, "server_error",
     "the provider had a server error; the key was not checked: SERVER_ERROR: HTTP 529: Overloaded"),
    ("groq", "groq", 503, error_body("groq", 503, "Service Unavailable"), {}, "server_error",
     "the provider had a server error; the key was not checked: SERVER_ERROR: HTTP 503: Service Unavailable"),
    ("gemini", "gemini", 403, error_body("gemini", 403, "Generative Language API has not been used"), {}, "invalid",
     "the key was refused: INVALID_API_KEY: HTTP 403: Generative Language API has not been used"),
    ("gemini", "gemini", 400, {"error": GEMINI_BAD_KEY}, {}, "invalid",
     "the key was refused: INVALID_API_KEY: HTTP 400: API key not valid."),
]


@pytest.mark.parametrize(("provider_id", "flavor", "status", "body", "headers", "verdict", "detail"), FAILURES)
def test_validate_names_each_failure_class(provider_id: str, flavor: str, status: int, body: Any,
                                           headers: dict[str, str], verdict: str, detail: str, canned: Any,
                                           isolated: Path) -> None:
    canned_provider(isolated, canned.url, provider_id)
    canned.answer(status, body, headers)
    check = validate_api_key(provider_id, "some-key-0000000")
    assert check.status == verdict
    assert check.detail.startswith(detail), check.detail
    assert check.ok is False


def test_validate_html_error_page_is_a_server_error_not_a_bad_key(canned: Any, isolated: Path) -> None:
    canned_provider(isolated, canned.url, "openai")
    canned.answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
    check = validate_api_key("openai", "some-key-0000000")
    assert check.status == "server_error"
    assert check.detail.startswith("the provider had a server error; the key was not checked: SERVER_ERROR: HTTP 502")


def test_validate_timeout_and_refused_connection_are_not_a_bad_key(canned: Any, isolated: Path,
                                                                    closed_port: int) -> None:
    canned_provider(isolated, canned.url, "openai")
    canned.delay = 1.5
    check = validate_api_key("openai", "some-key-0000000")
    assert check.status == "unreachable"
    assert check.detail == (f"no answer in time; the key was not checked: TIMEOUT: no answer within 1 s from "
                            f"{canned.url}/v1/models")
    canned_provider(isolated, f"http://127.0.0.1:{closed_port}", "openai")
    check = validate_api_key("openai", "some-key-0000000")
    assert check.status == "unreachable"
    assert check.detail.startswith("cannot connect; the key was not checked: CONNECTION_FAILED: cannot connect to "
                                   f"http://127.0.0.1:{closed_port}/v1/models: ")


def test_validate_command_exit_codes_and_all(fake: FakeServer, keys: dict[str, str], providers_env: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    done = hanzo("keys", "validate", "openai")
    assert (done.returncode, done.stdout) == (
        0, f"openai: valid: key is valid (GET {fake.base_url('openai')}/models answered)\n")
    done = hanzo("keys", "validate", "--all")
    assert done.returncode == 0, done.stdout
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        "anthropic", "gemini", "groq", "openai", "openrouter", "sambanova"]
    done = hanzo("keys", "validate", "--all", env={"GROQ_API_KEY": "gsk-wrong-00000000"})
    assert done.returncode == 1
    assert "groq: invalid: the key was refused: INVALID_API_KEY: HTTP 401: Invalid API Key" in done.stdout
    done = hanzo("keys", "validate")
    assert (done.returncode, done.stderr) == (2, "hanzo-run: name one PROVIDER, or --all\n")
    monkeypatch.delenv("OPENAI_API_KEY")
    done = hanzo("keys", "validate", "openai")
    assert done.returncode == 1
    assert done.stdout.startswith("openai: missing: no API key for openai")


def test_every_keys_command_has_help_with_an_example() -> None:
    for sub in ("set", "get", "list", "remove", "clear", "validate", "path", "export", "import"):
        done = hanzo("keys", sub, "--help")
        assert done.returncode == 0
        example = done.stdout.split("Example:")[1]
        assert f"hanzo-run keys {sub}" in example, done.stdout
