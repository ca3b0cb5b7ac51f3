"""Every command that reads providers takes --providers-dir, through one shared option
(issue 17, item 16)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from runner.cli.main import cli
from tests.conftest import hanzo, point_at, write_providers
from tests.fakes import FakeServer

# Commands that load provider files (a group's subcommands by "group sub").
READS_PROVIDERS = ["run", "validate", "rescore", "providers", "providers show", "models", "ping", "use",
                   "keys set", "keys get", "keys list", "keys validate", "batches cancel", "ask", "view"]


def _command(path: str) -> click.Command:
    command: click.Command = cli
    for name in path.split():
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", READS_PROVIDERS)
def test_every_command_that_reads_providers_takes_the_option(path: str) -> None:
    options = {o: p for p in _command(path).params for o in p.opts}
    assert "--providers-dir" in options, path
    assert options["--providers-dir"].multiple


@pytest.fixture
def acme(fake: FakeServer, tmp_path: Path) -> Path:
    """A provider no built-in folder knows: only --providers-dir finds it."""
    data = point_at(fake, "openai")
    data.update(id="acme", name="Acme")
    return write_providers(tmp_path / "elsewhere", {"acme": data})


def test_the_provider_commands_find_a_provider_only_in_the_given_folder(fake: FakeServer, acme: Path,
                                                                        isolated: Path) -> None:
    key = {"HANZO_API_KEY_ACME": fake.keys["openai"]}
    listed = hanzo("providers", "--json", "--providers-dir", acme, env=key)
    assert listed.returncode == 0, listed.stderr
    assert "acme" in [p["id"] for p in json.loads(listed.stdout)]
    shown = hanzo("providers", "show", "acme", "--providers-dir", acme)
    assert shown.returncode == 0, shown.stderr
    assert f"file:      {acme / 'acme.yaml'}" in shown.stdout
    models = hanzo("models", "acme", "--json", "--providers-dir", acme, env=key)
    assert models.returncode == 0, models.stderr
    assert [m["id"] for m in json.loads(models.stdout)] == ["gpt-4o-mini", "gpt-4o"]
    ping = hanzo("ping", "acme", "--providers-dir", acme, env=key)
    assert (ping.returncode, ping.stdout.split(":")[:2]) == (0, ["acme", " valid"]), ping.stderr
    checked = hanzo("keys", "validate", "acme", "--providers-dir", acme, env=key)
    assert checked.returncode == 0, checked.stderr
    saved = hanzo("keys", "set", "acme", "--value", fake.keys["openai"], "--providers-dir", acme)
    assert saved.returncode == 0, saved.stderr
    got = hanzo("keys", "get", "acme", "--providers-dir", acme)
    assert (got.returncode, got.stderr) == (0, "acme: key from store\n")
    keys = hanzo("keys", "list", "--json", "--providers-dir", acme)
    assert {"provider": "acme", "source": "store", "key": "…" + fake.keys["openai"][-4:]} in json.loads(keys.stdout)
    used = hanzo("use", "acme", "--providers-dir", acme)
    assert used.returncode == 0, used.stderr
    # Without the option the provider is unknown, as before.
    assert hanzo("ping", "acme").returncode == 2
