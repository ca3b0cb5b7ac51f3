"""Every provider at a glance: where its key comes from and, for a local server, whether it is up.

What ``hanzo-run providers`` prints and the view's Providers page shows; neither holds a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config.providers import Provider
from ..keys.lookup import KeyStatus, find_key, key_status
from ..keys.store import KeyStore
from .local import PROBE_TIMEOUT, LocalStatus, check_all_local


@dataclass(frozen=True)
class ProviderStatus:
    provider: Provider
    key: KeyStatus
    local: LocalStatus | None  # a local provider's server probed now; None for a cloud provider


async def provider_statuses(providers: Sequence[Provider], *, with_models: bool = False,
                            within: float = PROBE_TIMEOUT) -> list[ProviderStatus]:
    """Each provider's status, in the order given; local servers are probed at once (``within`` s in all).
    ``with_models`` also asks each server that is up which models it has loaded."""
    stored = KeyStore().all()
    local = [(p, find_key(p).key) for p in providers if p.kind == "local"]
    reach = await check_all_local(local, within=within, with_models=with_models)
    return [ProviderStatus(p, key_status(p, stored), reach.get(p.id)) for p in providers]
