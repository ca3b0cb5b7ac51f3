"""Durations as people write them: ``90`` (seconds), ``30m``, ``12h``, ``14d``, ``2w``."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])?\s*")


def parse_duration(value: float | int | str) -> float:
    """Seconds; ValueError naming the accepted forms when ``value`` is not a duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.fullmatch(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration; write seconds, or a number with s, m, h, d or w (e.g. 14d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]
