"""When probes run: the only place that knows about time.

Each probe of each link runs every ``interval`` at a fixed phase, phases spread evenly over
the interval so thousands of targets never fire together at :00. A probe's next round never
starts before its previous round has finished (a slow round skips the rounds it overran and
counts them). The scheduler measures its own lateness, because a monitor that falls behind
detects outages late without anyone noticing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
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


class Scheduler:
    def __init__(self, run_probe: RunProbe, observer: SchedulerObserver, *,
                 max_concurrency: int = 2000) -> None:
        self._run_probe = run_probe
        self._observer = observer
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[tuple[str, int], tuple[Job, asyncio.Task[None]]] = {}
        self._error_causes: set[tuple[str, str]] = set()

    @property
    def jobs(self) -> list[Job]:
        return [job for job, _ in self._tasks.values()]

    def set_jobs(self, jobs: Iterable[Job]) -> None:
        """Start new jobs, stop removed or changed ones, leave unchanged ones on their phase."""
        wanted = {job.key: job for job in jobs}
        for key, (job, task) in list(self._tasks.items()):
            if wanted.get(key) != job:
                task.cancel()
                del self._tasks[key]
        new = [job for key, job in wanted.items() if key not in self._tasks]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for job, offset in _spread(new):
            task = loop.create_task(self._loop(job, start + offset),
                                    name=f"probe {job.link}[{job.index}]")
            self._tasks[job.key] = (job, task)

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, job: Job, due: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._slots:
                started = loop.time()
                self._observer.lag(max(0.0, started - due))
                result = await self._run_once(job)
            self._observer.result(job, result, time.time())
            due += job.interval
            now = loop.time()
            if now > due:
                missed = int((now - due) // job.interval) + 1
                self._observer.skipped(missed)
                due += missed * job.interval

    async def _run_once(self, job: Job) -> ProbeResult:
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # races with the probe finishing, and then stop() waits forever.
            async with asyncio.timeout(job.timeout + DEADLINE_GRACE):
                return await self._run_probe(job.spec, job.timeout)
        except TimeoutError:
            self._report_error(job, "did not return by its deadline")
            return ProbeResult(kind=job.kind, target=job.target, success=False,
                               failure=Failure.TIMEOUT, detail="probe overran its deadline")
        except asyncio.CancelledError:
            raise
        except ProbeSetupError as exc:
            self._report_error(job, str(exc))
            return ProbeResult(kind=job.kind, target=job.target, success=False,
                               failure=Failure.ERROR, detail=str(exc))
        except Exception as exc:  # a bug in one probe must not stop the others
            self._report_error(job, f"{type(exc).__name__}: {exc}")
            return ProbeResult(kind=job.kind, target=job.target, success=False,
                               failure=Failure.ERROR, detail=type(exc).__name__)

    def _report_error(self, job: Job, cause: str) -> None:
        self._observer.probe_error(job)
        if (job.kind, cause) not in self._error_causes:
            self._error_causes.add((job.kind, cause))
            log.error("probe %s of link %s (%s) failed to run: %s (logged once per cause)",
                      job.kind, job.link, job.target, cause)


def _spread(jobs: list[Job]) -> Iterable[tuple[Job, float]]:
    """Even phases per interval: the i-th of n jobs sharing an interval starts at i/n of it."""
    by_interval: dict[float, list[Job]] = {}
    for job in sorted(jobs, key=lambda j: j.key):
        by_interval.setdefault(job.interval, []).append(job)
    for interval, group in by_interval.items():
        for i, job in enumerate(group):
            yield job, interval * i / len(group)
