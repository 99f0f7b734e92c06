"""Sizing a national deployment: series per agent and link, and what a central Prometheus
pays for 514 agents, measured where it can be.

1. One realistic agent: Kabupaten Nunukan as ``linkmon inventory`` generates it (21 kecamatan,
   2 Starlink backups, DC and DRC uplinks with ICMP/TCP/HTTPS) is built with the daemon's own
   Monitor and Metrics, every probe having reported a good round, and its /metrics is counted
   at ``server.metrics_detail: full`` and ``link``: series for the agent as a whole, per office,
   per kecamatan ICMP link, per uplink. Failure counters (one series per failure reason a probe
   has seen) come on top once links fail.
2. The national estimate from those counts: 514 agents, ~7,250 kecamatan links, a DC and a DRC
   uplink per agent; samples/s at a 15 s and 30 s scrape; disk with Prometheus' own rule of
   thumb (prometheus.io/docs/prometheus/latest/storage, "Operational aspects": "on average,
   Prometheus uses only around 1-2 bytes per sample", needed_disk_space =
   retention_time_seconds * ingested_samples_per_second * bytes_per_sample) for 15, 90, 400 d.
3. Measured: Debian's Prometheus scrapes a stand-in exporter on loopback that serves
   ``--agents`` copies of that agent's /metrics (agent label changed, values rotating among
   three rounds so they do not compress to nothing) for ``--minutes``; printed: head series,
   samples appended per second, RSS and Go heap. RSS after minutes is not the steady state:
   the head block keeps up to 3 h of samples, so memory grows for hours before it levels.

    .venv/bin/python bench/sizing.py                         # 514 agents, 3 min per detail
    .venv/bin/python bench/sizing.py --agents 100 --minutes 1 --detail link
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import common as c

from linkmon.config import parse_config
from linkmon.inventory import build_configs, load_template, read_offices
from linkmon.metrics import Metrics
from linkmon.monitor import Monitor
from probes import ProbeResult
from tests.support.child import stop_process

AGENTS, KECAMATAN_LINKS, UPLINKS_PER_AGENT = 514, 7250, 2
CSV = c.ROOT / "tests" / "testdata" / "inventory" / "nunukan.csv"
TEMPLATE = c.ROOT / "config" / "inventory" / "template.yml"
PROMETHEUS = "/usr/bin/prometheus"
KEC_LINK, DC_LINK, DRC_LINK = "kec-krayan-selatan--kab", "kab-nunukan--dc", "kab-nunukan--drc"
_LINK = re.compile(rb'link="([^"]+)"')
APPENDED = "prometheus_tsdb_head_samples_appended_total"


# -- 1. one agent's series -----------------------------------------------------------------------


def _result(kind: str, target: str, count: int, round_no: int) -> ProbeResult:
    jitter = 0.001 * round_no
    if kind == "icmp":
        rtts = tuple(0.030 + jitter + 0.002 * k for k in range(count))
        return ProbeResult(kind, target, True, sum(rtts) / count, None, "", count, count, rtts)
    if kind == "tcp":
        return ProbeResult(kind, target, True, duration=0.031 + jitter)
    expiry = time.time() + 90 * 86400
    return ProbeResult(
        kind, target, True, duration=0.12 + jitter, http_status=200, tls_cert_expiry=expiry
    )


def agent_renders(workdir: Path, detail: str, rounds: int = 3) -> list[bytes]:
    """The Nunukan agent's /metrics after each of ``rounds`` good rounds of every probe."""
    template = load_template(TEMPLATE)
    template["storage"] = {"path": str(workdir / f"{detail}-{{agent}}.db")}
    template["server"] = {"metrics_detail": detail}
    offices = read_offices(CSV.read_bytes(), CSV.name)
    (generated,) = build_configs(offices, template, CSV.name, workdir)
    config = parse_config(generated.text, base_dir=workdir)
    metrics = Metrics(config.agent.name, detail=config.server.metrics_detail)
    monitor = Monitor(config, metrics)
    renders = []
    for round_no in range(rounds):
        now = time.time()
        for link in config.links:
            for index, probe in enumerate(link.probes):
                count = getattr(probe, "count", 1)
                result = _result(probe.kind, probe.target_label, count, round_no)
                monitor.observe(link.id, index, result, now)
        monitor._publish_services()  # what the daemon's tick does once a state changed
        renders.append(metrics.render())
    if monitor.storage is not None:
        monitor.storage.close()
    return renders


def series_lines(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line and not line.startswith(b"#")]


def count_series(body: bytes) -> dict[str, int]:
    """Series of the whole agent, of one office, of one kecamatan link, of each uplink."""
    per_link: Counter[bytes] = Counter()
    agent_wide = offices = 0
    lines = series_lines(body)
    for line in lines:
        match = _LINK.search(line)
        if match:
            per_link[match[1]] += 1
        elif line.startswith(b"linkmon_service_available{"):
            offices += 1
        else:
            agent_wide += 1
    return {
        "total": len(lines),
        "agent": agent_wide,
        "offices": offices,
        "kecamatan_link": per_link[KEC_LINK.encode()],
        "dc_uplink": per_link[DC_LINK.encode()],
        "drc_uplink": per_link[DRC_LINK.encode()],
    }


def national(counts: dict[str, int]) -> int:
    """Series for 514 agents: agent-wide and uplinks per agent, one service series per office
    (each kabupaten office and each kecamatan), the kecamatan links."""
    return (
        AGENTS * (counts["agent"] + counts["dc_uplink"] + counts["drc_uplink"])
        + (AGENTS + KECAMATAN_LINKS)
        + KECAMATAN_LINKS * counts["kecamatan_link"]
    )


# -- 3. a real Prometheus scraping a stand-in fleet --------------------------------------------


def _handler(renders: list[bytes]) -> type[BaseHTTPRequestHandler]:
    scrapes: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            agent = query.get("agent", ["kab-nunukan"])[0]
            with lock:
                scrapes[agent] += 1
                n = scrapes[agent]
            body = renders[n % len(renders)].replace(
                b'agent="kab-nunukan"', f'agent="{agent}"'.encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def stand_in_fleet(renders: list[bytes]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(renders))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _prometheus_config(port: int, agents: int, interval: int) -> str:
    targets = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"agent": f"kab-{n:03d}"}}
        for n in range(agents)
    ]
    return json.dumps(
        {
            "global": {"scrape_interval": f"{interval}s", "scrape_timeout": "10s"},
            "scrape_configs": [
                {
                    "job_name": "linkmon",
                    "honor_labels": True,
                    "static_configs": targets,
                    "relabel_configs": [
                        {"source_labels": ["agent"], "target_label": "__param_agent"}
                    ],
                }
            ],
        }
    )


def _query(url: str, expr: str) -> float:
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as response:
        data = json.load(response)["data"]["result"]
    return float(data[0]["value"][1]) if data else float("nan")


def measure_prometheus(
    workdir: Path, renders: list[bytes], agents: int, minutes: float, interval: int
) -> dict[str, float]:
    with stand_in_fleet(renders) as port:
        config = workdir / "prometheus.yml"
        config.write_text(_prometheus_config(port, agents, interval))
        web = c.free_port()
        argv = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
            "--storage.tsdb.retention.time=1d",
        ]
        with (workdir / "prometheus.log").open("w") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{web}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/-/ready", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("prometheus did not start") from None
                    time.sleep(0.2)
            rss = []
            start = time.monotonic()
            end = start + minutes * 60
            # Samples per second over the second half of the run, once every target is known.
            half, appended = start + minutes * 30, (0.0, 0.0)
            while time.monotonic() < end:
                time.sleep(min(5.0, max(0.0, end - time.monotonic())))
                rss.append(c.rss_mib(proc.pid))
                if appended == (0.0, 0.0) and time.monotonic() >= half:
                    appended = (time.monotonic(), c.prometheus_own(url, APPENDED))
            took = time.monotonic() - appended[0]
            return {
                "up": _query(url, 'sum(up{job="linkmon"})'),
                "head_series": c.prometheus_own(url, "prometheus_tsdb_head_series"),
                "samples_per_s": (c.prometheus_own(url, APPENDED) - appended[1]) / took,
                "heap_mib": c.prometheus_own(url, "go_memstats_heap_inuse_bytes") / 2**20,
                "rss_mib": rss[-1],
                "rss_max_mib": max(rss),
            }
        finally:
            stop_process(proc)


# -- output ------------------------------------------------------------------------------------


def _gb(value: float) -> str:
    return f"{value / 1e9:,.1f} GB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=AGENTS, help="stand-in agents scraped")
    parser.add_argument("--minutes", type=float, default=3.0, help="scraping, per detail")
    parser.add_argument("--interval", type=int, default=15, help="scrape interval, seconds")
    parser.add_argument("--detail", choices=("full", "link"), action="append")
    parser.add_argument("--no-prometheus", action="store_true", help="counts and estimate only")
    options = parser.parse_args()
    if not 1 <= options.agents <= 2000 or not 0.5 <= options.minutes <= 30:
        parser.error("--agents 1..2000, --minutes 0.5..30")
    details = options.detail or ["full", "link"]
    logging.disable(logging.WARNING)  # "unknown -> up" for every link is not the benchmark
    with tempfile.TemporaryDirectory(prefix="linkmon-sizing-") as tmp:
        workdir = Path(tmp)
        renders = {detail: agent_renders(workdir, detail) for detail in details}
        print("One agent: Kabupaten Nunukan from `linkmon inventory` (21 kecamatan, 2 backups,")
        print("DC uplink icmp+tcp+https, DRC uplink icmp+tcp), every probe has reported; series:")
        print(
            f"{'detail':<8}{'total':>7}{'agent-wide':>12}{'offices':>9}"
            f"{'kec. ICMP link':>16}{'DC uplink':>11}{'DRC uplink':>12}{'KB/scrape':>11}"
        )
        counts = {}
        for detail in details:
            counts[detail] = n = count_series(renders[detail][-1])
            print(
                f"{detail:<8}{n['total']:>7}{n['agent']:>12}{n['offices']:>9}"
                f"{n['kecamatan_link']:>16}{n['dc_uplink']:>11}{n['drc_uplink']:>12}"
                f"{len(renders[detail][-1]) / 1024:>11.0f}"
            )
        print(
            f"\nNational estimate: {AGENTS} agents, {KECAMATAN_LINKS:,} kecamatan links, "
            f"{UPLINKS_PER_AGENT} uplinks per agent (no backups, no failure counters)"
        )
        print(
            f"{'detail':<8}{'series':>11}{'samples/s @15s':>16}{'@30s':>9}"
            f"{'disk 15d':>11}{'90d':>10}{'400d':>10}   (15 s scrape, 1-2 bytes/sample)"
        )
        for detail in details:
            series = national(counts[detail])
            rate15, rate30 = series / 15, series / 30
            disk = [
                f"{_gb(days * 86400 * rate15)}-{_gb(days * 86400 * rate15 * 2)}"
                for days in (15, 90, 400)
            ]
            print(f"{detail:<8}{series:>11,}{rate15:>16,.0f}{rate30:>9,.0f}   " + "   ".join(disk))
        if options.no_prometheus:
            return 0
        version = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True)
        print(
            f"\nMeasured: Prometheus {version.stdout.split()[2]} scraping {options.agents} "
            f"stand-in agents (each a copy of the agent above) every {options.interval} s "
            f"for {options.minutes:g} min"
        )
        print(
            f"{'detail':<8}{'up':>6}{'head series':>13}{'samples/s':>11}{'RSS MiB':>9}"
            f"{'max':>7}{'Go heap MiB':>13}{'bytes RSS/series':>18}"
        )
        for detail in details:
            run = workdir / f"prom-{detail}"
            run.mkdir()
            got = measure_prometheus(
                run, renders[detail], options.agents, options.minutes, options.interval
            )
            print(
                f"{detail:<8}{got['up']:>6.0f}{got['head_series']:>13,.0f}"
                f"{got['samples_per_s']:>11,.0f}{got['rss_mib']:>9.0f}{got['rss_max_mib']:>7.0f}"
                f"{got['heap_mib']:>13.0f}"
                f"{got['rss_mib'] * 2**20 / got['head_series']:>18,.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
