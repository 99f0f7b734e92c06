"""The fleet view at national scale: 500 agents in one real Prometheus, read by linkmon.

A stand-in exporter serves 500 agents' /metrics from one loopback port (one path per agent, so
Prometheus has 500 targets with an ``up`` each). Each agent's text is rendered by linkmon's own
:class:`linkmon.metrics.Metrics` at ``metrics_detail: link``, as a kabupaten agent with its DC
and DRC uplinks (ICMP, TCP, HTTPS) and 14 kecamatan would export it: sites, link states,
services, per-probe success, loss and RTT. About 2 % of kecamatan links are down; ``--silent``
agents answer 503, so every refresh also runs the look-back round for silent agents.

Debian's Prometheus scrapes them all every ``--scrape`` seconds for ``--warmup`` seconds; then:

- the fleet read (all queries + the merge into one document, in-process), ``--repeat`` times;
- ``linkmon status --prometheus URL`` as a command (process start, read, render), likewise;
- ``linkmon fleet``: its first answer (a refresh) and cached answers;
- the central Prometheus' head series (``prometheus_tsdb_head_series``), samples appended per
  second and resident memory (``process_resident_memory_bytes``), read from its /metrics.

    .venv/bin/python bench/fleet.py                 # 500 agents, 15 s scrape, 60 s warm-up
    .venv/bin/python bench/fleet.py --quick         # 100 agents, 5 s scrape, 15 s warm-up

Loopback only; every wait is bounded and the whole run stops after ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import common as c

from linkmon.fleet.model import Settings, fleet_document
from linkmon.fleet.prometheus import Prometheus
from linkmon.fleet.queries import read
from linkmon.metrics import Metrics
from probes import ProbeResult
from tests.support.prometheus import ScrapeTarget, running_prometheus

LINKMON = str(Path(sys.executable).with_name("linkmon"))
APPENDED = "prometheus_tsdb_head_samples_appended_total"
KECAMATAN = 14
PROVINCES = 34
DOWN_EVERY = 50  # one kecamatan link in 50 is down


def agent_metrics(n: int, agents: int) -> bytes:
    """What agent ``n`` of a fleet exports, rendered by linkmon's own Metrics."""
    name, province = f"kab-{n:03d}", f"prov-{n * PROVINCES // agents:02d}"
    metrics = Metrics(name, detail="link")
    sites = [
        ("pusat-dc", "pusat", "Data Center Ditjen Dukcapil", "", "", "Asia/Jakarta"),
        ("pusat-drc", "drc", "DRC Batam", "", "", "Asia/Jakarta"),
        (province, "provinsi", f"Provinsi {province}", "", "", "Asia/Makassar"),
        (name, "kabupaten", f"Disdukcapil Kabupaten {n:03d}", province, name, "Asia/Makassar"),
        *(
            (f"kec-{n:03d}-{k:02d}", "kecamatan", f"Kecamatan {n:03d}-{k:02d}", name, name,
             "Asia/Makassar")
            for k in range(KECAMATAN)
        ),
    ]  # fmt: skip
    metrics.set_sites(
        dict(zip(("site", "kind", "name", "parent", "kabupaten", "timezone"), s, strict=True))
        | {"agent": name}
        for s in sites
    )
    uplinks: list[tuple[str, str, str, str, tuple[str, ...]]] = [
        (f"{name}--dc", name, "pusat-dc", "vpn", ("icmp", "tcp", "http")),
        (f"{name}--drc", name, "pusat-drc", "vpn", ("icmp", "tcp")),
    ]
    kecamatan: list[tuple[str, str, str, str, tuple[str, ...]]] = [
        (f"kec-{n:03d}-{k:02d}--kab", f"kec-{n:03d}-{k:02d}", name, "m2m", ("icmp",))
        for k in range(KECAMATAN)
    ]
    now = time.time()
    for index, (link, from_site, to_site, network, kinds) in enumerate(uplinks + kecamatan):
        down = index >= 2 and (n * KECAMATAN + index) % DOWN_EVERY == 0
        labels = {
            "agent": name,
            "link": link,
            "from": from_site,
            "to": to_site,
            "network": network,
            "kabupaten": name,
        }
        for kind in kinds:
            target = {"icmp": f"198.18.{n % 250}.{index + 1}", "tcp": "198.18.1.1:443"}.get(
                kind, "https://198.18.1.1/health"
            )
            rtts = () if down else (0.020 + 0.001 * index, 0.021, 0.022)
            metrics.observe_probe(
                {**labels, "kind": kind, "target": target},
                ProbeResult(
                    kind=kind,
                    target=target,
                    success=not down,
                    packets_sent=3 if kind == "icmp" else 0,
                    packets_received=len(rtts) if kind == "icmp" else 0,
                    rtts=rtts if kind == "icmp" else (),
                    duration=0.02,
                ),
            )
        metrics.set_link(labels, "down" if down else "up", now - 3600, False, False, False)
        if from_site != name:
            metrics.set_service(from_site, name, 0.0 if down else 1.0)
    metrics.set_service(name, name, 1.0)
    metrics.config_loaded(True)
    for kind in ("icmp", "tcp", "http"):
        metrics.probe_errors.labels(name, kind)
    metrics.alerts_queued.labels(name, "am").set(0)
    for result in ("success", "retry", "dropped"):
        metrics.alert_deliveries.labels(name, "am", result)
    return metrics.render()


def serve_agents(bodies: dict[str, bytes], silent: set[str], ready: Connection) -> None:
    """``GET /agents/<name>/metrics`` for every agent, the silent ones 503, until killed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            agent = self.path.removeprefix("/agents/").removesuffix("/metrics")
            body = bodies.get(agent)
            if body is None or agent in silent:
                self.send_error(404 if body is None else 503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

        def handle_one_request(self) -> None:
            with contextlib.suppress(ConnectionError):  # a scrape that timed out hangs up
                super().handle_one_request()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever(poll_interval=0.1)


@contextlib.contextmanager
def stand_in_exporter(bodies: dict[str, bytes], silent: set[str]) -> Iterator[int]:
    """The agents' exporter in a process of its own: the fleet read measured here must not
    starve it (a scrape that times out makes an agent silent)."""
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=serve_agents, args=(bodies, silent, child), daemon=True
    )
    process.start()
    try:
        if not parent.poll(30):
            raise SystemExit("the stand-in exporter did not start within 30 s")
        yield int(parent.recv())
    finally:
        process.terminate()
        process.join(timeout=10)


async def fleet_reads(url: str, repeat: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """Seconds of the queries and of the merge, apart, ``repeat`` times; the last document."""
    asked, merged = [], []
    settings = Settings()
    async with Prometheus(url, timeout=60) as prometheus:
        for _ in range(repeat):
            started = time.perf_counter()
            readings = await read(prometheus, settings.scope, time.time(), 90.0, 86400.0)
            asked.append(time.perf_counter() - started)
            started = time.perf_counter()
            doc = fleet_document(readings, settings)
            merged.append(time.perf_counter() - started)
    return asked, merged, doc


def timed_command(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, timeout=120)
    return time.perf_counter() - started, done.returncode


def fleet_server_times(prometheus: str, repeat: int) -> tuple[float, list[float]]:
    """``linkmon fleet``'s first answer (one refresh) and then cached answers."""
    port = c.free_port()
    process = subprocess.Popen(
        [LINKMON, "fleet", "--prometheus", prometheus, "--listen", f"127.0.0.1:{port}",
         "--refresh", "600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                c.get(url + "/healthz", timeout=2)
                break
            time.sleep(0.1)
        _, first = c.get(url + "/api/v1/status", timeout=120)
        cached = [c.get(url + "/api/v1/status", timeout=30)[1] for _ in range(repeat)]
        return first, cached
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--silent", type=int, default=5, help="agents whose scrape fails")
    parser.add_argument("--scrape", type=float, default=15.0, help="scrape interval, seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of scraping first")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=float, default=600.0, help="stop the run after this")
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    if options.quick:
        options.agents, options.scrape, options.warmup, options.repeat = 100, 5.0, 15.0, 3
    if not (1 <= options.agents <= 2000 and 0 <= options.silent < options.agents):
        parser.error("--agents 1..2000, --silent below --agents")
    if not (1 <= options.scrape <= 60 and options.warmup >= 2 * options.scrape):
        parser.error("--scrape 1..60 s and --warmup at least two scrapes")
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"stopped after --limit {options.limit} s"))
    signal.alarm(int(options.limit))

    n = options.agents
    started = time.perf_counter()
    bodies = {f"kab-{i:03d}": agent_metrics(i, n) for i in range(n)}
    silent = {f"kab-{i:03d}" for i in range(0, n, max(1, n // max(1, options.silent)))}
    silent = set(sorted(silent)[: options.silent])
    lines = sum(body.count(b"\n") - body.count(b"\n#") for body in bodies.values())
    print(
        f"{n} agents x {KECAMATAN} kecamatan (+ DC and DRC uplinks), metrics_detail link: "
        f"{lines / n:.0f} series per agent, {sum(map(len, bodies.values())) / n / 1024:.0f} KiB "
        f"per scrape; {len(silent)} agents silent (503); rendered in "
        f"{time.perf_counter() - started:.1f} s"
    )
    with (
        tempfile.TemporaryDirectory(prefix="linkmon-fleet-bench-") as tmp,
        stand_in_exporter(bodies, silent) as port,
        running_prometheus(
            Path(tmp),
            [
                ScrapeTarget(
                    f"127.0.0.1:{port}",
                    {"agent": agent, "__metrics_path__": f"/agents/{agent}/metrics"},
                )
                for agent in sorted(bodies)
            ],
            interval=options.scrape,
        ) as central,
    ):
        prometheus = central.url
        time.sleep(options.warmup)  # the scrapes this bench is about: bounded by --warmup
        before, at = c.prometheus_own(prometheus, APPENDED), time.monotonic()
        time.sleep(options.scrape)
        rate = (c.prometheus_own(prometheus, APPENDED) - before) / (time.monotonic() - at)
        print(
            f"central Prometheus after {options.warmup:g} s at a {options.scrape:g} s scrape: "
            f"{c.prometheus_own(prometheus, 'prometheus_tsdb_head_series'):,.0f} head series, "
            f"{rate:,.0f} samples/s, "
            f"{c.prometheus_own(prometheus, 'process_resident_memory_bytes') / 2**20:.0f} MiB "
            "resident"
        )

        asked, merged, doc = asyncio.run(fleet_reads(prometheus, options.repeat))
        silent_seen = sum(a["state"] == "silent" for a in doc["agents"])
        print(
            f"fleet read, in-process, median of {options.repeat}: queries "
            f"{c.median(asked):.2f} s (max {max(asked):.2f}), merge {c.median(merged):.2f} s "
            f"(max {max(merged):.2f}): {len(doc['sites']):,} sites, {len(doc['links']):,} "
            f"links, {len(doc['agents'])} agents ({silent_seen} silent), state "
            f"{doc['summary']['state']}"
        )
        command = [LINKMON, "status", "--prometheus", prometheus, "--timeout", "60"]
        runs = [timed_command(command) for _ in range(options.repeat)]
        nagios = [timed_command([*command, "--nagios"]) for _ in range(options.repeat)]
        one = [
            timed_command([*command, "--nagios", "--kabupaten", "kab-001"])
            for _ in range(options.repeat)
        ]
        print(
            f"linkmon status --prometheus (the command, whole fleet): tree median "
            f"{c.median([t for t, _ in runs]):.2f} s (exit {runs[0][1]}), --nagios median "
            f"{c.median([t for t, _ in nagios]):.2f} s; one kabupaten --nagios median "
            f"{c.median([t for t, _ in one]):.2f} s (exit {one[0][1]})"
        )
        first, cached = fleet_server_times(prometheus, options.repeat * 4)
        print(
            f"linkmon fleet /api/v1/status: first answer (one refresh) {first:.2f} s, cached "
            f"median {c.median(cached) * 1000:.0f} ms"
        )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
