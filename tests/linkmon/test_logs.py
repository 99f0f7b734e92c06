"""The flood filter: the first occurrence logged whole, then a count at most once a minute."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from linkmon.logs import FLOOD_LOGGERS, RepeatFilter, guard_against_floods
from tests.support.clock import FakeClock


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def lines(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logger(clock: FakeClock) -> Iterator[tuple[logging.Logger, Collected, RepeatFilter]]:
    log = logging.getLogger("linkmon.test-flood")
    collected = Collected()
    repeats = RepeatFilter(clock)
    log.addHandler(collected)
    log.addFilter(repeats)
    log.propagate = False
    try:
        yield log, collected, repeats
    finally:
        log.removeHandler(collected)
        log.removeFilter(repeats)
        log.propagate = True


def accept_failed(log: logging.Logger) -> None:
    try:
        raise OSError(24, "Too many open files")
    except OSError:
        log.exception("web: cannot accept a connection")


async def test_the_first_is_logged_whole_then_repeats_once_a_minute_with_a_count(
    logger: tuple[logging.Logger, Collected, RepeatFilter], clock: FakeClock
) -> None:
    log, collected, _ = logger
    for _ in range(1000):
        accept_failed(log)
    assert collected.lines == ["web: cannot accept a connection"]
    assert collected.records[0].exc_info is not None  # the first keeps its traceback
    await clock.advance(60)
    accept_failed(log)
    assert collected.lines[1:] == [
        "web: cannot accept a connection (repeated 1000 times in the last 60 s)"
    ]
    assert collected.records[1].exc_info is None
    for _ in range(10):
        await clock.advance(5)
        accept_failed(log)
    assert len(collected.lines) == 2  # not another line within the minute


async def test_different_messages_never_hide_each_other(
    logger: tuple[logging.Logger, Collected, RepeatFilter],
) -> None:
    log, collected, _ = logger
    for _ in range(3):
        log.error("link %s: cannot save its state", "kec-krayan--kab")
        log.error("link %s: cannot save its state", "kec-lumbis--kab")
        log.warning("link %s: cannot save its state", "kec-krayan--kab")
    assert collected.lines == [
        "link kec-krayan--kab: cannot save its state",
        "link kec-lumbis--kab: cannot save its state",
        "link kec-krayan--kab: cannot save its state",
    ]


async def test_a_flood_that_stops_is_still_counted(
    logger: tuple[logging.Logger, Collected, RepeatFilter], clock: FakeClock
) -> None:
    log, collected, repeats = logger
    for _ in range(42):
        log.error("web: cannot accept a connection")
    await clock.advance(20)
    repeats.flush()
    assert collected.lines[1:] == [
        "web: cannot accept a connection (repeated 41 times in the last 20 s)"
    ]
    await clock.advance(60)
    repeats.flush()  # nothing new: nothing said, and the message is forgotten
    assert len(collected.lines) == 2
    log.error("web: cannot accept a connection")
    assert len(collected.lines) == 3


async def test_run_reports_every_interval(
    logger: tuple[logging.Logger, Collected, RepeatFilter], clock: FakeClock
) -> None:
    log, collected, repeats = logger
    reporter = asyncio.create_task(repeats.run())
    try:
        for _ in range(5):
            log.error("same")
        await clock.advance(60)
        assert collected.lines == ["same", "same (repeated 4 times in the last 60 s)"]
    finally:
        reporter.cancel()


async def test_the_loop_s_errors_are_one_line_each_not_a_flood(clock: FakeClock) -> None:
    """asyncio's own handler logs each failed accept() with the socket's repr and a
    traceback; through the guard the same error is one line, then a count."""
    loop = asyncio.get_running_loop()
    collected = Collected()
    flood_log = logging.getLogger("asyncio")
    flood_log.addHandler(collected)
    repeats = RepeatFilter(clock)
    try:
        guard_against_floods(loop, repeats)
        for fd in range(500):
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                    "socket": f"<socket fd={fd}>",
                }
            )
    finally:
        flood_log.removeHandler(collected)
        for name in FLOOD_LOGGERS:
            logging.getLogger(name).removeFilter(repeats)
        loop.set_exception_handler(None)
    assert collected.lines == [
        "socket.accept() out of system resource: OSError(24, 'Too many open files')"
    ]
