"""What a grader model is asked, and how its verdict is read: pure, no I/O.

The grader gets the question (the item's prompt), the answer, the rubric and the
reference, and must answer ``{"pass": true|false, "score": 0-1, "reason": "..."}``.
Where the grader's protocol has a JSON mode it is switched on through ``params.extra``
(the one path every adapter already merges); prose or a ```json fence around the object
is still read, since a grader without a JSON mode often adds them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config.checks import Judge, parse_json
from ..config.outputs import ANY_JSON
from ..config.templating import Row, render
from ..protocols import ChatRequest

DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0, "max_tokens": 1024}
SYSTEM = ("You grade an answer to a question against a rubric. Reply with only a JSON object: "
          '{"pass": true or false, "score": a number from 0 to 1, "reason": "one short sentence"}.')


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float | None
    reason: str


def judge_request(judge: Judge, model: str, question: str, answer: str, row: Row, *,
                  json_mode: bool = True) -> ChatRequest:
    """The grader's request: never streamed; asking for any JSON object when ``json_mode``, which each
    protocol maps to its own JSON mode where it has one (as for a job's ``response_format: json``)."""
    parts = [f"Question:\n<<<\n{question}\n>>>", f"Answer:\n<<<\n{answer}\n>>>",
             f"Rubric:\n{render(judge.rubric, row)}"]
    if judge.reference is not None:
        parts.append(f"Reference answer:\n<<<\n{render(judge.reference, row)}\n>>>")
    parts.append("Does the answer meet the rubric? Reply with the JSON object only.")
    messages = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)})
    params = {**DEFAULT_PARAMS, **judge.params}
    return ChatRequest(model, messages, params, False, ANY_JSON if json_mode else None)


def parse_verdict(text: str) -> Verdict | str:
    """The grader's verdict, or why there is none (the check is then unknown, never passed)."""
    value = _verdict_object(text)
    if value is None:
        return f"the grader's answer holds no JSON verdict: {_clip(text)!r}"
    passed = value.get("pass")
    if not isinstance(passed, bool):
        return f'the verdict has no true/false "pass": {_clip(json.dumps(value))}'
    score = value.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1):
        return f'the verdict\'s "score" is not a number from 0 to 1: {_clip(json.dumps(value))}'
    reason = value.get("reason")
    return Verdict(passed, None if score is None else float(score), reason if isinstance(reason, str) else "")


def _verdict_object(text: str) -> dict[str, Any] | None:
    whole, problem = parse_json(text)
    if problem is None and isinstance(whole, dict):
        return whole
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:  # the first object in the prose that looks like a verdict
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and "pass" in value:
            return value
        start = text.find("{", start + 1)
    return None


def _clip(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."
