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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from ..errors import Problem
from .files import Document
from .outputs import tool_args_problems, tool_args_test, tool_called_test
from .templating import Row, as_text, render, render_strings, variables_in

FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Observed:
    """What a check looks at: the answer and how it was produced."""

    text: str
    output_tokens: int | None
    latency_ms: float | None
    tool_calls: Sequence[Mapping[str, Any]] | None = None  # [{name, arguments}], when the model called tools


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
    """A job's checks plus each prompt's own, compiled; ``evaluate`` runs them on one answer."""

    def __init__(self, by_prompt: Mapping[str, tuple[Check, ...]]) -> None:
        self.by_prompt = dict(by_prompt)

    @classmethod
    def compile(cls, common: Sequence[Mapping[str, Any]], by_prompt: Mapping[str, Sequence[Mapping[str, Any]]],
                base: Path) -> Checks:
        """The ``common`` checks apply to every prompt, each prompt's own after them; ``base`` is the
        job file's folder (schema files are relative to it)."""
        shared = tuple(compile_check(spec, base) for spec in common)
        return cls({pid: shared + tuple(compile_check(spec, base) for spec in specs)
                    for pid, specs in by_prompt.items()})

    def evaluate(self, prompt_id: str, row: Row, seen: Observed | None) -> tuple[int | None, list[Failure]]:
        """(1 or 0, failures) of one answer to the prompt; (None, []) when there is no answer (the
        request failed) or the prompt has no checks."""
        checks = self.by_prompt.get(prompt_id, ())
        if seen is None or not checks:
            return None, []
        failures = [f for f in (check(seen, row) for check in checks) if f is not None]
        return (0 if failures else 1), failures


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


def _regex_problems(value: Any, fold: bool, base: Path) -> list[str]:
    if "{{" in value:  # compiled per row, once its values are known
        return []
    compiled = _compiled(value, re.IGNORECASE if fold else 0)
    return [f"regex does not compile: {compiled}"] if isinstance(compiled, str) else []


def _schema_check_problems(value: Any, fold: bool, base: Path) -> list[str]:
    return _schema_problems(value, base)


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
    "json_schema": CheckType(lambda value, fold, base: _schema_test(load_schema_spec(value, base)),
                             vet=_schema_check_problems),
    "max_latency_ms": CheckType(lambda value, fold, base: _limit_test(value, lambda seen: seen.latency_ms,
                                                                      "latency", "ms")),
    "max_output_tokens": CheckType(lambda value, fold, base: _limit_test(value, lambda seen: seen.output_tokens,
                                                                         "output", "tokens")),
    "tool_called": CheckType(lambda value, fold, base: tool_called_test(value)),
    "tool_args": CheckType(lambda value, fold, base: tool_args_test(value),
                           vet=lambda value, fold, base: tool_args_problems(value)),
}


def check_key(spec: Mapping[str, Any]) -> str:
    """The type of a schema-valid check mapping: its one key that names a check type."""
    return next(k for k in spec if k in CHECK_TYPES)


def compile_check(spec: Mapping[str, Any], base: Path) -> Check:
    """A schema-valid check mapping, compiled; ``base`` is the job file's folder."""
    key = check_key(spec)
    kind = CHECK_TYPES[key]
    negate = bool(spec.get("not"))
    label = f"not {key}" if negate else key
    return Check(label, kind.fails_when_holds != negate, kind.compile(spec[key], bool(spec.get("ignore_case")), base))


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
    data = doc.data
    places: list[tuple[list[str | int], Sequence[Mapping[str, Any]]]] = [(["checks"], data.get("checks", []))]
    for i, prompt in enumerate(data["prompts"]):
        if isinstance(prompt, dict):
            places.append((["prompts", i, "checks"], prompt.get("checks", [])))
    problems: list[Problem] = []
    have = ", ".join(sorted(variables)) or "none"
    for where, specs in places:
        for j, spec in enumerate(specs):
            key = check_key(spec)
            at: list[str | int] = [*where, j, key]
            for name in variables_in(spec[key]):
                if name not in variables:
                    problems.append(doc.problem(at, f"{{{{{name}}}}} is not defined by every data row "
                                                f"(row variables: {have})"))
            vet = CHECK_TYPES[key].vet
            if vet is not None:
                problems.extend(doc.problem(at, message)
                                for message in vet(spec[key], bool(spec.get("ignore_case")), doc.path.parent))
    return problems


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
