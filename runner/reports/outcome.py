"""Why a run passed or failed, in figures and in words: the end-of-run summary line, the one
line on stderr that explains a non-zero exit, and the same figures for ``run --json``.

The exit rule is ``store.queries.run_failed``'s, restated here on the figures it explains, so
the sentence and the exit code cannot disagree: without ``--fail-under`` any failed request
or failed check fails the run; with it, the pass rate (the ok rate when the job has no checks)
must reach it. Pass rate counts a failed request as not passed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from ..store.results import cache_counts, error_counts, failed_checks, no_verdict_reason, outcome_counts

# How many of the checks that failed most the terminal lists; JSON has them all.
TOP_CHECKS = 5


@dataclass
class RunFigures:
    run_id: int
    db_path: Path
    checked: bool  # the job has checks: the pass rate is what counts
    fail_under: float | None
    items: int = 0
    ok: int = 0
    passed: int = 0
    failed_checks: int = 0  # answers (ok) that failed at least one check
    request_errors: dict[str, int] = field(default_factory=dict)  # error code -> items, most first
    checks_failed: dict[str, int] = field(default_factory=dict)  # check name -> answers, most first
    check_examples: dict[str, str] = field(default_factory=dict)  # check name -> one reason
    checks_failed_by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    no_verdict_example: str = ""  # why one answer got no verdict (a grader that did not answer one)
    cached_answers: int = 0  # answers taken from the response cache
    cached_verdicts: int = 0  # grader verdicts taken from the response cache
    paid_usd: float | None = None  # what the run paid (cached answers and verdicts cost it nothing)

    @property
    def errors(self) -> int:
        return self.items - self.ok

    @property
    def no_verdict(self) -> int:
        """Answers whose checks gave no verdict (passed NULL): a judge that failed or did not parse."""
        return self.ok - self.passed - self.failed_checks if self.checked else 0

    @property
    def ok_rate(self) -> float | None:
        return self.ok / self.items if self.items else None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.items if self.items and self.checked else None

    @property
    def rate(self) -> float | None:
        """The rate --fail-under is held to."""
        return self.pass_rate if self.checked else self.ok_rate

    @property
    def rate_name(self) -> str:
        return "pass rate" if self.checked else "ok rate"

    @property
    def failed(self) -> bool:
        """Whether the run exits 1 (the rule of store.queries.run_failed)."""
        if not self.items:
            return False
        rate = self.rate or 0.0
        if self.fail_under is None:
            return rate < 1.0 or self.errors > 0
        return rate < self.fail_under

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "ok_rate": self.ok_rate, "pass_rate": self.pass_rate,
                "passed": self.passed if self.checked else None,
                "answers_failing_checks": self.failed_checks if self.checked else None,
                "answers_without_verdict": self.no_verdict if self.checked else None,
                "fail_under": self.fail_under, "request_errors": self.request_errors,
                "checks_failed": self.checks_failed, "checks_failed_by_target": self.checks_failed_by_target,
                "cached_answers": self.cached_answers, "cached_verdicts": self.cached_verdicts,
                "reason": failure_reason(self) if self.failed else None}


def run_figures(db: sqlite_utils.Database, run_id: int, db_path: Path, *, checked: bool,
                fail_under: float | None) -> RunFigures:
    figures = RunFigures(run_id, db_path, checked, fail_under)
    row = outcome_counts(db, run_id)
    figures.items, figures.ok, figures.passed, figures.failed_checks = (
        row["items"], row["ok"], row["passed"], row["failed_checks"])
    figures.request_errors = error_counts(db, run_id)
    cached = cache_counts(db, run_id)
    figures.cached_answers, figures.cached_verdicts, figures.paid_usd = (
        cached["answers"], cached["verdicts"], cached["paid_usd"])
    if figures.failed_checks:
        _count_checks(db, figures)
    if figures.no_verdict:
        reason = no_verdict_reason(db, run_id)
        figures.no_verdict_example = _clip(reason) if reason is not None else ""
    return figures


def _clip(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _count_checks(db: sqlite_utils.Database, figures: RunFigures) -> None:
    totals: Counter[str] = Counter()
    for r in failed_checks(db, figures.run_id):
        name = str(r["name"] or "?")
        totals[name] += r["n"]
        figures.checks_failed_by_target.setdefault(r["target"], {})[name] = r["n"]
        figures.check_examples.setdefault(name, str(r["example"] or ""))
    figures.checks_failed = dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _codes(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in errors.items())


def _fail_under(figures: RunFigures) -> str:
    """', under --fail-under 0.9' (or ', meets ...'), or nothing without --fail-under."""
    if figures.fail_under is None:
        return ""
    rate = figures.rate or 0.0
    return f", {'under' if rate < figures.fail_under else 'meets'} --fail-under {figures.fail_under:g}"


def summary_line(figures: RunFigures) -> str:
    """The last line of a run, e.g. ``run 7: 40 answered, 23 passed, 17 failed checks (pass rate 57.5%, under
    --fail-under 0.9); 0 request errors``."""
    errors = f"{figures.errors} request error{'s' if figures.errors != 1 else ''}"
    if figures.request_errors:
        errors += f" ({_codes(figures.request_errors)})"
    head = f"run {figures.run_id}: {figures.items} answered, "
    if figures.checked:
        unknown = f", {figures.no_verdict} without a verdict" if figures.no_verdict else ""
        return (f"{head}{figures.passed} passed, {figures.failed_checks} failed checks{unknown} "
                f"(pass rate {pct(figures.pass_rate)}{_fail_under(figures)}); {errors}{_from_cache(figures)}")
    line = f"{head}{figures.ok} ok, {errors}"
    if figures.fail_under is not None:
        line += f" (ok rate {pct(figures.ok_rate)}{_fail_under(figures)})"
    return line + _from_cache(figures)


def _from_cache(figures: RunFigures) -> str:
    """'; from the cache: 4 answers, 4 verdicts (paid $0.0000)', or nothing when the cache gave nothing."""
    taken = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in ((figures.cached_answers, "answer"),
                                                                   (figures.cached_verdicts, "verdict")) if n]
    if not taken:
        return ""
    paid = "" if figures.paid_usd is None else f" (paid ${figures.paid_usd:.4f})"
    return f"; from the cache: {', '.join(taken)}{paid}"


def failure_reason(figures: RunFigures) -> str:
    """Why the run exits 1, in one line, e.g. ``run 7 failed: 17 of 40 answers failed checks (pass rate 57.5%
    under --fail-under 0.9); results in jobs/nightly.db``."""
    rate = (f"{figures.rate_name} {pct(figures.rate)} under --fail-under {figures.fail_under:g}"
            if figures.fail_under is not None else "")
    clauses: list[tuple[str, list[str]]] = []
    if figures.checked and figures.failed_checks:
        clauses.append((f"{figures.failed_checks} of {figures.items} answers failed checks", []))
    if figures.no_verdict:
        why = [figures.no_verdict_example] if figures.no_verdict_example else []
        clauses.append((f"{figures.no_verdict} of {figures.items} answers got no verdict from their checks", why))
    if figures.errors:
        clauses.append((f"{figures.errors} of {figures.items} requests failed", [_codes(figures.request_errors)]))
    if not clauses:  # cannot happen while the rule above holds; say something true anyway
        clauses.append((f"{figures.items} item{'s' if figures.items != 1 else ''} did not pass", []))
    if rate:
        clauses[0][1].append(rate)
    said = " and ".join(text + (f" ({'; '.join(notes)})" if notes else "") for text, notes in clauses)
    return f"run {figures.run_id} failed: {said}; results in {figures.db_path}"


def checks_table(figures: RunFigures, limit: int = TOP_CHECKS) -> Any:
    """The checks that failed most: name, answers, one reason."""
    from rich.table import Table
    from rich.text import Text

    shown = list(figures.checks_failed.items())[:limit]
    more = len(figures.checks_failed) - len(shown)
    title = "checks that failed most" + (f" (top {limit} of {len(figures.checks_failed)})" if more > 0 else "")
    table = Table(show_edge=False, header_style="bold", title=title, title_justify="left")
    table.add_column("check")
    table.add_column("answers", justify="right")
    table.add_column("for example")
    for name, count in shown:
        table.add_row(Text(name), str(count), Text(figures.check_examples.get(name, "")))
    return table
