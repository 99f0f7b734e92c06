"""The scheduler alone: CPU per round and start lag for N jobs, with nothing else in the process.

Each job is a probe every ``--interval`` s whose round reports by callback after ``--round`` s
(an ICMP round: 5 echoes 100 ms apart, reported by the engine without a task), so what is
measured is the scheduler's own work: waking once per 10 ms slot, starting each due round with
its deadline, the deadline watch, and taking each report. No packet is sent. Prints process
CPU (user + system) per round over the window and the lag percentiles the daemon exports as
``linkmon_scheduler_lag_seconds``.

    .venv/bin/python bench/scheduler.py --jobs 10000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time

from linkmon.scheduler import Job, Scheduler
from probes import IcmpSpec, ProbeResult, Report, Round

RESULT = ProbeResult(kind="icmp", target="198.18.0.1", success=True, duration=0.001)


class Counter:
    """The scheduler's observer: counts reports, keeps the lags of the measured window."""

    def __init__(self) -> None:
        self.results = 0
        self.lags: list[float] = []
        self.skips = 0

    def result(self, job: Job, result: ProbeResult, at: float) -> None:
        self.results += 1

    def lag(self, seconds: float) -> None:
        self.lags.append(seconds)

    def skipped(self, rounds: int) -> None:
        self.skips += rounds

    def probe_error(self, job: Job) -> None:
        raise AssertionError("the stand-in probe never fails to run")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(jobs: int, interval: float, round_seconds: float, seconds: float) -> None:
    loop = asyncio.get_running_loop()

    def begin(spec: object, deadline: float, report: Report) -> Round:
        return loop.call_later(round_seconds, report, RESULT)

    counter = Counter()
    scheduler = Scheduler(begin, counter)
    spec = IcmpSpec("198.18.0.1")
    scheduler.set_jobs(
        Job(f"link-{i}", 0, "icmp", "198.18.0.1", spec, interval, 2.0) for i in range(jobs)
    )
    await asyncio.sleep(interval)  # every job has run once: steady state
    counter.lags.clear()
    results, used, started = counter.results, cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    used, wall = cpu() - used, time.monotonic() - started
    rounds = counter.results - results
    await scheduler.stop()
    lags = sorted(counter.lags)
    p99 = lags[int(0.99 * (len(lags) - 1))]
    print(
        f"{jobs} jobs every {interval:g} s, rounds of {round_seconds:g} s, {wall:.0f} s: "
        f"{rounds} rounds, {used / wall * 100:.2f} % of a core, "
        f"{used / rounds * 1e6:.2f} us CPU per round, lag p50 "
        f"{statistics.median(lags) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"skipped {counter.skips}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--round", type=float, default=0.4, help="seconds a round takes")
    parser.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    options = parser.parse_args()
    if not 1 <= options.jobs <= 100_000 or not 0 < options.seconds <= 600:
        parser.error("--jobs between 1 and 100,000, --seconds up to 600")
    asyncio.run(measure(options.jobs, options.interval, options.round, options.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
