"""Building the rows the engine writes: pure functions from an item and what became of it.

Kept out of the Engine so they can be read and tested without a run; they are on the
hot path (one call per request), so they build NamedTuples directly, no dicts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..config.checks import Checks, Observed, Outcome, checks_json, failed_checks_json, verdict_of
from ..config.jobs import WorkItem
from ..config.media import data_label
from ..config.outputs import NO_JSON, ResponseSpec
from ..errors import ProviderError
from ..http.client import Answer
from ..store.records import AttemptRow, ResultRow
from .costing import UNKNOWN, Cost

_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A variable longer than this (a document, an image's bytes as base64) is stored as its start and its length:
# every result of the row would repeat it, and the data file keeps it whole.
VALUE_LIMIT = 10_000
VALUE_KEPT = 200


def storable(text: str | None) -> str | None:
    """``text`` with lone surrogates (a JSON "\\ud800" decodes to one) as U+FFFD: SQLite cannot encode them.

    The check costs one ASCII scan for the usual answer; the search runs only on non-ASCII text.
    """
    if text is None or text.isascii():
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


def stored_vars(item: WorkItem) -> str | None:
    """The item's data row as ``results.vars``: a JSON object in the data's column order; None without data.

    Values are kept as the row gives them (an image as its path or URL), bytes excepted: a ``data:`` URL
    is stored as its label (``data:image/png URL``), a value past VALUE_LIMIT characters as its start and
    length. ``row_hash`` still names the whole row.
    """
    if item.row_index is None:
        return None
    return storable(json.dumps({name: _stored_value(value) for name, value in item.row.items()},
                               ensure_ascii=False, default=str))


def _stored_value(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:100]:
            return f"{data_label(value)}, {len(value):,} characters"
        if len(value) > VALUE_LIMIT:
            return f"{value[:VALUE_KEPT]}… [{len(value):,} characters]"
        return value
    if isinstance(value, list):
        return [_stored_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _stored_value(v) for k, v in value.items()}
    return value


def result_row(run_id: int, item: WorkItem, outcome: Answer | ProviderError, *, attempts: int, started_at: str,
               finished_at: str, cost: Cost = UNKNOWN, checks: Checks) -> ResultRow:
    """The item's row of ``results``: its answer (at ``cost``, checked) or its error."""
    target = item.target
    if isinstance(outcome, ProviderError):
        return ResultRow(
            run_id=run_id, item_key=item.item_key, target=target.label, provider=target.provider,
            model=target.model, prompt_id=item.prompt.id, row_index=item.row_index, repeat_index=item.repeat_index,
            prompt=item.prompt_text, status="error", response_text=None, finish_reason=None,
            error_code=outcome.code, error_message=storable(outcome.message), http_status=outcome.status,
            attempts=attempts,
            latency_ms=None, ttft_ms=None, input_tokens=None, output_tokens=None, cost_usd=None, passed=None,
            started_at=started_at, finished_at=finished_at, failed_checks=None, price_source=None,
            row_hash=item.row_hash, vars=stored_vars(item))
    c = outcome.completion
    fields = answer_fields(item, outcome) if checks.wants_fields else None  # only python checks read them
    said, response_json = check_answer(checks, item, Observed(c.text, c.output_tokens, outcome.latency_ms, fields,
                                                              c.tool_calls))
    return ResultRow(
        run_id=run_id, item_key=item.item_key, target=target.label, provider=target.provider, model=target.model,
        prompt_id=item.prompt.id, row_index=item.row_index, repeat_index=item.repeat_index,
        prompt=item.prompt_text, status="ok", response_text=storable(c.text), finish_reason=c.finish_reason,
        error_code=None, error_message=None, http_status=outcome.http_status, attempts=attempts,
        latency_ms=outcome.latency_ms, ttft_ms=outcome.ttft_ms, input_tokens=c.input_tokens,
        output_tokens=c.output_tokens, cost_usd=cost.usd, passed=verdict_of(said), started_at=started_at,
        finished_at=finished_at, failed_checks=failed_checks_json(said), checks=checks_json(said),
        answer_cost_usd=cost.usd,
        price_source=cost.source, response_json=response_json,
        tool_calls=json.dumps(c.tool_calls, ensure_ascii=False) if c.tool_calls is not None else None,
        reasoning_tokens=c.reasoning_tokens, cached_input_tokens=c.cached_input_tokens,
        cache_write_tokens=c.cache_write_tokens, row_hash=item.row_hash, vars=stored_vars(item))


def check_answer(checks: Checks, item: WorkItem, seen: Observed) -> tuple[list[Outcome], str | None]:
    """The item's checks on an answer (judges apart): (every check's outcome, the answer's JSON when the job
    asked for JSON).

    Asked-for JSON is parsed, stored and checked against its schema on every answer, checks or not.
    """
    said = checks.outcomes(item.prompt.id, item.row, seen)
    if item.response is None:
        return said, None
    response_json, outcome = answer_json(item.response, seen.text)
    return [*said, outcome], response_json


def answer_json(spec: ResponseSpec, text: str) -> tuple[str | None, Outcome]:
    """(the answer's JSON as stored, or None when none parsed; the outcome of checking it)."""
    value, problem = spec.read(text)
    stored = None if value is NO_JSON else json.dumps(value, ensure_ascii=False)
    check = "response_schema" if spec.schema is not None else "response_format"
    if problem is not None:
        return stored, Outcome(check, problem)
    return stored, Outcome(check, "answer matches the response schema" if spec.schema is not None
                           else "answer is JSON", True)


def answer_fields(item: WorkItem, answer: Answer) -> dict[str, Any]:
    """What a python check is told about the result besides the answer text and the data row."""
    c, target = answer.completion, item.target
    return {"target": target.label, "provider": target.provider, "model": target.model,
            "prompt_id": item.prompt.id, "row_index": item.row_index, "repeat_index": item.repeat_index,
            "prompt": item.prompt_text, "response_text": c.text, "finish_reason": c.finish_reason,
            "http_status": answer.http_status, "latency_ms": answer.latency_ms, "ttft_ms": answer.ttft_ms,
            "input_tokens": c.input_tokens, "output_tokens": c.output_tokens}


def attempt_row(run_id: int, item_key: str, number: int, started_at: str, outcome: Answer | ProviderError,
                latency_ms: float | None) -> AttemptRow:
    """One request's row of ``attempts``; ``latency_ms`` as measured around it (None for a batch's)."""
    if isinstance(outcome, ProviderError):
        return AttemptRow(run_id=run_id, item_key=item_key, attempt=number, started_at=started_at,
                          latency_ms=latency_ms, http_status=outcome.status, error_code=outcome.code,
                          retry_after_s=outcome.retry_after)
    return AttemptRow(run_id=run_id, item_key=item_key, attempt=number, started_at=started_at,
                      latency_ms=latency_ms, http_status=outcome.http_status, error_code=None, retry_after_s=None)