"""Every output format of one run, in one registry: ``write(db, run_id, out)`` per format.

``report`` picks from ``FORMATS`` by its flags and ``run --junit`` uses the ``junit`` entry, so
a new format is one function and one entry here. ``out`` is a text stream: stdout, or a file
opened by ``write_path``. The two-run comparison (``report A B``) and ``diff`` compare runs
and are not per-run formats; ``report --html`` is the web view's Run page (runner/view/export.py).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from . import items as item_rows
from . import tables

Writer = Callable[..., None]  # (db, run_id, out, **options) -> None


@dataclass(frozen=True)
class Format:
    name: str
    write: Writer  # write(db, run_id, out, *, sort=None) for the comparison formats
    description: str

    def write_path(self, db_path: Path, run_id: int, path: Path, **options: Any) -> None:
        """Write the format to a file (its folder made as needed) from the database at ``db_path``.

        Rendered in memory first: a format that fails leaves no empty file.
        """
        db = sqlite_utils.Database(db_path)
        try:
            text = io.StringIO()
            self.write(db, run_id, text, **options)
        finally:
            db.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.getvalue(), encoding="utf-8")


def write_table(db: sqlite_utils.Database, run_id: int, out: TextIO, *, sort: str | None = None) -> None:
    from rich.console import Console

    rows = tables.comparison(db, run_id, sort)
    Console(file=out, width=200).print(tables.comparison_table(rows, f"run {run_id}"))


def write_json(db: sqlite_utils.Database, run_id: int, out: TextIO, *, sort: str | None = None) -> None:
    rows = tables.comparison(db, run_id, sort)
    out.write(tables.to_json({"run_id": run_id, "targets": rows}) + "\n")


def write_csv(db: sqlite_utils.Database, run_id: int, out: TextIO, *, sort: str | None = None) -> None:
    out.write(tables.to_csv(tables.comparison(db, run_id, sort)))


def write_junit(db: sqlite_utils.Database, run_id: int, out: TextIO) -> None:
    from .junit import junit_text

    out.write(junit_text(db, run_id))


def write_items_table(db: sqlite_utils.Database, run_id: int, out: TextIO) -> None:
    from rich.console import Console

    Console(file=out, width=None if out is sys.stdout and out.isatty() else 120).print(
        item_rows.items_renderable(item_rows.iter_items(db, run_id)))


def write_items_json(db: sqlite_utils.Database, run_id: int, out: TextIO) -> None:
    out.write(item_rows.to_json(item_rows.iter_items(db, run_id)) + "\n")


def write_items_csv(db: sqlite_utils.Database, run_id: int, out: TextIO) -> None:
    out.write(item_rows.to_csv(item_rows.iter_items(db, run_id)))


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("table", write_table, "the comparison per target as a terminal table"),
    Format("json", write_json, "the comparison per target as JSON"),
    Format("csv", write_csv, "the comparison per target as CSV"),
    Format("junit", write_junit, "JUnit XML: one test suite per target, one test case per item"),
    Format("items-table", write_items_table, "every item as a terminal panel"),
    Format("items-json", write_items_json, "every item, every column, as JSON"),
    Format("items-csv", write_items_csv, "every item, every column, as CSV"),
)}
