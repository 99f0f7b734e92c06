"""Exposition: /metrics render time and size at N links, full and link detail, vs blackbox.

Builds the daemon's own Monitor and Metrics for N links (one ICMP probe each, every probe
having reported a round), then renders /metrics ``--repeat`` times per detail level; while a
render runs in a thread (as /metrics does), an asyncio ticker in the main thread measures how
late its 1 ms sleeps wake up — the stall a scrape causes the probe loop. Beside it,
blackbox_exporter's answer for the same kind of probe: the bytes Prometheus fetches from it
for N targets (one /probe each) and its render time per probe.

    .venv/bin/python bench/exposition.py --targets 10000
    .venv/bin/python bench/exposition.py --quick     # 2,000 links, 3 renders
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

import common as c

from linkmon.config import load_config
from linkmon.metrics import Metrics
from linkmon.monitor import Monitor
from probes import ProbeResult


def loaded_metrics(workdir: Path, n: int, detail: str) -> Metrics:
    config_path = workdir / f"exposition-{detail}.yml"
    c.write_config(
        config_path,
        c.loopback_targets(n),
        interval=10,
        timeout=2,
        count=5,
        spacing=0.1,
        detail=detail,
    )
    config = load_config(config_path)
    metrics = Metrics(config.agent.name, detail=config.server.metrics_detail)
    monitor = Monitor(config, metrics)
    now = time.time()
    for i, link in enumerate(config.links):
        rtts = tuple(0.0004 + 0.00001 * ((i + k) % 7) for k in range(5))
        monitor.observe(
            link.id,
            0,
            ProbeResult(
                kind="icmp",
                target=link.probes[0].target_label,
                success=True,
                packets_sent=5,
                packets_received=5,
                rtts=rtts,
                duration=sum(rtts) / 5,
            ),
            now,
        )
    if monitor.storage is not None:
        monitor.storage.close()
    return metrics


async def render_with_ticker(metrics: Metrics) -> tuple[float, int, float, float]:
    """Render in a thread as /metrics does; meanwhile measure the loop's wake-up lateness."""
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            late.append(loop.time() - due)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    body = await asyncio.to_thread(metrics.render)
    took = time.perf_counter() - started
    done.set()
    await task
    return took, len(body), c.quantile(late, 0.99), max(late, default=0.0)


def blackbox_probe(workdir: Path, samples: int) -> tuple[int, float]:
    """Median bytes and seconds of one blackbox /probe?module=icmp answer on loopback."""
    sizes, times = [], []
    with c.blackbox(workdir, 2.0) as (url, _):
        for address in c.loopback_targets(samples):
            body, took = c.get(f"{url}/probe?module=icmp&target={address}")
            sizes.append(len(body))
            times.append(took)
    return int(c.median(sizes)), c.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    if options.quick:
        options.targets, options.repeat = 2000, 3
    if not 1 <= options.targets <= 60000 or not 1 <= options.repeat <= 50:
        parser.error("--targets 1..60000, --repeat 1..50")
    n = options.targets
    logging.disable(logging.WARNING)  # 10,000 "unknown -> up" lines are not the benchmark
    print(f"{n} links, one ICMP probe each, every probe has reported; {options.repeat} renders")
    print(
        f"{'exporter':<24}{'series':>9}{'MB':>8}{'render s (median)':>19}{'max s':>8}"
        f"{'loop late p99 ms':>18}{'max ms':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="linkmon-bench-") as tmp:
        workdir = Path(tmp)
        medians = {}
        for detail in ("full", "link"):
            metrics = loaded_metrics(workdir, n, detail)
            runs = [asyncio.run(render_with_ticker(metrics)) for _ in range(options.repeat)]
            body = metrics.render()
            series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            medians[detail] = c.median([r[0] for r in runs])
            print(
                f"{'linkmon ' + detail:<24}{series:>9}{runs[0][1] / 1e6:>8.2f}"
                f"{medians[detail]:>19.3f}{max(r[0] for r in runs):>8.3f}"
                f"{c.median([r[2] for r in runs]) * 1000:>18.1f}"
                f"{max(r[3] for r in runs) * 1000:>8.1f}"
            )
            del metrics
        size, took = blackbox_probe(workdir, 20)
        print(
            f"{'blackbox (N x /probe)':<24}{'':>9}{size * n / 1e6:>8.2f}{took * n:>19.3f}"
            f"{'':>8}   ({size} B and {took * 1000:.2f} ms per /probe, x {n})"
        )
    print(
        f"full render {medians['full']:.3f} s (goal < 1 s); link detail "
        f"{medians['link']:.3f} s, {medians['full'] / medians['link']:.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
