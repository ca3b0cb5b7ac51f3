"""Cost that grows with the work: loading, validating and expanding a job visit each data row a
bounded number of times (counted, not timed: a count is the same on a busy machine); YAML is
parsed by libyaml where PyYAML has it, with the same data and the same messages."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given

from runner.config import files, jobs
from runner.config.files import Document
from runner.config.providers import ProviderRegistry, provider_dirs
from tests.config.test_bad_files import BAD_FILES, COMMAND_CASES, GOOD_JOB, mutated_yaml
from tests.conftest import REPO


class CountingRow(dict[str, Any]):
    """A data row that counts every pass over its keys (set(row), union, difference, for ... in row)."""

    visits = 0

    def __iter__(self) -> Iterator[str]:
        CountingRow.visits += 1
        return super().__iter__()


def row_visits(folder: Path, rows: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Passes over the rows' keys to load, validate and expand a job of ``rows`` inline rows."""
    path = folder / f"job{rows}.yaml"
    path.write_text("targets: [echo/echo]\nprompts: ['{{a}} and {{b}}']\n"
                    "checks: [{contains: '{{b}}'}]\ndata:\n"
                    + "".join(f"  - {{a: {i}, b: x{i}}}\n" for i in range(rows - 1))
                    + "  - {a: last}\n")  # one row short of a variable: the "data[N] has no 'b'" path runs too
    real = jobs.read_document

    def counted(path: Path, display: str | None = None) -> tuple[Document | None, list[Any]]:
        doc, problems = real(path, display)
        if doc is not None and isinstance(doc.data, dict) and isinstance(doc.data.get("data"), list):
            doc.data["data"] = [CountingRow(r) for r in doc.data["data"]]
        return doc, problems

    monkeypatch.setattr(jobs, "read_document", counted)
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
