"""Regressions between two runs, item by item: what ``hanzo-run diff A B`` shows and exits on.

Items are matched by what they ask, not by ``item_key``: the key hashes the parameters, so
the same question asked with a new temperature or a new system prompt would never match.
The stable key is (target label, prompt id, data row, repeat index), the data row known by
its content (``row_hash``), so rows reordered or inserted between the runs still match; a row
edited in place (its content in neither run's other rows) is matched by its position. Runs
written before row hashes were stored are matched by position only, and say so. Each side
is a ``pass`` (ok, and no check said no), a ``fail`` (ok, a check said no) or an ``error``; an
item that changed between those, or exists in one run only, is listed with both answers and
named by its data row's values (``vars``, B's when both runs have the item). An
item of A that B has no result for (B interrupted, or rows removed) is a regression: B cannot
be trusted to be as good as A on it. The two runs may come from the same database or from two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from ..store.runs import resolve_run
from .items import answer_text, clip, iter_items, row_name

# Listed in this order, regressions first; the names are the JSON keys too.
CHANGES = ("pass_to_fail", "ok_to_error", "fail_to_pass", "error_to_ok", "only_in_a", "only_in_b")
REGRESSIONS = frozenset({"pass_to_fail", "ok_to_error", "only_in_a"})
_TRANSITIONS = {
    ("pass", "fail"): "pass_to_fail",
    ("fail", "pass"): "fail_to_pass",
    ("pass", "error"): "ok_to_error",
    ("fail", "error"): "ok_to_error",
    ("error", "pass"): "error_to_ok",
    ("error", "fail"): "error_to_ok",
}
# How each change is named to people (the terminal, the web view).
LABELS = {"pass_to_fail": "pass → fail", "ok_to_error": "ok → error", "fail_to_pass": "fail → pass",
          "error_to_ok": "error → ok", "only_in_a": "only in A", "only_in_b": "only in B"}

# (target, prompt id, the row: (row hash, how many identical rows came before) or its index, repeat index)
StableKey = tuple[str, str | None, tuple[str, int] | int | None, int]


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
    vars: dict[str, Any] | None  # the data row's variables; None without data or before they were stored
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
    status_a: str = "completed"
    status_b: str = "completed"
    notes: list[str] = field(default_factory=list)  # how items were matched, when worth saying


def outcome(item: Mapping[str, Any]) -> str:
    """``error`` unless ok; ``fail`` when a check said no (passed = 0, or failures recorded without a verdict)."""
    if item["status"] != "ok":
        return "error"
    if item["passed"] == 0 or (item["passed"] is None and item["failed_checks"]):
        return "fail"
    return "pass"


def _side(item: Mapping[str, Any]) -> Side:
    return Side(item["item_key"], outcome(item), answer_text(item), item["failed_checks"])


def _stable_items(items: list[dict[str, Any]], by_content: bool) -> dict[StableKey, dict[str, Any]]:
    # Labels are unique within a job, so a stable key names one item; should a run hold two,
    # the later answer (a retried item) is the one that counts. Identical data rows are told
    # apart by their order among themselves.
    keyed: dict[StableKey, dict[str, Any]] = {}
    seen: dict[tuple[Any, ...], set[int]] = {}
    for item in sorted(items, key=lambda i: -1 if i["row_index"] is None else i["row_index"]):
        row: tuple[str, int] | int | None = item["row_index"]
        if by_content and item["row_hash"] is not None:
            twins = seen.setdefault((item["target"], item["prompt_id"], item["row_hash"], item["repeat_index"]), set())
            twins.add(item["row_index"])
            row = (item["row_hash"], len(twins) - 1)
        keyed[(item["target"], item["prompt_id"], row, item["repeat_index"])] = item
    order = {id(item): n for n, item in enumerate(items)}
    return dict(sorted(keyed.items(), key=lambda kv: order[id(kv[1])]))  # the order the run finished them


def _row_notes(before: list[dict[str, Any]], after: list[dict[str, Any]], run_a: int, run_b: int) -> list[str]:
    """What changed in the data rows between the runs, or how items were matched without row hashes."""
    old = [run_a] if any(i["row_index"] is not None and i["row_hash"] is None for i in before) else []
    old += [run_b] if any(i["row_index"] is not None and i["row_hash"] is None for i in after) else []
    if old:
        runs = " and ".join(f"run {r}" for r in old)
        return [f"{runs} {'has' if len(old) == 1 else 'have'} no row hashes (written by an older hanzo-run): "
                "items are matched by row position"]
    rows_a = {i["row_hash"]: i["row_index"] for i in reversed(before) if i["row_hash"] is not None}
    rows_b = {i["row_hash"]: i["row_index"] for i in reversed(after) if i["row_hash"] is not None}
    added = {rows_b[h] for h in rows_b.keys() - rows_a.keys()}
    removed = {rows_a[h] for h in rows_a.keys() - rows_b.keys()}
    edited = added & removed
    moved = sum(1 for h in rows_a.keys() & rows_b.keys() if rows_a[h] != rows_b[h])
    if not (added or removed or moved):
        return []
    return [f"data rows changed between run {run_a} and run {run_b}: {len(edited)} edited, {len(added - edited)} "
            f"added, {len(removed - edited)} removed, {moved} moved; items are matched by the row's content, an "
            "edited row by its position"]


def _pair_edited_rows(before: dict[StableKey, dict[str, Any]], after: dict[StableKey, dict[str, Any]]) -> None:
    """Give an item of A whose row content B does not have the key of B's item at the same row position,
    when B's has no match in A either: the same row, edited between the runs."""
    unmatched_a = {(k[0], k[1], v["row_index"], k[3]): k for k, v in before.items()
                   if k not in after and v["row_index"] is not None}
    for key, item in after.items():
        if key in before or item["row_index"] is None:
            continue
        old = unmatched_a.pop((key[0], key[1], item["row_index"], key[3]), None)
        if old is not None:
            before[key] = before.pop(old)


def _new_totals() -> dict[str, int]:
    return {"items_a": 0, "items_b": 0, "unchanged": 0, **dict.fromkeys(CHANGES, 0)}


def diff_runs(db_a: sqlite_utils.Database, run_a: int, run_b: int,
              db_b: sqlite_utils.Database | None = None) -> RunDiff:
    """Run B against run A (B is the newer one); ``db_b`` defaults to ``db_a``."""
    db_b = db_b if db_b is not None else db_a
    items_a, items_b = list(iter_items(db_a, run_a)), list(iter_items(db_b, run_b))
    notes = _row_notes(items_a, items_b, run_a, run_b)
    by_content = not any(i["row_index"] is not None and i["row_hash"] is None for i in (*items_a, *items_b))
    before, after = _stable_items(items_a, by_content), _stable_items(items_b, by_content)
    if by_content:
        _pair_edited_rows(before, after)
    per_target: dict[str, TargetDiff] = {}
    # Targets of B first, in B's order, then those only A had: the newer run sets the order.
    for key in [*after, *(k for k in before if k not in after)]:
        target, prompt_id, _, repeat_index = key
        diff = per_target.setdefault(target, TargetDiff(target, _new_totals(), []))
        old, new = before.get(key), after.get(key)
        named = new or old or {}
        row_index = named.get("row_index")
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
        diff.changes.append(ItemChange(change, target, prompt_id, row_index, repeat_index, named.get("vars"),
                                       _side(old) if old else None, _side(new) if new else None))
    totals = _new_totals()
    for diff in per_target.values():
        diff.changes.sort(key=lambda c: CHANGES.index(c.change))  # stable: item order kept within a change
        for name, count in diff.totals.items():
            totals[name] += count
    return RunDiff(run_a, run_b, list(per_target.values()), totals, _status(db_a, run_a), _status(db_b, run_b), notes)


def _status(db: sqlite_utils.Database, run_id: int) -> str:
    run = resolve_run(db, run_id)
    return run.status if run is not None else "completed"


def regressed(diff: RunDiff) -> bool:
    """Whether B lost anything A had: an answer that now fails its checks, now errors, or has no result."""
    return any(diff.totals[name] for name in REGRESSIONS)


def regression_reason(diff: RunDiff) -> str:
    """Why ``diff`` is a regression, in one line."""
    t = diff.totals
    said = [f"{n} item{'s' if n != 1 else ''} went from {what}" for n, what in (
        (t["pass_to_fail"], "pass to fail"), (t["ok_to_error"], "ok to error")) if n]
    if t["only_in_a"]:
        n = t["only_in_a"]
        why = f" (run {diff.run_b} is {diff.status_b})" if diff.status_b != "completed" else ""
        said.append(f"{n} item{'s' if n != 1 else ''} of run {diff.run_a} {'have' if n != 1 else 'has'} no result "
                    f"in run {diff.run_b}{why}")
    return f"run {diff.run_b} regressed against run {diff.run_a}: {' and '.join(said)}"


def to_dict(diff: RunDiff) -> dict[str, Any]:
    return {**asdict(diff), "regressed": regressed(diff)}


def to_json(diff: RunDiff) -> str:
    return json.dumps(to_dict(diff), indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------------------- terminal

_STYLES = {"pass_to_fail": "red", "ok_to_error": "red", "fail_to_pass": "green", "error_to_ok": "green",
           "only_in_a": "dim", "only_in_b": "dim"}
# Side by side, an answer gets a few lines; --json has all of it.
ANSWER_LIMIT = 400
NAME_LIMIT = 40  # the item column does not wrap: its values are cut to leave the answers room


def _where(change: ItemChange) -> str:
    parts = [f"prompt {change.prompt_id}" if change.prompt_id is not None else "prompt -"]
    if change.vars:
        parts.append(row_name({"vars": change.vars, "row_index": change.row_index}, NAME_LIMIT))
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
    for name in ("items A", "items B", "unchanged", *(LABELS[c] for c in CHANGES)):
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
        table.add_row(Text(LABELS[change.change], style=_STYLES[change.change]), Text(_where(change)),
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
