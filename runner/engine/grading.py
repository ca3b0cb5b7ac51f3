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
from collections.abc import Mapping, Sequence
from typing import Any

from ..config.checks import Check, Checks
from ..config.jobs import Job, Target, WorkItem
from ..errors import ErrorCode, ProviderError
from ..store.records import AttemptRow, ResultRow
from .attempt import Sender
from .costing import spent_with
from .judge import judge_request, parse_verdict
from .lanes import Lane

JUDGE = "judge"  # attempts.purpose of a grader's request


def grader_providers(job: Job) -> list[str]:
    """The providers of the job's graders: each needs a lane, whether or not it has targets."""
    return list(dict.fromkeys(t.provider for t in job.graders.values()))


class Grading:
    """The judge checks of a run, asked through its Sender on the graders' lanes."""

    def __init__(self, sender: Sender, lanes: Sequence[Lane], graders: Mapping[str, Target], checks: Checks) -> None:
        self.sender = sender
        self.graders = graders
        self.judges = checks.judges
        self.lanes = {lane.provider.id: lane for lane in lanes}

    async def grade(self, item: WorkItem, row: ResultRow, attempts: list[AttemptRow]) -> ResultRow:
        """``row`` with its judge checks graded: passed, failed_checks and cost updated; the graders'
        attempts appended to ``attempts``."""
        checks = self.judges.get(item.prompt.id)
        if not checks or row.status != "ok":
            return row
        failures: list[dict[str, Any]] = json.loads(row.failed_checks) if row.failed_checks else []
        failed, unknown = row.passed == 0, row.passed is None and bool(failures)  # a python check's no verdict
        spent: float | None = 0.0
        tries: list[AttemptRow] = []  # the item's judge attempts, numbered 1.. across its checks
        try:
            for check in checks:
                verdict, cost = await self._ask(check, item, row, tries)
                spent = spent_with(spent, cost)
                if isinstance(verdict, str):
                    unknown = True
                    failures.append({"check": check.label, "reason": verdict})
                elif verdict[0] == check.fails_when_holds:
                    failed = True
                    failures.append({"check": check.label, "reason": verdict[1]})
        finally:
            attempts.extend(tries)
        passed = 0 if failed else None if unknown else 1
        return row._replace(passed=passed, failed_checks=json.dumps(failures) if failures else None,
                            cost_usd=spent_with(row.cost_usd, spent), judge_cost_usd=spent)

    async def _ask(self, check: Check, item: WorkItem, row: ResultRow,
                   tries: list[AttemptRow]) -> tuple[tuple[bool, str] | str, float | None]:
        """((whether the verdict is pass, its sentence) or why there is none, what grading cost)."""
        judge = check.judge
        assert judge is not None and judge.target is not None  # validation: every judge check has a grader
        target = self.graders[judge.target]
        lane = self.lanes[target.provider]
        if lane.client is None:
            return f"not graded: {target.label}: {lane.key_problem or 'no API key'}", 0.0
        request = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row)
        outcome, cost = await self.sender.send(lane, request, item.item_key, tries, purpose=JUDGE)
        if isinstance(outcome, ProviderError) and outcome.code == ErrorCode.CLIENT_ERROR \
                and request.response is not None:
            # Some servers refuse the JSON mode (a 400): ask once more with the instructions alone.
            plain = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row,
                                  json_mode=False)
            outcome, cost = await self.sender.send(lane, plain, item.item_key, tries, purpose=JUDGE)
        if isinstance(outcome, ProviderError):
            return f"no verdict from {target.label}: {outcome.code}: {outcome.message}", 0.0
        verdict = parse_verdict(outcome.completion.text)
        if isinstance(verdict, str):
            return f"no verdict from {target.label}: {verdict}", cost.usd
        score = "" if verdict.score is None else f" (score {verdict.score:g})"
        return (verdict.passed, f"{target.label}: {verdict.reason or 'no reason given'}{score}"), cost.usd
