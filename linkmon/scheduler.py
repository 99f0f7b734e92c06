"""When probes run, and by when they must answer: the only place that knows about time.

Each probe of each link runs every ``interval`` at a fixed phase, phases spread evenly over
the interval (on a 10 ms grid) so thousands of targets never fire together at :00. A probe's
next round never starts before its previous round has finished (a slow round skips the rounds
it overran and counts them). The scheduler measures its own lateness, because a monitor that
falls behind detects outages late without anyone noticing.

The scheduler owns each round's deadline: it starts the round with ``start + timeout`` (every
kind has one shape, :meth:`probes.Prober.begin`), the probe reports by then, and a round still
silent :data:`DEADLINE_GRACE` later is given up as a bug in the probe (logged once per cause,
reported as a timeout). Time comes from an injected :class:`~linkmon.clock.Clock`, so tests
drive phases, skips, deadlines and lag with a fake one; with the system clock its monotonic
time is the event loop's, the time base probes read their deadlines in.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from probes import Failure, ProbeResult, ProbeSetupError, ProbeSpec, Report, Round

from .clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# A probe reports by its deadline; a round still silent this much later is given up (the probe
# has a bug). Generous: the event loop may be a GC pause late, and that is no bug.
DEADLINE_GRACE = 0.5
# Rounds past their grace are looked for on this grid: at most 10 wake-ups a second for that,
# however many rounds are in flight; a round is given up at most this late.
DEADLINE_CHECK = 0.1

# Phases are multiples of this, so jobs due within it share one timer and one wake-up:
# at 10,000 probes every 10 s that is 100 wake-ups a second instead of 1,000.
GRID = 0.01


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


BeginProbe = Callable[[ProbeSpec, float, Report], Round]
"""Starts a round that reports by the deadline given: :meth:`probes.Prober.begin`."""


class _Slot:
    """The jobs due at one phase of one interval, and the task that wakes for them."""

    __slots__ = ("jobs", "task")

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, int], Job] = {}
        self.task: asyncio.Task[None] | None = None


class _Running:
    """A round in flight: its job (and the job's key, built once), and the handle to stop it.
    Being the object in ``_busy`` tells the round's report from a stale one (of a round given
    up, or of a removed job)."""

    __slots__ = ("job", "key", "round")

    def __init__(self, job: Job, key: tuple[str, int]) -> None:
        self.job = job
        self.key = key
        self.round: Round | None = None


class Scheduler:
    """Wakes once per slot and begins every job due in it, each with its deadline."""

    def __init__(
        self, begin: BeginProbe, observer: SchedulerObserver, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._begin = begin
        self._observer = observer
        self._clock = clock
        self._slots: dict[tuple[float, int], _Slot] = {}
        self._slot_of: dict[tuple[str, int], tuple[float, int]] = {}
        self._jobs: dict[tuple[str, int], Job] = {}
        self._busy: dict[tuple[str, int], _Running] = {}  # a job is never started twice at once
        # Deadline checks: check tick -> rounds whose grace ends by it; a heap of those ticks;
        # the one task that waits for the earliest, and the tick it waits for.
        self._overdue: dict[int, list[_Running]] = {}
        self._check_ticks: list[int] = []
        self._watcher: asyncio.Task[None] | None = None
        self._watching = 0
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
        start = self._clock.monotonic()
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
            first = due - due % job.interval + phase * GRID
            if first < due - GRID:
                first += job.interval
            name = f"probes every {job.interval:g}s at +{phase * GRID:g}s"
            loop = asyncio.get_running_loop()
            slot.task = loop.create_task(self._wake(slot, job.interval, first), name=name)
        slot.jobs[job.key] = job
        self._slot_of[job.key] = slot_key
        self._jobs[job.key] = job

    def _remove(self, key: tuple[str, int]) -> None:
        del self._jobs[key]
        running = self._busy.pop(key, None)
        if running is not None and running.round is not None:
            running.round.cancel()
        slot_key = self._slot_of.pop(key)
        slot = self._slots[slot_key]
        del slot.jobs[key]
        if not slot.jobs:
            del self._slots[slot_key]
            if slot.task is not None:
                slot.task.cancel()

    async def stop(self) -> None:
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        if self._watcher is not None:
            tasks.append(self._watcher)
        for running in self._busy.values():
            if running.round is not None:
                running.round.cancel()
        self._slots.clear()
        self._slot_of.clear()
        self._jobs.clear()
        self._busy.clear()
        self._overdue.clear()
        self._check_ticks.clear()
        self._watcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _wake(self, slot: _Slot, interval: float, due: float) -> None:
        clock = self._clock
        while True:
            delay = due - clock.monotonic()
            if delay > 0:
                await clock.sleep(delay)
            for job in list(slot.jobs.values()):
                self._start(job, due, clock.monotonic())
            due += interval
            now = clock.monotonic()
            if now > due:  # the loop stalled for a whole interval: those rounds are lost
                missed = int((now - due) // interval) + 1
                self._observer.skipped(missed * len(slot.jobs))
                due += missed * interval

    def _start(self, job: Job, due: float, now: float) -> None:
        key = job.key
        if key in self._busy:
            self._observer.skipped(1)  # the previous round is still running
            return
        running = self._busy[key] = _Running(job, key)
        self._observer.lag(max(0.0, now - due))
        deadline = now + job.timeout
        try:
            running.round = self._begin(job.spec, deadline, partial(self._finish, running))
        except Exception as exc:  # not even begun (a spec the prober does not know): a bug
            self._finish(running, exc)
            return
        self._expect(running, deadline + DEADLINE_GRACE)

    def _finish(self, running: _Running, outcome: ProbeResult | Exception) -> None:
        # The round holds its report, which holds ``running``: drop the handle so that the
        # pair is freed now, by reference counting, not by a rare full collection.
        running.round = None
        if self._busy.get(running.key) is not running:
            return  # given up on, or the job was removed meanwhile
        del self._busy[running.key]
        if not isinstance(outcome, ProbeResult):
            outcome = self._failed_to_run(running.job, outcome)
        self._observer.result(running.job, outcome, self._clock.time())

    def _failed_to_run(self, job: Job, exc: Exception) -> ProbeResult:
        """A round that could not produce a result: a set-up fault, or a bug in one probe
        (which must not stop the others)."""
        if isinstance(exc, ProbeSetupError):
            self._report_error(job, str(exc))
            return _failed(job, Failure.ERROR, str(exc))
        self._report_error(job, f"{type(exc).__name__}: {exc}")
        return _failed(job, Failure.ERROR, type(exc).__name__)

    # -- deadlines ------------------------------------------------------------------------

    def _expect(self, running: _Running, give_up_at: float) -> None:
        """Look for ``running`` once its grace is over (on the DEADLINE_CHECK grid)."""
        tick = math.ceil(give_up_at / DEADLINE_CHECK)
        rounds = self._overdue.get(tick)
        if rounds is None:
            rounds = self._overdue[tick] = []
            heapq.heappush(self._check_ticks, tick)
            if self._watcher is None or tick < self._watching:
                if self._watcher is not None:
                    self._watcher.cancel()  # it sleeps until a later tick
                self._watcher = asyncio.get_running_loop().create_task(
                    self._watch_deadlines(), name="probe deadlines"
                )
        rounds.append(running)

    async def _watch_deadlines(self) -> None:
        """Give up the rounds whose grace is over; sleep until the next such tick; end when no
        round is left to watch (the next round starts a new watcher)."""
        clock, ticks = self._clock, self._check_ticks
        while ticks:
            self._watching = tick = ticks[0]
            delay = tick * DEADLINE_CHECK - clock.monotonic()
            if delay > 0:
                await clock.sleep(delay)
                continue
            heapq.heappop(ticks)
            for running in self._overdue.pop(tick):
                if self._busy.get(running.key) is running:
                    self._give_up(running)
        self._watcher = None

    def _give_up(self, running: _Running) -> None:
        job = running.job
        self._report_error(job, "did not report by its deadline")
        if running.round is not None:
            running.round.cancel()
        self._finish(running, _failed(job, Failure.TIMEOUT, "probe overran its deadline"))

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
