"""Checks written in Python: ``python: checks.py:function`` (a file next to the job) or
``python: package.module:function``.

The function is called as ``function(answer, row, result)``: the answer text, the item's
data row and the result's fields (a dict: ``response_text``, ``output_tokens``,
``latency_ms``, ``model``...). It returns a bool, a 0-1 score (passing at ``threshold``,
0.5 unless the check sets one) or ``(bool or score, reason)``.

A file is imported once per process (again only when it changed), so the job's
validation and its run share one load. What keeps it from loading (a missing file or
function, an import that raises or calls ``sys.exit``) is a validation problem naming the
file and line. A call runs in a thread of its own, bounded by the check's ``timeout``: one
that raises (``SystemExit`` included), returns nothing usable or does not return in time
gives no verdict, with the reason; it never stops or hangs the run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .providers import display_path

DEFAULT_THRESHOLD = 0.5
DEFAULT_TIMEOUT = 10.0  # seconds a call may take unless the check sets timeout:
CheckFunction = Callable[[str, dict[str, Any], dict[str, Any]], Any]

_files: dict[tuple[Path, int], ModuleType] = {}


class PythonCheckError(Exception):
    """Why a python check's function cannot be loaded."""


def load_function(spec: str, base: Path) -> CheckFunction:
    """The function ``spec`` names (``file.py:name`` relative to ``base``, or ``module:name``)."""
    where, _, name = spec.rpartition(":")
    module = _load_file(base / where) if where.endswith(".py") or "/" in where else _load_module(where, base)
    function = getattr(module, name, None)
    shown = display_path(base / where) if where.endswith(".py") else where
    if function is None:
        raise PythonCheckError(f"{shown} has no function {name!r}")
    if not callable(function):
        raise PythonCheckError(f"{shown}: {name!r} is not a function")
    return function  # type: ignore[no-any-return]


def _load_file(path: Path) -> ModuleType:
    path = path.resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise PythonCheckError(f"python check file {display_path(path)} not found (relative to the job file)") from None
    if (path, stamp) in _files:
        return _files[(path, stamp)]
    name = "hanzo_run_checks_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PythonCheckError(f"{display_path(path)} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling in the file look their module up here
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # sys.exit() at import is the file's failure, not hanzo-run's exit
        del sys.modules[name]
        raise PythonCheckError(f"{_where(e, path)}: importing it failed: {type(e).__name__}: {e}") from None
    _files[(path, stamp)] = module
    return module


def _load_module(name: str, base: Path) -> ModuleType:
    # The job's folder comes first, so a module next to the job is found like the file form's.
    sys.path.insert(0, str(base.resolve()))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise PythonCheckError(f"module {name!r} not found (from the job's folder or the installed packages)"
                                   ) from None
        raise PythonCheckError(f"{_where(e, None)}: importing {name} failed: {type(e).__name__}: {e}") from None
    except (Exception, SystemExit) as e:
        raise PythonCheckError(f"{_where(e, None)}: importing {name} failed: {type(e).__name__}: {e}") from None
    finally:
        sys.path.remove(str(base.resolve()))


def _where(error: BaseException, path: Path | None) -> str:
    """file:line of the failure: the checks file's own line when the traceback passes through it."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{display_path(Path(error.filename))}:{error.lineno}"
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if path is None or Path(f.filename) == path]
    frame = mine[-1] if mine else frames[-1] if frames else None
    if frame is None:
        return display_path(path) if path else "?"
    return f"{display_path(Path(frame.filename))}:{frame.lineno}"


def call_check(function: CheckFunction, name: str, answer: str, row: Mapping[str, Any],
               result: Mapping[str, Any], threshold: float,
               timeout: float = DEFAULT_TIMEOUT) -> tuple[bool | None, str, float | None]:
    """(whether the check holds, why, the score it returned if any): None when the function raised, returned
    nothing usable or did not return within ``timeout`` seconds (it is then left running in its daemon thread)."""
    outcome: list[tuple[Any, BaseException | None]] = []

    def call() -> None:
        try:
            outcome.append((function(answer, dict(row), dict(result)), None))
        except BaseException as e:  # noqa: BLE001 (user code: even sys.exit() is only this check's failure)
            outcome.append((None, e))

    worker = threading.Thread(target=call, name=f"python check {name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return None, f"{name} gave no verdict within {timeout:g} s (its timeout); it was left running", None
    value, error = outcome[0]
    if error is not None:
        return None, f"{name} raised {type(error).__name__}: {error} ({_where(error, None)})", None
    return verdict_of(value, name, threshold)


def verdict_of(value: Any, name: str, threshold: float) -> tuple[bool | None, str, float | None]:
    reason: str | None = None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        value, reason = value
    if isinstance(value, bool):
        return value, reason or f"{name} returned {value}", None
    if isinstance(value, int | float) and 0 <= value <= 1:
        holds = value >= threshold
        return holds, reason or (f"{name} returned the score {value:g}, {'at or above' if holds else 'below'} "
                                 f"the threshold {threshold:g}"), float(value)
    return None, f"{name} returned {value!r}; expected a bool, a 0-1 score or (bool, reason)", None
