"""Model-graded checks in the run: after an item's answer arrives, inside its worker, each
``judge`` check asks its grader model and folds the verdict into the item's row.

A grader is an ordinary provider with a lane of its own (its limits, retries, key and
budget), created for the run even when the job has no target on it; when the grader is
also a target's provider the two share that lane. Its requests are attempts rows with
``purpose = 'judge'``. A verdict that fails is a failed check with the grader's reason; a
grader that cannot give one (a failed request, an answer that holds no verdict, no key, the
budget) leaves the check unknown: ``passed`` NULL, never passed, with the reason in
``failed_checks``. Every verdict is an entry of ``results.checks`` with its score, reason,
grader, cost and whether it came from the cache.

With the response cache on, a grader's reply is cached like an answer, keyed by the
grader's request as sent (so the same answer, rubric and grader is asked once): a cached
re-run or a rescore of unchanged answers pays no grader again. Cost: ``judge_cost_usd`` is
what the item's verdicts cost (a cached one at what it first cost, as ``answer_cost_usd``
holds a cached answer's); ``cost_usd`` adds only what this run paid for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ..config.checks import Check, Checks, Outcome, checks_json, failed_checks_json, verdict_of
from ..config.jobs import Job, Target, WorkItem
from ..errors import ErrorCode, ProviderError
from ..http.client import Answer
from ..protocols import ChatRequest
from ..store.cache import CachedAnswer, request_key
from ..store.records import AttemptRow, ResultRow
from .attempt import Sender
from .caching import AnswerCache
from .costing import spent_with
from .judge import judge_request, parse_verdict
from .lanes import Lane

JUDGE = "judge"  # attempts.purpose of a grader's request


def grader_providers(job: Job) -> list[str]:
    """The providers of the job's graders: each needs a lane, whether or not it has targets."""
    return list(dict.fromkeys(t.provider for t in job.graders.values()))


def stored_outcomes(checks: str | None) -> list[Outcome]:
    """The outcomes a row's ``checks`` column holds."""
    return [Outcome(r["name"], r["reason"], r["passed"], r.get("score"),
                    {k: v for k, v in r.items() if k not in ("name", "reason", "passed", "score")})
            for r in json.loads(checks or "[]")]


class Grading:
    """The judge checks of a run, asked through its Sender on the graders' lanes (from the cache when on)."""

    def __init__(self, sender: Sender, lanes: Sequence[Lane], graders: Mapping[str, Target], checks: Checks,
                 cache: AnswerCache | None = None) -> None:
        self.sender = sender
        self.graders = graders
        self.judges = checks.judges
        self.lanes = {lane.provider.id: lane for lane in lanes}
        self.cache = cache

    async def grade(self, item: WorkItem, row: ResultRow, attempts: list[AttemptRow]) -> ResultRow:
        """``row`` with its judge checks graded: passed, checks, failed_checks and costs updated; the graders'
        attempts appended to ``attempts``."""
        checks = self.judges.get(item.prompt.id)
        if not checks or row.status != "ok":
            return row
        said = stored_outcomes(row.checks)
        worth: float | None = 0.0  # what the verdicts cost, cached ones at their first cost
        paid: float | None = 0.0  # what this run paid for them
        tries: list[AttemptRow] = []  # the item's judge attempts, numbered 1.. across its checks
        try:
            for check in checks:
                outcome, cost, cached = await self._ask(check, item, row, tries)
                said.append(outcome)
                worth = spent_with(worth, cost)
                paid = spent_with(paid, 0.0 if cached else cost)
        finally:
            attempts.extend(tries)
        return row._replace(passed=verdict_of(said), checks=checks_json(said), failed_checks=failed_checks_json(said),
                            cost_usd=spent_with(row.cost_usd, paid), judge_cost_usd=worth)

    async def _ask(self, check: Check, item: WorkItem, row: ResultRow,
                   tries: list[AttemptRow]) -> tuple[Outcome, float | None, bool]:
        """(the check's outcome, what its verdict cost, whether it came from the cache)."""
        judge = check.judge
        assert judge is not None and judge.target is not None  # validation: every judge check has a grader
        target = self.graders[judge.target]
        lane = self.lanes[target.provider]

        def unknown(reason: str, cost: float | None = 0.0, cached: bool = False) -> tuple[Outcome, float | None, bool]:
            return Outcome(check.label, reason, None, None, {"grader": target.label, "cached": cached,
                                                             "cost_usd": cost}), cost, cached

        if lane.client is None:
            return unknown(f"not graded: {target.label}: {lane.key_problem or 'no API key'}")
        request = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row)
        reply = await self._reply(lane, request, item.item_key, tries)
        if isinstance(reply, ProviderError) and reply.code == ErrorCode.CLIENT_ERROR and request.response is not None:
            # Some servers refuse the JSON mode (a 400): ask once more with the instructions alone.
            plain = judge_request(judge, target.model, row.prompt, row.response_text or "", item.row,
                                  json_mode=False)
            reply = await self._reply(lane, plain, item.item_key, tries)
        if isinstance(reply, ProviderError):
            return unknown(f"no verdict from {target.label}: {reply.code}: {reply.message}")
        text, cost, cached = reply
        verdict = parse_verdict(text, judge.threshold)
        if isinstance(verdict, str):
            return unknown(f"no verdict from {target.label}: {verdict}", cost, cached)
        score = "" if verdict.score is None else f" (score {verdict.score:g})"
        return Outcome(check.label, f"{target.label}: {verdict.reason or 'no reason given'}{score}",
                       verdict.passed != check.fails_when_holds, verdict.score,
                       {"grader": target.label, "cached": cached, "cost_usd": cost}), cost, cached

    async def _reply(self, lane: Lane, request: ChatRequest, item_key: str,
                     tries: list[AttemptRow]) -> tuple[str, float | None, bool] | ProviderError:
        """The grader's reply text, what it cost and whether it came from the cache; or why there is none."""
        try:
            call = lane.calls.build(request)
        except ProviderError as error:
            return error
        key = None
        if self.cache is not None:
            provider = lane.provider
            key = request_key(provider.base_url, provider.protocol, request.model, call.json, 0)
            hit = self.cache.get(key)
            if hit is not None:
                return hit.response_text, hit.cost_usd, True
        outcome, cost = await self.sender.send(lane, request, item_key, tries, purpose=JUDGE, call=call)
        if isinstance(outcome, ProviderError):
            return outcome
        if key is not None and self.cache is not None:
            self.cache.cache.put(key, _cacheable(outcome, cost.usd, cost.source))
        return outcome.completion.text, cost.usd, False


def _cacheable(answer: Answer, usd: float | None, source: str | None) -> CachedAnswer:
    c = answer.completion
    return CachedAnswer(c.text, c.finish_reason, c.input_tokens, c.output_tokens, answer.latency_ms, answer.ttft_ms,
                        answer.http_status, usd, source)
