"""The Providers and Models pages through their HTTP API, against the fake provider server: keys are
checked before they are saved, removed, validated; local servers up or down; models listed,
refreshed and chosen; and a key never comes back in any response."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runner.config.settings import load_settings
from runner.keys.store import KeyStore, host_of, keys_path
from runner.store.database import open_db
from tests.conftest import point_at, write_providers
from tests.fakes import FakeServer
from tests.view.conftest import CSRF, app_client


class Recorder:
    """Every response the app sent in a test, so a test can search all of them for a secret."""

    def __init__(self) -> None:
        self.responses: list[Any] = []

    def assert_never_shown(self, secret: str) -> None:
        assert self.responses
        for response in self.responses:
            everything = response.text + str(response.headers) + str(response.url)
            assert secret not in everything, f"{response.request.method} {response.url} sent the key"
            assert secret[:-4] not in everything, f"{response.request.method} {response.url} sent most of the key"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(tmp_path: Path, providers_env: Path, recorder: Recorder) -> Iterator[TestClient]:
    db = tmp_path / "runs.db"
    open_db(db).close()
    with app_client(db) as client:
        client.event_hooks = {"request": [], "response": [lambda r: (r.read(), recorder.responses.append(r))]}
        yield client


def post(client: TestClient, path: str, **form: str) -> Any:
    return client.post(path, data={"csrf": CSRF, **form}, follow_redirects=False)


def text(html: str) -> str:
    """A page's text without tags, one space between words: what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").strip()


def row_text(html: str, marker: str) -> str:
    """The text of the table row whose opening tag holds ``marker`` (e.g. ``id="provider-groq"``)."""
    return text(html.split(marker, 1)[1].split(">", 1)[1].split("</tr>", 1)[0])


def test_cloud_tab_shows_where_each_key_comes_from_and_where_to_get_one(
        client: TestClient, fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", fake.keys["groq"])
    page = client.get("/providers")
    assert page.status_code == 200
    shown = row_text(page.text, 'id="provider-groq"')
    assert "key …groq from GROQ_API_KEY" in shown
    assert 'href="https://console.anthropic.com/settings/keys"' in page.text
    assert f"Keys you save here are kept in {keys_path()}" in page.text
    assert "only to the host of the provider it was saved for" in page.text
    assert 'id="provider-ollama"' not in page.text  # local providers are on the other tab
    assert fake.keys["groq"] not in page.text


def test_local_tab_shows_servers_up_with_loaded_models_and_down(
        client: TestClient, fake: FakeServer, providers_env: Path, closed_port: int) -> None:
    write_providers(providers_env, {"lmstudio": point_at(fake, "lmstudio",
                                                         base_url=f"http://127.0.0.1:{closed_port}/v1")})
    page = client.get("/providers?tab=local")
    assert page.status_code == 200
    ollama = row_text(page.text, 'id="provider-ollama"')
    assert f"up up ({fake.base_url('ollama')}/api/version answered) loaded: llama3.2:latest" in ollama
    lmstudio = row_text(page.text, 'id="provider-lmstudio"')
    assert "down CONNECTION_FAILED" in lmstudio
    assert 'id="provider-openai"' not in page.text


def test_a_key_is_checked_against_the_provider_before_it_is_saved(client: TestClient, fake: FakeServer,
                                                                  recorder: Recorder) -> None:
    refused = post(client, "/providers/openai/key", key="sk-wrong-key-000000000", tab="cloud")
    assert refused.status_code == 200  # the page again, saying why
    assert "openai: key not saved: the key was refused: INVALID_API_KEY" in text(refused.text)
    assert KeyStore().get("openai") is None
    assert fake.count("openai", "/models") == 1  # checked once, as keys set checks it

    saved = post(client, "/providers/openai/key", key=f"  {fake.keys['openai']}\n", tab="cloud")
    assert (saved.status_code, saved.headers["location"]) == (303, "/providers?tab=cloud&saved=openai")
    stored = KeyStore().get("openai")
    assert stored is not None and (stored.key, stored.host) == (fake.keys["openai"],
                                                                host_of(fake.base_url("openai")))
    page = client.get(saved.headers["location"])
    assert "openai: key checked against the provider and saved" in page.text
    shown = row_text(page.text, 'id="provider-openai"')
    assert "key …enai from the key store" in shown
    recorder.assert_never_shown(fake.keys["openai"])
    recorder.assert_never_shown("sk-wrong-key-000000000")


def test_a_key_that_cannot_be_checked_now_is_not_saved(client: TestClient, fake: FakeServer, providers_env: Path,
                                                      closed_port: int) -> None:
    write_providers(providers_env, {"groq": point_at(fake, "groq", base_url=f"http://127.0.0.1:{closed_port}/v1")})
    refused = post(client, "/providers/groq/key", key=fake.keys["groq"])
    assert refused.status_code == 200
    assert "groq: key not saved: cannot connect; the key was not checked: CONNECTION_FAILED" in text(refused.text)
    assert KeyStore().get("groq") is None


def test_an_empty_key_or_a_keyless_provider_is_refused_with_a_reason(client: TestClient) -> None:
    empty = post(client, "/providers/openai/key", key="   ")
    assert (empty.status_code, "the key is empty" in empty.text) == (400, True)
    keyless = post(client, "/providers/echo/key", key="something-long-enough")
    assert (keyless.status_code, "echo takes no API key" in keyless.text) == (400, True)
    assert KeyStore().all() == {}


def test_remove_takes_the_key_out_of_the_store(client: TestClient, fake: FakeServer, recorder: Recorder) -> None:
    KeyStore().set("groq", fake.keys["groq"], host_of(fake.base_url("groq")))
    assert 'id="remove-groq"' in client.get("/providers").text
    removed = post(client, "/providers/groq/key/remove", tab="cloud")
    assert (removed.status_code, removed.headers["location"]) == (303, "/providers?tab=cloud&removed=groq")
    assert KeyStore().get("groq") is None
    page = client.get(removed.headers["location"])
    assert "groq: key removed from the store" in page.text
    assert 'id="remove-groq"' not in page.text
    again = post(client, "/providers/groq/key/remove")
    assert (again.status_code, "groq: no key in the store" in again.text) == (400, True)
    recorder.assert_never_shown(fake.keys["groq"])


def test_check_all_keys_says_which_work(client: TestClient, fake: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                        recorder: Recorder) -> None:
    monkeypatch.setenv("GROQ_API_KEY", fake.keys["groq"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-revoked-key-11111111")
    page = post(client, "/providers/validate", tab="cloud")
    assert page.status_code == 200
    checks = text(page.text.split('id="key-checks"')[1].split("</ul>")[0])
    assert "groq: valid: key is valid" in checks
    assert "openai: invalid: the key was refused: INVALID_API_KEY" in checks
    recorder.assert_never_shown("sk-revoked-key-11111111")


def test_a_post_without_the_csrf_token_changes_nothing(client: TestClient, fake: FakeServer) -> None:
    done = client.post("/providers/openai/key", data={"key": fake.keys["openai"]}, follow_redirects=False)
    assert done.status_code == 403
    assert KeyStore().all() == {}
    assert fake.count("openai") == 0


def test_models_lists_context_price_and_capability_badges(client: TestClient, fake: FakeServer,
                                                          keys: dict[str, str]) -> None:
    page = client.get("/models?provider=openai")
    assert page.status_code == 200
    shown = row_text(page.text, 'data-model="gpt-4o-mini"')
    # The price runs pay: openai's file gives none, so genai-prices' (as `hanzo-run models` shows it).
    assert shown.split() == ["gpt-4o-mini", "128,000", "16,384", "0.15", "0.6", "vision", "tools", "json", "Use"]
    assert 'title="genai-prices' in page.text.split('data-model="gpt-4o-mini"', 1)[1].split("</tr>", 1)[0]
    assert 'data-model="gpt-4o"' in page.text
    assert "openai runs gpt-6-luna when a job names only the provider" in text(page.text)


def test_refresh_asks_the_provider_again(client: TestClient, fake: FakeServer, keys: dict[str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert 'data-model="gpt-5-new"' not in client.get("/models?provider=openai").text
    monkeypatch.setitem(fake.models, "openai", [*fake.models["openai"], "gpt-5-new"])
    assert 'data-model="gpt-5-new"' not in client.get("/models?provider=openai").text  # the 24 h cache
    refreshed = post(client, "/models/refresh", provider="openai")
    assert (refreshed.status_code, refreshed.headers["location"]) == (303, "/models?provider=openai")
    assert 'data-model="gpt-5-new"' in client.get(refreshed.headers["location"]).text
    assert fake.count("openai", "/models") == 2


def test_use_makes_a_model_the_default_as_the_use_command_does(client: TestClient, fake: FakeServer,
                                                               keys: dict[str, str]) -> None:
    chosen = post(client, "/models/use", provider="openai", model="gpt-4o")
    assert (chosen.status_code, chosen.headers["location"]) == (303, "/models?provider=openai&used=gpt-4o")
    settings = load_settings()
    assert (settings.default_provider, dict(settings.models)) == ("openai", {"openai": "gpt-4o"})
    assert "openai: default model is now gpt-4o" in client.get(chosen.headers["location"]).text
    page = client.get("/models")  # the default provider is the one shown first
    assert "Default provider: openai" in text(page.text)
    shown = row_text(page.text, 'data-model="gpt-4o"')
    assert shown.endswith("default")


def test_models_without_a_key_says_why_and_where_to_set_one(client: TestClient, fake: FakeServer) -> None:
    page = client.get("/models?provider=anthropic")
    assert page.status_code == 200
    assert "cannot list the models of anthropic" in page.text
    assert 'href="/providers"' in page.text


def test_a_stored_key_never_appears_in_any_response(client: TestClient, fake: FakeServer, recorder: Recorder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", fake.keys["groq"])
    assert post(client, "/providers/openai/key", key=fake.keys["openai"]).status_code == 303
    for path in ("/", "/providers", "/providers?tab=local", "/models", "/models?provider=openai",
                 "/models?provider=groq", "/models?provider=anthropic"):
        client.get(path)
    post(client, "/providers/validate")
    post(client, "/models/refresh", provider="openai")
    post(client, "/models/use", provider="openai", model="gpt-4o")
    post(client, "/providers/openai/key/remove")
    assert len(recorder.responses) >= 12
    recorder.assert_never_shown(fake.keys["openai"])
    recorder.assert_never_shown(fake.keys["groq"])


def test_read_only_shows_key_status_but_no_form_and_refuses_changes(tmp_path: Path, providers_env: Path,
                                                                     fake: FakeServer) -> None:
    db = tmp_path / "runs.db"
    open_db(db).close()
    with app_client(db, read_only=True) as client:
        page = client.get("/providers")
        assert page.status_code == 200
        assert "no key" in page.text and 'name="key"' not in page.text and "Check all keys" not in page.text
        assert 'action="/models/use"' not in client.get("/models?provider=ollama").text
        refused = post(client, "/providers/openai/key", key=fake.keys["openai"])
        assert refused.status_code == 403
    assert KeyStore().all() == {}
    assert fake.count("openai") == 0
