"""The one way a test waits: for a condition, with a deadline that names what it waited for.

A fixed sleep before an assertion is a race on a loaded machine (CI failed four times on
those); poll the condition instead. ``wait_until`` is for plain tests, ``wait_for`` for
coroutine tests (it yields to the event loop between checks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what} (last: {last!r})")


async def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.01) -> T:
    """``wait_until`` for a test running in the event loop: the loop runs between checks."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what} (last: {last!r})")
