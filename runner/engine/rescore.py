"""Re-grading a finished run: the job's current checks applied to the answers it stored.

A rescore is a new run, linked to its source by ``runs.source_run_id``, with one result
per result of the source. Nothing is sent for the answers: each result's answer fields
(text, tokens, latency, status, error) are copied and only ``passed`` and
``failed_checks`` are evaluated again, so a fixed check shows its new pass rate in
seconds and ``diff`` compares the two runs. Only judge checks send requests, to their
graders, through the graders' lanes like in a run.

Cost: a copied result keeps what its answer cost (``answer_cost_usd``, and in ``cost_usd``
what the source paid for it, with ``cached`` and ``cached_cost_usd`` as they were), so the
rescored run's report compares with its source's; the judges this rescore asked are added
to ``cost_usd`` and shown apart in ``judge_cost_usd``. With the response cache on, a
grader that already judged the same answer the same way is not asked (nor paid) again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from ..config.checks import Outcome, checks_json, failed_checks_json, verdict_of
from ..config.jobs import Job, Prompt, Target, WorkItem, row_hash
from ..config.observed import Observed
from ..config.providers import ProviderRegistry
from ..config.templating import Row
from ..errors import UsageError
from ..protocols import HttpCall
from ..store.database import RunStore, open_db
from ..store.records import AttemptRow, ResultRow, RunRecord
from ..store.runs import answered_rows, resolve_run, result_count, run_providers, stored_results
from ..version import __version__
from .budget import Budget
from .caching import AnswerCache
from .grading import grader_providers
from .launch import RunOutcome
from .rows import check_answer, stored_vars
from .scheduler import Engine, Finished, Lane, Progress

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

    def __init__(self, *args: Any, grader_cache: AnswerCache | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # no answer cache: the answers are the source's, never looked up
        if self.grading is not None:
            self.grading.cache = grader_cache  # a verdict already bought is not bought again
        self.stored: dict[str, Mapping[str, Any]] = {}  # item_key -> its stored result, until processed
        self.rows_gone: dict[str, str] = {}  # item_key -> why its data row cannot be found, until processed

    async def process_item(self, lane: Lane, item: WorkItem) -> Finished:
        if item.item_key in self.rows_gone:  # no verdict without its row: no grader is asked (nor paid) either
            row, attempts = await self.send_item(lane, item)
            return row, attempts, None
        return await super().process_item(lane, item)

    async def send_item(self, lane: Lane, item: WorkItem,
                        call: HttpCall | None = None) -> tuple[ResultRow, list[AttemptRow]]:
        stored = self.stored.pop(item.item_key)
        row = ResultRow(**{f: stored[f] for f in ResultRow._fields})._replace(run_id=self.store.run_id)
        gone = self.rows_gone.pop(item.item_key, None)
        if row.vars is None and gone is None:  # a source written before vars: show the row it is graded against
            row = row._replace(vars=stored_vars(item))
        if row.status != "ok":
            return row, []
        # What the source paid for the answer (nothing when it came from the cache); its judges were its own spend.
        paid = 0.0 if row.cached else row.answer_cost_usd
        if gone is not None:  # grading against another row would be a lie: no verdict, and why
            said = [Outcome("data row", gone, None)]
            return row._replace(passed=None, failed_checks=failed_checks_json(said), checks=checks_json(said),
                                response_json=None, cost_usd=paid, judge_cost_usd=None), []
        fields = {f: stored[f] for f in ANSWER_FIELDS} if self.checks.wants_fields else None
        tool_calls = json.loads(row.tool_calls) if row.tool_calls else None
        seen = Observed(row.response_text or "", row.output_tokens, row.latency_ms, fields, tool_calls)
        said, response_json = check_answer(self.checks, item, seen)
        return row._replace(passed=verdict_of(said), failed_checks=failed_checks_json(said), checks=checks_json(said),
                            response_json=response_json, cost_usd=paid, judge_cost_usd=None), []


@dataclass
class Rescored:
    outcome: RunOutcome
    source_id: int
    source_status: str
    source_items: int  # the source run's scope: what a complete rescore covers
    notes: list[str] = field(default_factory=list)  # how answers were matched to data rows, when worth saying


async def rescore_run(job: Job, registry: ProviderRegistry, db_path: Path, which: str, *,
                      progress: Progress | None = None, handle_signals: bool = False,
                      cache: bool | None = None) -> Rescored:
    """Rescore run ``which`` of the database with ``job``'s current checks.

    The new run's scope is the source's: a rescore of an interrupted run is not complete either. ``cache``: ask
    the graders through the response cache (None: as the job's ``cache:`` says)."""
    db = open_db(db_path)
    try:
        source = source_run(db, which, str(job.path.resolve()) if which == "latest" else None)
        if source.status == "running":
            raise UsageError(f"rescore: run {source.id} is still running; rescore it when it has finished")
        total = result_count(db, source.id)
        scope = max(source.items_total or 0, total)
        store = RunStore.start(db, job_name=job.name, job_path=str(job.path.resolve()),
                               job_hash=source.job_hash or job.hash, items_total=scope,
                               version=__version__, pid=os.getpid(),
                               options=json.dumps({"rescore_of": source.id}), source_run_id=source.id)
        if progress is not None:
            progress.start(total)
        notes: list[str] = []
        try:
            use_cache = job.cache if cache is None else cache
            status = await _rescore(job, registry, db, source.id, store, progress, handle_signals, notes, use_cache)
        except BaseException:
            store.finish("failed")
            raise
        signalled = status == "interrupted"
        if status == "completed" and source.status != "completed":
            status = source.status  # carried: the answers graded are all the source has
        counts = store.finish(status)
    finally:
        db.close()
    outcome = RunOutcome(store.run_id, db_path, store.status, counts["items"], counts["ok"], counts["failed"],
                         counts["cost_usd"], job.has_checks, missing=counts["missing"], signalled=signalled)
    return Rescored(outcome, source.id, source.status, scope, notes)


async def _rescore(job: Job, registry: ProviderRegistry, db: sqlite_utils.Database, source_id: int, store: RunStore,
                   progress: Progress | None, handle_signals: bool, notes: list[str], use_cache: bool) -> Any:
    providers = run_providers(db, source_id)
    for provider_id in providers:
        if provider_id not in registry:
            raise UsageError(f"rescore: run {source_id} has answers of provider '{provider_id}', which is in no "
                             "providers folder")
    rows = DataRows(job, source_id, db)
    prompts = {p.id: p for p in job.prompts}
    lanes: list[Lane] = []
    engine: RescoreEngine | None = None
    cache = AnswerCache.open(job.cache_ttl_s) if use_cache and job.graders else None

    def stored_items(provider_id: str) -> Iterator[WorkItem]:
        for stored in stored_results(db, source_id, provider_id, PAGE):
            assert engine is not None
            engine.stored[stored["item_key"]] = stored
            row, gone = rows.find(stored)
            if gone is not None:
                engine.rows_gone[stored["item_key"]] = gone
            yield _item(stored, job, prompts, row)

    try:
        for provider_id in dict.fromkeys([*providers, *grader_providers(job)]):
            items = stored_items(provider_id) if provider_id in providers else iter(())
            lanes.append(Lane.open(registry.get(provider_id), items, job.limits.get(provider_id)))
        budget = Budget(job.budget_usd) if job.budget_usd else None  # bounds the judges: nothing else is bought
        engine = RescoreEngine(job, lanes, store, concurrency=job.concurrency, progress=progress,
                               handle_signals=handle_signals, budget=budget, grader_cache=cache)
        return await engine.run()
    finally:
        notes.extend(rows.notes())
        if cache is not None:
            cache.close()
        for lane in lanes:
            if lane.client:
                await lane.client.aclose()


class DataRows:
    """The job's data rows that the source run's results refer to, found by content (``row_hash``), so
    reordered or inserted rows grade each answer against its own row. Results written before row
    hashes were stored fall back to the row's position."""

    def __init__(self, job: Job, source_id: int, db: sqlite_utils.Database) -> None:
        self.source_id = source_id
        wanted: set[str] = set()
        by_position: set[int] = set()
        for digest, index in answered_rows(db, source_id):
            if digest is None:
                by_position.add(index)
            else:
                wanted.add(digest)
        self.by_hash: dict[str, Row] = {}
        self.by_index: dict[int, Row] = {}
        for i, row in job.rows():
            if i is None:
                continue
            if i in by_position:
                self.by_index[i] = row
            digest = row_hash(row)
            if digest in wanted:
                self.by_hash.setdefault(digest, row)
        self.gone: set[str] = set()  # row hashes of the source no longer in the data
        self.answers_gone = 0
        self.positional = 0

    def find(self, stored: Mapping[str, Any]) -> tuple[Row, str | None]:
        """The stored result's data row, and why it cannot be graded (its row is not in the data any more)."""
        index, digest = stored["row_index"], stored["row_hash"]
        if index is None:
            return {}, None
        if digest is None:
            self.positional += 1
            return self.by_index.get(index, {}), None
        row = self.by_hash.get(digest)
        if row is not None:
            return row, None
        self.gone.add(digest)
        self.answers_gone += 1
        return {}, (f"data row {index} of run {self.source_id} is not in the job's data any more "
                    "(changed or removed); not graded")

    def notes(self) -> list[str]:
        said: list[str] = []
        if self.gone:
            rows = f"{len(self.gone)} data row{'s' if len(self.gone) != 1 else ''}"
            answers = f"{self.answers_gone} answer{'s' if self.answers_gone != 1 else ''}"
            said.append(f"{rows} of run {self.source_id} {'is' if len(self.gone) == 1 else 'are'} not in the job's "
                        f"data any more (changed or removed): {'its' if self.answers_gone == 1 else 'their'} "
                        f"{answers} {'is' if self.answers_gone == 1 else 'are'} not graded")
        if self.positional:
            said.append(f"run {self.source_id} has no row hashes (written by an older hanzo-run): its answers are "
                        "matched to data rows by position, so rows moved since then are graded against another row")
        return said


def _item(stored: Mapping[str, Any], job: Job, prompts: Mapping[str, Prompt], row: Row) -> WorkItem:
    """The work item a stored result answered, as far as checks need it: its prompt's checks, its data row,
    and the JSON the job asks for (checked against its schema again)."""
    target = next((t for t in job.targets if t.label == stored["target"]), None) or \
        Target(stored["provider"], stored["model"], {}, stored["target"])
    prompt = prompts.get(stored["prompt_id"]) or Prompt(stored["prompt_id"], ())
    messages = ({"role": "user", "content": stored["prompt"] or ""},)
    response = prompt.response or target.response or job.response
    return WorkItem(target, prompt, stored["row_index"], stored["repeat_index"], messages, stored["item_key"], row,
                    response)
