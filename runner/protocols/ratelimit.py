"""Reading rate-limit headers: how long until a server's exhausted limit resets.

Each protocol names its own header pairs (``x-ratelimit-*`` with Go durations for the
OpenAI-compatible ones, ``anthropic-ratelimit-*`` with RFC 3339 times); what to do with
the answer (pausing new requests) is ``runner/engine/limits.py``'s business.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SCALE = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def exhausted_for(headers: Mapping[str, str], pairs: Sequence[tuple[str, str]]) -> float | None:
    """Seconds until the longest reset among ``pairs`` of (remaining, reset) headers whose remaining is 0."""
    longest = None
    for remaining_name, reset_name in pairs:
        remaining = headers.get(remaining_name)
        if remaining is None:
            continue
        try:
            if float(remaining) > 0:
                continue
        except ValueError:
            continue
        reset = parse_reset(headers.get(reset_name, ""))
        if reset is not None:
            longest = reset if longest is None else max(longest, reset)
    return longest


def parse_reset(value: str) -> float | None:
    """A reset as seconds from now: Go-style durations (``6m0s``, ``12ms``) or RFC 3339 times."""
    value = value.strip()
    if not value:
        return None
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _SCALE[u] for n, u in parts)
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None
    return max((when - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)
