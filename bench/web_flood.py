"""What a flood of idle connections costs the web side: /healthz latency and CPU per connection.

The attack of issue #12 (item 2), as ``tests/linkmon/test_exhaustion.py`` makes it: the daemon
at an open-file limit of 1,024 (soft and hard), ``--connections`` held against its port by
``tests.support.idle_clients`` (half silent, half slow-loris), each one the server closes
opened again at once. For ``--seconds``, a fresh connection asks for the health endpoint every
``--every`` seconds (5 s timeout, a failure counted as such). Printed per server: answers,
failures, median / p99 / max latency, the server's CPU (user and system, % of a core), the
connections the flood had closed per second, and the server's CPU per closed connection. And
for linkmon whether both links (an ICMP and a TCP probe on loopback) stayed up.

The peer is blackbox_exporter (Go's net/http behind prometheus/exporter-toolkit) at the same
limit under the same flood, asked for ``/-/healthy``. With ``--compare CHECKOUT`` (another
checkout with its own ``.venv``) that checkout's linkmon runs too; the servers take turns for
``--repeat`` rounds.

    .venv/bin/python bench/web_flood.py
    .venv/bin/python bench/web_flood.py --repeat 3 --compare /tmp/wt-main

Run as root (the ICMP probe). Traffic stays on loopback; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import BLACKBOX, CLOCK_TICKS, ROOT, free_port, get

from tests.support.daemon import parse_metrics, value
from tests.support.idle_clients import holding_idle_connections
from tests.support.loopback import SwitchableLink, link_yaml, tcp_probe, write_config

OPEN_FILES = 1024
LINKS = ("kab-a--dc", "kec-b--kab")


@dataclass
class Server:
    name: str
    pid: int
    port: int
    health_url: str
    links_up: Callable[[], bool] | None = None


def cpu_split(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds:g} s")


@contextmanager
def linkmon(checkout: Path, workdir: Path, target: SwitchableLink) -> Iterator[Server]:
    port = free_port()
    links = link_yaml("kab-a--dc", "{kind: icmp, target: 127.0.0.1}") + link_yaml(
        "kec-b--kab", tcp_probe(target.target)
    )
    config = write_config(
        workdir / f"{checkout.name}-{port}.yml",
        port=port,
        links=links,
        interval="500ms",
        timeout="400ms",
    )
    base = f"http://127.0.0.1:{port}"
    with (workdir / f"{checkout.name}-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            ["prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}"]
            + [str(checkout / ".venv/bin/linkmon"), "run", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )

    def links_up() -> bool:
        try:
            body, _ = get(base + "/metrics", timeout=5)
        except OSError:
            return False
        samples = parse_metrics(body.decode())
        return all(value(samples, "linkmon_link_up", link=link) == 1 for link in LINKS)

    try:
        ready(base + "/healthz")
        deadline = time.monotonic() + 15
        while not links_up() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield Server(f"linkmon {checkout}", process.pid, port, base + "/healthz", links_up)
    finally:
        process.kill()
        process.wait()


@contextmanager
def blackbox(workdir: Path) -> Iterator[Server]:
    config = workdir / "blackbox.yml"
    config.write_text("modules: {tcp_connect: {prober: tcp, timeout: 1s}}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}"]
        + [BLACKBOX, f"--config.file={config}", f"--web.listen-address={base[7:]}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready(base + "/-/healthy")
        yield Server("blackbox_exporter", process.pid, port, base + "/-/healthy")
    finally:
        process.kill()
        process.wait()


def flood(server: Server, args: argparse.Namespace) -> dict[str, float]:
    """The flood against ``server`` for ``args.seconds``; what it cost and how /healthz fared."""
    latencies: list[float] = []
    failures = 0
    links_down = 0
    with holding_idle_connections(
        server.port, args.connections, seconds=args.seconds + 15
    ) as clients:
        user0, sys0 = cpu_split(server.pid)
        began = time.monotonic()
        while time.monotonic() - began < args.seconds:
            asked = time.monotonic()
            try:
                get(server.health_url, timeout=5)
                latencies.append(time.monotonic() - asked)
            except OSError:
                failures += 1
            if server.links_up is not None and not server.links_up():
                links_down += 1
            time.sleep(max(0.0, args.every - (time.monotonic() - asked)))
        wall = time.monotonic() - began
        user1, sys1 = cpu_split(server.pid)
        counts = clients.stop()
    closed = counts.get("closed_by_server", 0)
    cpu = (user1 - user0) + (sys1 - sys0)
    latencies.sort()
    return {
        "answers": len(latencies),
        "failures": failures,
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[len(latencies) * 99 // 100] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "user%": 100 * (user1 - user0) / wall,
        "sys%": 100 * (sys1 - sys0) / wall,
        "closed/s": closed / wall,
        "us/closed": 1e6 * cpu / closed if closed else float("nan"),
        "links down seen": links_down,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--every", type=float, default=0.05, help="seconds between two asks")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--compare", type=Path, help="another checkout with its own .venv")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the daemon probes by ICMP")
    checkouts = [ROOT] + ([args.compare.resolve()] if args.compare else [])
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    target = SwitchableLink()
    try:
        with tempfile.TemporaryDirectory(prefix="web-flood-") as tmp:
            workdir = Path(tmp)
            for _ in range(args.repeat):
                for checkout in checkouts:
                    with linkmon(checkout, workdir, target) as server:
                        results[server.name].append(flood(server, args))
                with blackbox(workdir) as server:
                    results[server.name].append(flood(server, args))
    finally:
        target.close()
    print(
        f"{args.connections} connections, {args.seconds:g} s a round, {args.repeat} round(s); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    for name, rounds in results.items():
        for figures in rounds:
            print(
                f"{name}: "
                + ", ".join(
                    f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in figures.items()
                )
            )


if __name__ == "__main__":
    main()
