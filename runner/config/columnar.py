"""Data rows from columnar sources: a Parquet file, or a folder a Hugging Face ``datasets`` Dataset was
saved to (``Dataset.save_to_disk``: Arrow stream files listed in its ``state.json``).

Both are read with pyarrow, the ``[parquet]`` extra (``pip install 'hanzo-run[parquet]'``); the
``datasets`` library itself is not needed to read what it saved. Rows are streamed a batch at a
time, like CSV and JSONL rows: a file larger than memory is never held whole. Values that JSON
cannot hold (dates, timestamps, decimals, bytes) become strings; nested lists and structs stay
lists and dicts, as in JSONL.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Problem, UsageError
from .templating import Row

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 1024  # rows converted to Python at a time
STATE = "state.json"  # what save_to_disk writes beside a Dataset's Arrow files
SPLITS = "dataset_dict.json"  # ... and beside a DatasetDict's split folders
INSTALL = "pip install 'hanzo-run[parquet]'"


def is_columnar(path: Path) -> bool:
    """Whether ``path`` is read here rather than as CSV or JSONL: a .parquet file or a folder."""
    return path.suffix == ".parquet" or path.is_dir()


def read_columnar(path: Path) -> Iterator[Row]:
    """The rows of a Parquet file or a saved Dataset, one at a time (read a batch at a time)."""
    try:
        pa = _pyarrow()
    except UsageError as e:
        raise UsageError(f"{path}: {e}") from None
    for batch in _batches(path, pa):
        converted = _converted_columns(batch.schema)
        for row in batch.to_pylist():
            for name in converted:
                row[name] = _plain(row[name])
            yield row


def check_columnar(path: Path, display: str) -> tuple[set[str], list[Problem]]:
    """The columns (every row defines them all: a missing value is null) and what is wrong with the source."""
    try:
        pa = _pyarrow()
        schema = _schema(path, pa)
    except UsageError as e:
        return set(), [Problem(display, None, None, "", str(e))]
    except (OSError, ValueError, pa.ArrowException) as e:
        kind = "a Parquet file" if path.suffix == ".parquet" else "an Arrow file of a saved Dataset"
        return set(), [Problem(display, None, None, "", f"cannot read it as {kind}: {e}")]
    return set(schema.names), []


def data_files(path: Path) -> list[Path]:
    """The files whose bytes are the rows (what a job's hash covers): the file, or a saved Dataset's files."""
    if not path.is_dir():
        return [path]
    return [path / STATE, *_arrow_files(path)]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet  # noqa: F401 (loads pyarrow.parquet for _schema and _batches)
    except ImportError:
        raise UsageError(f"reading Parquet and saved datasets needs pyarrow: {INSTALL}") from None
    return pyarrow


def _arrow_files(folder: Path) -> list[Path]:
    """A saved Dataset's Arrow files in order; UsageError naming the fix for any other folder."""
    state = folder / STATE
    if not state.is_file():
        if (folder / SPLITS).is_file():
            splits = json.loads((folder / SPLITS).read_text(encoding="utf-8")).get("splits") or []
            first = splits[0] if splits else "SPLIT"
            raise UsageError(f"a DatasetDict saved with save_to_disk: name one split's folder, e.g. {folder.name}/"
                             f"{first} (splits: {', '.join(splits) or 'none'})")
        raise UsageError(f"a folder with no {STATE}: data may be a folder only when a datasets Dataset was saved to it "
                         "(Dataset.save_to_disk); else give a .csv, .jsonl or .parquet file")
    try:
        files = [folder / entry["filename"] for entry in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{STATE} does not list the Dataset's files (_data_files): {e}") from None
    return files


def _schema(path: Path, pa: Any) -> pa.Schema:
    if not path.is_dir():
        return pa.parquet.ParquetFile(path).schema_arrow
    files = _arrow_files(path)
    if not files:
        raise UsageError(f"the saved Dataset lists no files in its {STATE}")
    with pa.memory_map(str(files[0])) as source:
        return pa.ipc.open_stream(source).schema


def _batches(path: Path, pa: Any) -> Iterator[pa.RecordBatch]:
    if not path.is_dir():
        yield from pa.parquet.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        return
    for file in _arrow_files(path):
        with pa.memory_map(str(file)) as source:
            for batch in pa.ipc.open_stream(source):
                for start in range(0, batch.num_rows, BATCH_ROWS):
                    yield batch.slice(start, BATCH_ROWS)


def _converted_columns(schema: pa.Schema) -> list[str]:
    """The columns whose values need ``_plain``: none for the usual strings and numbers."""
    import pyarrow.types as t

    needing = [f.name for f in schema if not (t.is_string(f.type) or t.is_large_string(f.type) or t.is_integer(f.type)
                                               or t.is_floating(f.type) or t.is_boolean(f.type) or t.is_null(f.type))]
    return needing


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: dates and times as ISO text, decimals and bytes as text."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
