"""What a grader model is asked, and how its verdict is read: pure, no I/O.

The grader gets the question (the item's prompt), the answer, the rubric and the
reference, and must answer ``{"pass": true|false, "score": 0-1, "reason": "..."}``. A judge
with its own ``prompt`` replaces the built-in question to the grader: its template is filled
with the answer, the prompt, the rubric, the reference and the data row's values
(``config.checks.JUDGE_VARIABLES``); the reply format is still asked for by the system
message. A judge with a ``threshold`` passes on its score (score >= threshold), so its
verdict needs a score and its "pass" may be left out.
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
    rubric = render(judge.rubric, row)
    reference = None if judge.reference is None else render(judge.reference, row)
    if judge.prompt is not None:
        values = {**row, "answer": answer, "prompt": question}
        values.update((name, value) for name, value in (("rubric", rubric), ("reference", reference)) if value)
        asked = render(judge.prompt, values)
    else:
        parts = [f"Question:\n<<<\n{question}\n>>>", f"Answer:\n<<<\n{answer}\n>>>", f"Rubric:\n{rubric}"]
        if reference is not None:
            parts.append(f"Reference answer:\n<<<\n{reference}\n>>>")
        parts.append("Does the answer meet the rubric? Reply with the JSON object only.")
        asked = "\n\n".join(parts)
    messages = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": asked})
    params = {**DEFAULT_PARAMS, **judge.params}
    return ChatRequest(model, messages, params, False, ANY_JSON if json_mode else None)


def parse_verdict(text: str, threshold: float | None = None) -> Verdict | str:
    """The grader's verdict, or why there is none (the check is then unknown, never passed).

    With a ``threshold`` the score decides: passed is score >= threshold, and a verdict without a score is none."""
    value = _verdict_object(text, "pass" if threshold is None else "score")
    if value is None:
        return f"the grader's answer holds no JSON verdict: {_clip(text)!r}"
    score = value.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1):
        return f'the verdict\'s "score" is not a number from 0 to 1: {_clip(json.dumps(value))}'
    reason = value.get("reason")
    reason = reason if isinstance(reason, str) else ""
    if threshold is not None:
        if score is None:
            return f'the verdict has no "score", which the threshold {threshold:g} needs: {_clip(json.dumps(value))}'
        return Verdict(score >= threshold, float(score), reason)
    passed = value.get("pass")
    if not isinstance(passed, bool):
        return f'the verdict has no true/false "pass": {_clip(json.dumps(value))}'
    return Verdict(passed, None if score is None else float(score), reason)


def _verdict_object(text: str, key: str) -> dict[str, Any] | None:
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
        if isinstance(value, dict) and key in value:
            return value
        start = text.find("{", start + 1)
    return None


def _clip(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."
