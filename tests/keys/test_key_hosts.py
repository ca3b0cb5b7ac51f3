"""A key goes to its provider's own host only: provider file paths are relative to base_url,
every request's URL is checked against base_url's host, and a base_url carrying a user name
and password is refused before it can be stored or shown (issue 17, items 1 and 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from runner.config.providers import load_provider_file
from runner.errors import ErrorCode, ProviderError
from runner.http.client import ProviderClient
from runner.keys.store import KeyStore, host_of
from tests.conftest import hanzo, point_at, write_job, write_providers
from tests.fakes import FakeServer

PATH_RULE = "is a path below base_url starting with / (e.g. /models), not a URL: the key is sent only to " \
            "base_url's host"


@pytest.mark.parametrize("command", [("ping", "openai"), ("models", "openai", "--refresh")])
def test_an_absolute_validate_or_list_path_is_refused_and_the_stored_key_goes_nowhere(
        command: tuple[str, ...], fake: FakeServer, canned: Any, isolated: Path) -> None:
    data = point_at(fake, "openai", validate_path=f"{canned.url}/steal")
    data["models"]["list_path"] = f"{canned.url}/steal"
    folder = write_providers(isolated / "providers.d", {"openai": data})
    KeyStore().set("openai", "sk-stored-for-the-fake-0001", host_of(fake.base_url("openai")))
    done = hanzo(*command)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert f"providers.d/openai.yaml:{_line(folder / 'openai.yaml', 'list_path')}:14: models.list_path: " \
           f"list_path {PATH_RULE}" in lines
    assert f"providers.d/openai.yaml:{_line(folder / 'openai.yaml', 'validate_path')}:16: validate_path: " \
           f"validate_path {PATH_RULE}" in lines
    assert canned.paths == []  # nothing reached the other host, with or without the key


def test_validate_names_the_file_and_line_of_an_absolute_path(fake: FakeServer, isolated: Path) -> None:
    folder = write_providers(isolated / "providers.d", {
        "groq": point_at(fake, "groq", validate_path="https://elsewhere.example/v1/key")})
    done = hanzo("validate", folder / "groq.yaml")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (f"providers.d/groq.yaml:{_line(folder / 'groq.yaml', 'validate_path')}:16:"
                                           f" validate_path: validate_path {PATH_RULE}")


def test_every_request_of_a_client_stays_on_its_providers_host(fake: FakeServer, canned: Any, tmp_path: Path) -> None:
    """The check below the schema: whatever URL a protocol (or a server's answer) hands the client,
    the key is sent only to base_url's scheme and host."""
    write_providers(tmp_path / "p", {"openai": point_at(fake, "openai")})
    provider, problems = load_provider_file(tmp_path / "p" / "openai.yaml")
    assert provider is not None and not problems
    key = fake.keys["openai"]

    async def go() -> list[ProviderError]:
        client = ProviderClient(provider, key)
        refused = []
        try:
            for call in (client.get(f"{canned.url}/v1/models"), anext(client.download_lines(f"{canned.url}/r.jsonl")),
                         client.get(fake.base_url("openai").replace("http://", "https://") + "/models"),
                         client.exchange("POST", f"{canned.url}/upload/v1beta/files?upload_id=1", headers={},
                                         content=b"{}")):
                with pytest.raises(ProviderError) as caught:
                    await call
                refused.append(caught.value)
            # The provider's own host, given whole, is still fine.
            assert (await client.get(fake.base_url("openai") + "/models"))["object"] == "list"
        finally:
            await client.aclose()
        return refused

    refused = anyio.run(go, backend="asyncio")
    assert canned.paths == []
    assert [e.code for e in refused] == [ErrorCode.CLIENT_ERROR] * 4
    assert refused[0].message == (f"not sent: {canned.url}/v1/models is not on openai's host ({fake.url}), and its "
                                  "key goes to that host only")
    assert all(key not in e.message for e in refused)


def test_a_base_url_with_a_password_is_refused_before_it_is_stored_or_shown(fake: FakeServer,
                                                                           isolated: Path) -> None:
    data = point_at(fake, "openai")
    data["base_url"] = data["base_url"].replace("http://", "http://alice:s3cret-pw@")
    folder = write_providers(isolated / "providers.d", {"openai": data})
    rule = ("base_url: base_url must not hold a user name or password (user:pass@): it would be stored with every "
            "run and shown by hanzo-run providers; remove it and give the key through auth (auth.env, or: "
            "hanzo-run keys set ID)")
    line = _line(folder / "openai.yaml", "base_url")

    done = hanzo("validate", folder / "openai.yaml")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == f"providers.d/openai.yaml:{line}:11: {rule}"

    job = write_job(isolated, {"targets": ["openai/gpt-4o-mini"], "prompts": ["hi"], "output": "out.db"})
    done = hanzo(job, env={"OPENAI_API_KEY": fake.keys["openai"]})
    assert done.returncode == 2, done.stderr
    assert f"providers.d/openai.yaml:{line}:11: {rule}" in done.stderr.splitlines()
    assert not (isolated / "out.db").exists()  # never reached runs.providers
    assert fake.count("openai") == 0

    shown = hanzo("providers", "--json")
    assert shown.returncode == 2
    assert "s3cret-pw" not in shown.stdout
    assert f"providers.d/openai.yaml:{line}:11: {rule}" in shown.stderr.splitlines()


def _line(path: Path, key: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), start=1) if f"{key}:" in text)
