"""Checks on answers: compiled once per job, then evaluated for every result on the hot path.

A check is one key of ``schemas/job.schema.json`` ``$defs.check`` (``contains``, ``regex``,
``json_schema``, ...) with optional ``not: true`` and ``ignore_case: true``. Its strings
accept ``{{var}}`` from the item's data row. Each compiled check answers "does the fact
hold, and how to say so": a plain check fails when the fact does not hold, a negated one
when it does, and the failure's reason is that sentence ("answer does not contain 'Paris'").

Regexes and JSON Schemas are compiled once per job; a regex or schema that contains
``{{var}}`` is compiled once per distinct rendering (cached).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from ..errors import Problem
from ..protocols import Completion
from .files import Document
from .jobs import VARIABLE, Job, Row, WorkItem, render

CHECK_KEYS = ("contains", "not_contains", "equals", "starts_with", "regex", "json", "json_schema", "max_latency_ms",
              "max_output_tokens")
FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Observed:
    """What a check looks at: the answer and how it was produced."""

    text: str
    output_tokens: int | None
    latency_ms: float | None


@dataclass(frozen=True)
class Failure:
    check: str  # the check key, "not " in front when negated
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason}


# A test says whether its fact holds for the answer, and the sentence stating the outcome.
Test = Callable[[Observed, Row], tuple[bool, str]]


@dataclass(frozen=True)
class Check:
    label: str  # the check key, "not " in front when negated
    fails_when_holds: bool
    test: Test

    def __call__(self, seen: Observed, row: Row) -> Failure | None:
        holds, sentence = self.test(seen, row)
        if holds != self.fails_when_holds:
            return None
        return Failure(self.label, sentence)


class Checks:
    """The job's checks plus each prompt's own, compiled; ``evaluate`` runs them on one result."""

    def __init__(self, by_prompt: Mapping[str, tuple[Check, ...]]) -> None:
        self.by_prompt = dict(by_prompt)

    @classmethod
    def for_job(cls, job: Job) -> Checks:
        base = job.path.parent
        common = tuple(compile_check(spec, base) for spec in job.checks)
        return cls({p.id: common + tuple(compile_check(spec, base) for spec in p.checks) for p in job.prompts})

    def evaluate(self, item: WorkItem, completion: Completion | None,
                 latency_ms: float | None) -> tuple[int | None, list[Failure]]:
        """(1 or 0, failures); (None, []) when the request failed or the item has no checks."""
        checks = self.by_prompt.get(item.prompt.id, ())
        if completion is None or not checks:
            return None, []
        seen = Observed(completion.text, completion.output_tokens, latency_ms)
        failures = [f for f in (check(seen, item.row) for check in checks) if f is not None]
        return (0 if failures else 1), failures


def has_checks(job: Job) -> bool:
    return bool(job.checks) or any(p.checks for p in job.prompts)


# ---------------------------------------------------------------- compiling one check


def compile_check(spec: Mapping[str, Any], base: Path) -> Check:
    """A schema-valid check mapping, compiled; ``base`` is the job file's folder."""
    key = next(k for k in CHECK_KEYS if k in spec)
    value = spec[key]
    fold = bool(spec.get("ignore_case"))
    negate = bool(spec.get("not"))
    label = f"not {key}" if negate else key
    if key == "not_contains":  # the fact is "contains", failing when it holds
        return Check(label, not negate, _text_test("contains", str(value), fold))
    if key in ("contains", "equals", "starts_with"):
        test = _text_test(key, str(value), fold)
    elif key == "regex":
        test = _regex_test(value, fold)
    elif key == "json":
        test = _json_test
    elif key == "json_schema":
        test = _schema_test(load_schema_spec(value, base))
    elif key == "max_latency_ms":
        test = _limit_test(value, lambda seen: seen.latency_ms, "latency", "ms")
    else:
        test = _limit_test(value, lambda seen: seen.output_tokens, "output", "tokens")
    return Check(label, negate, test)


def _template(value: str, row: Row) -> str:
    return render(value, row) if "{{" in value else value


def _text_test(key: str, template: str, fold: bool) -> Test:
    def norm(s: str) -> str:
        return s.casefold() if fold else s

    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        want = _template(template, row)
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
            pattern = render(template, {k: re.escape(_str(v)) for k, v in row.items()})
        compiled = _compiled(pattern, flags)
        if isinstance(compiled, str):
            return False, f"regex {pattern!r} does not compile: {compiled}"
        holds = compiled.search(seen.text) is not None
        return holds, f"answer {'matches' if holds else 'does not match'} /{pattern}/"

    return test


def _str(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


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
        rendered = _render_strings(schema, row) if templated else schema
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


def _render_strings(value: Any, row: Row) -> Any:
    if isinstance(value, str):
        return _template(value, row)
    if isinstance(value, list):
        return [_render_strings(v, row) for v in value]
    if isinstance(value, dict):
        return {k: _render_strings(v, row) for k, v in value.items()}
    return value


def load_schema_spec(value: str | Mapping[str, Any], base: Path) -> Any:
    """An inline schema as is, or the schema file (.json, .yaml) relative to the job's folder."""
    if not isinstance(value, str):
        return value
    text = (base / value).read_text(encoding="utf-8")
    return json.loads(text) if value.endswith(".json") else yaml.safe_load(text)


def _limit_test(limit: float | str, measure: Callable[[Observed], float | None], what: str, unit: str) -> Test:
    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        bound: float | str = limit
        if isinstance(limit, str):
            text = _template(limit, row).strip()
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
    data = doc.data
    places: list[tuple[list[str | int], Sequence[Mapping[str, Any]]]] = [(["checks"], data.get("checks", []))]
    for i, prompt in enumerate(data["prompts"]):
        if isinstance(prompt, dict):
            places.append((["prompts", i, "checks"], prompt.get("checks", [])))
    problems: list[Problem] = []
    have = ", ".join(sorted(variables)) or "none"
    for where, specs in places:
        for j, spec in enumerate(specs):
            key = next(k for k in CHECK_KEYS if k in spec)
            at: list[str | int] = [*where, j, key]
            for name in _variables(spec[key]):
                if name not in variables:
                    problems.append(doc.problem(at, f"{{{{{name}}}}} is not defined by every data row "
                                                f"(row variables: {have})"))
            if key == "regex" and "{{" not in spec[key]:
                compiled = _compiled(spec[key], re.IGNORECASE if spec.get("ignore_case") else 0)
                if isinstance(compiled, str):
                    problems.append(doc.problem(at, f"regex does not compile: {compiled}"))
            if key == "json_schema":
                problems.extend(doc.problem(at, message) for message in _schema_problems(spec[key], doc.path.parent))
    return problems


def _variables(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from VARIABLE.findall(value)
    elif isinstance(value, list):
        for v in value:
            yield from _variables(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _variables(v)


def _schema_problems(value: str | Mapping[str, Any], base: Path) -> list[str]:
    try:
        schema = load_schema_spec(value, base)
    except FileNotFoundError:
        return [f"schema file {value} not found (relative to the job file)"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        return [f"cannot read schema file {value}: {e}"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return [f"not a valid JSON Schema: {e.message}"]
    return []
