"""When a provider cannot work at all, stop asking it.

A bad key or an exhausted quota (spend limit included) fails every other item of the
provider the same way, and a host that stayed unreachable through one item's full
retries will not answer the next one either. After such an answer the provider's lane
sends nothing more: its remaining items become error rows with the same code and a
message saying they were not sent and why. They are ordinary error rows, so
``--retry-errors`` (or ``--resume``) sends them again later.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ErrorCode, ProviderError
from ..store.records import AttemptRow

# No other item of the provider can escape these answers.
PROVIDER_FATAL = frozenset({ErrorCode.INVALID_API_KEY, ErrorCode.QUOTA_EXHAUSTED})


class ProviderStopped(ProviderError):
    """An item not sent because an earlier one showed the provider cannot work; never retried."""


def stop_for(error: ProviderError, attempts: Sequence[AttemptRow], *, answered: bool) -> ProviderStopped | None:
    """The error every remaining item of the provider gets after ``error``, or None when the provider may still work.

    ``error`` is an item's last error after its retries, ``attempts`` the ones it sent;
    ``answered``: the provider has answered some request of this run. A host counts as
    unreachable only when it never answered and every attempt of the item failed to connect:
    one dropped connection among other failures, or an outage after answers came, is not it.
    """
    if isinstance(error, ProviderStopped) or not attempts:
        return None
    if error.code in PROVIDER_FATAL:
        why = f"{error.code}: {error.message}"
    elif (error.code == ErrorCode.CONNECTION_FAILED and not answered
          and all(a.error_code == ErrorCode.CONNECTION_FAILED for a in attempts)):
        n = len(attempts)  # retryable: as the last error, the retries ran out
        why = f"{error.code} after {n} attempt{'s' if n > 1 else ''}: {error.message}"
    else:
        return None
    return ProviderStopped(error.code, f"not sent: an earlier request to {error.provider} failed with {why}",
                           None, error.provider)
