"""Scheduler timing, with real TCP probes against a loopback listener where a probe is needed.

Two tests use a hand-written probe coroutine instead: a probe that ignores its deadline or
raises is a bug no real probe should have, so it can only be staged.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import Iterator

import pytest

from linkmon.scheduler import Job, Scheduler
from probes import Failure, Prober, ProbeResult, TcpSpec


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
    return Job(link=link, index=index, kind="tcp", target=f"127.0.0.1:{port}",
               spec=TcpSpec(host="127.0.0.1", port=port), interval=interval, timeout=0.2)


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
    per_link = {}
    for job, _, t in recorder.results:
        per_link.setdefault(job.link, []).append(t)
    for times in per_link.values():
        assert len(times) >= 3
        assert statistics.median(b - a for a, b in zip(times, times[1:], strict=False)) == \
            pytest.approx(0.4, abs=0.05)
    assert statistics.median(recorder.lags) < 0.02


async def test_unchanged_jobs_keep_running_across_set_jobs(listener: int) -> None:
    recorder = Recorder()
    async with Prober() as prober:
        scheduler = Scheduler(prober.run, recorder)
        keep, drop = tcp_job("keep", listener, 0.2), tcp_job("drop", listener, 0.2)
        scheduler.set_jobs([keep, drop])
        await asyncio.sleep(0.5)
        task_before = scheduler._tasks[keep.key][1]
        scheduler.set_jobs([keep, tcp_job("new", listener, 0.2)])
        assert scheduler._tasks[keep.key][1] is task_before
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
    scheduler.set_jobs([Job("slow", 0, "tcp", "x", None, interval=0.1, timeout=0.3)])
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
        return await (hung if spec == "hung" else broken)(spec, timeout)

    recorder = Recorder()
    scheduler = Scheduler(dispatch, recorder)
    scheduler.set_jobs([Job("a", 0, "icmp", "h", "hung", interval=0.3, timeout=0.1),
                        Job("b", 0, "http", "b", "broken", interval=0.1, timeout=0.1)])
    await asyncio.sleep(1.0)
    await scheduler.stop()
    by_link = {job.link: result for job, result, _ in recorder.results}
    assert by_link["a"].failure is Failure.TIMEOUT
    assert by_link["b"].failure is Failure.ERROR
    assert len([j for j in recorder.errors if j.link == "b"]) >= 5
    logged = [r for r in caplog.records if "bug in probe" in r.getMessage()]
    assert len(logged) == 1
