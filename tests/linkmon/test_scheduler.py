"""Scheduler timing, with real TCP probes against a loopback listener where a probe is needed.

ICMP rounds run through the real engine on 127/8. Three tests use a hand-written probe instead:
a probe that ignores its deadline or raises is a bug no real probe should have, so it can only
be staged.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import Iterator

import pytest

from linkmon.scheduler import Job, Scheduler
from probes import Failure, IcmpSpec, Prober, ProbeResult, TcpSpec

# Specs for probe functions that are stand-ins (they never send): what they were given is all
# they look at.
HUNG = IcmpSpec("127.0.0.1")
NOWHERE = TcpSpec("127.0.0.1", 9)


class Recorder:
    def __init__(self) -> None:
        self.results: list[tuple[Job, ProbeResult, float]] = []
        self.lags: list[float] = []
        self.skips = 0
        self.errors: list[Job] = []

    def result(self, job: Job, result: ProbeResult, at: float) -> None:
        self.results.append((job, result, asyncio.get_running_loop().time()))

    def lag(self, seconds: float) -> None:
        self.lags.append(seconds)

    def skipped(self, rounds: int) -> None:
        self.skips += rounds

    def probe_error(self, job: Job) -> None:
        self.errors.append(job)


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def tcp_job(link: str, port: int, interval: float, index: int = 0) -> Job:
    return Job(
        link=link,
        index=index,
        kind="tcp",
        target=f"127.0.0.1:{port}",
        spec=TcpSpec(host="127.0.0.1", port=port),
        interval=interval,
        timeout=0.2,
    )


async def test_rounds_repeat_at_interval_with_phases_spread(listener: int) -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.run, recorder)
        jobs = [tcp_job(f"link-{i}", listener, 0.4) for i in range(8)]
        scheduler.set_jobs(jobs)
        await asyncio.sleep(1.3)
        await scheduler.stop()
    assert all(r.success for _, r, _ in recorder.results)
    first_starts = sorted({job.link: t for job, _, t in reversed(recorder.results)}.values())
    gaps = [b - a for a, b in zip(first_starts, first_starts[1:], strict=False)]
    # 8 jobs over 0.4 s: one every 50 ms, not all at once.
    assert statistics.median(gaps) == pytest.approx(0.05, abs=0.02)
    per_link: dict[str, list[float]] = {}
    for job, _, t in recorder.results:
        per_link.setdefault(job.link, []).append(t)
    for times in per_link.values():
        assert len(times) >= 3
        assert statistics.median(
            b - a for a, b in zip(times, times[1:], strict=False)
        ) == pytest.approx(0.4, abs=0.05)
    assert statistics.median(recorder.lags) < 0.02


async def test_unchanged_jobs_keep_running_across_set_jobs(listener: int) -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.run, recorder)
        keep, drop = tcp_job("keep", listener, 0.2), tcp_job("drop", listener, 0.2)
        scheduler.set_jobs([keep, drop])
        await asyncio.sleep(0.5)
        task_before = scheduler._slots[scheduler._slot_of[keep.key]].task
        scheduler.set_jobs([keep, tcp_job("new", listener, 0.2)])
        assert scheduler._slots[scheduler._slot_of[keep.key]].task is task_before
        assert {j.link for j in scheduler.jobs} == {"keep", "new"}
        dropped_at = asyncio.get_running_loop().time()
        await asyncio.sleep(0.5)
        await scheduler.stop()
    assert not [t for job, _, t in recorder.results if job.link == "drop" and t > dropped_at]
    assert any(job.link == "new" for job, _, _ in recorder.results)


async def test_slow_round_never_overlaps_and_skips_are_counted() -> None:
    running = 0
    overlaps = 0

    async def slow_probe(spec: object, timeout: float) -> ProbeResult:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        await asyncio.sleep(0.25)
        running -= 1
        return ProbeResult(kind="tcp", target="x", success=True, duration=0.25)

    recorder = Recorder()
    scheduler = Scheduler(slow_probe, recorder)
    scheduler.set_jobs([Job("slow", 0, "tcp", "x", NOWHERE, interval=0.1, timeout=0.3)])
    await asyncio.sleep(1.0)
    await scheduler.stop()
    assert overlaps == 0
    assert recorder.skips >= 4


async def test_probe_that_overruns_or_raises_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    async def hung(spec: object, timeout: float) -> ProbeResult:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async def broken(spec: object, timeout: float) -> ProbeResult:
        raise RuntimeError("bug in probe")

    async def dispatch(spec: object, timeout: float) -> ProbeResult:
        return await (hung if spec is HUNG else broken)(spec, timeout)

    recorder = Recorder()
    scheduler = Scheduler(dispatch, recorder)
    scheduler.set_jobs(
        [
            Job("a", 0, "icmp", "h", HUNG, interval=0.3, timeout=0.1),
            Job("b", 0, "tcp", "b", NOWHERE, interval=0.1, timeout=0.1),
        ]
    )
    await asyncio.sleep(1.0)
    await scheduler.stop()
    by_link = {job.link: result for job, result, _ in recorder.results}
    assert by_link["a"].failure is Failure.TIMEOUT
    assert by_link["b"].failure is Failure.ERROR
    assert len([j for j in recorder.errors if j.link == "b"]) >= 5
    logged = [r for r in caplog.records if "bug in probe" in r.getMessage()]
    assert len(logged) == 1


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
async def test_icmp_rounds_run_by_callback_share_wake_ups_and_need_no_task() -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.run, recorder, start_probe=prober.run_soon)
        jobs = [icmp_job(f"link-{i}", 0.5) for i in range(200)]
        tasks_before = len(asyncio.all_tasks())
        scheduler.set_jobs(jobs)
        # 200 jobs on a 10 ms grid over 0.5 s: 50 wake-up tasks, not a task per job
        assert len(asyncio.all_tasks()) - tasks_before == 50
        await asyncio.sleep(1.6)
        assert not scheduler._round_tasks, "an ICMP round to an address runs without a task"
        await scheduler.stop()
    per_link: dict[str, int] = {}
    for job, result, _ in recorder.results:
        assert result.success and result.packets_received == 2, result.detail
        per_link[job.link] = per_link.get(job.link, 0) + 1
    assert set(per_link) == {job.link for job in jobs} and min(per_link.values()) >= 3
    assert statistics.median(recorder.lags) < 0.005 and recorder.skips == 0


async def test_a_callback_that_never_comes_is_given_up_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Staged: the engine always reports by the deadline, so a lost callback is a bug."""
    started: list[object] = []

    def never_reports(spec: object, timeout: float, done: object) -> bool:
        started.append(spec)
        return True

    async def unused(spec: object, timeout: float) -> ProbeResult:
        raise AssertionError("every round was started by callback")

    recorder = Recorder()
    scheduler = Scheduler(unused, recorder, start_probe=never_reports)
    scheduler.set_jobs([Job("lost", 0, "icmp", "x", HUNG, interval=0.2, timeout=0.1)])
    await asyncio.sleep(1.1)
    await scheduler.stop()
    # rounds at 0, 0.2 (skipped: still within timeout + grace), ... given up after 0.6 s
    assert recorder.results and all(r.failure is Failure.TIMEOUT for _, r, _ in recorder.results)
    assert len(started) >= 2 and recorder.skips >= 2
    assert [r for r in caplog.records if "did not return by its deadline" in r.getMessage()]
