"""Durations as people write them in the config (``500ms``, ``10s``, ``1m30s``) and back.

Config durations are strings with a unit, never bare numbers: ``interval: 10`` could mean
seconds or milliseconds, and a monitor that guesses wrong probes a 128 kbps link 1000 times
too often. Parsed durations are plain ``float`` seconds.
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
"""Units from largest to smallest; a duration lists them in this order, each at most once."""

MAX_SECONDS = 366 * 86400.0
"""Longer than any sensible interval or window; keeps absurd values out of timer arithmetic."""

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|[dhms])")
_EXAMPLES = "e.g. 500ms, 10s, 2m, 1h or 1m30s"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ``ValueError`` with a message fit for a config error otherwise."""
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration: use a number with a unit ({_EXAMPLES})")
    shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
    if stripped.startswith("-"):
        raise ValueError(f"invalid duration {shown!r}: must not be negative")
    position = 0
    total = 0.0
    previous_rank = -1
    order = list(UNITS)
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        number, unit = match.groups()
        rank = order.index(unit)
        if rank <= previous_rank:
            raise ValueError(
                f"invalid duration {shown!r}: units must go from largest to smallest, "
                "each once (d, h, m, s, ms)"
            )
        previous_rank = rank
        total += float(number) * UNITS[unit]
        position = match.end()
    if position != len(stripped) or position == 0:
        if re.fullmatch(r"\d+(\.\d+)?", stripped):
            raise ValueError(f"duration {shown!r} has no unit: write {stripped}s or {stripped}ms")
        raise ValueError(f"invalid duration {shown!r}: use a number with a unit ({_EXAMPLES})")
    if not math.isfinite(total) or total > MAX_SECONDS:
        raise ValueError(f"duration {shown!r} is too long (at most 366d)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest config-style spelling: ``2s``, ``500ms``, ``1m30s``, ``1.5s``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    parts = []
    rest = seconds
    for unit in ("d", "h", "m"):
        size = UNITS[unit]
        count = math.floor(rest / size + 1e-9)
        if count:
            parts.append(f"{count}{unit}")
            rest = max(0.0, rest - count * size)
    if rest > 1e-9:
        parts.append(f"{_trim(rest)}s")
    return "".join(parts)


def _trim(value: float) -> str:
    """A number without a trailing ``.0`` and without float noise (0.1 + 0.2)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
