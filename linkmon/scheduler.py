"""When probes run: the only place that knows about time.

Each probe of each link runs every ``interval`` at a fixed phase, phases spread evenly over
the interval (on a 10 ms grid) so thousands of targets never fire together at :00. A probe's
next round never starts before its previous round has finished (a slow round skips the rounds
it overran and counts them). The scheduler measures its own lateness, because a monitor that
falls behind detects outages late without anyone noticing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from probes import Failure, ProbeResult, ProbeSpec
from probes.base import ProbeSetupError

log = logging.getLogger(__name__)

# A probe is given its timeout; this is how much longer the scheduler waits before it gives
# up on the probe code itself (a probe must return by its deadline; one that doesn't is a bug).
DEADLINE_GRACE = 0.5


@dataclass(frozen=True, slots=True)
class Job:
    """One probe of one link, as the scheduler sees it."""

    link: str
    index: int
    kind: str
    target: str
    spec: ProbeSpec
    interval: float
    timeout: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.link, self.index)


class SchedulerObserver(Protocol):
    def result(self, job: Job, result: ProbeResult, at: float) -> None: ...
    def lag(self, seconds: float) -> None: ...
    def skipped(self, rounds: int) -> None: ...
    def probe_error(self, job: Job) -> None: ...


RunProbe = Callable[[ProbeSpec, float], Awaitable[ProbeResult]]
# Starts a probe whose result comes back by callback, no task needed; False: use RunProbe.
StartProbe = Callable[[ProbeSpec, float, Callable[[ProbeResult], object]], bool]

# Phases are multiples of this, so jobs due within it share one timer and one wake-up:
# at 10,000 probes every 10 s that is 100 wake-ups a second instead of 1,000.
GRID = 0.01


class _Slot:
    """The jobs due at one phase of one interval, and the task that wakes for them."""

    __slots__ = ("jobs", "task")

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, int], Job] = {}
        self.task: asyncio.Task[None] | None = None


class Scheduler:
    """Wakes once per slot and starts every job due in it; a probe that can report by
    callback (ICMP to an address) runs without a task of its own, any other in a task."""

    def __init__(
        self,
        run_probe: RunProbe,
        observer: SchedulerObserver,
        *,
        start_probe: StartProbe | None = None,
        max_concurrency: int = 2000,
    ) -> None:
        self._run_probe = run_probe
        self._start_probe = start_probe
        self._observer = observer
        self._concurrency = asyncio.Semaphore(max_concurrency)
        self._slots: dict[tuple[float, int], _Slot] = {}
        self._slot_of: dict[tuple[str, int], tuple[float, int]] = {}
        self._jobs: dict[tuple[str, int], Job] = {}
        # job key -> loop time its round started; a job is never started twice at once
        self._busy: dict[tuple[str, int], float] = {}
        self._round_tasks: set[asyncio.Task[None]] = set()
        self._error_causes: set[tuple[str, str]] = set()

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def set_jobs(self, jobs: Iterable[Job]) -> None:
        """Start new jobs, stop removed or changed ones, leave unchanged ones on their phase."""
        wanted = {job.key: job for job in jobs}
        for key, job in list(self._jobs.items()):
            if wanted.get(key) != job:
                self._remove(key)
        new = [job for key, job in wanted.items() if key not in self._jobs]
        start = asyncio.get_running_loop().time()
        for job, offset in _spread(new):
            self._add(job, start + offset)

    def _add(self, job: Job, due: float) -> None:
        phase = round((due % job.interval) / GRID)
        if phase * GRID >= job.interval:
            phase = 0
        slot_key = (job.interval, phase)
        slot = self._slots.get(slot_key)
        if slot is None:
            slot = self._slots[slot_key] = _Slot()
            loop = asyncio.get_running_loop()
            first = due - due % job.interval + phase * GRID
            if first < due - GRID:
                first += job.interval
            name = f"probes every {job.interval:g}s at +{phase * GRID:g}s"
            slot.task = loop.create_task(self._wake(slot, job.interval, first), name=name)
        slot.jobs[job.key] = job
        self._slot_of[job.key] = slot_key
        self._jobs[job.key] = job

    def _remove(self, key: tuple[str, int]) -> None:
        del self._jobs[key]
        self._busy.pop(key, None)
        slot_key = self._slot_of.pop(key)
        slot = self._slots[slot_key]
        del slot.jobs[key]
        if not slot.jobs:
            del self._slots[slot_key]
            if slot.task is not None:
                slot.task.cancel()

    async def stop(self) -> None:
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        tasks += self._round_tasks
        self._slots.clear()
        self._slot_of.clear()
        self._jobs.clear()
        self._busy.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _wake(self, slot: _Slot, interval: float, due: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for job in list(slot.jobs.values()):
                self._start(job, due, loop.time())
            due += interval
            now = loop.time()
            if now > due:  # the loop stalled for a whole interval: those rounds are lost
                missed = int((now - due) // interval) + 1
                self._observer.skipped(missed * len(slot.jobs))
                due += missed * interval

    def _start(self, job: Job, due: float, now: float) -> None:
        key = job.key
        started = self._busy.get(key)
        if started is not None:
            if now - started <= job.timeout + DEADLINE_GRACE:
                self._observer.skipped(1)  # the previous round is still running
                return
            # A probe that reports by callback missed its deadline: a bug, not a target's fault.
            self._report_error(job, "did not return by its deadline")
            self._finish(job, started, _failed(job, Failure.TIMEOUT, "probe overran its deadline"))
        self._busy[key] = now
        self._observer.lag(max(0.0, now - due))
        if self._start_probe is not None and self._start_probe(
            job.spec, job.timeout, partial(self._finish, job, now)
        ):
            return
        task = asyncio.get_running_loop().create_task(self._run_in_task(job, now))
        self._round_tasks.add(task)
        task.add_done_callback(self._round_tasks.discard)

    def _finish(self, job: Job, started: float, result: ProbeResult) -> None:
        if self._busy.get(job.key) != started:
            return  # given up on, or the job was removed meanwhile
        del self._busy[job.key]
        self._observer.result(job, result, time.time())

    async def _run_in_task(self, job: Job, started: float) -> None:
        async with self._concurrency:
            result = await self._run_once(job)
        self._finish(job, started, result)

    async def _run_once(self, job: Job) -> ProbeResult:
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # races with the probe finishing, and then stop() waits forever.
            async with asyncio.timeout(job.timeout + DEADLINE_GRACE):
                return await self._run_probe(job.spec, job.timeout)
        except TimeoutError:
            self._report_error(job, "did not return by its deadline")
            return _failed(job, Failure.TIMEOUT, "probe overran its deadline")
        except asyncio.CancelledError:
            raise
        except ProbeSetupError as exc:
            self._report_error(job, str(exc))
            return _failed(job, Failure.ERROR, str(exc))
        except Exception as exc:  # a bug in one probe must not stop the others
            self._report_error(job, f"{type(exc).__name__}: {exc}")
            return _failed(job, Failure.ERROR, type(exc).__name__)

    def _report_error(self, job: Job, cause: str) -> None:
        self._observer.probe_error(job)
        if (job.kind, cause) not in self._error_causes:
            self._error_causes.add((job.kind, cause))
            log.error(
                "probe %s of link %s (%s) failed to run: %s (logged once per cause)",
                job.kind,
                job.link,
                job.target,
                cause,
            )


def _failed(job: Job, failure: Failure, detail: str) -> ProbeResult:
    return ProbeResult(
        kind=job.kind, target=job.target, success=False, failure=failure, detail=detail
    )


def _spread(jobs: list[Job]) -> Iterable[tuple[Job, float]]:
    """Even phases per interval: the i-th of n jobs sharing an interval starts at i/n of it."""
    by_interval: dict[float, list[Job]] = {}
    for job in sorted(jobs, key=lambda j: j.key):
        by_interval.setdefault(job.interval, []).append(job)
    for interval, group in by_interval.items():
        for i, job in enumerate(group):
            yield job, interval * i / len(group)
