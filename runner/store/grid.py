"""A run's items as a grid, for ``hanzo-run view``: one row per prompt x data row x repeat
(a *cell key*), one column per target, read a page at a time.

Pages are keyset pages over the index ``results_run_grid`` (m011), on the cell key
(row index, -1 without data; prompt id; repeat index): the first page of a million-item run
reads as few index entries as that of a forty-item one, and so does every next page. Filters
(failed only, one target, a text) narrow which cell keys a page lists; the page then reads
every target's result for those keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .results import FAILED

CellKey = tuple[int, str, int]  # (row index or -1, prompt id, repeat index)
KEY = "coalesce(row_index, -1), prompt_id, repeat_index"  # the index's expression, spelled as it is
# Every column a cell or an item page shows; those added by later migrations are read when present.
CELL_COLUMNS = ("id", "item_key", "target", "prompt_id", "row_index", "repeat_index", "prompt", "status",
                "response_text", "error_code", "error_message", "passed", "failed_checks", "latency_ms",
                "cost_usd")
NEWER_COLUMNS = ("vars", "checks")  # m008_vars, m009_checks


@dataclass(frozen=True)
class GridFilter:
    failed_only: bool = False
    target: str | None = None
    text: str | None = None  # in the prompt, the answer, the error or the variables

    def where(self, columns: set[str]) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.failed_only:
            clauses.append(FAILED)
        if self.target is not None:
            clauses.append("target = ?")
            params.append(self.target)
        if self.text:
            like = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            fields = ["prompt", "response_text", "error_message", *(["vars"] if "vars" in columns else [])]
            clauses.append("(" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")")
            params += [like] * len(fields)
        return clauses, params


@dataclass(frozen=True)
class GridPage:
    keys: list[CellKey]  # the page's rows, in order
    cells: dict[CellKey, dict[str, dict[str, Any]]]  # per row: target -> its result
    before: CellKey | None  # the first key, when there are rows before it
    after: CellKey | None  # the last key, when there are rows after it


def result_columns(db: sqlite_utils.Database) -> set[str]:
    return {row["name"] for row in db.query("SELECT name FROM pragma_table_info('results')")}


def grid_page(db: sqlite_utils.Database, run_id: int, grid_filter: GridFilter, *, size: int,
              after: CellKey | None = None, before: CellKey | None = None) -> GridPage:
    """``size`` rows after ``after`` (or just before ``before``; else the first), with their cells."""
    columns = result_columns(db)
    clauses, params = grid_filter.where(columns)
    where = ["run_id = ?", *clauses]
    args: list[Any] = [run_id, *params]
    # The row-value comparison alone is not a range SQLite seeks the index with; its first term is.
    if after is not None:
        where.append(f"coalesce(row_index, -1) >= ? AND ({KEY}) > (?, ?, ?)")
        args += [after[0], *after]
    elif before is not None:
        where.append(f"coalesce(row_index, -1) <= ? AND ({KEY}) < (?, ?, ?)")
        args += [before[0], *before]
    order = "DESC" if before is not None and after is None else "ASC"
    rows = list(db.query(
        f"SELECT {KEY} FROM results WHERE {' AND '.join(where)} GROUP BY {KEY}"
        f" ORDER BY coalesce(row_index, -1) {order}, prompt_id {order}, repeat_index {order} LIMIT ?",
        [*args, size + 1]))
    more = len(rows) > size
    keys: list[CellKey] = [(r["coalesce(row_index, -1)"], r["prompt_id"], r["repeat_index"]) for r in rows[:size]]
    if order == "DESC":
        keys.reverse()
        first_has_before, last_has_after = more, True
    else:
        first_has_before, last_has_after = after is not None, more
    return GridPage(keys, cells_of(db, run_id, keys, columns, target=grid_filter.target),
                    keys[0] if keys and first_has_before else None, keys[-1] if keys and last_has_after else None)


def cells_of(db: sqlite_utils.Database, run_id: int, keys: Sequence[CellKey], columns: set[str] | None = None,
             *, target: str | None = None, every_column: bool = False) -> dict[CellKey, dict[str, dict[str, Any]]]:
    """Per cell key: each target's result (``CELL_COLUMNS``, or every column)."""
    if not keys:
        return {}
    columns = columns if columns is not None else result_columns(db)
    wanted = "*" if every_column else ", ".join([*CELL_COLUMNS, *(c for c in NEWER_COLUMNS if c in columns)])
    # One indexed lookup per key: SQLite seeks no index for a row value IN a list of row values. The
    # target is picked here, not in SQL, where it would tempt the planner to the (target, run_id) index.
    sql = (f"SELECT {wanted} FROM results WHERE run_id = ? AND coalesce(row_index, -1) = ? AND prompt_id = ?"
           " AND repeat_index = ? ORDER BY id")
    out: dict[CellKey, dict[str, dict[str, Any]]] = {}
    for key in keys:
        out[key] = {row["target"]: row for row in db.query(sql, [run_id, *key]) if target in (None, row["target"])}
    return out


def attempts_of(db: sqlite_utils.Database, run_id: int, item_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every HTTP attempt of these items (answers and judges), in the order they were made."""
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in item_keys}
    if not item_keys:
        return out
    marks = ", ".join("?" for _ in item_keys)
    for row in db.query(f"SELECT * FROM attempts WHERE run_id = ? AND item_key IN ({marks}) ORDER BY attempt, id",
                        [run_id, *item_keys]):
        out[row["item_key"]].append(row)
    return out
