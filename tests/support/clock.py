"""A clock that moves only when the test says so (Trio's MockClock, hypercorn's test context).

``advance(seconds)`` wakes every sleeper whose time has come, in order, letting the event loop
run each one before the clock moves past the next deadline, so code that sleeps in a loop
(backoff, reminders, tickers) sees every step it would see in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, start: float = EPOCH) -> None:
        self._wall = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many coroutines wait on this clock now."""
        return sum(not future.done() for _, _, future in self._sleepers)

    def set(self, wall: float) -> None:
        """Jump the wall clock alone (a clock step, NTP): intervals do not move."""
        self._wall = wall

    def jump(self, seconds: float) -> None:
        """Time passes while the event loop is busy (Trio's ``MockClock.jump``): nobody wakes
        now; the next :meth:`advance` wakes the overdue sleepers, late, as a real loop would."""
        self._step_to(self._mono + seconds)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers on the way in deadline order."""
        target = self._mono + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._step_to(deadline)
            if not future.done():
                future.set_result(None)
            await _settle()
        self._step_to(target)
        await _settle()

    def _step_to(self, mono: float) -> None:
        if mono > self._mono:
            self._wall += mono - self._mono
            self._mono = mono


async def _settle(rounds: int = 20) -> None:
    """Let the loop run what became ready (a woken task may itself wake others)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
