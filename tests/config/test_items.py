"""Every item of a run: filters, parsed checks, JSON and CSV writers, the terminal panels."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from runner.reports.items import (
    ITEM_COLUMNS,
    items_renderable,
    list_items,
    parse_failed_checks,
    to_csv,
    to_json,
)
from runner.store.database import open_db
from runner.store.records import ResultRow

FAILED = [{"check": "contains", "reason": "answer does not contain 'Paris'"}]


def row(run_id: int, key: str, target: str, status: str = "ok", passed: int | None = None,
        **values: Any) -> dict[str, Any]:
    provider, _, model = target.partition("/")
    out: dict[str, Any] = dict.fromkeys(ResultRow._fields)
    out.update(run_id=run_id, item_key=key, target=target, provider=provider, model=model, prompt_id="capital",
               row_index=0, repeat_index=0, prompt="What is the capital of France?", status=status,
               attempts=1, passed=passed, latency_ms=250.0, input_tokens=12, output_tokens=3, cost_usd=0.0001)
    if status == "ok":
        out["response_text"] = "Paris."
    else:
        out.update(error_code="MAX_RETRIES_EXCEEDED", error_message="gave up after 3 attempts; last: HTTP 503",
                   response_text=None, output_tokens=None, cost_usd=None)
    out.update(values)
    return out


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = open_db(tmp_path / "runs.db")
    with database.atomic():
        for run_id in (1, 2):
            database["runs"].insert({"id": run_id, "job_name": "j", "status": "completed",
                                     "started_at": "2025-01-01T00:00:00Z"})
        database["results"].insert_all([
            row(1, "aaa111", "openai/a", passed=1),
            row(1, "aab222", "openai/a", passed=0, response_text="Lyon [bold]maybe[/bold].", row_index=1,
                failed_checks=json.dumps(FAILED)),
            row(1, "bbb333", "local/b", status="error", row_index=0),
            row(1, "bbc444", "local/b", passed=None, row_index=1, cost_usd=None, price_source=None),
            row(2, "aaa111", "openai/a", passed=1),
        ])
    return database


def keys(items: list[dict[str, Any]]) -> list[str]:
    return [item["item_key"] for item in items]


def test_items_in_order_with_every_field(db: sqlite_utils.Database) -> None:
    items = list_items(db, 1)
    assert keys(items) == ["aaa111", "aab222", "bbb333", "bbc444"]
    assert tuple(items[0]) == ITEM_COLUMNS
    assert items[1]["failed_checks"] == FAILED and items[0]["failed_checks"] == []
    assert items[2]["error_code"] == "MAX_RETRIES_EXCEEDED" and items[2]["response_text"] is None
    assert keys(list_items(db, 2)) == ["aaa111"]
    assert list_items(db, 3) == []


def test_filters(db: sqlite_utils.Database) -> None:
    assert keys(list_items(db, 1, target="local/b")) == ["bbb333", "bbc444"]
    assert keys(list_items(db, 1, failed_only=True)) == ["aab222", "bbb333"]  # a NULL verdict is not a failure
    assert keys(list_items(db, 1, key_prefix="aa")) == ["aaa111", "aab222"]
    assert keys(list_items(db, 1, key_prefix="a_")) == []  # a prefix is literal, not a LIKE pattern
    assert keys(list_items(db, 1, target="openai/a", failed_only=True, key_prefix="aab")) == ["aab222"]


def test_failed_checks_that_are_not_a_list_of_checks_are_kept_as_text() -> None:
    assert parse_failed_checks(None) == [] and parse_failed_checks("") == []
    assert parse_failed_checks("not json") == [{"check": "?", "reason": "not json"}]
    assert parse_failed_checks('["too long"]') == [{"check": "?", "reason": "too long"}]
    assert parse_failed_checks('{"a": 1}') == [{"check": "?", "reason": '{"a": 1}'}]


def test_json_keeps_everything(db: sqlite_utils.Database) -> None:
    items = list_items(db, 1)
    assert json.loads(to_json(items)) == items


def test_csv_has_every_column_and_checks_as_json(db: sqlite_utils.Database) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(list_items(db, 1)))))
    columns = [c for c in ITEM_COLUMNS if c != "vars"]  # these rows have no data: no var.NAME columns
    assert list(rows[0]) == columns
    assert len(rows) == 4
    assert json.loads(rows[1]["failed_checks"]) == FAILED and rows[0]["failed_checks"] == ""
    assert rows[1]["response_text"] == "Lyon [bold]maybe[/bold]."
    assert rows[2]["error_message"] == "gave up after 3 attempts; last: HTTP 503"
    assert to_csv([]).strip() == ",".join(columns)


def render(renderable: Any, width: int = 100) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_panels_show_prompt_answer_and_reasons(db: sqlite_utils.Database) -> None:
    out = render(items_renderable(list_items(db, 1)))
    assert out.count("What is the capital of France?") == 4
    assert "openai/a  capital row 1  failed" in out
    assert "Lyon [bold]maybe[/bold]." in out  # an answer's brackets are text, not markup
    assert "✗ contains: answer does not contain 'Paris'" in out
    assert "local/b  capital row 0  error" in out
    assert "MAX_RETRIES_EXCEEDED: gave up after 3 attempts; last: HTTP 503" in out
    assert "local/b  capital row 1  ok" in out and "unpriced" in out
    assert "250 ms" in out and "12 → 3 tokens" in out
    assert "no items match" in render(items_renderable([]))


def test_long_answers_wrap_and_stop_at_the_limit(db: sqlite_utils.Database) -> None:
    words = " ".join(f"word{i}" for i in range(2000))  # about 17,000 characters
    db["results"].insert(row(2, "long", "openai/a", response_text=words))
    (item,) = list_items(db, 2, key_prefix="long")
    out = render(items_renderable([item]), width=80)
    assert "word0 word1" in out and "word1999" not in out
    assert max(len(line) for line in out.splitlines()) <= 80  # wrapped, not cut at the edge
    assert f"{len(words) - 4000:,} more characters (--json shows everything)" in out
