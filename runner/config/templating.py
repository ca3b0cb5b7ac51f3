"""``{{var}}`` templates: prompts and checks take their values from the item's data row.

A variable names a column of the row; a missing one renders as the empty string (job
validation reports it before anything is sent), a non-string value as its JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
EXPRESSION = re.compile(r"\{\{([^{}]*)\}\}")  # anything in braces: what VARIABLE does not take is refused

Row = Mapping[str, Any]


def render(template: str, row: Row) -> str:
    if "{{" not in template:
        return template
    return VARIABLE.sub(lambda m: as_text(row.get(m.group(1), "")), template)


def render_strings(value: Any, row: Row) -> Any:
    """``value`` with every string in it (through lists and mappings) rendered."""
    if isinstance(value, str):
        return render(value, row)
    if isinstance(value, list):
        return [render_strings(v, row) for v in value]
    if isinstance(value, dict):
        return {k: render_strings(v, row) for k, v in value.items()}
    return value


def as_text(value: Any) -> str:
    """A row value as it appears in rendered text."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def variables_in(value: Any) -> Iterator[str]:
    """The names of the variables used by every string in ``value`` (through lists and mappings)."""
    for text in strings_in(value):
        yield from VARIABLE.findall(text)


def unsupported_in(value: Any) -> Iterator[str]:
    """Why each ``{{...}}`` in ``value`` that is not a plain ``{{name}}`` is refused: it would be sent literally."""
    for text in strings_in(value):
        for match in EXPRESSION.finditer(text):
            if not VARIABLE.fullmatch(match.group(0)):
                what = "filters are" if "|" in match.group(1) else "expressions are"
                yield (f"{match.group(0)}: {what} not supported, only {{{{name}}}} of a data row; "
                       "put the value as wanted in the data")


def strings_in(value: Any) -> Iterator[str]:
    """Every string in ``value``, through lists and mappings."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
