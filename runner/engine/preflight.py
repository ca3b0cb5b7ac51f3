"""What must hold before a run buys anything: every grader its judge checks use can be asked.

A grader without a key would otherwise be found only after every answer was bought, each
then left without a verdict. ``validate`` warns of the same problems, at the same places.
"""

from __future__ import annotations

from ..config.checks import check_key, check_places
from ..config.files import read_document
from ..config.jobs import Job
from ..config.providers import ProviderRegistry, display_path
from ..errors import Problem
from ..keys.lookup import find_key


def grader_problems(job: Job, registry: ProviderRegistry) -> list[Problem]:
    """One problem per grader whose provider has no usable key, at the judge check that names it."""
    missing: dict[str, str] = {}
    for written, grader in job.graders.items():
        lookup = find_key(registry.get(grader.provider))
        if lookup.problem:
            missing[written] = (f"the grader {grader.label} has no key, so a run stops before sending anything: "
                                f"{lookup.problem}")
    if not missing:
        return []
    doc, _ = read_document(job.path, display_path(job.path))  # only now: the places are for the message
    assert doc is not None  # the job loaded a moment ago
    problems: list[Problem] = []
    for where, spec in check_places(doc.data):
        if check_key(spec) != "judge":
            continue
        own = spec["judge"].get("target")
        written = own or doc.data.get("judge_target")
        if written in missing:
            problems.append(doc.problem([*where, "judge", "target"] if own else ["judge_target"],
                                        missing.pop(written)))
    return problems
