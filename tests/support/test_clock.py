"""The fake clock every timing test relies on: it must wake sleepers in order and on time."""

from __future__ import annotations

import asyncio

from tests.support.clock import EPOCH, FakeClock


async def test_sleepers_wake_in_deadline_order_at_their_time() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 2.0), ("a", 1.0), ("c", 5.0))]
    await clock.advance(3.0)
    assert woke == [("a", 1.0), ("b", 2.0)]
    assert clock.time() == EPOCH + 3.0
    await clock.advance(2.0)
    assert woke[-1] == ("c", 5.0)
    await asyncio.gather(*tasks)


async def test_a_loop_that_sleeps_sees_every_step() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(1.0)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(5.5)
    task.cancel()
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_zero_sleep_only_yields() -> None:
    clock = FakeClock()
    await clock.sleep(0)
    assert clock.monotonic() == 0.0 and clock.sleepers == 0


async def test_a_jump_wakes_nobody_until_the_clock_advances_and_then_late() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(1.0)
        woke.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await clock.advance(0)
    clock.jump(2.5)
    await asyncio.sleep(0)
    assert woke == [] and clock.monotonic() == 2.5
    await clock.advance(0)
    assert woke == [2.5]
    await task
