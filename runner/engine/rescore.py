"""Re-grading a finished run: the job's current checks applied to the answers it stored.

A rescore is a new run, linked to its source by ``runs.source_run_id``, with one result
per result of the source. Nothing is sent for the answers: each result's answer fields
(text, tokens, latency, status, error) are copied and only ``passed`` and
``failed_checks`` are evaluated again, so a fixed check shows its new pass rate in
seconds and ``diff`` compares the two runs. Only judge checks send requests, to their
graders, through the graders' lanes like in a run.

Cost: a copied result keeps what its answer cost (``cost_usd``, with ``cached`` and
``cached_cost_usd`` as they were), so the rescored run's report compares with its
source's; the judges this rescore asked are added on top and shown apart in
``judge_cost_usd``, which is the rescore's own spend (and what its budget bounds).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from ..config.jobs import Job, Prompt, Target, WorkItem
from ..config.observed import Observed
from ..config.providers import ProviderRegistry
from ..config.templating import Row
from ..errors import UsageError
from ..store.database import RunStore, open_db
from ..store.records import AttemptRow, ResultRow, RunRecord
from ..store.runs import resolve_run, result_count, row_indexes, run_providers, stored_results
from ..version import __version__
from .budget import Budget
from .grading import grader_providers
from .launch import RunOutcome
from .rows import check_answer
from .scheduler import Engine, Lane, Progress

PAGE = 500  # stored results read at a time
# What a python check is told about a stored result (rows.answer_fields' keys).
ANSWER_FIELDS = ("target", "provider", "model", "prompt_id", "row_index", "repeat_index", "prompt", "response_text",
                 "finish_reason", "http_status", "latency_ms", "ttft_ms", "input_tokens", "output_tokens")


def source_run(db: sqlite_utils.Database, which: str, job_path: str | None) -> RunRecord:
    """The run to rescore: its id, or ``latest`` (the job's latest run, else the database's)."""
    if which == "latest":
        found = resolve_run(db, None, job_path=job_path)
        if found is None:
            raise UsageError("rescore: there is no run to rescore in this database")
        return found
    try:
        run_id = int(which)
    except ValueError:
        raise UsageError(f"rescore takes a run id (a number) or 'latest', not {which!r}") from None
    found = resolve_run(db, run_id)
    if found is None:
        raise UsageError(f"rescore: there is no run {run_id} in this database")
    return found


class RescoreEngine(Engine):
    """An Engine whose items are answered by the source run's stored results instead of sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored: dict[str, Mapping[str, Any]] = {}  # item_key -> its stored result, until processed

    async def send_item(self, lane: Lane, item: WorkItem) -> tuple[ResultRow, list[AttemptRow]]:
        stored = self.stored.pop(item.item_key)
        row = ResultRow(**{f: stored[f] for f in ResultRow._fields})._replace(run_id=self.store.run_id)
        if row.status != "ok":
            return row, []
        answer_cost = row.cost_usd
        if row.cost_usd is not None and row.judge_cost_usd is not None:  # the source's judges were its own spend
            answer_cost = row.cost_usd - row.judge_cost_usd
        fields = {f: stored[f] for f in ANSWER_FIELDS} if self.checks.wants_fields else None
        tool_calls = json.loads(row.tool_calls) if row.tool_calls else None
        seen = Observed(row.response_text or "", row.output_tokens, row.latency_ms, fields, tool_calls)
        passed, failures, response_json = check_answer(self.checks, item, seen)
        return row._replace(passed=passed, failed_checks=json.dumps([f.as_dict() for f in failures]) if failures
                            else None, response_json=response_json, cost_usd=answer_cost, judge_cost_usd=None), []


async def rescore_run(job: Job, registry: ProviderRegistry, db_path: Path, which: str, *,
                      progress: Progress | None = None, handle_signals: bool = False) -> tuple[RunOutcome, int]:
    """Rescore run ``which`` of the database with ``job``'s current checks; (the new run's outcome, source id)."""
    db = open_db(db_path)
    try:
        source = source_run(db, which, str(job.path.resolve()) if which == "latest" else None)
        if source.status == "running":
            raise UsageError(f"rescore: run {source.id} is still running; rescore it when it has finished")
        total = result_count(db, source.id)
        store = RunStore.start(db, job_name=job.name, job_path=str(job.path.resolve()),
                               job_hash=source.job_hash or job.hash, items_total=total,
                               version=__version__, pid=os.getpid(),
                               options=json.dumps({"rescore_of": source.id}), source_run_id=source.id)
        if progress is not None:
            progress.start(total)
        try:
            status = await _rescore(job, registry, db, source.id, store, progress, handle_signals)
        except BaseException:
            store.finish("failed")
            raise
        counts = store.finish(status)
    finally:
        db.close()
    outcome = RunOutcome(store.run_id, db_path, status, counts["items"], counts["ok"], counts["failed"],
                         counts["cost_usd"], job.has_checks)
    return outcome, source.id


async def _rescore(job: Job, registry: ProviderRegistry, db: sqlite_utils.Database, source_id: int, store: RunStore,
                   progress: Progress | None, handle_signals: bool) -> Any:
    providers = run_providers(db, source_id)
    for provider_id in providers:
        if provider_id not in registry:
            raise UsageError(f"rescore: run {source_id} has answers of provider '{provider_id}', which is in no "
                             "providers folder")
    rows = _data_rows(job, source_id, db)
    prompts = {p.id: p for p in job.prompts}
    lanes: list[Lane] = []
    engine: RescoreEngine | None = None

    def stored_items(provider_id: str) -> Iterator[WorkItem]:
        for stored in stored_results(db, source_id, provider_id, PAGE):
            assert engine is not None
            engine.stored[stored["item_key"]] = stored
            yield _item(stored, job, prompts, rows)

    try:
        for provider_id in dict.fromkeys([*providers, *grader_providers(job)]):
            items = stored_items(provider_id) if provider_id in providers else iter(())
            lanes.append(Lane.open(registry.get(provider_id), items))
        budget = Budget(job.budget_usd) if job.budget_usd else None  # bounds the judges: nothing else is bought
        engine = RescoreEngine(job, lanes, store, concurrency=job.concurrency, progress=progress,
                               handle_signals=handle_signals, budget=budget)
        return await engine.run()
    finally:
        for lane in lanes:
            if lane.client:
                await lane.client.aclose()


def _data_rows(job: Job, source_id: int, db: sqlite_utils.Database) -> dict[int, Row]:
    """The job's data rows that the source run's results refer to, by index."""
    wanted = row_indexes(db, source_id)
    return {i: row for i, row in job.rows() if i is not None and i in wanted}


def _item(stored: Mapping[str, Any], job: Job, prompts: Mapping[str, Prompt], rows: Mapping[int, Row]) -> WorkItem:
    """The work item a stored result answered, as far as checks need it: its prompt's checks, its data row,
    and the JSON the job asks for (checked against its schema again)."""
    target = next((t for t in job.targets if t.label == stored["target"]), None) or \
        Target(stored["provider"], stored["model"], {}, stored["target"])
    prompt = prompts.get(stored["prompt_id"]) or Prompt(stored["prompt_id"], ())
    row = rows.get(stored["row_index"], {}) if stored["row_index"] is not None else {}
    messages = ({"role": "user", "content": stored["prompt"] or ""},)
    response = prompt.response or target.response or job.response
    return WorkItem(target, prompt, stored["row_index"], stored["repeat_index"], messages, stored["item_key"], row,
                    response)
