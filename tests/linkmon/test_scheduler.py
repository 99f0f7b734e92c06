"""Scheduler timing on a fake clock, and rounds through the real probes on the real one.

The timing tests (phases on the grid, no overlap, skipped rounds, deadlines, lag) drive the
scheduler with ``FakeClock`` and a stand-in probe that never sends: what they exercise — slow,
silent or broken probes — is what no real probe should do, so it can only be staged. They run
in milliseconds. The last tests run real ICMP and TCP rounds through :class:`probes.Prober` on
loopback with the system clock.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import statistics
from collections.abc import Iterator

import pytest

from linkmon.scheduler import DEADLINE_CHECK, DEADLINE_GRACE, Job, Scheduler
from probes import Failure, IcmpSpec, Prober, ProbeResult, ProbeSetupError, Report, Round, TcpSpec
from tests.support.clock import FakeClock
from tests.support.wait import wait_for


class Recorder:
    """The scheduler's observer: what it was told, and when (on the scheduler's clock)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.results: list[tuple[Job, ProbeResult, float]] = []
        self.lags: list[float] = []
        self.skips = 0
        self.errors: list[Job] = []

    def result(self, job: Job, result: ProbeResult, at: float) -> None:
        self.results.append((job, result, at))

    def lag(self, seconds: float) -> None:
        self.lags.append(seconds)

    def skipped(self, rounds: int) -> None:
        self.skips += rounds

    def probe_error(self, job: Job) -> None:
        self.errors.append(job)

    def of(self, link: str) -> list[ProbeResult]:
        return [result for job, result, _ in self.results if job.link == link]


class StandIn:
    """A probe that never sends. Each round of a target reports after ``takes[target]``
    seconds of the fake clock (None: never), or reports ``fails[target]`` instead of a result;
    ``stalls[target]`` seconds pass inside ``begin`` (the event loop busy)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.takes: dict[str, float | None] = {}
        self.fails: dict[str, Exception] = {}
        self.stalls: dict[str, float] = {}
        self.begun: list[tuple[str, float, float]] = []  # target, at, deadline
        self.cancelled: list[str] = []
        self.running = self.most = 0

    def begin(self, spec: object, deadline: float, report: Report) -> Round:
        assert isinstance(spec, IcmpSpec)
        target = spec.address
        self.begun.append((target, self.clock.monotonic(), deadline))
        self.clock.jump(self.stalls.get(target, 0.0))
        return asyncio.get_running_loop().create_task(self._round(target, report))

    async def _round(self, target: str, report: Report) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            takes = self.takes.get(target, 0.01)
            await self.clock.sleep(3600 if takes is None else takes)
        except asyncio.CancelledError:
            self.cancelled.append(target)
            raise
        finally:
            self.running -= 1
        failure = self.fails.get(target)
        report(failure or ProbeResult(kind="icmp", target=target, success=True, duration=0.001))

    def starts(self, target: str) -> list[float]:
        return [at for t, at, _ in self.begun if t == target]


_TARGETS: dict[str, str] = {}  # one address per link name, never shared


def job(link: str, interval: float, timeout: float = 0.05) -> Job:
    target = _TARGETS.setdefault(link, f"198.18.{7 + len(_TARGETS) // 250}.{len(_TARGETS) % 250}")
    return Job(link, 0, "icmp", target, IcmpSpec(target), interval=interval, timeout=timeout)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_phases_are_spread_on_the_grid_and_rounds_repeat_at_their_interval(
    clock: FakeClock,
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    jobs = [job(f"link-{i}", 0.4) for i in range(8)]
    scheduler.set_jobs(jobs)
    await clock.advance(1.25)
    await scheduler.stop()
    # 8 jobs over 0.4 s: one every 50 ms, not all at once, each exactly every 0.4 s
    firsts = sorted(probe.starts(j.target)[0] for j in jobs)
    assert firsts == pytest.approx([0.05 * i for i in range(8)], abs=1e-9)
    for j in jobs:
        starts = probe.starts(j.target)
        assert len(starts) >= 3
        assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == pytest.approx(
            [0.4] * (len(starts) - 1), abs=1e-9
        )
    assert max(recorder.lags) == pytest.approx(0, abs=1e-9) and recorder.skips == 0
    assert all(result.success for _, result, _ in recorder.results)


async def test_phases_snap_to_the_10_ms_grid_so_close_jobs_share_one_wake_up(
    clock: FakeClock,
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    tasks_before = len(asyncio.all_tasks())
    scheduler.set_jobs([job(f"link-{i}", 1.0) for i in range(500)])
    # 500 phases over 1 s, 2 ms apart: 100 slots of the 10 ms grid, one task each
    assert len(asyncio.all_tasks()) - tasks_before == 100
    await clock.advance(0.999)
    starts = sorted(at for _, at, _ in probe.begun)
    assert len(starts) == 500
    assert {round(at / 0.01, 6) for at in starts} == set(range(100))
    await scheduler.stop()


async def test_each_round_gets_its_deadline_from_the_scheduler(clock: FakeClock) -> None:
    probe, recorder = StandIn(clock), Recorder()
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([job("a", 1.0, timeout=0.3), job("b", 2.0, timeout=1.5)])
    await clock.advance(4.0)
    await scheduler.stop()
    for j in (job("a", 1.0, timeout=0.3), job("b", 2.0, timeout=1.5)):
        rounds = [(at, deadline) for t, at, deadline in probe.begun if t == j.target]
        assert rounds and all(d - at == pytest.approx(j.timeout) for at, d in rounds)


async def test_a_slow_round_never_overlaps_and_the_rounds_it_overran_are_counted(
    clock: FakeClock,
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    slow = job("slow", 0.1, timeout=0.3)
    probe.takes[slow.target] = 0.25
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([slow])
    await clock.advance(0.95)
    await scheduler.stop()
    assert probe.most == 1
    assert probe.starts(slow.target) == pytest.approx([0.0, 0.3, 0.6, 0.9], abs=1e-9)
    assert recorder.skips == 6  # at 0.1, 0.2, 0.4, 0.5, 0.7 and 0.8
    assert len(recorder.of("slow")) == 3 and all(r.success for r in recorder.of("slow"))


async def test_a_round_that_never_reports_is_given_up_once_its_grace_is_over(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    lost = job("lost", 2.0, timeout=0.5)
    probe.takes[lost.target] = None
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([lost])
    give_up = 0.5 + DEADLINE_GRACE
    await clock.advance(give_up - 0.001)
    assert recorder.results == [] and probe.cancelled == []
    await clock.advance(DEADLINE_CHECK + 0.001)
    [(_, result, at)] = recorder.results
    assert result.failure is Failure.TIMEOUT and result.detail == "probe overran its deadline"
    assert clock.time() - DEADLINE_CHECK - 0.002 <= at <= clock.time()
    assert probe.cancelled == [lost.target], "the round given up on is stopped"
    await clock.advance(2.0)  # the next round is not skipped: the last one was given up
    assert recorder.skips == 0 and len(probe.starts(lost.target)) == 2
    assert len(recorder.results) == 2 and len(recorder.errors) == 2
    await scheduler.stop()
    logged = [r for r in caplog.records if "did not report by its deadline" in r.getMessage()]
    assert len(logged) == 1, "logged once per cause"


async def test_a_probe_that_fails_to_run_is_an_error_logged_once_per_cause(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    broken, unset = job("broken", 0.1), job("unset", 0.1)
    probe.fails[broken.target] = RuntimeError("bug in probe")
    probe.fails[unset.target] = ProbeSetupError("icmp source 198.18.9.9 cannot be used")
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([broken, unset])
    await clock.advance(0.55)
    await scheduler.stop()
    assert [r.failure for r in recorder.of("broken")] == [Failure.ERROR] * 6
    assert recorder.of("broken")[0].detail == "RuntimeError"
    assert recorder.of("unset")[0].detail == "icmp source 198.18.9.9 cannot be used"
    assert len(recorder.errors) == len(recorder.results) == 11  # 6 of broken, 5 of unset
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sum("bug in probe" in m for m in messages) == 1
    assert sum("icmp source 198.18.9.9" in m for m in messages) == 1


async def test_lag_is_how_late_a_round_started(clock: FakeClock) -> None:
    probe, recorder = StandIn(clock), Recorder()
    first, second = job("a", 0.1), job("b", 0.1)  # phases 0 and 0.05
    probe.stalls[first.target] = 0.08  # the loop is busy 80 ms inside the first round's start
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([first, second])
    await clock.advance(0.001)
    probe.stalls.clear()
    await clock.advance(0.3)
    await scheduler.stop()
    assert recorder.lags[:2] == pytest.approx([0.0, 0.03], abs=1e-9)
    assert max(recorder.lags[2:]) == pytest.approx(0.0, abs=1e-9)


async def test_a_stall_over_whole_intervals_skips_those_rounds(clock: FakeClock) -> None:
    probe, recorder = StandIn(clock), Recorder()
    stalled = job("stalled", 0.1)
    probe.stalls[stalled.target] = 0.35
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([stalled])
    await clock.advance(0)
    probe.stalls.clear()
    await clock.advance(0.3)
    await scheduler.stop()
    assert recorder.skips == 3  # the rounds due at 0.1, 0.2 and 0.3 are lost
    assert probe.starts(stalled.target) == pytest.approx([0.0, 0.4, 0.5, 0.6], abs=1e-9)


async def test_set_jobs_keeps_unchanged_jobs_on_their_phase_and_stops_removed_ones(
    clock: FakeClock,
) -> None:
    probe, recorder = StandIn(clock), Recorder()
    keep, drop, new = job("keep", 0.2), job("drop", 0.2), job("new", 0.2)
    probe.takes[drop.target] = 0.15
    scheduler = Scheduler(probe.begin, recorder, clock=clock)
    scheduler.set_jobs([keep, drop])
    await clock.advance(0.5)
    task_before = scheduler._slots[scheduler._slot_of[keep.key]].task
    scheduler.set_jobs([keep, new])  # drop's round that began at 0.5 is still running
    assert scheduler._slots[scheduler._slot_of[keep.key]].task is task_before
    assert {j.link for j in scheduler.jobs} == {"keep", "new"}
    await clock.advance(0)
    assert probe.cancelled == [drop.target], "a removed job's round in flight is stopped"
    reported = len(recorder.of("drop"))
    await clock.advance(0.5)
    await scheduler.stop()
    assert len(recorder.of("drop")) == reported and len(probe.starts(drop.target)) == 3
    assert probe.starts(keep.target) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9], abs=1e-9)
    assert recorder.of("new")


class HeldRound:
    """A round that keeps its report until it is dropped, as the ICMP engine's rounds do."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def cancel(self) -> None:
        pass


async def test_finished_rounds_are_freed_by_reference_counting(clock: FakeClock) -> None:
    """The daemon runs the cyclic collector rarely (``daemon._settle_heap``): a round and its
    report must not keep each other alive once the round has reported."""

    def begin(spec: object, deadline: float, report: Report) -> Round:
        done = ProbeResult(kind="icmp", target="x", success=True, duration=0.001)
        asyncio.get_running_loop().call_soon(report, done)
        return HeldRound(report)

    recorder = Recorder()
    scheduler = Scheduler(begin, recorder, clock=clock)
    gc.disable()
    try:
        scheduler.set_jobs([job(f"link-{i}", 0.1) for i in range(5)])
        await clock.advance(1.0 + DEADLINE_GRACE + DEADLINE_CHECK)
        await scheduler.stop()
        assert len(recorder.results) >= 50
        assert [o for o in gc.get_objects() if isinstance(o, HeldRound)] == []
    finally:
        gc.enable()


# ------------------------------------------------------------------------------ real probes


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_tcp_rounds_through_the_prober_repeat_with_their_results(listener: int) -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.begin, recorder)
        target, spec = f"127.0.0.1:{listener}", TcpSpec("127.0.0.1", listener)
        jobs = [Job(f"link-{i}", 0, "tcp", target, spec, 0.2, 0.1) for i in range(4)]
        scheduler.set_jobs(jobs)
        await wait_for(
            lambda: all(len(recorder.of(j.link)) >= 3 for j in jobs), 10, "3 rounds of each"
        )
        await scheduler.stop()
    assert all(result.success for _, result, _ in recorder.results)


def icmp_job(link: str, interval: float, timeout: float = 0.3) -> Job:
    address = f"127.0.3.{int(link.rsplit('-', 1)[1]) + 1}"
    return Job(
        link=link,
        index=0,
        kind="icmp",
        target=address,
        spec=IcmpSpec(address, count=2, spacing=0.01),
        interval=interval,
        timeout=timeout,
    )


@pytest.mark.root
async def test_icmp_rounds_share_wake_ups_and_need_no_task() -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.begin, recorder)
        jobs = [icmp_job(f"link-{i}", 0.5) for i in range(200)]
        tasks_before = len(asyncio.all_tasks())
        scheduler.set_jobs(jobs)
        # 200 jobs on a 10 ms grid over 0.5 s: 50 wake-up tasks, not a task per job
        assert len(asyncio.all_tasks()) - tasks_before == 50
        await wait_for(
            lambda: all(len(recorder.of(j.link)) >= 3 for j in jobs), 10, "3 rounds of each"
        )
        # the slots and the deadline watcher; an ICMP round to an address runs without a task
        assert len(asyncio.all_tasks()) - tasks_before <= 51
        await scheduler.stop()
    for _, result, _ in recorder.results:
        assert result.success and result.packets_received == 2, result.detail
    assert statistics.median(recorder.lags) < 0.005 and recorder.skips == 0
