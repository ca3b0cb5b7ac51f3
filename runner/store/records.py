"""The rows of the ``results`` and ``attempts`` tables as named records.

The fields of ``ResultRow`` and ``AttemptRow`` are the tables' columns, in order: the
insert and upsert SQL of runner/store/database.py is generated from them, so a column
is named in one place. NamedTuples, not dataclasses: the engine builds one per request
and sqlite3 takes them as they are. ``RunRecord`` is a row of ``runs`` as read back
(runner/store/runs.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple


def utcnow() -> str:
    """Now as the rows store it: ISO 8601 in UTC to the millisecond, ``Z``-suffixed (sorts as text)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# "submitted": batches are still running at the provider; ``--resume`` collects them.
RunStatus = Literal["running", "completed", "interrupted", "failed", "submitted"]
ResultStatus = Literal["ok", "error"]
# How an item was sent: one request of its own, or inside a provider batch.
Via = Literal["sync", "batch"]


class ResultRow(NamedTuple):
    """One work item's final outcome: a row of ``results``."""

    run_id: int
    item_key: str
    target: str
    provider: str
    model: str
    prompt_id: str
    row_index: int | None
    repeat_index: int
    prompt: str
    status: ResultStatus
    response_text: str | None
    finish_reason: str | None
    error_code: str | None
    error_message: str | None
    http_status: int | None
    attempts: int
    latency_ms: float | None
    ttft_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    passed: int | None
    started_at: str
    finished_at: str
    failed_checks: str | None  # JSON list of {check, reason}
    price_source: str | None
    # m004_grading. cost_usd is what this run paid for the item (answer + judges); an answer taken
    # from the response cache costs 0 here and keeps what it first cost in cached_cost_usd.
    cached: int = 0
    cached_cost_usd: float | None = None
    judge_cost_usd: float | None = None  # what the item's verdicts cost (m009: a cached one at its first cost)
    # Defaults, so the synchronous hot path builds rows as before; the batch path replaces them.
    via: Via = "sync"
    batch_id: str | None = None  # the provider's id of the batch that answered it
    # m005_media
    response_json: str | None = None  # the answer's JSON when the job asked for JSON
    tool_calls: str | None = None  # JSON list of {name, arguments}
    reasoning_tokens: int | None = None  # part of output_tokens
    cached_input_tokens: int | None = None  # part of input_tokens
    cache_write_tokens: int | None = None  # part of input_tokens (Anthropic cache writes)
    row_hash: str | None = None  # m007: the data row's variables hashed (config.jobs.row_hash); None without data
    # m009_checks: every check's outcome, JSON list of {name, passed, score, reason} (a judge's also grader,
    # cached, cost_usd); and what the answer itself cost, a cached one at its first cost (cost_usd minus
    # judges is this run's spend, not the answer's price).
    checks: str | None = None
    answer_cost_usd: float | None = None
    vars: str | None = None  # m008: the data row's variables as a JSON object (engine.rows.stored_vars)


class AttemptRow(NamedTuple):
    """One HTTP attempt of a work item: a row of ``attempts``."""

    run_id: int
    item_key: str
    attempt: int
    started_at: str
    latency_ms: float | None
    http_status: int | None
    error_code: str | None
    retry_after_s: float | None
    purpose: str = "answer"  # m004_grading: "answer", or "judge" for a model-graded check's request


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A row of ``runs``: a job's run (its resumes continue it), or a rescore or merge of other runs."""

    id: int
    job_name: str
    job_path: str | None
    job_hash: str | None
    status: RunStatus
    started_at: str
    finished_at: str | None = None
    items_total: int | None = None  # the items of the run's scope (--only, --limit, shard applied)
    items_ok: int = 0
    items_failed: int = 0
    cost_usd: float | None = None
    version: str | None = None
    pid: int | None = None
    options: str | None = None  # JSON: what a resume repeats (--only, --limit, batch mode, shard)
    providers: str | None = None  # m003: JSON {provider id: {protocol, base_url, key_source}}, never a key
    source_run_id: int | None = None  # m004: the run a rescore graded again

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """A ``SELECT *`` row of ``runs``; a column this code does not know (a newer schema's) is left out."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})
