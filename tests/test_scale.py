"""Cost that grows with the work: loading, validating and expanding a job visit each data row a
bounded number of times. Counted, not timed: a count is the same on a busy machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.config import jobs
from runner.config.files import Document
from runner.config.providers import ProviderRegistry, provider_dirs


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
