"""Cost that grows with the work: loading, validating and expanding a job visit each data row a
bounded number of times (counted, not timed: a count is the same on a busy machine); YAML is
parsed by libyaml where PyYAML has it, with the same data and the same messages."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given

from runner.config import files, jobs, validation
from runner.config.files import Document
from runner.config.providers import ProviderRegistry, provider_dirs
from tests.config.test_bad_files import BAD_FILES, COMMAND_CASES, GOOD_JOB, mutated_yaml
from tests.conftest import REPO


class CountingRow(dict[str, Any]):
    """A data row that counts every pass over its keys (set(row), union, difference, for ... in row)
    and every value read by its key (``row[name]``)."""

    visits = 0
    reads = 0

    def __iter__(self) -> Iterator[str]:
        CountingRow.visits += 1
        return super().__iter__()

    def __getitem__(self, name: str) -> Any:
        CountingRow.reads += 1
        return super().__getitem__(name)


def counting_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every job loaded from now on has its inline rows as CountingRows."""
    real = jobs.read_document

    def counted(path: Path, display: str | None = None) -> tuple[Document | None, list[Any]]:
        doc, problems = real(path, display)
        if doc is not None and isinstance(doc.data, dict) and isinstance(doc.data.get("data"), list):
            doc.data["data"] = [CountingRow(r) if isinstance(r, dict) else r for r in doc.data["data"]]
        return doc, problems

    monkeypatch.setattr(jobs, "read_document", counted)


def row_visits(folder: Path, rows: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Passes over the rows' keys to load, validate and expand a job of ``rows`` inline rows."""
    path = folder / f"job{rows}.yaml"
    path.write_text("targets: [echo/echo]\nprompts: ['{{a}} and {{b}}']\n"
                    "checks: [{contains: '{{b}}'}]\ndata:\n"
                    + "".join(f"  - {{a: {i}, b: x{i}}}\n" for i in range(rows - 1))
                    + "  - {a: last}\n")  # one row short of a variable: the "data[N] has no 'b'" path runs too
    counting_rows(monkeypatch)
    registry = ProviderRegistry(provider_dirs())
    CountingRow.visits = 0
    with pytest.raises(jobs.ConfigError, match=rf"data\[{rows - 1}\] has no 'b'"):
        jobs.load_job(path, registry)
    path.write_text(path.read_text().replace("{a: last}", "{a: last, b: y}"))
    job = jobs.load_job(path, registry)
    assert sum(1 for _ in job.items_for(job.targets[0])) == rows
    return CountingRow.visits


def test_loading_inline_rows_is_linear_in_rows(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Quadratic work (every row compared with every row) makes these 300 * 300 and 1,200 * 1,200:
    # linear work visits each row a few times, so four times the rows is four times the visits.
    small, large = row_visits(isolated, 300, monkeypatch), row_visits(isolated, 1200, monkeypatch)
    assert large <= 25 * 1200, large  # about 7 a row today
    assert large <= 5 * small, (small, large)


def test_the_schema_checks_one_inline_row_of_each_shape(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # JSON Schema asks of a row only its keys and the types of its values: rows alike in those are
    # checked once (before: every value of every row, 3,000 reads here).
    path = isolated / "job.yaml"
    path.write_text("targets: [echo/echo]\nprompts: ['{{a}} {{b}} {{c}}']\ndata:\n"
                    + "".join(f"  - {{a: {i}, b: x{i}, c: {i % 2 == 0}}}\n" for i in range(1000)))
    counting_rows(monkeypatch)
    CountingRow.reads = 0
    jobs.load_job(path, ProviderRegistry(provider_dirs()))
    assert CountingRow.reads <= 2 * 3, CountingRow.reads  # one row of each shape (c true, c false), 3 values


def test_bad_inline_rows_are_each_named_at_their_line(isolated: Path) -> None:
    path = isolated / "job.yaml"
    rows = [f"  - {{who: w{i}}}\n" for i in range(600)]
    rows[3] = "  - {who: [a, b]}\n"
    rows[400] = "  - {who: {x: 1}}\n"
    rows[401] = "  - {who: [c]}\n"
    rows[599] = "  - just text\n"
    path.write_text("targets: [echo/echo]\nprompts: ['{{who}}']\ndata:\n" + "".join(rows))
    with pytest.raises(jobs.ConfigError) as caught:
        jobs.load_job(path, ProviderRegistry(provider_dirs()))
    assert [str(p) for p in caught.value.problems] == [
        "job.yaml:7:11: data[3].who: expected string or number or boolean or null, got list",
        "job.yaml:404:11: data[400].who: expected string or number or boolean or null, got mapping",
        "job.yaml:405:11: data[401].who: expected string or number or boolean or null, got list",
        "job.yaml:603:5: data[599]: expected object, got string 'just text'",
    ]  # and nothing about {{who}}: every row that is a mapping defines it


@BAD_FILES
@given(text=mutated_yaml(GOOD_JOB))
def test_checking_rows_by_shape_finds_what_checking_every_row_finds(text: bytes, isolated: Path) -> None:
    path = isolated / "job.yaml"
    path.write_bytes(text)
    by_shape, _ = files.read_document(path, "job.yaml")
    every_row, _ = files.read_document(path, "job.yaml")
    if by_shape is None or every_row is None or not isinstance(by_shape.data, dict):
        return
    assert jobs._schema_problems(by_shape) == files.check_schema(every_row, "job")
    assert by_shape.data == every_row.data  # the same defaults filled in, every row kept


def test_a_row_schema_looks_at_types_only() -> None:
    # The shape check above is sound while the schema asks nothing of a row's values but their types:
    # a rule on a value (a length, a pattern) must be checked row by row, and _shape must then say so.
    schema = json.loads((REPO / "schemas" / "job.schema.json").read_text())
    rows = next(branch for branch in schema["properties"]["data"]["oneOf"] if branch["type"] == "array")
    assert rows["items"] == {"type": "object",
                             "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_values_are_built_without_pyyaml_s_constructor(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PyYAML's constructor costs a method lookup and a generator per value (1.2 s of 100,000 rows):
    # text, plain integers, booleans and nulls are built without it (before: 7,000 calls here).
    calls = 0
    real = files._CheckedValues.construct_object

    def counted(self: Any, node: yaml.Node, deep: bool = False) -> Any:
        nonlocal calls
        calls += 1
        return real(self, node, deep)

    monkeypatch.setattr(files._CheckedValues, "construct_object", counted)
    path = isolated / "job.yaml"
    path.write_text("targets: [echo/echo]\nprompts: ['{{a}} {{b}}']\ndata:\n"
                    + "".join(f"  - {{a: {i}, b: x{i}, c: {i % 2 == 0}, d: ~}}\n" for i in range(1000)))
    doc, problems = files.read_document(path)
    assert doc is not None and not problems and len(doc.data["data"]) == 1000
    assert doc.data["data"][2] == {"a": 2, "b": "x2", "c": True, "d": None}
    assert calls == 0


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_a_big_file_is_never_held_as_a_tree_of_nodes(isolated: Path) -> None:
    # libyaml's tree of nodes is about 3 KB a data row, five times the values made of it: a job of
    # 1,000,000 inline rows peaked at 3 GB. Built from the parser's events, the values are the peak.
    path = isolated / "job.yaml"
    rows = 20_000
    path.write_text("targets: [echo/echo]\nprompts: ['{{country}}']\ndata:\n"
                    + "".join(f"  - {{country: Country {i}, expect: hello, n: {i}}}\n" for i in range(rows)))
    tracemalloc.start()
    try:
        doc, problems = files.read_document(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc is not None and not problems and len(doc.data["data"]) == rows
    assert peak < 1.5 * kept, (kept / rows, peak / rows)  # bytes a row: about 500 and 600 (a tree: 2,800)


def test_validate_parses_a_job_file_once(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = files._parse

    def counted(text: str, shown: str) -> Any:
        parsed.append(text)
        return real(text, shown)

    monkeypatch.setattr(files, "_parse", counted)
    path = isolated / "job.yaml"
    path.write_text(text := "targets: [echo/echo]\nprompts: ['{{a}}']\ndata: [{a: 1}, {a: 2}]\n")
    problems, _ = validation.validate_files([path], [])
    assert problems == []
    assert parsed.count(text) == 1


ODD_YAML = [
    *(text.decode("utf-8", "replace") for text in COMMAND_CASES.values()),
    "targets: [echo/echo\nprompts: [hi]\n",  # a list left open
    "targets: [echo/echo]\nprompts: [hi]\nprompts: [ho]\n",  # a duplicate key
    "targets: [echo/echo]\nprompts:\n\t- hi\n",  # a tab for indentation
    "targets: [echo/echo]\t\nprompts: [hi,\tho]\nname:\tx\n",  # tabs between tokens: libyaml takes them
    "targets: [echo/echo]\nprompts: [hi]\nname: !\n",  # an empty tag: '' to libyaml, null to PyYAML
    "targets: [echo/echo]\nprompts: [!!str 1, Hi!]\n",
    "targets: [echo/echo]\nprompts: ['\u0007']\n",  # a control character
    "targets: [echo/echo]\nprompts: [\"\\ud800\"]\n",  # half a UTF-16 pair
    "targets: [echo/echo]\nprompts: ['it''s']\nname: 'open\n",  # a quote left open
    "a: 1\n---\nb: 2\n",  # two documents
    "x: &a {k: v}\ny: *a\nz: &s text\nw: *s\n",  # aliases that are fine
    "when: 2024-02-29\nnull_key: ~\n~: null\n3: three\n",
    "base: &b {a: 1}\nmore: {<<: *b, c: 2}\n",  # a merge key
    "n: [0, 7, 012, 0x1F, 1_000, -3, +4, 99999999999999999999999, 0.5, 1e3, '8']\nb: [Yes, off, ~, '', null, x]\n",
    "\"\\ud800\": key\n",  # half a UTF-16 pair as a key
    "rows: [{x: 1, y: 2}, {x: 1, x: 2}]\n",  # a duplicate key deep down
    "a: [b, [c, {d: [e]}]]\nstar: a*b\n",
    "a: &x 1\nb: &x 2\n",  # an anchor named twice
    "a: *x\nb: &x 1\n",  # an alias before its anchor
    "&k a: 1\n*k : 2\n",  # an anchored key, and an alias as a key
    "# nothing but a comment\n",
    "---\n",
    "a: |\n  two\n  lines\nb: >-\n  folded\n  text\nc: plain\n  continued\n",
]


def both_parsers(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """What read_document makes of ``path`` with libyaml (where present), and with PyYAML alone."""

    def read() -> tuple[Any, list[str]]:
        doc, problems = files.read_document(path, "job.yaml")
        assert gc.isenabled()  # paused while parsing only
        return (doc.data if doc else None), [str(p) for p in problems]

    with monkeypatch.context() as patch:
        fast = read()
        patch.setattr(yaml, "__with_libyaml__", False)
        return fast, read()


@pytest.mark.parametrize("text", ODD_YAML)
def test_either_parser_gives_the_same_data_and_messages(text: str, isolated: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = isolated / "job.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    fast, slow = both_parsers(path, monkeypatch)
    assert fast == slow


@BAD_FILES
@given(text=mutated_yaml(GOOD_JOB))
def test_either_parser_agrees_on_any_job_file(text: bytes, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = isolated / "job.yaml"
    path.write_bytes(text)
    fast, slow = both_parsers(path, monkeypatch)
    assert fast == slow


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_valid_files_are_parsed_by_libyaml_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, stream: str) -> None:
        raise AssertionError("a valid file went through PyYAML's pure-Python loader")

    monkeypatch.setattr(files._Loader, "__init__", refuse)
    shipped = [*(REPO / "providers.d").glob("*.yaml"), *(REPO / "jobs").glob("*.yaml")]
    for path in shipped:
        doc, problems = files.read_document(path)
        assert doc is not None and not problems, (path, problems)
