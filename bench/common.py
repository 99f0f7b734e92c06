"""What the benchmarks share: loopback configs, process accounting, /metrics reading, peers.

Everything here sends traffic to loopback only (or, for the lab benches, inside the lab's own
198.18.0.0/15 namespaces). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from icmp_scale import targets as loopback_targets  # noqa: E402 (bench/ is sys.path[0])

from tests.support.daemon import free_port, running_linkmon  # noqa: E402

__all__ = ["free_port", "loopback_targets", "running_linkmon"]  # what the benches share, too

BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- configs -------------------------------------------------------------------------------


def write_config(
    path: Path,
    icmp_targets: Sequence[str],
    *,
    interval: float,
    timeout: float,
    count: int,
    spacing: float,
    tcp_targets: Sequence[str] = (),
    detail: str | None = None,
    down_after: int = 3,
    receivers: str = "",
) -> str:
    """A linkmon config with a link (kecamatan → its kabupaten) per ICMP target, the first
    ``len(tcp_targets)`` links also carrying a TCP probe (or only one, without ICMP targets).
    Returns the base URL."""
    port = free_port()
    links = max(len(icmp_targets), len(tcp_targets))
    kabupaten = max(1, links // 14)  # about 14 kecamatan per kabupaten, as in Indonesia
    lines = [
        "agent: {name: bench, timezone: Asia/Jakarta}",
        f'server: {{listen: "127.0.0.1:{port}"'
        + (f", metrics_detail: {detail}" if detail else "")
        + "}",
        f"storage: {{path: {path.parent / 'linkmon.db'}}}",
        "defaults:",
        f"  {{interval: {interval * 1000:g}ms, timeout: {timeout * 1000:g}ms, "
        f"icmp: {{count: {count}, spacing: {spacing * 1000:g}ms}}, down_after: {down_after}, "
        "up_after: 1}",
        "sites:",
        "  - {id: pusat-dc, kind: pusat, name: Data Center}",
    ]
    lines += [f"  - {{id: kab-{k}, kind: kabupaten, name: Kab {k}}}" for k in range(kabupaten)]
    lines += [
        f"  - {{id: kec-{i}, kind: kecamatan, name: Kec {i}, parent: kab-{i % kabupaten}}}"
        for i in range(links)
    ]
    lines.append("links:")
    for i in range(links):
        probes = ", ".join(
            ([f"{{kind: icmp, target: {icmp_targets[i]}}}"] if i < len(icmp_targets) else [])
            + ([f'{{kind: tcp, target: "{tcp_targets[i]}"}}'] if i < len(tcp_targets) else [])
        )
        lines.append(
            f"  - {{id: kec-{i}--kab, from: kec-{i}, to: kab-{i % kabupaten}, "
            f"network: m2m, probes: [{probes}]}}"
        )
    if receivers:
        lines.append(receivers)
    path.write_text("\n".join(lines) + "\n")
    return f"http://127.0.0.1:{port}"


# -- process accounting ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (not its children), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def fds(pid: int) -> tuple[int, set[str]]:
    """Open fds and the inodes of the sockets among them."""
    inodes: set[str] = set()
    names = os.listdir(f"/proc/{pid}/fd")
    for fd in names:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return len(names), inodes


def icmp_sockets(pid: int) -> int:
    """Raw and ping (datagram ICMP) sockets the process holds, over both families."""
    _, inodes = fds(pid)
    found = 0
    for table in ("raw", "raw6", "icmp", "icmp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as rows:
            next(rows)
            found += sum(1 for row in rows if row.split()[9] in inodes)
    return found


@dataclass
class Usage:
    """CPU and memory of one process over a window, sampled every second."""

    pid: int
    cpu0: float = 0.0
    t0: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0
    rss: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.cpu0, self.t0 = cpu_seconds(self.pid), time.monotonic()

    def sample(self) -> None:
        self.rss.append(rss_mib(self.pid))

    def stop(self) -> None:
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        self.wall = time.monotonic() - self.t0

    @property
    def percent(self) -> float:
        return 100 * self.cpu / self.wall if self.wall else 0.0


def watch(usage: Usage, seconds: float) -> None:
    """Sample ``usage`` every second for ``seconds``."""
    usage.start()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        usage.sample()
        time.sleep(min(1.0, left))
    usage.stop()


# -- /metrics -------------------------------------------------------------------------------

_LINE = re.compile(rb"^([a-z_]+)(?:\{([^}]*)\})? ([-+0-9.eEinfNa]+)$", re.M)
_LE = re.compile(rb'le="([^"]+)"')


def metric_sums(text: bytes, names: Sequence[str]) -> dict[str, float]:
    """Sum of every series of each name (fast regex scan: 10^5 lines in well under a second)."""
    wanted = {name.encode(): name for name in names}
    sums = dict.fromkeys(names, 0.0)
    for match in _LINE.finditer(text):
        name = wanted.get(match.group(1))
        if name is not None:
            sums[name] += float(match.group(3))
    return sums


def histogram(text: bytes, name: str) -> dict[float, float]:
    """Cumulative bucket counts of a histogram with one series: {le: count}."""
    buckets: dict[float, float] = {}
    for match in _LINE.finditer(text):
        if match.group(1) == f"{name}_bucket".encode():
            le = _LE.search(match.group(2) or b"")
            if le is not None:
                buckets[float(le.group(1))] = float(match.group(3))
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of what a cumulative histogram gained between two reads, interpolated
    linearly within the bucket as PromQL's histogram_quantile does."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, cumulative
    return lower


def share_within(before: dict[float, float], after: dict[float, float], bound: float) -> float:
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    return (after[bound] - before.get(bound, 0.0)) / total if total else float("nan")


def prometheus_own(url: str, name: str) -> float:
    """One of a Prometheus' own metrics (summed over its labels), read from its /metrics: the
    benches' Prometheus does not scrape itself."""
    body, _ = get(f"{url}/metrics")
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body.decode(), re.MULTILINE)
    return sum(map(float, found)) if found else float("nan")


def get(url: str, timeout: float = 30.0) -> tuple[bytes, float]:
    """GET over a plain socket (no client library in the measurement): body, seconds."""
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        body: bytes = response.read()
    return body, time.perf_counter() - started


class Scraper(threading.Thread):
    """GET /metrics every ``every`` seconds (the next one starts when both the period is over
    and the previous answer is in, as Prometheus does), for at most ``limit`` seconds."""

    def __init__(self, url: str, every: float, limit: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every, self.limit = url, every, limit
        self.durations: list[float] = []
        self.sizes: list[int] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._halt.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                body, took = get(self.url + "/metrics")
                self.durations.append(took)
                self.sizes.append(len(body))
            except OSError:
                self.failures += 1
            self._halt.wait(max(0.0, self.every - (time.monotonic() - started)))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)


# -- helpers for peers ----------------------------------------------------------------------


@contextlib.contextmanager
def tcp_listeners(count: int) -> Iterator[tuple[list[str], int]]:
    """``count`` loopback TCP listeners that accept and close, in a child process of their
    own (so their CPU is not billed to anyone measured); yields the addresses and its pid."""
    ports = [free_port() for _ in range(count)]
    code = (
        "import asyncio,sys\n"
        "async def handle(r,w):\n    w.close()\n"
        "async def main():\n"
        "    servers=[await asyncio.start_server(handle,'127.0.0.1',int(p),backlog=1024)"
        " for p in sys.argv[1:]]\n"
        "    print('ready',flush=True)\n    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, ports)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("TCP listeners did not start")
        yield [f"127.0.0.1:{port}" for port in ports], child.pid
    finally:
        child.kill()
        child.wait()


BLACKBOX_CONFIG = """modules:
  icmp:
    prober: icmp
    timeout: {timeout}s
    icmp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false}}
  tcp_connect:
    prober: tcp
    timeout: {timeout}s
    tcp: {{preferred_ip_protocol: ip4, ip_protocol_fallback: false}}
"""


@contextlib.contextmanager
def blackbox(
    workdir: Path, timeout: float, prefix: Sequence[str] = (), listen: str = "127.0.0.1"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """prometheus-blackbox-exporter with an icmp and a tcp_connect module; yields its URL."""
    config = workdir / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG.format(timeout=f"{timeout:g}"))
    port = free_port()
    log = (workdir / "blackbox.log").open("wb")
    process = subprocess.Popen(
        [
            *prefix,
            BLACKBOX,
            f"--config.file={config}",
            f"--web.listen-address={listen}:{port}",
            "--log.level=error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{listen}:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                log_text = (workdir / "blackbox.log").read_text()
                raise SystemExit(f"blackbox_exporter exited: {log_text}")
            with contextlib.suppress(OSError):
                if not prefix:
                    get(url + "/-/healthy", timeout=1)
                    break
                probe = f"import socket; socket.create_connection(('{listen}', {port}), 1)"
                if (
                    subprocess.run(
                        [*prefix, sys.executable, "-c", probe], capture_output=True, timeout=10
                    ).returncode
                    == 0
                ):
                    break
            if time.monotonic() > deadline:
                raise SystemExit("blackbox_exporter did not start within 15 s")
            time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class DriveResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: int = 0
    late: list[float] = field(default_factory=list)


async def drive(
    url: str, paths: Sequence[str], interval: float, seconds: float, connections: int = 64
) -> DriveResult:
    """Request every path once per ``interval``, phases spread evenly (as linkmon schedules),
    over keep-alive connections; bounded to ``seconds`` plus one timeout."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    result = DriveResult()
    queue: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                path, due = await queue.get()
                result.late.append(time.monotonic() - due)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                body = await reader.readexactly(length)
                if b"\nprobe_success 1" in body:
                    result.ok += 1
                elif b"\nprobe_success 0" in body:
                    result.failed += 1
                else:
                    result.errors += 1
                queue.task_done()
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.monotonic()
    n = len(paths)
    step = interval / n
    i = 0
    end = start + seconds
    while True:
        due = start + i * step
        if due >= end:
            break
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        queue.put_nowait((paths[i % n], due))
        result.sent += 1
        i += 1
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            await queue.join()
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
