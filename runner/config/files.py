"""Read a YAML file and check it against its JSON Schema, reporting every problem
compiler-style with the line and column taken from the YAML.

Line numbers come from ``yaml.compose`` nodes and are looked up only on the error
path, so valid files pay for one parse: libyaml's (``CSafeLoader``, several times faster) where
PyYAML has it, its values built from the parser's events (no tree of nodes is kept). Any file
libyaml does not take as it is (an error, a tag, an alias of a list or a mapping, a duplicate
key) is parsed again by PyYAML's own loader, whose messages and places are the ones reported.
"""

from __future__ import annotations

import datetime
import difflib
import gc
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import Problem
from ..resources import load_schema


@dataclass
class Document:
    """A parsed YAML file: its data (with schema defaults filled in) and its text for locating errors."""

    path: Path
    display: str
    text: str
    data: Any

    def problem(self, json_path: Sequence[str | int], message: str, *, key: bool = False) -> Problem:
        line, col = locate(self.nodes, json_path, key=key)
        return Problem(self.display, line, col, format_path(json_path), message)

    @cached_property
    def nodes(self) -> yaml.Node | None:
        """The file's nodes, for placing problems: composed at the first, kept for the others (a file of
        100,000 rows takes seconds), by libyaml where it reads the text as PyYAML does."""
        fast = _libyaml_agrees(self.text)
        for loader_class in ([yaml.CSafeLoader] if fast else []) + [yaml.SafeLoader]:
            loader = loader_class(self.text)
            try:
                return _paused_gc(loader.get_single_node)
            except yaml.YAMLError:
                pass
            finally:
                loader.dispose()
        return None


def read_document(path: Path, display: str | None = None) -> tuple[Document | None, list[Problem]]:
    """Parse ``path`` as YAML; return the document or the problems that stop it from parsing."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, [Problem(shown, None, None, "", f"cannot read file: {e.strerror or e}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return None, [
            Problem(shown, line, None, "", f"not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8")
        ]
    try:
        data, problems = _parse(text, shown)
    except yaml.reader.ReaderError as e:  # a control character: placed by its offset in the text
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        return None, [Problem(shown, line, col, "", f"YAML does not parse: character #x{e.character:04x} is not "
                              "allowed in YAML text; remove it or write it as an escape in a quoted string")]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        return None, [Problem(shown, mark.line + 1 if mark else None, mark.column + 1 if mark else None, "",
                              f"YAML does not parse: {reason}")]
    except RecursionError:
        return None, [Problem(shown, 1, 1, "", "YAML is nested too deeply to read; flatten the file")]
    doc = Document(path, shown, text, data)
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type_name(data)}"
        problems.append(Problem(shown, 1, 1, "", f"expected a mapping of keys to values, the file is {what}"))
    return doc, problems


# Where libyaml reads a file differently from PyYAML: a tab between tokens (libyaml takes it as a space,
# PyYAML refuses it) and tags (an empty ``!`` is '' to libyaml and null to PyYAML). A tag starts a token.
_LIBYAML_TAG = re.compile(r"(?:^|[\s\[{,:])!", re.MULTILINE)


def _libyaml_agrees(text: str) -> bool:
    """Whether libyaml reads ``text`` as PyYAML does; the search runs only where a ``!`` is (over a job of
    a million rows it takes 1.6 s)."""
    return yaml.__with_libyaml__ and "\t" not in text and ("!" not in text or not _LIBYAML_TAG.search(text))


def _parse(text: str, shown: str) -> tuple[Any, list[Problem]]:
    """The data of ``text`` and its key problems; raises PyYAML's own error when it does not parse."""
    if _libyaml_agrees(text):
        try:
            return _paused_gc(lambda: _load_fast(text)), []
        except Exception:  # PyYAML's loader below meets it again and says what it is, where
            pass
    data, root = _paused_gc(lambda: _load(text))  # the reader refuses control characters already here
    return data, key_problems(root, shown)


_T = TypeVar("_T")


def _paused_gc(parse: Callable[[], _T]) -> _T:
    # A big file is hundreds of thousands of new nodes and values, none in a cycle the parse could
    # free: the cycle collector would walk them all again and again (4 of 5 s for 100,000 data rows).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return parse()
    finally:
        if collecting:
            gc.enable()


def _load(text: str) -> tuple[Any, yaml.Node | None]:
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.root
    finally:
        loader.dispose()


def _load_fast(text: str) -> Any:
    """The values of ``text`` as libyaml parses it, or an exception for anything but a plain tree."""
    loader = _FastLoader(text)
    try:
        return _EventValues(loader, escapes="\\" in text).document()
    finally:
        loader.dispose()


MAX_NODES = 1_000_000  # values in a file once its aliases are expanded ("billion laughs" stops here)


class _CheckedValues(yaml.constructor.SafeConstructor):
    """Turns what the constructor cannot build into YAML errors with a place, never a bare
    ValueError: impossible dates, numbers too long to convert, ``.nan`` and ``.inf``, lone surrogates."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            text = str(node.value)
            what = node.tag.rsplit(":", 1)[-1]
            if what == "int":
                reason = f"number of {len(text)} digits is too large"
            else:
                shown = text if len(text) <= 40 else text[:37] + "..."
                reason = f"{shown!r} is not a valid {what} ({str(e)[:80]}); quote it to keep it as text"
            raise yaml.constructor.ConstructorError(None, None, reason, node.start_mark) from None
        if isinstance(value, str) and not _is_unicode(value):
            # A lone surrogate ("\ud800") parses but can be neither sent as JSON text nor stored.
            raise yaml.constructor.ConstructorError(None, None, f"{_surrogate(value)} is half of a UTF-16 pair, "
                                                    "not a character; remove it", node.start_mark)
        if isinstance(value, float) and not math.isfinite(value):
            # json refuses to send NaN, and an infinite window or delay would wait forever.
            raise yaml.constructor.ConstructorError(None, None, f"{node.value} is not a finite number; "
                                                    "write a number", node.start_mark)
        return value


class _Loader(_CheckedValues, yaml.SafeLoader):
    """PyYAML's own loader, which also refuses an alias inside its own anchor (a loop) and aliases that
    expand without end."""

    root: yaml.Node | None = None  # kept for the key checks, so the text is parsed once

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open: list[str | None] = []  # anchors whose node is being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is inside its own anchor "
                                                  f"&{event.anchor} (a loop)", event.start_mark)  # type: ignore[arg-type]
            return super().compose_node(parent, index)
        self._open.append(event.anchor if isinstance(event, yaml.NodeEvent) else None)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.pop()

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise yaml.composer.ComposerError(None, None, f"aliases expand to more than {MAX_NODES:,} values",
                                              node.start_mark)
        self.root = node
        return node


if yaml.__with_libyaml__:
    class _FastLoader(_CheckedValues, yaml.CSafeLoader):
        """libyaml's parser, for documents without aliases (a tree, each node used once): the loop and
        expansion checks of ``_Loader`` have nothing to find there, so there are none here."""


_INT, _NULL, _BOOL = "tag:yaml.org,2002:int", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"


class _EventValues:
    """The values of a document built from libyaml's events as they come, rather than by PyYAML's
    constructor (ten times slower: a method lookup and a generator per node) from a tree of nodes (3 KB a
    data row: a million inline rows held 3 GB). Text, plain integers, booleans and nulls are built as the
    constructor builds them, other scalars by the checked constructor itself. Anything else raises, for
    PyYAML's loader to read and report: a key that is not text (a merge key too) or comes twice, a tag,
    more than one document, an alias of a list or a mapping (a scalar's alias is its value)."""

    def __init__(self, loader: _CheckedValues, *, escapes: bool) -> None:
        self.loader = loader
        self.next_event = loader.get_event  # type: ignore[attr-defined]
        self.escapes = escapes  # only a \u escape can make half a UTF-16 pair: the text was UTF-8
        # SafeLoader's and CSafeLoader's resolvers: (tag, pattern) pairs by a plain scalar's first character
        resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = yaml.resolver.Resolver.yaml_implicit_resolvers
        anywhere = resolvers.get(None, [])
        self.resolvers = {first: [*pairs, *anywhere] for first, pairs in resolvers.items() if first is not None}
        self.anywhere = anywhere
        self.scalars: dict[str, Any] = {}  # anchored scalars, for their aliases
        self.anchors: set[str] = set()

    def document(self) -> Any:
        next_event = self.next_event
        next_event()  # the stream's start
        if next_event().__class__ is yaml.StreamEndEvent:
            return None  # nothing but comments
        value = self.value(next_event())
        next_event()  # the document's end
        if next_event().__class__ is not yaml.StreamEndEvent:
            raise ValueError("more than one document")
        return value

    def value(self, event: Any) -> Any:  # libyaml's events: typed by their class, checked here
        kind = event.__class__
        if kind is yaml.AliasEvent:
            if event.anchor not in self.scalars:
                raise ValueError("an alias of a list or a mapping")
            return self.scalars[event.anchor]
        anchor = event.anchor
        if anchor is not None:
            if anchor in self.anchors:
                raise ValueError("an anchor named twice")
            self.anchors.add(anchor)
        if event.tag is not None:
            raise ValueError(f"tag {event.tag}")
        value: Any
        if kind is yaml.ScalarEvent:
            value = self.scalar(event)
            if anchor is not None:
                self.scalars[anchor] = value
        elif kind is yaml.MappingStartEvent:
            value = self.mapping()
        elif kind is yaml.SequenceStartEvent:
            next_event, build = self.next_event, self.value
            value = []
            while (item := next_event()).__class__ is not yaml.SequenceEndEvent:
                value.append(build(item))
        else:
            raise ValueError(f"unexpected {kind.__name__}")
        return value

    def mapping(self) -> dict[str, Any]:
        next_event, build = self.next_event, self.value
        mapping: dict[str, Any] = {}
        while (event := next_event()).__class__ is not yaml.MappingEndEvent:
            if (event.__class__ is not yaml.ScalarEvent or event.tag is not None
                    or event.anchor is not None or self.tag(event) != _STR):
                raise ValueError("a key that is not text")
            key = event.value
            if key in mapping or (self.escapes and not _is_unicode(key)):
                raise ValueError("a duplicate key")
            mapping[key] = build(next_event())
        return mapping

    def tag(self, event: Any) -> str:
        """The tag PyYAML's resolver gives a scalar without one: a plain scalar's by its text, else text."""
        if not event.implicit[0]:
            return _STR
        value = event.value
        for tag, pattern in self.resolvers.get(value[:1], self.anywhere):
            if pattern.match(value):
                return tag
        return _STR

    def scalar(self, event: Any) -> Any:
        tag, value = self.tag(event), event.value
        if tag == _STR:
            if self.escapes and not _is_unicode(value):
                raise ValueError("half a UTF-16 pair")
            return value
        if tag == _INT and value.isdigit() and (value[0] != "0" or len(value) == 1):
            return int(value)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return yaml.constructor.SafeConstructor.bool_values[value.lower()]
        # a float, a date, 0x1F, 1_000...
        return self.loader.construct_object(yaml.ScalarNode(tag, value, event.start_mark, event.end_mark))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(text: str) -> str:
    """The first lone surrogate in ``text``, written as its escape."""
    return next(f"\\u{ord(c):04x}" for c in text if 0xD800 <= ord(c) <= 0xDFFF)


def unicode_problem(value: Any) -> str | None:
    """Why a JSON value from a data file cannot be sent (a lone surrogate in a string), or None."""
    if isinstance(value, str):
        return None if _is_unicode(value) else f"{_surrogate(value)} is half of a UTF-16 pair, not a character"
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list):
        return next((p for p in map(unicode_problem, value) if p), None)
    return None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded (shared nodes counted once each use)."""
    if id(node) not in sizes:
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        sizes[id(node)] = 0  # a loop (rejected earlier) cannot recurse here
        sizes[id(node)] = min(1 + sum(_expanded_size(c, sizes) for c in children), MAX_NODES + 1)
    return sizes[id(node)]


def check_schema(doc: Document, kind: str) -> list[Problem]:
    """Every schema violation in ``doc``; fills schema defaults into ``doc.data`` when there are none."""
    errors = sorted(_validator(kind).iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path)))
    problems = sorted((p for e in errors for p in _explain(doc, e)), key=lambda p: (p.line or 0, p.col or 0))
    if not problems:
        fill_defaults(load_schema(kind), doc.data, load_schema(kind))
    return problems


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(kind))  # the schemas themselves are checked by the tests


def _explain(doc: Document, error: ValidationError) -> Iterator[Problem]:
    path = list(error.absolute_path)
    validator = error.validator
    if validator in ("oneOf", "anyOf", "pattern", "not") and "errorMessage" in error.schema:
        # The schema words the rule itself (e.g. "exactly one check key") better than its branches, a regex
        # or a "not" can. (Not for every validator: a root errorMessage must not hide a missing key.)
        if "propertyNames" in error.absolute_schema_path:  # a key is wrong, not a value: point at it
            yield doc.problem([*path, error.instance], f"{error.instance!r}: {error.schema['errorMessage']}", key=True)
            return
        yield doc.problem(path, error.schema["errorMessage"].replace("{value}", repr(error.instance)))
        return
    if validator in ("oneOf", "anyOf") and error.context:
        # Report the branch the value was meant for, not "is not valid under any": a branch whose
        # type or required keys the value lacks was not meant; the others' errors name the key at fault.
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [errors for errors in branches.values()
                 if not any(not e.relative_path and e.validator in ("type", "required") for e in errors)]
        if len(meant) == 1:
            for sub in meant[0]:
                yield from _explain(doc, sub)
            return
        same_type = [e for e in error.context if e.validator != "type"]
        if same_type:
            deepest = max(len(e.absolute_path) for e in same_type)
            for sub in same_type:
                if len(sub.absolute_path) == deepest:
                    yield from _explain(doc, sub)
            return
        allowed = sorted({t for e in error.context for t in _as_list(e.validator_value)})
        yield doc.problem(path, f"expected {' or '.join(allowed)}, got {describe(error.instance)}")
        return
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in _unexpected_keys(error):
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(allowed)}"
            yield doc.problem([*path, key], f"unknown key '{key}'; {fix}", key=True)
        return
    if validator == "type":
        expected = " or ".join(_as_list(error.validator_value))
        yield doc.problem(path, f"expected {expected}, got {describe(error.instance)}")
        return
    if validator == "required":
        yield doc.problem(path, error.message.replace("is a required property", "is required but missing"))
        return
    if validator == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        value = repr(error.instance) if isinstance(error.instance, str) else describe(error.instance)
        yield doc.problem(path, f"{value} is not one of {choices}")
        return
    if validator == "pattern":
        yield doc.problem(path, f"{error.instance!r} does not match {error.validator_value}")
        return
    message = error.message
    text = repr(error.instance)
    if len(text) > 60:  # jsonschema quotes the whole value; a 300-digit number makes an unreadable line
        message = message.replace(text, f"{text[:40]}... ({len(text)} characters)")
    yield doc.problem(path, message)


def _unexpected_keys(error: ValidationError) -> list[Any]:
    known = error.schema.get("properties", {})
    return [k for k in error.instance if k not in known]


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime.date):
        return "date"
    return {dict: "mapping", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def describe(value: Any) -> str:
    """A value as a person reads it, with a hint for what YAML did to it."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()} (YAML reads yes/no/on/off as booleans; quote it)"
    if isinstance(value, datetime.date):
        return f"date {value.isoformat()} (YAML reads bare dates; quote it)"
    if value is None or isinstance(value, dict | list):
        return type_name(value)
    text = repr(value)
    return f"{type_name(value)} {text if len(text) <= 40 else text[:37] + '...'}"


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(root: yaml.Node | None, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
    """Line and column (1-based) of the node at ``path``; the deepest existing parent when it is missing."""
    node = root
    if node is None:
        return 1, 1
    for i, part in enumerate(path):
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    child = k if key and i == len(path) - 1 else v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_TAG_NAMES = {"int": "number", "float": "number", "bool": "boolean", "null": "null", "timestamp": "date"}


def key_problems(root: yaml.Node | None, display: str) -> list[Problem]:
    """Keys that are not text, and duplicate keys: PyYAML keeps the last of two equal keys
    silently, and a misspelt copy must not be ignored."""
    problems: list[Problem] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag not in (_STR, _MERGE):
                    what = _TAG_NAMES.get(k.tag.rsplit(":", 1)[-1], "non-text value")
                    problems.append(
                        Problem(display, k.start_mark.line + 1, k.start_mark.column + 1, "",
                                f"key {k.value or '~'} is read as a {what}, keys must be text; quote it")
                    )
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        problems.append(
                            Problem(display, k.start_mark.line + 1, k.start_mark.column + 1, "",
                                    f"duplicate key '{k.value}'; the earlier one would be ignored")
                        )
                    seen.add(k.value)
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return problems


def fill_defaults(schema: dict[str, Any], data: Any, root: dict[str, Any]) -> None:
    """Put the schema's ``default`` values into ``data`` (the schema is the one source of defaults)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root["$defs"][name]
    if isinstance(data, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in data and "default" in sub:
                data[key] = _copy(sub["default"])
            if key in data:
                fill_defaults(sub, data[key], root)
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for item in data:
            fill_defaults(schema["items"], item, root)


def _copy(value: Any) -> Any:
    return {} if value == {} else [] if value == [] else value
