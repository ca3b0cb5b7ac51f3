"""Which results database ``runs``, ``report``, ``show``, ``diff`` and ``rescore`` read.

An explicit ``--db`` wins; a job file means that job's ``output``; with neither, the one
database that exists among the outputs of the jobs reachable from the working folder
(``./hanzo-runs.db``, and the output of each ``*.yaml`` and ``jobs/*.yaml``). Guessing
between several would show the wrong run without a word, so several is an error that
names them. The database must already exist: these commands read, and opening a missing
path would quietly create an empty one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError

DEFAULT_OUTPUT = "hanzo-runs.db"  # the job schema's default for ``output``
JOB_FOLDERS = (".", "jobs")
JOB_SUFFIXES = (".yaml", ".yml")
HOW_TO_CHOOSE = "choose one with --db PATH or by naming the job file"


def find_database(db: Path | None, job: Path | None, cwd: Path) -> Path:
    """The results database to read; a UsageError saying why when there is not exactly one."""
    if db is not None:
        path = cwd / db  # an absolute --db stays as given
        if not path.is_file():
            raise UsageError(f"no results database at {db}")
        return path
    if job is not None:
        return _job_database(cwd / job, job)
    found = _reachable_databases(cwd)
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(_shown(p, cwd) for p in found)
        raise UsageError(f"several results databases here: {names}; {HOW_TO_CHOOSE}")
    raise UsageError(f"no results database found in {cwd} (looked for ./{DEFAULT_OUTPUT} and the output of each job"
                     " in ./ and ./jobs); run a job first, or point at a database with --db PATH or a job file")


def job_output(job_path: Path, data: Any) -> Path:
    """Where a job writes its results: its ``output`` (default hanzo-runs.db), relative to the job file."""
    output = data.get("output") if isinstance(data, dict) else None
    return job_path.parent / (output if isinstance(output, str) and output else DEFAULT_OUTPUT)


def _job_database(path: Path, shown: Path) -> Path:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no job file at {shown}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {shown}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{shown} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{shown} is not a job file (expected a mapping with targets and prompts)")
    database = job_output(path, data)
    if not database.is_file():
        raise UsageError(f"{shown} has no results yet: {database} does not exist; run it first: hanzo-run {shown}")
    return database


def _looks_like_job(data: Any) -> bool:
    # Other YAML files live here too (CI, compose, providers): only a job names targets and prompts.
    return isinstance(data, dict) and "targets" in data and "prompts" in data


def _reachable_databases(cwd: Path) -> list[Path]:
    candidates = [cwd / DEFAULT_OUTPUT]
    for folder in JOB_FOLDERS:
        for path in sorted((cwd / folder).glob("*")):
            if path.suffix not in JOB_SUFFIXES or not path.is_file():
                continue
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # a guess, not the user's choice: an unreadable file is simply not a job
            if _looks_like_job(data):
                candidates.append(job_output(path, data))
    found: dict[Path, Path] = {}
    for path in candidates:
        if path.is_file():
            found.setdefault(path.resolve(), path)  # two jobs sharing one output are one database
    return list(found.values())


def _shown(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd)
    except ValueError:  # another drive on Windows
        return str(path)
