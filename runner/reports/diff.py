"""Regressions between two runs, item by item: what ``hanzo-run diff A B`` shows and exits on.

Items are matched by what they ask, not by ``item_key``: the key hashes the parameters, so
the same question asked with a new temperature or a new system prompt would never match.
The stable key is (target label, prompt id, data row, repeat index). Each side is a
``pass`` (ok, and no check said no), a ``fail`` (ok, a check said no) or an ``error``; an
item that changed between those, or exists in one run only, is listed with both answers.
The two runs may come from the same database or from two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from .items import answer_text, clip, iter_items

# Listed in this order, regressions first; the names are the JSON keys too.
CHANGES = ("pass_to_fail", "ok_to_error", "fail_to_pass", "error_to_ok", "only_in_a", "only_in_b")
REGRESSIONS = frozenset({"pass_to_fail", "ok_to_error"})
_TRANSITIONS = {
    ("pass", "fail"): "pass_to_fail",
    ("fail", "pass"): "fail_to_pass",
    ("pass", "error"): "ok_to_error",
    ("fail", "error"): "ok_to_error",
    ("error", "pass"): "error_to_ok",
    ("error", "fail"): "error_to_ok",
}
_LABELS = {"pass_to_fail": "pass → fail", "ok_to_error": "ok → error", "fail_to_pass": "fail → pass",
           "error_to_ok": "error → ok", "only_in_a": "only in A", "only_in_b": "only in B"}

StableKey = tuple[str, str | None, int | None, int]


@dataclass(frozen=True)
class Side:
    """One run's answer to an item."""

    item_key: str
    outcome: str  # pass | fail | error
    answer: str  # the response text, or the error code and message
    failed_checks: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ItemChange:
    change: str  # one of CHANGES
    target: str
    prompt_id: str | None
    row_index: int | None
    repeat_index: int
    a: Side | None
    b: Side | None


@dataclass
class TargetDiff:
    target: str
    totals: dict[str, int]  # items_a, items_b, unchanged, and a count for each of CHANGES
    changes: list[ItemChange]


@dataclass
class RunDiff:
    run_a: int
    run_b: int
    targets: list[TargetDiff]
    totals: dict[str, int]


def outcome(item: Mapping[str, Any]) -> str:
    """``error`` unless ok; ``fail`` when a check said no (passed = 0, or failures recorded without a verdict)."""
    if item["status"] != "ok":
        return "error"
    if item["passed"] == 0 or (item["passed"] is None and item["failed_checks"]):
        return "fail"
    return "pass"


def _side(item: Mapping[str, Any]) -> Side:
    return Side(item["item_key"], outcome(item), answer_text(item), item["failed_checks"])


def _stable_items(db: sqlite_utils.Database, run_id: int) -> dict[StableKey, dict[str, Any]]:
    # Labels are unique within a job, so a stable key names one item; should a run hold two,
    # the later answer (a retried item) is the one that counts.
    return {(i["target"], i["prompt_id"], i["row_index"], i["repeat_index"]): i for i in iter_items(db, run_id)}


def _new_totals() -> dict[str, int]:
    return {"items_a": 0, "items_b": 0, "unchanged": 0, **dict.fromkeys(CHANGES, 0)}


def diff_runs(db_a: sqlite_utils.Database, run_a: int, run_b: int,
              db_b: sqlite_utils.Database | None = None) -> RunDiff:
    """Run B against run A (B is the newer one); ``db_b`` defaults to ``db_a``."""
    before = _stable_items(db_a, run_a)
    after = _stable_items(db_b if db_b is not None else db_a, run_b)
    per_target: dict[str, TargetDiff] = {}
    # Targets of B first, in B's order, then those only A had: the newer run sets the order.
    for key in [*after, *(k for k in before if k not in after)]:
        target, prompt_id, row_index, repeat_index = key
        diff = per_target.setdefault(target, TargetDiff(target, _new_totals(), []))
        old, new = before.get(key), after.get(key)
        diff.totals["items_a"] += old is not None
        diff.totals["items_b"] += new is not None
        if old is None:
            change: str | None = "only_in_b"
        elif new is None:
            change = "only_in_a"
        else:
            change = _TRANSITIONS.get((outcome(old), outcome(new)))
        if change is None:
            diff.totals["unchanged"] += 1
            continue
        diff.totals[change] += 1
        diff.changes.append(ItemChange(change, target, prompt_id, row_index, repeat_index,
                                       _side(old) if old else None, _side(new) if new else None))
    totals = _new_totals()
    for diff in per_target.values():
        diff.changes.sort(key=lambda c: CHANGES.index(c.change))  # stable: item order kept within a change
        for name, count in diff.totals.items():
            totals[name] += count
    return RunDiff(run_a, run_b, list(per_target.values()), totals)


def regressed(diff: RunDiff) -> bool:
    """Whether B lost anything A had: an answer that now fails its checks, or now errors."""
    return any(diff.totals[name] for name in REGRESSIONS)


def to_dict(diff: RunDiff) -> dict[str, Any]:
    return {**asdict(diff), "regressed": regressed(diff)}


def to_json(diff: RunDiff) -> str:
    return json.dumps(to_dict(diff), indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------------------- terminal

_STYLES = {"pass_to_fail": "red", "ok_to_error": "red", "fail_to_pass": "green", "error_to_ok": "green",
           "only_in_a": "dim", "only_in_b": "dim"}
# Side by side, an answer gets a few lines; --json has all of it.
ANSWER_LIMIT = 400


def _where(change: ItemChange) -> str:
    parts = [f"prompt {change.prompt_id}" if change.prompt_id is not None else "prompt -"]
    if change.row_index is not None:
        parts.append(f"row {change.row_index}")
    if change.repeat_index:
        parts.append(f"repeat {change.repeat_index}")
    return "\n".join(parts)


def _answer(side: Side | None) -> Any:
    from rich.text import Text

    if side is None:
        return Text("-", style="dim")
    text = Text(f"{side.outcome}\n", style="bold red" if side.outcome == "error" else "bold")
    text.append(clip(side.answer, ANSWER_LIMIT))
    for check in side.failed_checks:
        text.append(f"\n✗ {check['check']}: {check['reason']}", style="yellow")
    return text


def totals_table(diff: RunDiff) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold", title=f"run {diff.run_a} → run {diff.run_b}",
                  title_justify="left")
    table.add_column("target")
    for name in ("items A", "items B", "unchanged", *(_LABELS[c] for c in CHANGES)):
        table.add_column(name, justify="right")
    for target in diff.targets:
        table.add_row(Text(target.target), *_counts(target.totals))  # a label is text, never markup
    if len(diff.targets) > 1:
        table.add_row("all", *_counts(diff.totals), style="bold")
    return table


def _counts(totals: Mapping[str, int]) -> list[str]:
    cells = [str(totals["items_a"]), str(totals["items_b"]), str(totals["unchanged"])]
    for name in CHANGES:
        count = totals[name]
        cells.append(f"[{_STYLES[name]}]{count}[/]" if count and name in REGRESSIONS else str(count))
    return cells


def changes_table(target: TargetDiff) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(target.target), title_justify="left", header_style="bold", show_lines=True, expand=True)
    table.add_column("change", no_wrap=True)
    table.add_column("item", no_wrap=True)
    table.add_column("A", ratio=1, overflow="fold")
    table.add_column("B", ratio=1, overflow="fold")
    for change in target.changes:
        table.add_row(Text(_LABELS[change.change], style=_STYLES[change.change]), _where(change),
                      _answer(change.a), _answer(change.b))
    return table


def diff_renderable(diff: RunDiff) -> Any:
    """The totals per target, then each target's changed items with both answers side by side."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [totals_table(diff)]
    parts += [changes_table(target) for target in diff.targets if target.changes]
    if not any(target.changes for target in diff.targets):
        parts.append(Text("no item changed", style="dim"))
    return Group(*parts)
