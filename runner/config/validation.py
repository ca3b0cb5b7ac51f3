"""``hanzo-run validate``: check provider and job files, collecting every problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConfigError, Problem
from .files import Document, read_document
from .jobs import Job, job_from_document
from .providers import ProviderRegistry, display_path, provider_dirs, provider_from_document


def default_files(registry_dirs: Sequence[Path]) -> list[Path]:
    files = [p for d in registry_dirs if d.is_dir() for p in sorted(d.glob("*.y*ml"))]
    jobs = Path("jobs")
    return files + (sorted(jobs.glob("*.y*ml")) if jobs.is_dir() else [])


def is_provider_file(path: Path, doc: Document | None) -> bool:
    if path.parent.name == "providers.d":
        return True
    return doc is not None and isinstance(doc.data, dict) and "protocol" in doc.data and "targets" not in doc.data


# Called with every job that loaded, for what lies beyond its files (a grader without a key):
# the command hands in the engine's pre-flight, so this layer stays below the keys.
JobCheck = Callable[[Job, ProviderRegistry], None]


def validate_files(files: list[Path], providers_dirs: Sequence[str],
                   job_check: JobCheck | None = None) -> tuple[list[Problem], int]:
    dirs = provider_dirs(providers_dirs)
    registry = ProviderRegistry(dirs)
    files = files or default_files(dirs)
    problems: list[Problem] = []
    seen_ids: dict[tuple[Path, str], Path] = {}
    for path in files:
        doc, read_problems = read_document(path, display_path(path))  # once: a job of 100,000 rows is big
        if is_provider_file(path, doc):
            twin = seen_ids.setdefault((path.parent.resolve(), path.stem), path)
            if twin != path:
                problems.append(Problem(display_path(path), None, None, "",
                                        f"provider id '{path.stem}' is also defined by {display_path(twin)}"))
            problems.extend(provider_from_document(path, doc, read_problems)[1])
        else:
            try:
                job = job_from_document(doc, read_problems, registry)
            except ConfigError as e:
                problems.extend(p for p in e.problems if p not in problems)
            else:
                if job_check is not None:
                    job_check(job, registry)
    return problems, len(files)
