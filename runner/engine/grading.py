"""Model-graded checks in the run: after an item's answer arrives, inside its worker, each
``judge`` check asks its grader model and folds the verdict into the item's row.

A grader is an ordinary provider with a lane of its own (its limits, retries, key and
budget), created for the run even when the job has no target on it; when the grader is
also a target's provider the two share that lane. Its requests are attempts rows with
``purpose = 'judge'``; their cost goes into the item's ``cost_usd`` (and
``judge_cost_usd``), so into the run's. A verdict that fails is a failed check with the
grader's reason; a grader that cannot give one (a failed request, an answer that holds no
verdict, no key, the budget) leaves the check unknown: ``passed`` NULL, never passed,
with the reason in ``failed_checks``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.checks import Check
from ..config.jobs import Job, Target, WorkItem
from ..errors import ErrorCode, ProviderError
from ..http.client import Answer
from ..protocols import ChatRequest
from ..store.records import AttemptRow, ResultRow
from .judge import judge_request, parse_verdict
from .retry import gave_up, with_retries
from .rows import price
from .usage import estimate_tokens

if TYPE_CHECKING:  # the scheduler imports this module
    from .scheduler import Engine, Lane

JUDGE = "judge"  # attempts.purpose of a grader's request


def grader_providers(job: Job) -> list[str]:
    """The providers of the job's graders: each needs a lane, whether or not it has targets."""
    return list(dict.fromkeys(t.provider for t in job.graders.values()))


class Grading:
    def __init__(self, engine: Engine, graders: Mapping[str, Target]) -> None:
        self.engine = engine
        self.graders = graders
        self.lanes = {lane.provider.id: lane for lane in engine.lanes}

    async def grade(self, item: WorkItem, row: ResultRow, attempts: list[AttemptRow]) -> ResultRow:
        """``row`` with its judge checks graded: passed, failed_checks and cost updated; the graders'
        attempts appended to ``attempts``."""
        checks = self.engine.checks.judges.get(item.prompt.id)
        if not checks or row.status != "ok":
            return row
        failures: list[dict[str, Any]] = json.loads(row.failed_checks) if row.failed_checks else []
        failed, unknown = row.passed == 0, row.passed is None and bool(failures)  # a python check's no verdict
        spent: float | None = 0.0
        for check in checks:
            verdict, cost = await self._ask(check, item, row, attempts)
            spent = None if spent is None or cost is None else spent + cost
            if isinstance(verdict, str):
                unknown = True
                failures.append({"check": check.label, "reason": verdict})
            elif verdict[0] == check.fails_when_holds:
                failed = True
                failures.append({"check": check.label, "reason": verdict[1]})
        passed = 0 if failed else None if unknown else 1
        cost_usd = None if row.cost_usd is None or spent is None else row.cost_usd + spent
        return row._replace(passed=passed, failed_checks=json.dumps(failures) if failures else None,
                            cost_usd=cost_usd, judge_cost_usd=spent)

    async def _ask(self, check: Check, item: WorkItem, row: ResultRow,
                   attempts: list[AttemptRow]) -> tuple[tuple[bool, str] | str, float | None]:
        """((whether the verdict is pass, its sentence) or why there is none, what grading cost)."""
        judge = check.judge
        assert judge is not None and judge.target is not None  # validation: every judge check has a grader
        target = self.graders[judge.target]
        lane = self.lanes[target.provider]
        if lane.client is None:
            return f"not graded: {target.label}: {lane.key_problem or 'no API key'}", 0.0
        engine = self.engine
        request = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row)
        pricing = engine._pricing(target.provider, target.model)
        max_tokens = int(request.params["max_tokens"])
        tries: list[AttemptRow] = []
        reserved = 0.0
        answer: Answer | None = None
        try:
            if engine.budget is not None:
                reserved = engine.budget.reserve(pricing, estimate_tokens(request.messages), max_tokens,
                                                 target.provider)
            try:
                answer = await self._send(lane, request, item, tries)
            except ProviderError as e:
                if e.code != ErrorCode.CLIENT_ERROR or request.response is None:
                    raise
                # Some servers refuse the JSON mode (a 400): ask once more with the instructions alone.
                plain = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row,
                                      json_mode=False)
                answer = await self._send(lane, plain, item, tries)
        except ProviderError as error:
            failure = f"no verdict from {target.label}: {error.code}: {error.message}"
        finally:
            done = sum(1 for a in attempts if a.purpose == JUDGE)
            attempts.extend(a._replace(attempt=done + i, purpose=JUDGE) for i, a in enumerate(tries, start=1))
        if answer is None:
            if engine.budget is not None:
                engine.budget.settle(reserved, 0.0)
            return failure, 0.0
        c = answer.completion
        cost = c.cost_usd if c.cost_usd is not None else price(pricing, c.input_tokens, c.output_tokens)
        if engine.budget is not None:
            engine.budget.settle(reserved, cost)
        verdict = parse_verdict(c.text)
        if isinstance(verdict, str):
            return f"no verdict from {target.label}: {verdict}", cost
        score = "" if verdict.score is None else f" (score {verdict.score:g})"
        return (verdict.passed, f"{target.label}: {verdict.reason or 'no reason given'}{score}"), cost

    async def _send(self, lane: Lane, request: ChatRequest, item: WorkItem, tries: list[AttemptRow]) -> Answer:
        engine = self.engine
        weight = estimate_tokens(request.messages) + int(request.params["max_tokens"])
        try:
            return await with_retries(lane.provider.retry, engine.sleep,
                                      lambda: engine._attempt(lane, request, item, weight, tries, 0))
        except ProviderError as error:
            raise gave_up(error, len(tries)) from None
