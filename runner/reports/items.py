"""Every item of a run, answer by answer: what ``hanzo-run show`` and ``report --items`` print.

Rows are read by column name and come back as plain dicts, ``failed_checks`` parsed into a
list of ``{check, reason}``, so JSON, CSV and the terminal all show the same thing.
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
    "item_key", "target", "provider", "model", "prompt_id", "row_index", "repeat_index", "prompt", "status",
    "response_text", "finish_reason", "error_code", "error_message", "http_status", "attempts", "passed",
    "failed_checks", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "price_source",
    "started_at", "finished_at", "row_hash",
)
# Past this many characters a prompt or answer is cut on the terminal; JSON and CSV keep everything.
TERMINAL_TEXT_LIMIT = 4000


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


def item_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One result row as an item: every column, failed checks parsed."""
    item = {column: row.get(column) for column in ITEM_COLUMNS}
    item["failed_checks"] = parse_failed_checks(row.get("failed_checks"))
    return item


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


def to_csv(items: Iterable[Mapping[str, Any]]) -> str:
    """Every column, one row per item; ``failed_checks`` as its JSON text so nothing is lost."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ITEM_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({**item, "failed_checks": json.dumps(item["failed_checks"], ensure_ascii=False)
                         if item["failed_checks"] else ""})
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
    if item["cost_usd"] is not None:
        parts.append(f"${item['cost_usd']:.6f}")
    elif item["status"] == "ok":
        parts.append("unpriced")
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
    place = [str(item["target"])]
    if item["prompt_id"] is not None:
        place.append(f"prompt {item['prompt_id']}")
    if item["row_index"] is not None:
        place.append(f"row {item['row_index']}")
    if item["repeat_index"]:
        place.append(f"repeat {item['repeat_index']}")
    title = Text("  ".join(place) + "  ")
    title.append(state, style=f"bold {_STYLES[state]}")

    parts: list[Any] = [Text("prompt", style="bold dim"), Text(clip(str(item["prompt"] or ""), limit)),
                        Text(""), Text("answer" if state != "error" else "error", style="bold dim"),
                        Text(clip(answer_text(item), limit), style="red" if state == "error" else "")]
    if item["failed_checks"]:
        parts += [Text(""), Text("failed checks", style="bold dim")]
        parts += [Text.assemble(("✗ ", "yellow"), (check["check"], "bold"), f": {check['reason']}")
                  for check in item["failed_checks"]]
    return Panel(Group(*parts), title=title, title_align="left", subtitle=_figures(item), subtitle_align="right",
                 border_style=_STYLES[state])


def items_renderable(items: Iterable[Mapping[str, Any]], limit: int = TERMINAL_TEXT_LIMIT) -> Any:
    """Every item as a panel, one under another; a line saying so when there are none."""
    from rich.console import Group
    from rich.text import Text

    panels = [item_panel(item, limit) for item in items]
    return Group(*panels) if panels else Text("no items match", style="dim")
