"""Checks: every check type with data-row variables, negation, case folding, the job file's
errors (exact messages), and passed / failed_checks in the results table of a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.config.checks import CHECK_OPTIONS, CHECK_TYPES, Checks
from runner.config.jobs import Job, WorkItem, load_job
from runner.config.observed import Observed
from runner.config.providers import ProviderRegistry, provider_dirs
from runner.errors import ConfigError
from runner.protocols import Completion
from runner.resources import load_schema
from tests.conftest import hanzo, write_job
from tests.conftest import query as rows

ROW = {"city": "Paris", "country": "France", "n": "5", "limit": "250", "key": "capital"}


def checks_for(folder: Path, checks: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None) -> Checks:
    path = write_job(folder, {"targets": ["echo/echo"], "prompts": [{"id": "p", "text": "Q {{country}}"}],
                              "data": rows or [ROW], "checks": checks})
    return load_job(path, ProviderRegistry(provider_dirs())).compile_checks()


def evaluate(checks: Checks, item: WorkItem, completion: Completion | None,
             latency: float | None) -> tuple[int | None, list[Any]]:
    """What the engine does with an answer (None: the request failed)."""
    seen = None if completion is None else Observed(completion.text, completion.output_tokens, latency)
    return checks.evaluate(item.prompt.id, item.row, seen)


def outcome(folder: Path, check: dict[str, Any], answer: str, *, tokens: int | None = 3,
            latency: float | None = 100.0) -> tuple[int | None, list[dict[str, str]]]:
    checks = checks_for(folder, [check])
    job = load_job(folder / "job.yaml", ProviderRegistry(provider_dirs()))
    item = next(job.items_for(job.targets[0]))
    passed, failures = evaluate(checks, item, Completion(answer, output_tokens=tokens), latency)
    return passed, [f.as_dict() for f in failures]


CASES = [
    # (check, answer, expected failures: [] means passed)
    ({"contains": "{{city}}"}, "It is Paris.", []),
    ({"contains": "{{city}}"}, "It is Lyon.", [{"check": "contains", "reason": "answer does not contain 'Paris'"}]),
    ({"contains": "{{city}}"}, "it is paris", [{"check": "contains", "reason": "answer does not contain 'Paris'"}]),
    ({"contains": "{{city}}", "ignore_case": True}, "it is PARIS", []),
    ({"contains": "{{city}}", "not": True}, "It is Paris.",
     [{"check": "not contains", "reason": "answer contains 'Paris'"}]),
    ({"not_contains": "{{city}}"}, "It is Lyon.", []),
    ({"not_contains": "{{city}}"}, "It is Paris.", [{"check": "not_contains", "reason": "answer contains 'Paris'"}]),
    ({"not_contains": "{{city}}", "ignore_case": True}, "PARIS!",
     [{"check": "not_contains", "reason": "answer contains 'Paris'"}]),
    ({"not_contains": "{{city}}", "not": True}, "Lyon",
     [{"check": "not not_contains", "reason": "answer does not contain 'Paris'"}]),
    ({"equals": "{{city}}"}, "  Paris\n", []),
    ({"equals": "{{city}}"}, "Paris.", [{"check": "equals", "reason": "answer is not 'Paris' (got 'Paris.')"}]),
    ({"equals": "{{city}}", "ignore_case": True}, "PARIS", []),
    ({"equals": 5}, "5", []),
    ({"equals": "{{n}}", "not": True}, "5", [{"check": "not equals", "reason": "answer equals '5'"}]),
    ({"starts_with": "The {{key}}"}, "  The capital is Paris", []),
    ({"starts_with": "The {{key}}"}, "A capital", [{"check": "starts_with",
                                                   "reason": "answer does not start with 'The capital'"}]),
    ({"starts_with": "the {{key}}", "ignore_case": True}, "THE CAPITAL", []),
    ({"regex": "^{{city}}\\b"}, "Paris is the capital", []),
    ({"regex": "^{{city}}$"}, "Paris!", [{"check": "regex", "reason": "answer does not match /^Paris$/"}]),
    ({"regex": "^paris", "ignore_case": True}, "Paris", []),
    ({"regex": "\\d+", "not": True}, "42", [{"check": "not regex", "reason": "answer matches /\\d+/"}]),
    ({"json": True}, '{"a": 1}', []),
    ({"json": True}, '```json\n{"a": 1}\n```', []),
    ({"json": True}, "{a: 1}", [{"check": "json", "reason": "answer is not JSON: Expecting property name enclosed in "
                                                            "double quotes at line 1 column 2"}]),
    ({"json": True, "not": True}, "[1]", [{"check": "not json", "reason": "answer is JSON"}]),
    ({"json_schema": {"type": "object", "required": ["city"],
                      "properties": {"city": {"const": "{{city}}"}}}}, '{"city": "Paris"}', []),
    ({"json_schema": {"type": "object", "properties": {"city": {"const": "{{city}}"}}}}, '{"city": "Lyon"}',
     [{"check": "json_schema", "reason": "answer does not match the schema: ['city']: 'Paris' was expected"}]),
    ({"json_schema": {"type": "object"}}, "nope",
     [{"check": "json_schema", "reason": "answer is not JSON: Expecting value at line 1 column 1"}]),
    ({"max_latency_ms": 150}, "x", []),
    ({"max_latency_ms": 50}, "x", [{"check": "max_latency_ms", "reason": "latency 100 ms exceeds 50 ms"}]),
    ({"max_latency_ms": "{{limit}}"}, "x", []),
    ({"max_latency_ms": 50, "not": True}, "x", []),
    ({"max_output_tokens": 3}, "x", []),
    ({"max_output_tokens": "{{n}}"}, "x", []),
    ({"max_output_tokens": 2}, "x", [{"check": "max_output_tokens", "reason": "output 3 tokens exceeds 2 tokens"}]),
    ({"max_output_tokens": "{{city}}"}, "x",
     [{"check": "max_output_tokens", "reason": "limit {{city}} is 'Paris' in this row, not a number"}]),
]


@pytest.mark.parametrize(("check", "answer", "failures"), CASES, ids=[
    f"{i}-{next(iter(c))}" for i, (c, _, _) in enumerate(CASES)])
def test_each_check(check: dict[str, Any], answer: str, failures: list[dict[str, str]], isolated: Path) -> None:
    assert outcome(isolated, check, answer) == ((0 if failures else 1), failures)


def test_row_values_are_literal_in_regexes(isolated: Path) -> None:
    checks = checks_for(isolated, [{"regex": "^{{v}}$"}], rows=[{"v": "C++ (3.1)", "country": "x"}])
    job = load_job(isolated / "job.yaml", ProviderRegistry(provider_dirs()))
    item = next(job.items_for(job.targets[0]))
    assert evaluate(checks, item, Completion("C++ (3.1)"), 1.0) == (1, [])
    assert evaluate(checks, item, Completion("C++ (301)"), 1.0)[0] == 0


def test_schema_file_relative_to_the_job(isolated: Path) -> None:
    (isolated / "schemas").mkdir()
    (isolated / "schemas" / "answer.yaml").write_text("type: object\nrequired: [answer]\n")
    assert outcome(isolated, {"json_schema": "schemas/answer.yaml"}, '{"answer": 1}') == (1, [])
    assert outcome(isolated, {"json_schema": "schemas/answer.yaml"}, "{}") == (0, [{
        "check": "json_schema", "reason": "answer does not match the schema: the answer: 'answer' is a required "
                                          "property"}])


def test_missing_numbers_fail_with_a_reason(isolated: Path) -> None:
    assert outcome(isolated, {"max_output_tokens": 5}, "x", tokens=None) == (
        0, [{"check": "max_output_tokens", "reason": "no output tokens recorded"}])


def test_failed_request_and_no_checks_give_null(isolated: Path) -> None:
    checks = checks_for(isolated, [{"contains": "x"}])
    job = load_job(isolated / "job.yaml", ProviderRegistry(provider_dirs()))
    item = next(job.items_for(job.targets[0]))
    assert evaluate(checks, item, None, None) == (None, [])
    assert evaluate(Job(**{**job.__dict__, "checks": ()}).compile_checks(),
                    item, Completion("x"), 1.0) == (None, [])


def errors_of(folder: Path, job: dict[str, Any]) -> list[str]:
    path = write_job(folder, job)
    with pytest.raises(ConfigError) as info:
        load_job(path, ProviderRegistry(provider_dirs()))
    return [str(p) for p in info.value.problems]


def test_bad_checks_are_reported_with_their_place(isolated: Path) -> None:
    job = {"targets": ["echo/echo"], "prompts": [{"id": "p", "text": "hi"}], "data": [{"city": "Paris"}],
           "checks": [{"contians": "x"}, {"contains": "a", "regex": "b"}, {"json": True, "ignore_case": True},
                      {"max_latency_ms": "fast"}]}
    assert errors_of(isolated, job) == [
        "job.yaml:9:3: checks[0].contians: unknown key 'contians'; did you mean 'contains'?",
        "job.yaml:9:3: checks[0]: a check has exactly one of contains, not_contains, equals, starts_with, regex, json,"
        " json_schema, max_latency_ms, max_output_tokens, judge, python, tool_called, tool_args"
        " (plus optional not, ignore_case, threshold, timeout)",
        "job.yaml:10:3: checks[1]: a check has exactly one of contains, not_contains, equals, starts_with, regex, json,"
        " json_schema, max_latency_ms, max_output_tokens, judge, python, tool_called, tool_args"
        " (plus optional not, ignore_case, threshold, timeout)",
        "job.yaml:12:3: checks[2]: ignore_case applies only to contains, not_contains, equals, starts_with and regex",
        "job.yaml:14:19: checks[3].max_latency_ms: expected a number, or a {{var}} of the data row that holds one",
    ]


def test_undefined_variables_bad_regex_and_missing_schema_file(isolated: Path) -> None:
    job = {"targets": ["echo/echo"], "data": [{"city": "Paris"}],
           "prompts": [{"id": "p", "text": "hi", "checks": [{"contains": "{{town}}"}]}],
           "checks": [{"regex": "(unclosed"}, {"json_schema": "missing.json"}, {"json_schema": {"type": "thing"}}]}
    assert errors_of(isolated, job) == [
        "job.yaml:11:10: checks[0].regex: regex does not compile: missing ), unterminated subpattern at position 0",
        "job.yaml:12:16: checks[1].json_schema: schema file missing.json not found (relative to the job file)",
        "job.yaml:14:5: checks[2].json_schema: not a valid JSON Schema: 'thing' is not valid under any of the "
        "given schemas",
        "job.yaml:9:15: prompts[0].checks[0].contains: {{town}} is not defined by every data row "
        "(row variables: city)",
    ]



def test_results_record_passed_and_failed_checks(fake_providers: Path, keys: dict[str, str], isolated: Path,
                                                 fake: Any) -> None:
    """A real run against the fake server: passes, a failure with reasons, and a failed request (NULL)."""
    fake.add_fault("500", flavor="openai", model="gpt-4o", times=3)  # one item fails all its attempts
    job = write_job(isolated, {
        "targets": ["openai/gpt-4o-mini", "openai/gpt-4o"],
        "prompts": [{"id": "cap", "text": "capital of {{country}}",
                     "checks": [{"starts_with": "{{model}} says"}]}],
        "data": [{"country": "France", "model": "gpt-4o-mini"}, {"country": "Japan", "model": "gpt-4o-mini"}],
        "checks": [{"contains": "{{country}}"}, {"regex": "japan", "ignore_case": True, "not": True}],
        "params": {"max_tokens": 20}, "output": "out.db",
    })
    done = hanzo(job, "--providers-dir", fake_providers, "--concurrency", "1")
    assert done.returncode == 1, done.stderr
    got = rows(isolated / "out.db", "SELECT target, row_index, status, passed, failed_checks FROM results"
                                    " ORDER BY target, row_index")
    assert [(t, r, s, p) for t, r, s, p, _ in got] == [
        ("openai/gpt-4o", 0, "error", None), ("openai/gpt-4o", 1, "ok", 0),
        ("openai/gpt-4o-mini", 0, "ok", 1), ("openai/gpt-4o-mini", 1, "ok", 0)]
    assert got[0][4] is None and got[2][4] is None
    assert json.loads(got[1][4]) == [
        {"check": "not regex", "reason": "answer matches /japan/"},
        {"check": "starts_with", "reason": "answer does not start with 'gpt-4o-mini says'"}]
    assert json.loads(got[3][4]) == [{"check": "not regex", "reason": "answer matches /japan/"}]


def test_the_schema_lists_exactly_the_registered_check_types() -> None:
    """A new check type is one CHECK_TYPES entry plus its schema: neither may be missed."""
    check = load_schema("job")["$defs"]["check"]
    assert [k for k in check["properties"] if k not in CHECK_OPTIONS] == list(CHECK_TYPES)
    assert [next(iter(branch["required"])) for branch in check["oneOf"]] == list(CHECK_TYPES)
