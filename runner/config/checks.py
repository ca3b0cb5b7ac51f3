"""Checks on answers: compiled once per job, then evaluated for every result on the hot path.

A check is one key of ``schemas/job.schema.json`` ``$defs.check`` (``contains``, ``regex``,
``json_schema``, ...) with optional ``not: true`` and ``ignore_case: true``. Its strings
accept ``{{var}}`` from the item's data row. Each compiled check answers "does the fact
hold, and how to say so": a plain check fails when the fact does not hold, a negated one
when it does, and the failure's reason is that sentence ("answer does not contain 'Paris'").

Regexes and JSON Schemas are compiled once per job; a regex or schema that contains
``{{var}}`` is compiled once per distinct rendering (cached).

Two types are not evaluated here: a ``judge`` check asks a model (the engine sends it,
runner/engine/grading.py), so ``Checks`` keeps those apart in ``judges``; a ``python``
check calls the job's own function (runner/config/python_checks.py) with the result's
fields, which the engine passes in ``Observed.fields`` only when a job has such a check.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..errors import Problem
from .files import Document
from .observed import Observed as Observed  # where checks were always read from
from .outputs import load_schema, schema_problem, tool_args_problems, tool_args_test, tool_called_test
from .providers import display_path
from .python_checks import DEFAULT_THRESHOLD, DEFAULT_TIMEOUT, PythonCheckError, call_check, load_function
from .templating import VARIABLE, Row, as_text, render, render_strings, unsupported_in, variables_in

FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Outcome:
    """One check's verdict on one answer: an entry of ``results.checks``; one that did not pass (failed, or
    gave no verdict) is also an entry of ``failed_checks``."""

    check: str  # the check key, "not " in front when negated
    reason: str
    passed: bool | None = False  # None: the check gave no verdict (a python check that raised, a grader that failed)
    score: float | None = None  # the 0-1 score a python check or a grader gave, when it gave one
    detail: Mapping[str, Any] = field(default_factory=dict)  # a judge's: grader, cached, cost_usd

    @property
    def unknown(self) -> bool:
        return self.passed is None

    def as_dict(self) -> dict[str, str]:
        """Its entry of ``failed_checks``."""
        return {"check": self.check, "reason": self.reason}

    def record(self) -> dict[str, Any]:
        """Its entry of ``results.checks``."""
        return {"name": self.check, "passed": self.passed, "score": self.score, "reason": self.reason, **self.detail}


def failed_checks_json(outcomes: Sequence[Outcome]) -> str | None:
    """``results.failed_checks``: the outcomes that did not pass, as {check, reason}; None when all passed."""
    failures = [o.as_dict() for o in outcomes if o.passed is not True]
    return json.dumps(failures) if failures else None


def checks_json(outcomes: Sequence[Outcome]) -> str | None:
    """``results.checks``: every check's outcome, as {name, passed, score, reason}; None when nothing was checked."""
    return json.dumps([o.record() for o in outcomes], ensure_ascii=False) if outcomes else None


def verdict_of(outcomes: Sequence[Outcome]) -> int | None:
    """``results.passed`` of an answer with these outcomes: 1 when all passed, 0 when one failed, None when none
    failed but one gave no verdict (never a pass), or nothing was checked."""
    if not outcomes:
        return None
    if any(o.passed is False for o in outcomes):
        return 0
    return None if any(o.passed is None for o in outcomes) else 1


class Scored(NamedTuple):
    """What a test that scores (a python check) says: the verdict, its sentence and the score behind it."""

    holds: bool | None
    sentence: str
    score: float | None


# A test says whether its fact holds for the answer, and the sentence stating the outcome;
# None when it could not tell (a python check that raised or timed out): the check then has no
# verdict, negated or not, like a judge whose grader gave none.
Test = Callable[[Observed, Row], tuple[bool | None, str] | Scored]


@dataclass(frozen=True)
class Judge:
    """A model-graded check: what the grader is told, and which model grades (``provider/model``)."""

    rubric: str  # templates: {{var}} from the data row
    reference: str | None
    target: str | None  # None when neither the check nor the job names a grader (validation reports it)
    params: Mapping[str, Any]
    prompt: str | None = None  # the grader's own prompt (a template, see JUDGE_VARIABLES), read from its file
    threshold: float | None = None  # set: the verdict is score >= threshold, not the grader's "pass"


@dataclass(frozen=True)
class Check:
    label: str  # the check key, "not " in front when negated
    fails_when_holds: bool
    test: Test
    judge: Judge | None = None  # set for judge checks, which the engine grades instead of ``test``
    wants_fields: bool = False

    def __call__(self, seen: Observed, row: Row) -> Outcome:
        said = self.test(seen, row)
        holds, sentence = said[0], said[1]
        score = said.score if isinstance(said, Scored) else None
        if holds is None:
            return Outcome(self.label, sentence, None, score)
        return Outcome(self.label, sentence, holds != self.fails_when_holds, score)


class Checks:
    """A job's checks plus each prompt's own, compiled; ``evaluate`` runs them on one answer."""

    def __init__(self, by_prompt: Mapping[str, tuple[Check, ...]]) -> None:
        self.by_prompt = {pid: tuple(c for c in checks if c.judge is None) for pid, checks in by_prompt.items()}
        # Judge checks by prompt, for the engine; a prompt without any is absent.
        self.judges = {pid: judged for pid, checks in by_prompt.items()
                       if (judged := tuple(c for c in checks if c.judge is not None))}
        self.wants_fields = any(c.wants_fields for checks in by_prompt.values() for c in checks)

    @classmethod
    def compile(cls, common: Sequence[Mapping[str, Any]], by_prompt: Mapping[str, Sequence[Mapping[str, Any]]],
                base: Path, judge_target: str | None = None) -> Checks:
        """The ``common`` checks apply to every prompt, each prompt's own after them; ``base`` is the
        job file's folder (schema files are relative to it); ``judge_target`` grades the judge checks
        that name no target."""
        shared = tuple(compile_check(spec, base, judge_target) for spec in common)
        return cls({pid: shared + tuple(compile_check(spec, base, judge_target) for spec in specs)
                    for pid, specs in by_prompt.items()})

    def outcomes(self, prompt_id: str, row: Row, seen: Observed | None) -> list[Outcome]:
        """Every check's outcome on one answer to the prompt (judges apart); none when there is no answer
        (the request failed) or the prompt has no checks."""
        checks = self.by_prompt.get(prompt_id, ())
        if seen is None or not checks:
            return []
        return [check(seen, row) for check in checks]

    def evaluate(self, prompt_id: str, row: Row, seen: Observed | None) -> tuple[int | None, list[Outcome]]:
        """(1 or 0, failures) of one answer to the prompt; (None, []) when there is no answer (the
        request failed) or the prompt has no checks; (None, failures) when no check failed but one
        gave no verdict: never a pass."""
        said = self.outcomes(prompt_id, row, seen)
        return verdict_of(said), [o for o in said if o.passed is not True]


# ---------------------------------------------------------------- the check types


# A compiler turns a check's value into its test, given whether case is ignored and the job
# file's folder.
Compiler = Callable[[Any, bool, Path], Test]
# What is wrong with a check's value beyond its shape (the schema's), given the same.
Vetter = Callable[[Any, bool, Path], list[str]]


@dataclass(frozen=True)
class CheckType:
    compile: Compiler
    vet: Vetter | None = None
    fails_when_holds: bool = False  # the fact is stated positively and the check fails when it holds
    whole_spec: bool = False  # compile and vet get the check's whole mapping (its options), not its value
    wants_fields: bool = False  # the test reads Observed.fields


def _regex_problems(value: Any, fold: bool, base: Path) -> list[str]:
    if "{{" in value:  # compiled per row, once its values are known
        return []
    compiled = _compiled(value, re.IGNORECASE if fold else 0)
    return [f"regex does not compile: {compiled}"] if isinstance(compiled, str) else []


def _schema_check_problems(value: Any, fold: bool, base: Path) -> list[str]:
    problem = schema_problem(value, base, mapping=False)
    return [problem] if problem else []


# Every check type, by its key in schemas/job.schema.json $defs.check (a test holds the two equal).
# A new type is one entry here plus its schema.
CHECK_TYPES: dict[str, CheckType] = {
    "contains": CheckType(lambda value, fold, base: _text_test("contains", str(value), fold)),
    # The fact is "contains": not_contains fails when it holds.
    "not_contains": CheckType(lambda value, fold, base: _text_test("contains", str(value), fold),
                              fails_when_holds=True),
    "equals": CheckType(lambda value, fold, base: _text_test("equals", str(value), fold)),
    "starts_with": CheckType(lambda value, fold, base: _text_test("starts_with", str(value), fold)),
    "regex": CheckType(lambda value, fold, base: _regex_test(value, fold), vet=_regex_problems),
    "json": CheckType(lambda value, fold, base: _json_test),
    "json_schema": CheckType(lambda value, fold, base: _schema_test(load_schema(value, base)),
                             vet=_schema_check_problems),
    "max_latency_ms": CheckType(lambda value, fold, base: _limit_test(value, lambda seen: seen.latency_ms,
                                                                      "latency", "ms")),
    "max_output_tokens": CheckType(lambda value, fold, base: _limit_test(value, lambda seen: seen.output_tokens,
                                                                         "output", "tokens")),
    # Graded by a model in the engine (runner/engine/grading.py); its test is never called.
    "judge": CheckType(lambda value, fold, base: _graded_by_a_model),
    "python": CheckType(lambda spec, fold, base: _python_test(spec, base), vet=lambda spec, fold, base:
                        _python_problems(spec, base), whole_spec=True, wants_fields=True),
    "tool_called": CheckType(lambda value, fold, base: tool_called_test(value)),
    "tool_args": CheckType(lambda value, fold, base: tool_args_test(value),
                           vet=lambda value, fold, base: tool_args_problems(value)),
}


# The keys a check mapping may have besides its type's (schemas/job.schema.json $defs.check).
CHECK_OPTIONS = ("not", "ignore_case", "threshold", "timeout")


def check_key(spec: Mapping[str, Any]) -> str:
    """The type of a schema-valid check mapping: its one key that names a check type."""
    return next(k for k in spec if k in CHECK_TYPES)


def compile_check(spec: Mapping[str, Any], base: Path, judge_target: str | None = None) -> Check:
    """A schema-valid check mapping, compiled; ``base`` is the job file's folder."""
    key = check_key(spec)
    kind = CHECK_TYPES[key]
    negate = bool(spec.get("not"))
    label = f"not {key}" if negate else key
    test = kind.compile(spec if kind.whole_spec else spec[key], bool(spec.get("ignore_case")), base)
    judge = None
    if key == "judge":
        value = spec[key]
        prompt = value.get("prompt")
        judge = Judge(value.get("rubric", ""), value.get("reference"), value.get("target") or judge_target,
                      value.get("params", {}), None if prompt is None else judge_prompt(prompt, base)[0],
                      spec.get("threshold"))
    return Check(label, kind.fails_when_holds != negate, test, judge, kind.wants_fields)


# What a judge's own ``prompt`` may use besides the data row's variables, filled in by the engine
# (runner/engine/judge.py); on a clash with a row variable these win (a row's value stays reachable
# through ``reference: "{{var}}"``).
JUDGE_VARIABLES = ("answer", "prompt", "rubric", "reference")
# A judge ``prompt`` of one line ending so is a file, relative to the job file; anything else is the prompt itself.
PROMPT_FILE = re.compile(r"[^\n]*\.(txt|md|prompt)")


def prompt_file(value: str, base: Path) -> Path | None:
    """The file a judge's ``prompt`` names, or None when the value is the prompt itself."""
    return base / value.strip() if PROMPT_FILE.fullmatch(value.strip()) else None


def judge_prompt(value: str, base: Path) -> tuple[str, Path | None]:
    """A judge's prompt template (its file's text when it names one) and that file."""
    path = prompt_file(value, base)
    return (value, None) if path is None else (path.read_text(encoding="utf-8"), path)


def _graded_by_a_model(seen: Observed, row: Row) -> tuple[bool | None, str]:
    return None, "a judge check is graded by a model, not here"


def _python_test(spec: Mapping[str, Any], base: Path) -> Test:
    function = load_function(spec["python"], base)
    name = spec["python"].rpartition(":")[2]
    threshold = float(spec.get("threshold", DEFAULT_THRESHOLD))
    timeout = float(spec.get("timeout", DEFAULT_TIMEOUT))

    def test(seen: Observed, row: Row) -> Scored:
        fields = seen.fields if seen.fields is not None else {
            "response_text": seen.text, "output_tokens": seen.output_tokens, "latency_ms": seen.latency_ms}
        return Scored(*call_check(function, name, seen.text, row, fields, threshold, timeout))

    return test


def _python_problems(spec: Mapping[str, Any], base: Path) -> list[str]:
    where, _, name = spec["python"].rpartition(":")
    if not where or not name.isidentifier():
        return []  # not FILE.py:function at all: the schema's message says how to write it
    try:
        load_function(spec["python"], base)
    except PythonCheckError as e:
        return [str(e)]
    return []


def _text_test(key: str, template: str, fold: bool) -> Test:
    def norm(s: str) -> str:
        return s.casefold() if fold else s

    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        want = render(template, row)
        answer, needle = norm(seen.text), norm(want)
        if key == "contains":
            holds = needle in answer
            return holds, f"answer {'contains' if holds else 'does not contain'} {want!r}"
        if key == "equals":
            holds = answer.strip() == needle.strip()
            return holds, f"answer {'equals' if holds else 'is not'} {want!r}" + ("" if holds else
                                                                                  f" (got {_clip(seen.text)!r})")
        holds = answer.lstrip().startswith(needle)
        return holds, f"answer {'starts' if holds else 'does not start'} with {want!r}"

    return test


def _clip(text: str, width: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= width else text[:width - 3] + "..."


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, flags: int) -> re.Pattern[str] | str:
    """The compiled regex, or why it does not compile."""
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        return str(e)


def _regex_test(template: str, fold: bool) -> Test:
    flags = re.IGNORECASE if fold else 0

    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        pattern = template
        if "{{" in template:  # row values are matched literally, not as regex syntax
            pattern = render(template, {k: re.escape(as_text(v)) for k, v in row.items()})
        compiled = _compiled(pattern, flags)
        if isinstance(compiled, str):
            return False, f"regex {pattern!r} does not compile: {compiled}"
        holds = compiled.search(seen.text) is not None
        return holds, f"answer {'matches' if holds else 'does not match'} /{pattern}/"

    return test


def parse_json(text: str) -> tuple[Any, str | None]:
    """The answer as JSON (one enclosing ``` fence allowed), or why it is not JSON."""
    fenced = FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text), None
    except json.JSONDecodeError as e:
        return None, f"answer is not JSON: {e.msg} at line {e.lineno} column {e.colno}"


def _json_test(seen: Observed, row: Row) -> tuple[bool, str]:
    _, problem = parse_json(seen.text)
    return (True, "answer is JSON") if problem is None else (False, problem)


def _schema_test(schema: Any) -> Test:
    templated = "{{" in json.dumps(schema)
    validators: dict[str, Draft202012Validator] = {}

    def validator(row: Row) -> Draft202012Validator:
        rendered = render_strings(schema, row) if templated else schema
        key = json.dumps(rendered, sort_keys=True) if templated else ""
        if key not in validators:
            validators[key] = Draft202012Validator(rendered)
        return validators[key]

    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        value, problem = parse_json(seen.text)
        if problem is not None:
            return False, problem
        error = best_match(validator(row).iter_errors(value))
        if error is None:
            return True, "answer matches the schema"
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "the answer"
        return False, f"answer does not match the schema: {where}: {error.message}"

    return test


def _limit_test(limit: float | str, measure: Callable[[Observed], float | None], what: str, unit: str) -> Test:
    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        bound: float | str = limit
        if isinstance(limit, str):
            text = render(limit, row).strip()
            try:
                bound = float(text)
            except ValueError:
                return False, f"limit {limit.strip()} is {text!r} in this row, not a number"
        assert isinstance(bound, float | int)
        value = measure(seen)
        if value is None:
            return False, f"no {what} {unit} recorded"
        holds = value <= bound
        return holds, f"{what} {value:g} {unit} {'is within' if holds else 'exceeds'} {bound:g} {unit}"

    return test


# ---------------------------------------------------------------- checking a job file's checks


def check_problems(doc: Document, variables: set[str]) -> list[Problem]:
    """What is wrong with the job's checks beyond their shape: undefined {{var}}, bad regexes and schemas."""
    problems: list[Problem] = []
    have = ", ".join(sorted(variables)) or "none"
    for where, spec in check_places(doc.data):
        key = check_key(spec)
        at: list[str | int] = [*where, key]
        value = spec[key]
        if key == "judge" and "prompt" in value:
            problems.extend(_judge_prompt_problems(doc, [*at, "prompt"], value, variables))
            value = {k: v for k, v in value.items() if k != "prompt"}
        for name in variables_in(value):
            if name not in variables:
                problems.append(doc.problem(at, f"{{{{{name}}}}} is not defined by every data row "
                                            f"(row variables: {have})"))
        kind = CHECK_TYPES[key]
        if kind.vet is not None:
            value = spec if kind.whole_spec else spec[key]
            problems.extend(doc.problem(at, message)
                            for message in kind.vet(value, bool(spec.get("ignore_case")), doc.path.parent))
    return problems


def _judge_prompt_problems(doc: Document, at: list[str | int], judge: Mapping[str, Any],
                           variables: set[str]) -> list[Problem]:
    """Each unknown ``{{var}}`` of a judge's prompt at its line: the prompt file's own, or the job file's."""
    path = prompt_file(judge["prompt"], doc.path.parent)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = "not found" if isinstance(e, FileNotFoundError) else f"cannot be read ({e})"
            return [doc.problem(at, f"judge prompt file {display_path(path)} {why} (relative to the job file); "
                                "give a file next to the job, or the prompt's text")]
    else:
        text = judge["prompt"]
    known = set(JUDGE_VARIABLES) | variables
    have = ", ".join(JUDGE_VARIABLES) + "; row variables: " + (", ".join(sorted(variables)) or "none")
    problems = []
    for match in VARIABLE.finditer(text):
        name = match.group(1)
        missing_key = name in ("rubric", "reference") and name not in judge and name not in variables
        if name in known and not missing_key:
            continue
        message = (f"{{{{{name}}}}} is used but the judge has no {name}: give it {name}: ..." if missing_key
                   else f"{{{{{name}}}}} is not a judge variable nor defined by every data row ({have})")
        if path is None:
            problems.append(doc.problem(at, message))
        else:
            line = text.count("\n", 0, match.start()) + 1
            col = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            problems.append(Problem(display_path(path), line, col, "", message))
    for reason in unsupported_in(text):
        problems.append(doc.problem(at, reason) if path is None else Problem(display_path(path), None, None, "",
                                                                              reason))
    return problems


def check_places(data: Mapping[str, Any]) -> Iterator[tuple[list[str | int], Mapping[str, Any]]]:
    """Every check of a schema-valid job document, with its place (``["prompts", 2, "checks", 0]``)."""
    for j, spec in enumerate(data.get("checks", [])):
        yield ["checks", j], spec
    for i, prompt in enumerate(data["prompts"]):
        if isinstance(prompt, dict):
            for j, spec in enumerate(prompt.get("checks", [])):
                yield ["prompts", i, "checks", j], spec
