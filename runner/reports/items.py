"""Every item of a run, answer by answer: what ``hanzo-run show`` and ``report --items`` print.

Rows are read by column name and come back as plain dicts, ``failed_checks`` parsed into a
list of ``{check, reason}``, ``checks`` into the list of every check's outcome (``{name,
passed, score, reason}``, a judge's with its grader, cost and whether it came from the cache)
and ``vars`` (the data row's variables) into a dict, so JSON, CSV and the terminal all show
the same thing. An item is named by its values (``capital country=India``, ``item_name``) in
every view; results written before ``vars`` was stored are named by their row number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlite_utils

from ..store.results import results_of

# Every result column but the run id (the caller chose the run), in reading order.
ITEM_COLUMNS = (
    "item_key", "target", "provider", "model", "prompt_id", "row_index", "vars", "repeat_index", "prompt", "status",
    "response_text", "finish_reason", "error_code", "error_message", "http_status", "attempts", "passed",
    "failed_checks", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "price_source",
    "started_at", "finished_at", "row_hash", "checks", "cached", "answer_cost_usd", "judge_cost_usd",
)
# Past this many characters a prompt or answer is cut on the terminal; JSON and CSV keep everything.
TERMINAL_TEXT_LIMIT = 4000
# CSV gives each variable its own column, named with this prefix: a variable called ``status`` or
# ``prompt`` never clashes with a result column, and the columns keep their names as columns are added.
VAR_PREFIX = "var."
# Where an item is named by its values: each value cut past VALUE_SHOWN characters, all of them past NAME_LIMIT.
VALUE_SHOWN = 40
NAME_LIMIT = 60


def parse_failed_checks(raw: str | None) -> list[dict[str, str]]:
    """The stored JSON list of ``{check, reason}``; text that is not such a list is kept as one reason."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [{"check": "?", "reason": raw}]
    if not isinstance(value, list):
        return [{"check": "?", "reason": raw}]
    return [{"check": str(v.get("check", "?")), "reason": str(v.get("reason", ""))} if isinstance(v, dict)
            else {"check": "?", "reason": str(v)} for v in value]


def parse_vars(raw: str | None) -> dict[str, Any] | None:
    """The stored JSON object of the data row's variables; None without data (or written before vars)."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def item_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One result row as an item: every column, failed checks and variables parsed."""
    item = {column: row.get(column) for column in ITEM_COLUMNS}
    item["failed_checks"] = parse_failed_checks(row.get("failed_checks"))
    item["checks"] = parse_checks(row.get("checks"))
    item["vars"] = parse_vars(row.get("vars"))
    return item


def parse_checks(raw: str | None) -> list[dict[str, Any]]:
    """The stored JSON list of every check's outcome; [] for a row written before it was kept, or not JSON."""
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def value_text(value: Any, limit: int = VALUE_SHOWN) -> str:
    """One variable's value on one line: a plain word as it is, other text quoted (JSON), cut past ``limit``."""
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def vars_text(variables: Mapping[str, Any] | None, limit: int = NAME_LIMIT) -> str:
    """``country=India city="New Delhi"``: the variables on one line, cut past ``limit``; "" without any."""
    text = " ".join(f"{name}={value_text(value)}" for name, value in (variables or {}).items())
    return text if len(text) <= limit else text[:limit - 1].rstrip("…") + "…"


def row_name(item: Mapping[str, Any], limit: int = NAME_LIMIT) -> str:
    """The item's data row by its values, else (written before vars) by its number; "" without data."""
    if item["vars"]:
        return vars_text(item["vars"], limit)
    return "" if item["row_index"] is None else f"row {item['row_index']}"


def item_name(item: Mapping[str, Any], limit: int = NAME_LIMIT) -> str:
    """``capital country=India``: the prompt id and the row's values (``repeat 2`` when repeated)."""
    parts = [str(item["prompt_id"] or "-"), row_name(item, limit)]
    if item["repeat_index"]:
        parts.append(f"repeat {item['repeat_index']}")
    return " ".join(part for part in parts if part)


def iter_items(db: sqlite_utils.Database, run_id: int, *, target: str | None = None, failed_only: bool = False,
               key_prefix: str | None = None) -> Iterator[dict[str, Any]]:
    """The run's items in the order they finished.

    ``failed_only`` keeps errors and answers that failed a check; ``key_prefix`` matches the
    start of ``item_key`` (as printed, so a user can paste the first few characters).
    """
    for row in results_of(db, run_id, ITEM_COLUMNS, target=target, failed_only=failed_only, key_prefix=key_prefix):
        yield item_from_row(row)


def list_items(db: sqlite_utils.Database, run_id: int, *, target: str | None = None, failed_only: bool = False,
               key_prefix: str | None = None) -> list[dict[str, Any]]:
    return list(iter_items(db, run_id, target=target, failed_only=failed_only, key_prefix=key_prefix))


def to_json(items: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(items), indent=2, ensure_ascii=False)


def var_cell(value: Any) -> str:
    """A variable's value whole, as one cell or attribute: text as it is, null as nothing, others as JSON."""
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def to_csv(items: Iterable[Mapping[str, Any]]) -> str:
    """Every column, one row per item; ``failed_checks`` and ``checks`` as their JSON text so nothing is lost.
    In place of ``vars``, one ``var.NAME`` column per variable (in the data's order), each value whole."""
    items = list(items)
    names = list(dict.fromkeys(name for item in items for name in item["vars"] or ()))
    columns = [VAR_PREFIX + name for name in names]
    at = ITEM_COLUMNS.index("vars")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*ITEM_COLUMNS[:at], *columns, *ITEM_COLUMNS[at + 1:]],
                            lineterminator="\n")
    writer.writeheader()
    for item in items:
        row = {column: value for column, value in item.items() if column != "vars"}
        row.update({name: json.dumps(item[name], ensure_ascii=False) if item[name] else ""
                    for name in ("failed_checks", "checks")})
        for name, value in (item["vars"] or {}).items():
            row[VAR_PREFIX + name] = var_cell(value)
        writer.writerow(row)
    return out.getvalue()


def answer_text(item: Mapping[str, Any]) -> str:
    """The answer, or for an error what went wrong."""
    if item["status"] == "ok":
        return str(item["response_text"] or "")
    code, message = item.get("error_code"), item.get("error_message")
    return ": ".join(str(part) for part in (code, message) if part) or "error"


def verdict(item: Mapping[str, Any]) -> str:
    """``error``, ``failed`` (a check said no), ``passed`` (checks said yes) or ``ok`` (nothing checked)."""
    if item["status"] != "ok":
        return "error"
    return {0: "failed", 1: "passed"}.get(item["passed"], "ok")


def clip(text: str, limit: int = TERMINAL_TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit:,} more characters (--json shows everything)"


def _figures(item: Mapping[str, Any]) -> str:
    parts = []
    if item["latency_ms"] is not None:
        parts.append(f"{item['latency_ms']:,.0f} ms")
    if item["input_tokens"] is not None or item["output_tokens"] is not None:
        tokens_in, tokens_out = ("-" if n is None else f"{n:,}" for n in (item["input_tokens"], item["output_tokens"]))
        parts.append(f"{tokens_in} → {tokens_out} tokens")
    answer_cost = item["answer_cost_usd"] if item.get("answer_cost_usd") is not None else item["cost_usd"]
    if answer_cost is not None:
        parts.append(f"${answer_cost:.6f}" + (" cached" if item.get("cached") else ""))
    elif item["status"] == "ok":
        parts.append("unpriced")
    if item.get("judge_cost_usd") is not None:
        parts.append(f"judges ${item['judge_cost_usd']:.6f}")
    parts.append(str(item["item_key"])[:12])
    return "  ".join(parts)


_STYLES = {"error": "red", "failed": "yellow", "passed": "green", "ok": "green"}


def item_panel(item: Mapping[str, Any], limit: int = TERMINAL_TEXT_LIMIT) -> Any:
    """One item as a rich Panel: header, prompt, answer, failed checks. Texts wrap; Text keeps
    square brackets in answers from being read as rich markup."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    state = verdict(item)
    place = [str(item["target"]), item_name(item)]
    if item["vars"] and item["row_index"] is not None:
        place.append(f"row {item['row_index']}")
    title = Text("  ".join(place) + "  ")
    title.append(state, style=f"bold {_STYLES[state]}")

    parts: list[Any] = [Text("prompt", style="bold dim"), Text(clip(str(item["prompt"] or ""), limit)),
                        Text(""), Text("answer" if state != "error" else "error", style="bold dim"),
                        Text(clip(answer_text(item), limit), style="red" if state == "error" else "")]
    if item.get("checks"):
        parts += [Text(""), Text("checks", style="bold dim")]
        parts += [check_line(check) for check in item["checks"]]
    elif item["failed_checks"]:  # a row written before every check's outcome was kept
        parts += [Text(""), Text("failed checks", style="bold dim")]
        parts += [Text.assemble(("✗ ", "yellow"), (check["check"], "bold"), f": {check['reason']}")
                  for check in item["failed_checks"]]
    return Panel(Group(*parts), title=title, title_align="left", subtitle=_figures(item), subtitle_align="right",
                 border_style=_STYLES[state])


_MARKS = {True: ("✓ ", "green"), False: ("✗ ", "yellow"), None: ("? ", "red")}


def check_line(check: Mapping[str, Any]) -> Any:
    """One check's outcome: its mark, name, score, reason, and for a judge whether the verdict was cached."""
    from rich.text import Text

    score = check.get("score")
    notes = [f"score {score:g}"] if isinstance(score, int | float) else []
    if check.get("cached"):
        notes.append("cached")
    return Text.assemble(_MARKS.get(check.get("passed"), _MARKS[None]), (str(check.get("name", "?")), "bold"),
                         f" ({', '.join(notes)})" if notes else "", f": {check.get('reason', '')}")


def items_renderable(items: Iterable[Mapping[str, Any]], limit: int = TERMINAL_TEXT_LIMIT) -> Any:
    """Every item as a panel, one under another; a line saying so when there are none."""
    from rich.console import Group
    from rich.text import Text

    panels = [item_panel(item, limit) for item in items]
    return Group(*panels) if panels else Text("no items match", style="dim")
