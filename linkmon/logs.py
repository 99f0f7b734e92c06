"""A log that stays readable during a flood: the same error once, then how often it came back.

asyncio logs every failed ``accept()`` with its traceback; held against the port by 3,000 idle
connections that made 416,675 lines (185 MB) in a minute, and the first line a NOC engineer
needed was lost in them. :class:`RepeatFilter` lets the first occurrence of a message through
(traceback included), swallows the repeats, and says "repeated N times in the last M s" at
most once per interval. It guards the loggers a hostile peer or a local fault can drive: the
event loop's exception handler, the web listener and uvicorn's error log.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Any

from .clock import SYSTEM_CLOCK, Clock

FLOOD_LOGGERS = ("asyncio", "linkmon.web", "uvicorn.error")
REPEAT_INTERVAL = 60.0
MAX_KEYS = 10_000  # distinct messages remembered; past that the memory starts afresh

_SUMMARY = "linkmon_repeat_summary"  # set on a record that reports repeats: let it through


@dataclass
class _Repeats:
    since: float  # when the last line for this message was written
    count: int = 0  # repeats swallowed since
    last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """Pass a message the first time, then once per ``interval`` with the count of repeats.

    Messages are told apart by logger, level, text and exception type, so two links' errors
    never hide each other. :meth:`flush` reports repeats that have not been said yet (call it
    every interval and at exit): a flood that stops is still counted.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK, interval: float = REPEAT_INTERVAL) -> None:
        super().__init__()
        self._clock = clock
        self.interval = interval
        self._seen: dict[tuple[str, int, str, str], _Repeats] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False):
            return True
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage(), exc_type)
        now = self._clock.monotonic()
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= MAX_KEYS:
                self._seen.clear()
            self._seen[key] = _Repeats(since=now)
            return True
        seen.count += 1
        if now - seen.since < self.interval:
            seen.last = record
            return False
        _as_summary(record, seen.count, now - seen.since)
        seen.since, seen.count, seen.last = now, 0, None
        return True

    def flush(self) -> None:
        """Write the counts of repeats not yet reported; forget messages gone quiet."""
        now = self._clock.monotonic()
        for key, seen in list(self._seen.items()):
            if seen.last is not None:
                summary = copy.copy(seen.last)
                _as_summary(summary, seen.count, now - seen.since)
                seen.since, seen.count, seen.last = now, 0, None
                logging.getLogger(summary.name).handle(summary)
            elif now - seen.since >= self.interval:
                del self._seen[key]

    async def run(self) -> None:
        """Report repeats once per interval, for as long as the daemon runs."""
        while True:
            await self._clock.sleep(self.interval)
            self.flush()


def _as_summary(record: logging.LogRecord, count: int, seconds: float) -> None:
    text = record.getMessage()
    record.msg = "%s (repeated %d times in the last %.0f s)"
    record.args = (text, count, seconds)
    record.exc_info = record.exc_text = record.stack_info = None
    setattr(record, _SUMMARY, True)


def guard_against_floods(loop: asyncio.AbstractEventLoop, repeats: RepeatFilter) -> None:
    """Put ``repeats`` on the loggers a flood can drive and route the event loop's unhandled
    errors through it, as one line each: the message and the error, never the repr of a
    socket or a handle that would make each line unique."""
    for name in FLOOD_LOGGERS:
        logging.getLogger(name).addFilter(repeats)
    loop_log = logging.getLogger("asyncio")

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, BaseException):
            loop_log.error("%s: %r", context["message"], error, exc_info=error)
        else:
            loop_log.error("%s", context["message"])

    loop.set_exception_handler(handle)
