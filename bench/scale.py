"""Scale: the linkmon daemon, fping and blackbox_exporter on N loopback targets, same rate.

For each N: ``linkmon run`` with N links (one ICMP probe each, COUNT echoes, every INTERVAL),
a TCP probe on 10 % of them (to a few loopback listeners); its CPU, RSS, fds, ICMP sockets,
replies lost, false failures and scheduler lag over INTERVALS intervals, then as long again
while /metrics is scraped every second. Then, each alone (an open raw socket gets a copy of
every reply, which would bill one tool for another): fping sending the same echoes at the same
rate, blackbox_exporter driven with the same ICMP probes (one echo each: blackbox sends one)
and the same TCP probes at the same rate, and a TCP-only linkmon for its CPU per TCP probe.

    .venv/bin/python bench/scale.py --targets 1000 5000 10000
    .venv/bin/python bench/scale.py --quick          # 1,000 targets only
    .venv/bin/python bench/scale.py --targets 3000 --linkmon-only   # before/after a change
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common as c

LAG = "linkmon_scheduler_lag_seconds"
COUNTERS = (
    "linkmon_probe_packets_sent_total",
    "linkmon_probe_packets_received_total",
    "linkmon_probe_failures_total",
    f"{LAG}_count",
)
TCP_LISTENERS = 4
PHASE_LIMIT = 900.0  # no phase of one N runs longer, whatever the options


@dataclass
class Window:
    """One measured window of the daemon."""

    cpu_percent: float
    rss: float
    echoes: float
    lost: float
    failures: float
    rounds: float
    lag_p50: float
    lag_p99: float
    within_20ms: float
    cpu_us_per_echo: float
    scrape_median: float = float("nan")
    scrape_max: float = float("nan")
    scrape_bytes: int = 0


def daemon_window(pid: int, url: str, seconds: float, scrape: bool, nominal: float) -> Window:
    """``nominal``: echoes the schedule sends in ``seconds``, used when the packet counters
    are not exported (``metrics_detail: link``); replies lost are then unknown (nan)."""
    before, _ = c.get(url + "/metrics")
    scraper = c.Scraper(url, 1.0, seconds + 5) if scrape else None
    usage = c.Usage(pid)
    if scraper is not None:
        scraper.start()
    c.watch(usage, seconds)
    if scraper is not None:
        scraper.stop()
    after, _ = c.get(url + "/metrics")
    s0, s1 = c.metric_sums(before, COUNTERS), c.metric_sums(after, COUNTERS)
    h0, h1 = c.histogram(before, LAG), c.histogram(after, LAG)
    echoes = s1[COUNTERS[0]] - s0[COUNTERS[0]]
    received = s1[COUNTERS[1]] - s0[COUNTERS[1]] if echoes else float("nan")
    echoes = echoes or nominal
    window = Window(
        cpu_percent=usage.percent,
        rss=max(usage.rss),
        echoes=echoes,
        lost=echoes - received,
        failures=s1[COUNTERS[2]] - s0[COUNTERS[2]],
        rounds=s1[COUNTERS[3]] - s0[COUNTERS[3]],
        lag_p50=c.histogram_quantile(h0, h1, 0.5),
        lag_p99=c.histogram_quantile(h0, h1, 0.99),
        within_20ms=c.share_within(h0, h1, 0.02),
        # the echoes are counted between the two reads that bracket the CPU window
        cpu_us_per_echo=usage.cpu * 1e6 / echoes if echoes else float("nan"),
    )
    if scraper is not None and scraper.durations:
        window.scrape_median = c.median(scraper.durations)
        window.scrape_max = max(scraper.durations)
        window.scrape_bytes = scraper.sizes[-1]
    return window


def wait_ready(url: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            c.get(url + "/readyz", timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"linkmon not ready within {limit:.0f} s")


@dataclass
class DaemonRun:
    quiet: Window
    scraped: Window
    fds: int
    icmp_sockets: int
    startup: float


def run_linkmon(
    workdir: Path,
    addresses: list[str],
    tcp: list[str],
    options: argparse.Namespace,
    detail: str | None,
) -> DaemonRun:
    config = workdir / "linkmon.yml"
    url = c.write_config(
        config,
        addresses,
        interval=options.interval,
        timeout=options.timeout,
        count=options.count,
        spacing=options.spacing,
        tcp_targets=tcp,
        detail=detail,
    )
    started = time.monotonic()
    with c.running_linkmon(config, url, ready_timeout=120) as daemon:
        wait_ready(url, 120)
        startup = time.monotonic() - started
        time.sleep(options.interval)  # every probe has run once: steady state
        seconds = options.intervals * options.interval
        nominal = len(addresses) * options.count * seconds / options.interval
        quiet = daemon_window(daemon.process.pid, url, seconds, scrape=False, nominal=nominal)
        scraped = daemon_window(daemon.process.pid, url, seconds, scrape=True, nominal=nominal)
        fds, _ = c.fds(daemon.process.pid)
        sockets = c.icmp_sockets(daemon.process.pid)
    return DaemonRun(quiet, scraped, fds, sockets, startup)


def run_linkmon_tcp(workdir: Path, tcp: list[str], options: argparse.Namespace) -> float:
    """CPU per TCP probe of a daemon with TCP probes only (µs), same rate as in the mix."""
    config = workdir / "linkmon-tcp.yml"
    url = c.write_config(
        config,
        [],
        interval=options.interval,
        timeout=options.timeout,
        count=options.count,
        spacing=options.spacing,
        tcp_targets=tcp,
    )
    with c.running_linkmon(config, url, ready_timeout=60) as daemon:
        wait_ready(url, 60)
        time.sleep(options.interval)
        seconds = options.intervals * options.interval
        before, _ = c.get(url + "/metrics")
        usage = c.Usage(daemon.process.pid)
        c.watch(usage, seconds)
        after, _ = c.get(url + "/metrics")
    rounds = (
        c.metric_sums(after, [f"{LAG}_count"])[f"{LAG}_count"]
        - c.metric_sums(before, [f"{LAG}_count"])[f"{LAG}_count"]
    )
    return usage.cpu * 1e6 / rounds if rounds else float("nan")


def run_fping(addresses: list[str], options: argparse.Namespace) -> tuple[float, float, int]:
    """fping -C COUNT every INTERVAL, INTERVALS times: CPU %, µs per echo, replies lost."""
    fping = shutil.which("fping")
    if fping is None:
        raise SystemExit("fping is not installed")
    lost = 0
    with tempfile.NamedTemporaryFile("w", suffix=".targets") as listing:
        listing.write("\n".join(addresses) + "\n")
        listing.flush()
        cpu0, t0 = c.children_cpu(), time.monotonic()
        for round_ in range(options.intervals):
            due = t0 + round_ * options.interval
            time.sleep(max(0.0, due - time.monotonic()))
            done = subprocess.run(
                [
                    fping,
                    "-C",
                    str(options.count),
                    "-q",
                    "-i",
                    "0",
                    "-p",
                    str(round(options.spacing * 1000)),
                    "-t",
                    str(round(options.timeout * 1000)),
                    "-f",
                    listing.name,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            lost += sum(
                line.split(" : ", 1)[1].split().count("-")
                for line in done.stderr.splitlines()
                if " : " in line
            )
        time.sleep(max(0.0, t0 + options.intervals * options.interval - time.monotonic()))
        cpu, wall = c.children_cpu() - cpu0, time.monotonic() - t0
    echoes = len(addresses) * options.count * options.intervals
    return 100 * cpu / wall, cpu * 1e6 / echoes, lost


def run_blackbox(
    workdir: Path,
    paths: list[str],
    options: argparse.Namespace,
) -> tuple[float, float, c.DriveResult]:
    """blackbox_exporter driven with every path once per interval: CPU %, µs per probe."""
    with c.blackbox(workdir, options.timeout) as (url, process):
        usage = c.Usage(process.pid)
        usage.start()
        result = asyncio.run(
            c.drive(url, paths, options.interval, options.intervals * options.interval)
        )
        usage.stop()
    done = result.ok + result.failed
    return usage.percent, usage.cpu * 1e6 / done if done else float("nan"), result


def bench_one(n: int, options: argparse.Namespace) -> None:
    addresses = c.loopback_targets(n)
    with (
        tempfile.TemporaryDirectory(prefix="linkmon-bench-") as tmp,
        c.tcp_listeners(TCP_LISTENERS) as (listeners, _),
    ):
        workdir = Path(tmp)
        tcp = [listeners[i % len(listeners)] for i in range(n // 10)]
        print(
            f"\n== {n} ICMP targets x {options.count} echoes every {options.interval:g} s "
            f"+ {len(tcp)} TCP probes; {options.intervals} intervals per window ==",
            flush=True,
        )
        started = time.monotonic()
        runs = {
            detail or "full": run_linkmon(workdir, addresses, tcp, options, detail)
            for detail in options.detail
        }
        if options.linkmon_only:
            print_linkmon(runs)
            return
        tcp_us = run_linkmon_tcp(workdir, tcp, options) if tcp else float("nan")
        f_percent, f_us, f_lost = run_fping(addresses, options)
        b_percent, b_us, b_icmp = run_blackbox(
            workdir, [f"/probe?module=icmp&target={a}" for a in addresses], options
        )
        bt_percent, bt_us, b_tcp = (
            run_blackbox(workdir, [f"/probe?module=tcp_connect&target={t}" for t in tcp], options)
            if tcp
            else (float("nan"), float("nan"), c.DriveResult())
        )
        if time.monotonic() - started > PHASE_LIMIT:
            print(f"(took {time.monotonic() - started:.0f} s)")

    echoes_per_s = n * options.count / options.interval
    print(f"rate: {echoes_per_s:,.0f} echoes/s, {len(tcp) / options.interval:,.0f} TCP probes/s")
    print_linkmon(runs)
    print(
        f"{'fping -C (same echoes)':<28}{f_percent:>7.1f}{f_us:>9.2f}{'':>9}{'':>6}{'':>11}"
        f"{f_lost:>7}"
    )
    print(
        f"{'blackbox icmp (1 echo/probe)':<28}{b_percent:>7.1f}{b_us:>9.2f}{'':>9}{'':>6}"
        f"{'':>11}{b_icmp.sent - b_icmp.ok:>7}{b_icmp.failed:>11}"
        f"{c.median(b_icmp.late) * 1000:>11.2f}{c.quantile(b_icmp.late, 0.99) * 1000:>11.2f}"
    )
    for detail, run in runs.items():
        w = run.quiet
        print(
            f"linkmon ({detail}): whole daemon {w.cpu_us_per_echo:.2f} us/echo incl. TCP, "
            f"{w.cpu_us_per_echo / f_us:.2f}x fping (goal <= 5); "
            f"{w.cpu_us_per_echo / b_us:.2f}x blackbox icmp; ready after {run.startup:.1f} s"
        )
        s = run.scraped
        print(
            f"  while scraped: /metrics answered in median {s.scrape_median:.3f} s, "
            f"max {s.scrape_max:.3f} s, {s.scrape_bytes / 1e6:.1f} MB; rounds "
            f"{w.rounds:.0f} quiet, {s.rounds:.0f} scraped"
        )
    if tcp:
        print(
            f"TCP CPU per probe: linkmon (TCP-only daemon) {tcp_us:.0f} us, blackbox "
            f"{bt_us:.0f} us ({bt_percent:.1f} % CPU), ratio {tcp_us / bt_us:.2f} (goal <= 1); "
            f"blackbox tcp failed {b_tcp.failed}, errors {b_tcp.errors} of {b_tcp.sent}"
        )
    print(
        f"blackbox icmp: {b_icmp.sent} probes driven, {b_icmp.ok} ok, {b_icmp.failed} failed, "
        f"{b_icmp.errors} errors; driver late p99 {c.quantile(b_icmp.late, 0.99) * 1000:.1f} ms",
        flush=True,
    )


def print_linkmon(runs: dict[str, DaemonRun]) -> None:
    print(
        f"{'tool':<28}{'CPU %':>7}{'us/echo':>9}{'RSS MiB':>9}{'fds':>6}{'ICMP socks':>11}"
        f"{'lost':>7}{'false fail':>11}{'lag p50 ms':>11}{'lag p99 ms':>11}{'<=20ms':>8}"
    )
    for detail, run in runs.items():
        for name, w in (
            (f"linkmon ({detail})", run.quiet),
            (f"linkmon ({detail}) scraped 1/s", run.scraped),
        ):
            print(
                f"{name:<28}{w.cpu_percent:>7.1f}{w.cpu_us_per_echo:>9.2f}{w.rss:>9.1f}"
                f"{run.fds:>6}{run.icmp_sockets:>11}{w.lost:>7.0f}{w.failures:>11.0f}"
                f"{w.lag_p50 * 1000:>11.2f}{w.lag_p99 * 1000:>11.2f}{w.within_20ms:>8.2%}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--intervals", type=int, default=3, help="intervals per window (>= 3)")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--spacing", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument(
        "--detail",
        nargs="+",
        choices=["full", "link"],
        default=["full"],
        help="server.metrics_detail values to run linkmon with",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 targets only")
    parser.add_argument(
        "--linkmon-only",
        action="store_true",
        help="the linkmon daemon alone, no peers: to compare two versions of linkmon",
    )
    options = parser.parse_args()
    if options.quick:
        options.targets = [1000]
    options.detail = [None if d == "full" else d for d in options.detail]
    if any(not 1 <= n <= 60000 for n in options.targets) or options.intervals < 1:
        parser.error("--targets between 1 and 60000, --intervals at least 1")
    print(f"bench/scale.py on {sys.platform}, {__import__('os').cpu_count()} cores")
    for n in options.targets:
        bench_one(n, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
