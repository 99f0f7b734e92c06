"""ICMP scale benchmark: linkmon's engine and ``fping -i 0`` on the same loopback targets.

All of 127.0.0.0/8 answers on ``lo``, so N distinct targets need no set-up and send nothing off
the host. Both tools send ``--count`` echoes to every target, ``--spacing`` apart per target,
in the same run; we print CPU microseconds per echo (user + system, from rusage), replies lost,
and linkmon's open file descriptors, RSS and ICMP sockets. Needs root (or CAP_NET_RAW) for fping
and for linkmon's raw sockets.

icmplib (which linkmon's design first named for ICMP) runs once, on the first
``--icmplib-targets`` targets, with its defaults (``async_multiping``, 50 concurrent tasks, a raw
socket per host): the figure that explains why linkmon has an engine of its own.

    .venv/bin/python bench/icmp_scale.py --targets 5000 --count 5
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ipaddress
import json
import os
import pstats
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import icmplib

from probes import IcmpSpec, Prober

FIRST_TARGET = ipaddress.IPv4Address("127.1.0.1")
RUN_LIMIT_SECONDS = 120.0  # every run is bounded, whatever the options


@dataclass
class Run:
    tool: str
    echoes: int
    lost: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def us_per_echo(self) -> float:
        return self.cpu_seconds * 1e6 / self.echoes


def targets(n: int) -> list[str]:
    """``n`` loopback addresses from 127.1.0.1 on, skipping .0 and .255 in the last octet."""
    found: list[str] = []
    address = int(FIRST_TARGET)
    while len(found) < n:
        if address & 0xFF not in (0, 255):
            found.append(str(ipaddress.IPv4Address(address)))
        address += 1
    return found


def cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


async def run_linkmon(
    prober: Prober, specs: list[IcmpSpec], timeout: float, *, task_per_probe: bool
) -> Run:
    """One probe round per target, all at once.

    ``Prober.run_many`` measures the engine: every round is begun and reports by callback, with
    no task (the daemon's scheduler starts rounds the same way). With ``task_per_probe`` each
    round is a ``Prober.run`` awaited in its own task; the difference is asyncio's cost per task.
    """
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    async with asyncio.timeout(RUN_LIMIT_SECONDS):
        if task_per_probe:
            results = await asyncio.gather(*(prober.run(spec, timeout) for spec in specs))
        else:
            results = await prober.run_many(specs, timeout)
    wall = time.perf_counter() - started
    used = cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu(before)
    sent = sum(r.packets_sent for r in results)
    lost = sum(r.packets_sent - r.packets_received for r in results)
    return Run("linkmon/task" if task_per_probe else "linkmon", sent, lost, used, wall)


async def run_fping(
    fping: str, addresses: list[str], count: int, spacing: float, timeout: float
) -> Run:
    """``fping -C count -i 0 -p spacing``: its CPU is the child's rusage.

    Run as an asyncio subprocess so the event loop is never blocked, as in the daemon.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".targets") as listing:
        listing.write("\n".join(addresses) + "\n")
        listing.flush()
        command = [
            fping,
            "-C", str(count), "-q", "-i", "0",
            "-p", str(max(1, round(spacing * 1000))),
            "-t", str(round(timeout * 1000)),
            "-f", listing.name,
        ]  # fmt: skip
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        child = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            async with asyncio.timeout(RUN_LIMIT_SECONDS):
                _, stderr = await child.communicate()
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        wall = time.perf_counter() - started
        used = cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu(before)
    lines = [line for line in stderr.decode().splitlines() if " : " in line]
    if len(lines) != len(addresses):
        raise SystemExit(f"fping answered for {len(lines)} of {len(addresses)} targets")
    lost = sum(len(re.findall(r"(?:^|\s)-(?=\s|$)", line.split(" : ", 1)[1])) for line in lines)
    return Run("fping", len(addresses) * count, lost, used, wall)


_ICMPLIB_CHILD = """
import asyncio, json, resource, sys
from icmplib import async_multiping
count, spacing, timeout = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
addresses = sys.stdin.read().split()
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before = cpu()
hosts = asyncio.run(async_multiping(addresses, count=count, interval=spacing, timeout=timeout))
used = cpu() - before
sent = sum(h.packets_sent for h in hosts)
print(json.dumps([sent, sent - sum(h.packets_received for h in hosts), used]))
"""


async def run_icmplib(addresses: list[str], count: int, spacing: float, timeout: float) -> Run:
    """icmplib's ``async_multiping`` with its defaults, in a child process: its CPU is measured
    there around the call (not the interpreter's start), and its raw sockets never see
    linkmon's replies."""
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ICMPLIB_CHILD,
        str(count),
        str(spacing),
        str(timeout),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_LIMIT_SECONDS):
            stdout, _ = await child.communicate("\n".join(addresses).encode())
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    if child.returncode != 0:
        raise SystemExit(f"icmplib {icmplib.__version__} failed (exit {child.returncode})")
    sent, lost, used = json.loads(stdout)
    return Run("icmplib", sent, lost, used, time.perf_counter() - started)


def process_footprint() -> tuple[int, int, int]:
    """Open fds, sockets among them, RSS in KiB — of this process, now."""
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return len(fds), sockets, rss


async def bench(options: argparse.Namespace) -> int:
    fping = shutil.which("fping")
    if fping is None:
        raise SystemExit("fping is not installed (Debian package fping)")
    addresses = targets(options.targets)
    specs = [
        IcmpSpec(address, count=options.count, spacing=options.spacing) for address in addresses
    ]
    runs: list[Run] = []
    profile = cProfile.Profile() if options.profile else None
    for _ in range(options.repeat):
        # Each tool runs alone: an open raw socket makes the kernel copy every reply to it.
        async with Prober() as prober:
            await prober.start(specs[:1])
            for task_per_probe in (False, True):
                if profile is not None:
                    profile.enable()
                runs.append(
                    await run_linkmon(prober, specs, options.timeout, task_per_probe=task_per_probe)
                )
                if profile is not None:
                    profile.disable()
            fds, sockets, rss = process_footprint()
            modes = ", ".join(
                f"{'IPv4' if e.family == socket.AF_INET else 'IPv6'} {e.mode}"
                for e in prober.icmp_engines
            )
            engines = len(prober.icmp_engines)
        runs.append(
            await run_fping(fping, addresses, options.count, options.spacing, options.timeout)
        )
    sample = addresses[: options.icmplib_targets]
    peer = await run_icmplib(sample, options.count, options.spacing, options.timeout)
    print(
        f"{options.targets} loopback targets x {options.count} echoes, spacing "
        f"{options.spacing * 1000:g} ms, timeout {options.timeout:g} s, {options.repeat} runs each"
    )
    print("run tool          echoes   lost   cpu s  wall s  us/echo")
    for number, run in enumerate(runs):
        print(
            f"{number // 3 + 1:>3} {run.tool:<12} {run.echoes:>7} {run.lost:>6} "
            f"{run.cpu_seconds:>7.3f} {run.wall_seconds:>7.3f} {run.us_per_echo:>8.2f}"
        )
    median = {
        tool: statistics.median(r.us_per_echo for r in runs if r.tool == tool)
        for tool in ("linkmon", "linkmon/task", "fping")
    }
    print(
        f"median CPU per echo: fping {median['fping']:.2f} us; "
        f"linkmon engine (run_many) {median['linkmon']:.2f} us, "
        f"ratio {median['linkmon'] / median['fping']:.2f} (goal <= 1.5); "
        f"a task per probe (run) {median['linkmon/task']:.2f} us, "
        f"ratio {median['linkmon/task'] / median['fping']:.2f}"
    )
    for tool in ("linkmon", "linkmon/task", "fping"):
        lost = sum(r.lost for r in runs if r.tool == tool)
        print(f"{tool} replies lost: {lost} of {sum(r.echoes for r in runs if r.tool == tool)}")
    print(
        f"icmplib {icmplib.__version__} (async_multiping, defaults), {len(sample)} targets, once: "
        f"{peer.us_per_echo:.2f} us per echo "
        f"(ratio to fping {peer.us_per_echo / median['fping']:.1f}), "
        f"{peer.lost} of {peer.echoes} replies lost, wall {peer.wall_seconds:.1f} s"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"linkmon ICMP sockets: {engines} ({modes}); open fds {fds} (sockets {sockets}); "
        f"RSS {rss / 1024:.1f} MiB, peak {peak:.1f} MiB"
    )
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5000, help="loopback targets (default 5000)")
    parser.add_argument("--count", type=int, default=5, help="echoes per target (default 5)")
    parser.add_argument("--spacing", type=float, default=0.1, help="seconds between echoes")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds a round may take")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile linkmon's runs")
    parser.add_argument(
        "--icmplib-targets",
        type=int,
        default=1000,
        help="targets icmplib gets (default 1000; about 13 s of wall time)",
    )
    options = parser.parse_args()
    if not 1 <= options.targets <= 60000:
        parser.error("--targets must be between 1 and 60000")
    if not 1 <= options.icmplib_targets <= options.targets:
        parser.error("--icmplib-targets must be between 1 and --targets")
    if not 1 <= options.count <= 100 or options.repeat < 1:
        parser.error("--count must be between 1 and 100 and --repeat at least 1")
    if options.spacing * (options.count - 1) >= options.timeout:
        parser.error("--timeout must be longer than (count - 1) x spacing")
    return asyncio.run(bench(options))


if __name__ == "__main__":
    sys.exit(main())
