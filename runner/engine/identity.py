"""Where a run sends its requests, recorded with the run so a resume cannot go elsewhere.

Per provider of the run: its protocol, base URL and where its key came from (the
variable's name or "store"; never the key). ``--resume`` and ``--retry-errors`` compare
the recorded identity with the current one and refuse on any difference, unless forced:
followed without the run's ``--providers-dir``, a resume would otherwise send the
remaining prompts, and the key, to a provider's public endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from ..config.jobs import Job
from ..config.providers import ProviderRegistry
from ..keys.lookup import find_key

FIELDS = ("protocol", "base_url", "key_source")
UNKNOWN_KEY_SOURCES = ("missing",)  # no key then: setting one since is no change of destination


def provider_identities(job: Job, registry: ProviderRegistry) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for provider_id in dict.fromkeys(t.provider for t in job.targets):
        provider = registry.get(provider_id)
        out[provider_id] = {"protocol": provider.protocol, "base_url": provider.base_url,
                            "key_source": find_key(provider).source}
    return out


def identity_changes(recorded: str | None, now: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between the run's recorded providers and ``now``, one phrase each."""
    if not recorded:
        return []  # a run recorded before hanzo-run kept identities
    before: dict[str, dict[str, Any]] = json.loads(recorded)
    changes = []
    for provider_id, current in now.items():
        old = before.get(provider_id)
        if old is None:
            continue  # a target the run did not have yet: nothing of the run went there
        for field in FIELDS:
            was, is_ = old.get(field), current.get(field)
            if field == "key_source" and (was in UNKNOWN_KEY_SOURCES or is_ in UNKNOWN_KEY_SOURCES):
                continue
            if was != is_:
                changes.append(f"{provider_id} {field} was {was}, now {is_}")
    return changes
