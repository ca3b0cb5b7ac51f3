"""data: a Parquet file or a folder a Hugging Face datasets Dataset was saved to, streamed like CSV and JSONL
(issue 19, part 6). The runs go to the offline echo provider, which answers with the prompt."""

from __future__ import annotations

import datetime
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runner import run_job
from runner.config.jobs import check_rows, load_job, read_rows
from runner.config.providers import ProviderRegistry, provider_dirs
from runner.errors import ConfigError
from tests.conftest import hanzo, query, write_job

SAVED = Path(__file__).parent / "data" / "hf_countries"  # made by datasets 5.2: Dataset.from_dict(...).save_to_disk


def _job(folder: Path, data: str) -> Path:
    return write_job(folder, {"targets": ["echo"], "prompts": ["What is the capital of {{country}}?"],
                              "data": data})


def _prompts(db: Path) -> list[str]:
    return [p for (p,) in query(db, "SELECT prompt FROM results WHERE status = 'ok' ORDER BY row_index")]


def _problems(job: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_job(job, ProviderRegistry(provider_dirs(())))
    return [str(p) for p in raised.value.problems]


def test_a_parquet_file_is_streamed_in_batches_every_row_an_item(isolated: Path) -> None:
    rows = 2500  # more than one batch, in three row groups
    table = pa.table({"country": [f"land {n}" for n in range(rows)], "rank": list(range(rows)),
                      "since": [datetime.date(2000, 1, 1) + datetime.timedelta(days=n) for n in range(rows)]})
    pq.write_table(table, isolated / "countries.parquet", row_group_size=1000)
    first = next(read_rows(isolated / "countries.parquet"))
    assert first == {"country": "land 0", "rank": 0, "since": "2000-01-01"}  # a date as ISO text, as JSON holds it
    outcome = run_job(_job(isolated, "countries.parquet"), db=isolated / "runs.db")
    assert outcome.ok == rows
    prompts = _prompts(isolated / "runs.db")
    assert prompts[0] == "What is the capital of land 0?" and prompts[-1] == f"What is the capital of land {rows - 1}?"


def test_a_saved_dataset_folder_is_read_without_the_datasets_library(isolated: Path) -> None:
    shutil.copytree(SAVED, isolated / "countries")
    assert run_job(_job(isolated, "countries"), db=isolated / "runs.db").ok == 3
    assert _prompts(isolated / "runs.db") == [f"What is the capital of {c}?" for c in ("France", "Peru", "India")]
    assert list(read_rows(isolated / "countries"))[2] == {"country": "India", "capital": "New Delhi", "rank": 3}


def test_a_dataset_saved_by_the_datasets_library_runs(isolated: Path) -> None:
    datasets: Any = pytest.importorskip("datasets")
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"country": ["Chile", "Japan"]}),
                                   "test": datasets.Dataset.from_dict({"country": ["Kenya"]})})
    splits.save_to_disk(str(isolated / "saved"))
    assert run_job(_job(isolated, "saved/train"), db=isolated / "runs.db").ok == 2
    problems = _problems(_job(isolated, "saved"))
    assert problems[0] == "saved: a DatasetDict saved with save_to_disk: name one split's folder, e.g. saved/train " \
        "(splits: train, test) (data of job.yaml)"


def test_a_changed_parquet_file_changes_the_jobs_hash(isolated: Path) -> None:
    pq.write_table(pa.table({"country": ["Peru"]}), isolated / "c.parquet")
    registry = ProviderRegistry(provider_dirs(()))
    before = load_job(_job(isolated, "c.parquet"), registry).hash
    pq.write_table(pa.table({"country": ["Chile"]}), isolated / "c.parquet")
    assert load_job(_job(isolated, "c.parquet"), registry).hash != before  # --resume refuses: other rows


def test_what_cannot_be_read_is_a_problem_naming_the_file_and_the_fix(isolated: Path) -> None:
    (isolated / "plain").mkdir()
    assert "data may be a folder only when a datasets Dataset was saved to it" in _problems(_job(isolated, "plain"))[0]
    (isolated / "broken.parquet").write_text("not parquet")
    broken = _problems(_job(isolated, "broken.parquet"))[0]
    assert broken.startswith("broken.parquet: cannot read it as a Parquet file: ")
    (isolated / "rows.txt").write_text("x\n")
    assert "data must be a .csv, .jsonl or .parquet file" in _problems(_job(isolated, "rows.txt"))[0]
    pq.write_table(pa.table({"capital": ["Lima"]}), isolated / "c.parquet")
    assert "{{country}} is not defined by every data row (row variables: capital)" in \
        _problems(_job(isolated, "c.parquet"))[0]


def test_without_pyarrow_the_message_says_which_extra_to_install(isolated: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(pa.table({"country": ["Peru"]}), isolated / "c.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    columns, [problem] = check_rows(isolated / "c.parquet", "c.parquet")
    assert (columns, problem.message) == (set(), "reading Parquet and saved datasets needs pyarrow: "
                                                 "pip install 'hanzo-run[parquet]'")


def test_validate_exits_2_on_a_folder_that_is_no_dataset(isolated: Path) -> None:
    (isolated / "plain").mkdir()
    done = hanzo("validate", _job(isolated, "plain"))
    assert done.returncode == 2 and "state.json" in done.stderr
