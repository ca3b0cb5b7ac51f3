"""The protocol registry: one adapter per name the provider schema allows, no fallback."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, get_args

import pytest

from runner.config.providers import BatchApiName, ProtocolName, load_provider_file
from runner.errors import ErrorCode, ProviderError
from runner.protocols import BATCH_APIS, PROTOCOLS, Adapter, Completion, ErrorInfo, StreamState, adapter_for
from runner.resources import load_schema


def test_the_schemas_protocol_enum_is_the_registry() -> None:
    enum = load_schema("provider")["properties"]["protocol"]["enum"]
    assert list(PROTOCOLS) == enum
    assert list(get_args(ProtocolName)) == enum


def test_the_schemas_batch_api_enum_is_the_batch_registry() -> None:
    enum = load_schema("provider")["properties"]["batch"]["properties"]["api"]["enum"]
    assert list(BATCH_APIS) == enum
    assert list(get_args(BatchApiName)) == enum
    for name, make in BATCH_APIS.items():  # each lives beside its protocol
        assert make.__module__ == f"runner.protocols.{name}_batch"


def test_every_registered_adapter_implements_the_protocol() -> None:
    for adapter in PROTOCOLS.values():
        assert Adapter in type(adapter).__mro__  # subclassed, so its defaults apply
        assert adapter.stream_format in ("sse", "ndjson")


def test_an_adapter_missing_a_required_method_cannot_be_instantiated() -> None:
    class NoBuild(Adapter):  # parse, on_event and error_info, but no build
        stream_format = "sse"

        def parse(self, body: Any) -> Completion:
            return Completion("")

        def on_event(self, state: StreamState, event: str | None, data: Any) -> None:
            pass

        def error_info(self, body: Any) -> ErrorInfo:
            return ErrorInfo("")

    with pytest.raises(TypeError, match="abstract method '?build"):
        NoBuild()  # type: ignore[abstract]


def test_an_unknown_protocol_has_no_adapter() -> None:
    with pytest.raises(KeyError, match="unknown protocol 'grpc'"):
        adapter_for("grpc")


def test_an_unknown_protocol_in_a_provider_file_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("id: acme\nname: Acme\nkind: cloud\nprotocol: grpc\nbase_url: https://api.acme.test/v1\n")
    provider, problems = load_provider_file(path)
    assert provider is None
    assert [str(p) for p in problems] == [
        f"{path}:4:11: protocol: 'grpc' is not one of 'openai', 'anthropic', 'gemini', 'ollama', 'echo'"]


def test_error_codes_are_their_plain_strings() -> None:
    assert len(ErrorCode) == 15
    assert all(code.value == code.name for code in ErrorCode)
    error = ProviderError("TIMEOUT", "slow")  # a plain string still becomes the member
    assert error.code is ErrorCode.TIMEOUT and str(error) == "TIMEOUT: slow"
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (code TEXT)")
    db.execute("INSERT INTO t VALUES (?)", [error.code])
    assert db.execute("SELECT code, typeof(code) FROM t").fetchall() == [("TIMEOUT", "text")]
    with pytest.raises(ValueError):
        ProviderError("TIMEDOUT", "misspelled")
