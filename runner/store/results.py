"""A run's results as the reports read them: the items themselves, and the counts of the end-of-run
message. The per-target figures are in runner/store/queries.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlite_utils

FAILED = "(status != 'ok' OR passed = 0)"  # a request that failed, or an answer that failed a check


def results_of(db: sqlite_utils.Database, run_id: int, columns: Sequence[str], *, target: str | None = None,
               failed_only: bool = False, key_prefix: str | None = None, limit: int | None = None
               ) -> Iterator[dict[str, Any]]:
    """The run's results (``columns`` of each) in the order they finished.

    ``failed_only`` keeps errors and answers that failed a check; ``key_prefix`` matches the
    start of ``item_key`` (as printed, so a user can paste the first few characters).
    """
    where: list[str] = ["run_id = ?"]
    params: list[Any] = [run_id]
    if target is not None:
        where.append("target = ?")
        params.append(target)
    if failed_only:
        where.append(FAILED)
    if key_prefix:
        where.append("substr(item_key, 1, ?) = ?")  # not LIKE: a key prefix with % or _ means itself
        params += [len(key_prefix), key_prefix]
    sql = f"SELECT {', '.join(columns)} FROM results WHERE {' AND '.join(where)} ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    yield from db.query(sql, params)


def failed_count(db: sqlite_utils.Database, run_id: int) -> int:
    """How many of the run's items failed: the request, or a check."""
    return int(next(db.query(f"SELECT count(*) AS n FROM results WHERE run_id = ? AND {FAILED}", [run_id]))["n"])


def outcome_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """items, ok (answered), passed (every check) and failed_checks (answered, a check failed)."""
    return dict(next(db.query(
        "SELECT count(*) AS items, coalesce(sum(status = 'ok'), 0) AS ok, coalesce(sum(passed = 1), 0) AS passed,"
        " coalesce(sum(status = 'ok' AND passed = 0), 0) AS failed_checks FROM results WHERE run_id = ?", [run_id])))


def error_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, int]:
    """The run's failed requests by error code, the most frequent first."""
    return {r["code"] or "ERROR": r["n"] for r in db.query(
        "SELECT error_code AS code, count(*) AS n FROM results WHERE run_id = ? AND status != 'ok'"
        " GROUP BY error_code ORDER BY count(*) DESC, error_code", [run_id])}


def failed_checks(db: sqlite_utils.Database, run_id: int) -> list[dict[str, Any]]:
    """Per target and check name: answers that failed it (``n``; an answer failing two checks of one
    name counts once) and one reason (``example``), the most failed first. Only the failed answers are
    read (index on run_id, passed)."""
    return list(db.query(
        "SELECT results.target AS target, json_extract(f.value, '$.check') AS name,"
        " count(DISTINCT results.id) AS n, min(json_extract(f.value, '$.reason')) AS example"
        " FROM results, json_each(results.failed_checks) AS f"
        " WHERE results.run_id = ? AND results.passed = 0 AND results.status = 'ok'"
        " AND json_valid(results.failed_checks) GROUP BY results.target, name ORDER BY n DESC", [run_id]))


def no_verdict_reason(db: sqlite_utils.Database, run_id: int) -> str | None:
    """Why one answer got no verdict from its checks (the first such reason), None when none did."""
    row = next(db.query(
        "SELECT json_extract(f.value, '$.reason') AS reason FROM results, json_each(results.failed_checks) AS f"
        " WHERE results.run_id = ? AND results.status = 'ok' AND results.passed IS NULL"
        " AND json_valid(results.failed_checks) LIMIT 1", [run_id]), None)
    return str(row["reason"]) if row is not None else None


def cache_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """What the run took from the response cache: ``answers`` and grader ``verdicts``, and ``paid_usd``, what
    the run paid (NULL when some ok answer is unpriced)."""
    return dict(next(db.query(
        "SELECT coalesce(sum(cached), 0) AS answers, (SELECT count(*) FROM results AS r, json_each(r.checks) AS c"
        "  WHERE r.run_id = ? AND json_valid(r.checks) AND json_extract(c.value, '$.cached') = 1) AS verdicts,"
        " CASE WHEN sum(status = 'ok' AND cost_usd IS NULL) = 0 THEN sum(cost_usd) END AS paid_usd"
        " FROM results WHERE run_id = ?", [run_id, run_id])))
