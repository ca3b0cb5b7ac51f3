"""``hanzo-run validate``: check provider and job files, collecting every problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConfigError, Problem
from .files import read_document
from .jobs import Job, load_job
from .providers import ProviderRegistry, display_path, load_provider_file, provider_dirs


def default_files(registry_dirs: Sequence[Path]) -> list[Path]:
    files = [p for d in registry_dirs if d.is_dir() for p in sorted(d.glob("*.y*ml"))]
    jobs = Path("jobs")
    return files + (sorted(jobs.glob("*.y*ml")) if jobs.is_dir() else [])


def is_provider_file(path: Path) -> bool:
    if path.parent.name == "providers.d":
        return True
    doc, _ = read_document(path)
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
        if is_provider_file(path):
            twin = seen_ids.setdefault((path.parent.resolve(), path.stem), path)
            if twin != path:
                problems.append(Problem(display_path(path), None, None, "",
                                        f"provider id '{path.stem}' is also defined by {display_path(twin)}"))
            problems.extend(load_provider_file(path)[1])
        else:
            try:
                job = load_job(path, registry)
            except ConfigError as e:
                problems.extend(p for p in e.problems if p not in problems)
            else:
                if job_check is not None:
                    job_check(job, registry)
    return problems, len(files)
