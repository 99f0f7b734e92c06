"""Accuracy: linkmon's RTT error on a lab link of known delay, idle and under load, beside peers.

One lab (shipped topology, its own prefix). Kecamatan Krayan's VPN link is first measured at
zero delay (``lab.bridge_overhead``: iputils ping, median of 200), then delayed 40 ms each way
without jitter: ground truth is 80 ms plus that overhead. In the hub's namespace, at the same
time and the same echo rate (10 a second) on Krayan's end of the link:

- **linkmon**: one ``Prober`` (a child process in the hub, ``--inner``): rounds of 5 echoes
  50 ms apart every 0.5 s; under load the same engine also pings 5,000 addresses on the
  namespace's own loopback at the daemon's rate (5 echoes 100 ms apart per target every 10 s,
  phases spread: 2,500 echoes a second);
- **iputils ping** ``-i 0.1`` (it prints 0.1 ms steps at this RTT: up to 0.05 ms of rounding);
- **blackbox_exporter** (icmp module, one echo a probe) driven with 10 probes a second;
  ``probe_icmp_duration_seconds{phase="rtt"}`` and ``probe_duration_seconds`` of each answer.

Each tool's error is ``|rtt - truth|``: median and p99, idle and loaded. Without ``--quick`` a
third run sets 40 ms ± 5 ms each way (uniform, both directions: the RTT spreads as a triangle
over ±10 ms) and compares each tool's RTT quantiles with that distribution. The lab is torn
down in ``finally``; the whole run is bounded (< 5 min, ``--quick`` < 90 s).

    .venv/bin/python bench/accuracy.py            # 500 echoes a tool and run, plus jitter
    .venv/bin/python bench/accuracy.py --quick    # 150 echoes, no jitter run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common as c

from linkmon.lab import SHIPPED_LAB, Lab

LINK, HUB = "kec-krayan--kab", "kab-nunukan"
DELAY, JITTER = 0.040, 0.005
LOAD_TARGETS = 5000
LOAD_INTERVAL, LOAD_COUNT, LOAD_SPACING, LOAD_TIMEOUT = 10.0, 5, 0.1, 2.0
TICK = 0.1  # the inner scheduler's step: a 1/100 share of the load starts on every tick
ROUND_EVERY, ROUND_COUNT, ROUND_SPACING, ROUND_TIMEOUT = 0.5, 5, 0.05, 0.45
ECHO_RATE = ROUND_COUNT / ROUND_EVERY  # echoes a second on the link, for every tool
WARMUP = 3.0  # the load is at its full rate before anything is recorded
LIMIT = 280.0  # the whole bench, whatever the options
RTT = re.compile(r" time=([\d.]+) ms")
BLACKBOX_RTT = re.compile(r'^probe_icmp_duration_seconds\{phase="rtt"\} (\S+)$', re.M)
BLACKBOX_DURATION = re.compile(r"^probe_duration_seconds (\S+)$", re.M)


# -- inside the hub: linkmon's engine ------------------------------------------------------


async def probe_link(target: str, load: int, seconds: float) -> dict[str, object]:
    """Rounds to ``target`` every ROUND_EVERY, with ``load`` loopback targets on the same
    engine; prints ``ready`` once warmed up, returns what the recorded rounds measured."""
    from probes import IcmpSpec, Prober

    link_spec = IcmpSpec(target, count=ROUND_COUNT, spacing=ROUND_SPACING)
    load_specs = [
        IcmpSpec(a, count=LOAD_COUNT, spacing=LOAD_SPACING) for a in c.loopback_targets(load)
    ]
    share = math.ceil(load * TICK / LOAD_INTERVAL)  # rounds started per tick
    batches = [load_specs[i : i + share] for i in range(0, load, share)] if load else []
    tally = {"sent": 0, "received": 0, "load_sent": 0, "load_received": 0}
    rtts: list[float] = []

    async def link_round(record: bool) -> None:
        result = await prober.run(link_spec, ROUND_TIMEOUT)
        if record:
            tally["sent"] += result.packets_sent
            tally["received"] += result.packets_received
            rtts.extend(result.rtts)

    async def load_batch(specs: Sequence[IcmpSpec]) -> None:
        for result in await prober.run_many(specs, LOAD_TIMEOUT):
            tally["load_sent"] += result.packets_sent
            tally["load_received"] += result.packets_received

    async with Prober() as prober:
        await prober.start([link_spec], families=[2])
        if len(prober.icmp_engines) != 1:
            raise SystemExit(f"expected one ICMP engine, got {len(prober.icmp_engines)}")
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = round((WARMUP + seconds) / TICK)
        per_round = round(ROUND_EVERY / TICK)
        tasks: set[asyncio.Task[None]] = set()
        for tick in range(ticks):
            due = start + tick * TICK
            await asyncio.sleep(max(0.0, due - loop.time()))
            if tick == round(WARMUP / TICK):
                print("ready", flush=True)
            jobs = [load_batch(batches[tick % len(batches)])] if batches else []
            if tick % per_round == 0:
                jobs.append(link_round(record=tick * TICK >= WARMUP))
            for job in jobs:
                task = asyncio.create_task(job)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        async with asyncio.timeout(LOAD_TIMEOUT + 5):
            await asyncio.gather(*tasks)
    return {"rtts": rtts, **tally}


# -- around it: the lab, the peers, the figures ----------------------------------------------


@dataclass
class Sample:
    """What one tool measured in one run."""

    tool: str
    load: str
    sent: int
    truth: float
    rtts: list[float] = field(default_factory=list)

    def offsets(self) -> list[float]:
        return [rtt - self.truth for rtt in self.rtts]

    def errors(self) -> list[float]:
        return [abs(offset) for offset in self.offsets()]


def bridge_counters(lab: Lab) -> list[tuple[int, float]]:
    """(frames, total lateness) of each direction of the link's bridge."""
    stats = lab.bridge_stats(LINK)
    return [(stats[d]["frames"], stats[d]["late_total"]) for d in ("forward", "reverse")]


def lateness(before: list[tuple[int, float]], after: list[tuple[int, float]]) -> float:
    """Mean lateness of a frame between two reads, summed over both directions: what the
    bridge itself added to a round trip, beyond its delay."""
    return sum(
        (late1 - late0) / (frames1 - frames0) if frames1 > frames0 else 0.0
        for (frames0, late0), (frames1, late1) in zip(before, after, strict=True)
    )


@dataclass
class Driven:
    """blackbox's answers: rtt phases and probe durations of the successful probes (s)."""

    sent: int = 0
    failed: int = 0  # probe_success 0
    errors: list[str] = field(default_factory=list)  # no answer from the exporter
    rtts: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


async def drive_blackbox(url: str, target: str, seconds: float) -> Driven:
    """/probe?module=icmp for ``target`` ECHO_RATE times a second for ``seconds``."""
    import httpx

    driven = Driven()

    async def probe(client: httpx.AsyncClient) -> None:
        try:
            body = (
                await client.get(f"{url}/probe", params={"module": "icmp", "target": target})
            ).text
        except httpx.HTTPError as exc:
            driven.errors.append(type(exc).__name__)
            return
        rtt, duration = BLACKBOX_RTT.search(body), BLACKBOX_DURATION.search(body)
        if "\nprobe_success 1" in body and rtt and duration:
            driven.rtts.append(float(rtt.group(1)))
            driven.durations.append(float(duration.group(1)))
        else:
            driven.failed += 1

    driven.sent = count = round(seconds * ECHO_RATE)
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / ECHO_RATE - loop.time()))
            tasks.append(asyncio.create_task(probe(client)))
        async with asyncio.timeout(15):
            await asyncio.gather(*tasks)
    return driven


def run(
    lab: Lab, blackbox_url: str, target: str, load: int, seconds: float, label: str, base: float
) -> list[Sample]:
    """All three tools on ``target`` at once, ``load`` loopback targets on linkmon's engine.
    Truth is ``base`` plus what the bridge's lateness added over the run."""
    argv = [
        sys.executable,
        __file__,
        "--inner",
        target,
        "--load",
        str(load),
        "--seconds",
        f"{seconds:g}",
    ]
    inner = lab.popen(HUB, argv, stdout=subprocess.PIPE, text=True)
    ping = None
    try:
        assert inner.stdout is not None
        if inner.stdout.readline().strip() != "ready":  # the child is bounded: EOF if it died
            raise SystemExit("linkmon's side did not start")
        count = round(seconds * ECHO_RATE)
        ping = lab.popen(
            HUB,
            ["ping", "-n", "-i", f"{1 / ECHO_RATE:g}", "-c", str(count), "-W", "1", target],
            stdout=subprocess.PIPE,
            text=True,
        )
        counters = bridge_counters(lab)
        with lab.executor(HUB) as executor:
            driven = executor.submit(asyncio.run, drive_blackbox(blackbox_url, target, seconds))
            ping_out, _ = ping.communicate(timeout=seconds + 30)
            blackbox = driven.result(timeout=seconds + 30)
        truth = base + lateness(counters, bridge_counters(lab))
        inner_out, _ = inner.communicate(timeout=seconds + 30)
    finally:
        for process in (inner, ping):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    ours = json.loads(inner_out.strip().splitlines()[-1])
    if blackbox.failed or blackbox.errors:
        print(
            f"{label}: blackbox probe_success 0 in {blackbox.failed} of {blackbox.sent}, "
            f"no answer to {len(blackbox.errors)} ({', '.join(sorted(set(blackbox.errors)))})"
            if blackbox.errors
            else f"{label}: blackbox probe_success 0 in {blackbox.failed} of {blackbox.sent}",
            flush=True,
        )
    if ours["load_sent"] != ours["load_received"]:
        print(
            f"{label}: linkmon's load lost {ours['load_sent'] - ours['load_received']} of "
            f"{ours['load_sent']} replies",
            flush=True,
        )
    return [
        Sample("linkmon", label, int(ours["sent"]), truth, [float(r) for r in ours["rtts"]]),
        Sample(
            "iputils ping", label, count, truth, [float(ms) / 1000 for ms in RTT.findall(ping_out)]
        ),
        Sample("blackbox (rtt phase)", label, blackbox.sent, truth, blackbox.rtts),
        Sample("blackbox (probe_duration)", label, blackbox.sent, truth, blackbox.durations),
    ]


def triangle_quantile(q: float, jitter: float) -> float:
    """Quantile of the sum of two independent uniform(-jitter, +jitter) delays."""
    if q <= 0.5:
        return 2 * jitter * (math.sqrt(2 * q) - 1)
    return 2 * jitter * (1 - math.sqrt(2 * (1 - q)))


def triangle_cdf(x: float, jitter: float) -> float:
    span = 2 * jitter
    if x <= -span:
        return 0.0
    if x >= span:
        return 1.0
    if x <= 0:
        return (x + span) ** 2 / (2 * span * span)
    return 1 - (span - x) ** 2 / (2 * span * span)


def ks_distance(values: Sequence[float], jitter: float) -> float:
    """Kolmogorov-Smirnov distance of the sample from the triangle."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return float("nan")
    cdf = [triangle_cdf(v, jitter) for v in ordered]
    return max(max((i + 1) / n - f, f - i / n) for i, f in enumerate(cdf))


def print_errors(samples: Sequence[Sample]) -> None:
    print(
        "\nRTT error |rtt - truth|; truth = 80 ms + the bridge at zero delay + its lateness "
        "in the run"
    )
    print(
        f"{'tool':<27}{'load':<14}{'truth ms':>9}{'echoes':>7}{'lost':>5}{'median ms':>10}"
        f"{'p99 ms':>8}{'bias ms':>8}"
    )
    for s in samples:
        errors = s.errors()
        print(
            f"{s.tool:<27}{s.load:<14}{s.truth * 1000:>9.3f}{len(s.rtts):>7}"
            f"{s.sent - len(s.rtts):>5}{c.median(errors) * 1000:>10.3f}"
            f"{c.quantile(errors, 0.99) * 1000:>8.3f}{c.median(s.offsets()) * 1000:>8.3f}"
        )


def print_jitter(samples: Sequence[Sample]) -> None:
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    print(
        f"\nJitter: 40 ms ± 5 ms each way; RTT - truth quantiles (ms) against the triangle "
        f"over ±{2 * JITTER * 1000:g} ms, and the Kolmogorov-Smirnov distance"
    )
    print(
        f"{'tool':<27}{'echoes':>7}"
        + "".join(f"{f'p{round(q * 100)}':>8}" for q in quantiles)
        + f"{'max dev':>9}{'KS D':>7}"
    )
    theory = [triangle_quantile(q, JITTER) for q in quantiles]
    print(f"{'theory':<27}{'':>7}" + "".join(f"{t * 1000:>8.2f}" for t in theory))
    for s in samples:
        offsets = s.offsets()
        measured = [c.quantile(offsets, q) for q in quantiles]
        deviation = max(abs(m - t) for m, t in zip(measured, theory, strict=True))
        print(
            f"{s.tool:<27}{len(offsets):>7}"
            + "".join(f"{m * 1000:>8.2f}" for m in measured)
            + f"{deviation * 1000:>9.2f}{ks_distance(offsets, JITTER):>7.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 echoes a run, no jitter run")
    parser.add_argument("--save", type=Path, metavar="JSON", help="write every RTT there")
    parser.add_argument("--inner", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inner:
        if not 0 <= options.load <= 20000 or not 0 < options.seconds <= 120:
            parser.error("--load must be 0-20000 and --seconds 0-120")
        print(json.dumps(asyncio.run(probe_link(options.inner, options.load, options.seconds))))
        return 0

    seconds = 15.0 if options.quick else 50.0
    started = time.monotonic()
    prefix = f"ba{os.getpid() % 100000}"
    samples: list[Sample] = []
    jittered: list[Sample] = []
    with (
        tempfile.TemporaryDirectory(prefix="linkmon-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        stack.callback(Lab.teardown, prefix)  # also if Lab.up fails half-way
        lab = Lab.up(SHIPPED_LAB, prefix=prefix)
        target = str(lab.topology.link(LINK).from_end.interface.ip)
        counters = bridge_counters(lab)
        overhead = lab.bridge_overhead(LINK)
        base = 2 * DELAY + overhead - lateness(counters, bridge_counters(lab))
        print(
            f"lab {prefix}: {LINK}, target {target} from {HUB}; bridge at zero delay "
            f"{overhead * 1000:.3f} ms (iputils ping, median of 200)",
            flush=True,
        )
        blackbox_url, _ = stack.enter_context(
            c.blackbox(workdir, 1.0, prefix=["ip", "netns", "exec", lab.netns(HUB)])
        )
        lab.delay(LINK, DELAY)
        for load, label in ((0, "idle"), (LOAD_TARGETS, f"{LOAD_TARGETS} targets")):
            samples += run(lab, blackbox_url, target, load, seconds, label, base)
            print(f"{label}: done at {time.monotonic() - started:.0f} s", flush=True)
        if not options.quick and time.monotonic() - started < LIMIT - 60:
            lab.delay(LINK, DELAY, jitter=JITTER)
            jittered = run(lab, blackbox_url, target, 0, 30.0, "idle, jitter", base)
    if options.save:
        options.save.write_text(json.dumps([asdict(s) for s in samples + jittered]))
    print_errors(samples)
    if jittered:
        print_jitter(jittered)
    loaded = {s.tool: s for s in samples if s.load != "idle"}
    p99 = {tool: c.quantile(s.errors(), 0.99) for tool, s in loaded.items()}
    print(
        f"\nlinkmon p99 error under load < 0.3 ms: {p99['linkmon'] < 0.0003}; no worse than "
        f"iputils ping: {p99['linkmon'] <= p99['iputils ping']}; "
        f"total {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
