"""Time comes in through one door: every piece of linkmon that waits or reads the time takes a
:class:`Clock`, so tests drive backoff, reminders, flap windows and maintenance with a fake one
(``tests/support/clock.py``) in milliseconds instead of sleeping through them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock time, unix seconds: what is stored and shown to people."""
        ...

    def monotonic(self) -> float:
        """Seconds that never jump back: for intervals, deadlines and pacing."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (0 or less: just let the event loop run others)."""
        ...


class SystemClock:
    """The real time; the event loop's own clock for intervals, so timers and reads agree."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
