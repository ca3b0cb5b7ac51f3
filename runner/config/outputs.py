"""What a job asks the model to give back beyond text: JSON (``response_format``,
``response_schema``) and tool calls (``tools``, ``tool_choice``).

Said once in the job file; each protocol module turns these into its own wire shape.
The answer's JSON is parsed and checked against the schema for every result, and tool
calls are checked by the ``tool_called`` and ``tool_args`` check types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from .observed import Observed
from .templating import Row, render, render_strings

# Nothing parsed (the answer was not JSON, or nothing asked for JSON): distinct from JSON null.
NO_JSON: Any = object()
TOOL_CHOICES = ("auto", "required", "none")


@dataclass(frozen=True)
class ResponseSpec:
    """JSON wanted back: any JSON object (``schema`` None) or one matching ``schema``."""

    schema: Mapping[str, Any] | None
    name: str = "response"

    @property
    def strict(self) -> bool:
        """Whether OpenAI's strict mode can take the schema (it needs every object closed and fully required)."""
        return self.schema is not None and _strict_ready(self.schema)

    def validator(self) -> Draft202012Validator | None:
        if self.schema is None:
            return None
        return _validators.setdefault(json.dumps(self.schema, sort_keys=True), Draft202012Validator(self.schema))

    def read(self, text: str, given: Any = NO_JSON) -> tuple[Any, str | None]:
        """(the answer's JSON, None) or (its JSON or NO_JSON, why it fails). ``given``: JSON the protocol
        already parsed (a tool's input), else the text is parsed."""
        value = given
        if value is NO_JSON:
            try:
                value = json.loads(text)
            except ValueError as e:
                return NO_JSON, f"answer is not JSON: {e}"
        if self.schema is None:
            return value, None if isinstance(value, dict) else "answer is JSON but not an object"
        validator = self.validator()
        assert validator is not None
        error = best_match(validator.iter_errors(value))
        if error is None:
            return value, None
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "the answer"
        return value, f"answer does not match response_schema: {where}: {error.message}"


_validators: dict[str, Draft202012Validator] = {}


def _strict_ready(schema: Any) -> bool:
    if isinstance(schema, list):
        return all(_strict_ready(s) for s in schema)
    if not isinstance(schema, Mapping):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(props):
            return False
    return all(_strict_ready(v) for k, v in schema.items() if k not in ("enum", "const", "default"))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ToolSet:
    """The tools a prompt offers and ``choice``: auto, required, none, or one tool's name."""

    tools: tuple[ToolSpec, ...]
    choice: str = "auto"

    @property
    def forced(self) -> str | None:
        """The tool the model must call, when ``choice`` names one."""
        return self.choice if self.choice not in TOOL_CHOICES else None


EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}
ANY_JSON = ResponseSpec(None)  # response_format: json, and what a judge asks its grader for


def response_spec(spec: Mapping[str, Any], base: Path) -> ResponseSpec | None:
    """The ``response_schema`` / ``response_format`` of a job, target or prompt mapping (schema-valid)."""
    if "response_schema" in spec:
        schema = load_schema(spec["response_schema"], base)
        title = schema.get("title") if isinstance(schema, dict) else None
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(title or "response"))[:64]
        return ResponseSpec(schema, name)
    if spec.get("response_format") == "json":
        return ANY_JSON
    return None


def tool_set(spec: Mapping[str, Any], inherited: ToolSet | None) -> ToolSet | None:
    """A prompt's (or the job's) tools; a prompt with only ``tool_choice`` keeps the job's tools."""
    if "tools" in spec:
        tools = tuple(ToolSpec(t["name"], t.get("description", ""), t.get("parameters") or EMPTY_PARAMETERS)
                      for t in spec["tools"])
        return ToolSet(tools, spec.get("tool_choice", "auto"))
    if inherited is not None and "tool_choice" in spec:
        return ToolSet(inherited.tools, spec["tool_choice"])
    return inherited


def load_schema(value: str | Mapping[str, Any], base: Path) -> Any:
    """An inline schema as is, or the schema file (.json, .yaml) relative to the job's folder."""
    if not isinstance(value, str):
        return value
    text = (base / value).read_text(encoding="utf-8")
    return json.loads(text) if value.endswith(".json") else yaml.safe_load(text)


def schema_problem(value: str | Mapping[str, Any], base: Path, *, mapping: bool = True) -> str | None:
    """What keeps ``value`` (inline, or a file relative to the job) from being a usable JSON Schema, or None.
    ``mapping``: only an object schema will do (what providers take); a check also accepts true/false."""
    try:
        schema = load_schema(value, base)
    except FileNotFoundError:
        return f"schema file {value} not found (relative to the job file)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        return f"cannot read schema file {value}: {e}"
    if mapping and not isinstance(schema, dict):
        return "a JSON Schema must be a mapping"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return f"not a valid JSON Schema: {e.message}"
    return None


def _object_problem(value: str | Mapping[str, Any], base: Path, why: str) -> str | None:
    """A readable schema whose ``type`` is not object: every provider would refuse every request."""
    kind = load_schema(value, base).get("type", "object")
    if kind == "object":
        return None
    shown = " or ".join(map(str, kind)) if isinstance(kind, list) else kind
    return f"must describe a JSON object (type: object), not {shown}: {why}"


def output_problems(spec: Mapping[str, Any], base: Path,
                    inherited_tools: Sequence[str] = ()) -> list[tuple[list[str | int], str]]:
    """(place within ``spec``, message) for what the schema cannot see: unreadable schemas, a
    tool_choice naming no tool, a tool named twice."""
    problems: list[tuple[list[str | int], str]] = []
    if "response_schema" in spec:
        problem = schema_problem(spec["response_schema"], base) or _object_problem(
            spec["response_schema"], base, "providers' JSON modes answer objects; put the value in a property")
        if problem:
            problems.append((["response_schema"], problem))
    names: list[str] = list(inherited_tools)
    if "tools" in spec:
        names = []
        for i, tool in enumerate(spec["tools"]):
            if tool["name"] in names:
                problems.append((["tools", i, "name"], f"tool '{tool['name']}' is declared twice"))
            names.append(tool["name"])
            if "parameters" in tool:
                problem = schema_problem(tool["parameters"], base) or _object_problem(
                    tool["parameters"], base, "tool arguments are an object; put the values in properties")
                if problem:
                    problems.append((["tools", i, "parameters"], problem))
    choice = spec.get("tool_choice")
    if choice is not None and choice not in TOOL_CHOICES:
        if not names:
            problems.append((["tool_choice"], f"tool_choice '{choice}' names a tool, but no tools are declared"))
        elif choice not in names:
            problems.append((["tool_choice"], f"tool_choice '{choice}' is not a declared tool; "
                             f"use auto, required, none or one of: {', '.join(names)}"))
    return problems


# ---------------------------------------------------------------- checks on tool calls


def tool_called_test(template: str) -> Any:
    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        name = render(template, row)
        called = [c["name"] for c in seen.tool_calls or ()]
        if name in called:
            return True, f"tool {name!r} was called"
        return False, f"tool {name!r} was not called" + (f" (called: {', '.join(called)})" if called
                                                         else " (no tool calls)")

    return test


def _is_schema(value: Any) -> bool:
    """Expected values or a JSON Schema? A mapping with ``properties``, ``$schema`` or ``type: object``
    is a schema; any other mapping lists argument values."""
    return isinstance(value, Mapping) and ("properties" in value or "$schema" in value
                                           or value.get("type") == "object")


def tool_args_test(spec: Mapping[str, Any]) -> Any:
    schemas = {name: Draft202012Validator(value) for name, value in spec.items() if _is_schema(value)}

    def test(seen: Observed, row: Row) -> tuple[bool, str]:
        calls = list(seen.tool_calls or ())
        for name, want in spec.items():
            mine = [c for c in calls if c["name"] == name]
            if not mine:
                return False, f"tool {name!r} was not called"
            for call in mine:
                args = call.get("arguments")
                if name in schemas:
                    error = best_match(schemas[name].iter_errors(args))
                    if error is not None:
                        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "the arguments"
                        return False, f"{name} arguments do not match the schema: {where}: {error.message}"
                    continue
                expected = render_strings(want, row)
                if not isinstance(args, Mapping):
                    return False, f"{name} arguments are not an object: {args!r}"
                for key, value in expected.items():
                    if args.get(key) != value:
                        return False, f"{name} argument {key!r} is {args.get(key)!r}, expected {value!r}"
        return True, "tool arguments are as expected"

    return test


def tool_args_problems(value: Any) -> list[str]:
    problems = []
    for name, want in value.items():
        if _is_schema(want):
            try:
                Draft202012Validator.check_schema(want)
            except SchemaError as e:
                problems.append(f"{name}: not a valid JSON Schema: {e.message}")
    return problems
