"""How long `linkmon run` takes from exec to ready, and where that time goes.

Each run starts ``linkmon run`` on a one-link loopback config (a TCP probe every 200 ms, as the
kill -9 test's daemon) and polls every 5 ms, from exec: the log's ``started as agent``,
``/healthz`` answering 200, and ``/readyz`` answering 200 (every probe has a first result).
At ready it reads the process's CPU time (its own and its waited-for children's). With
``--compare CHECKOUT`` (another checkout with its own ``.venv``, e.g. a ``git worktree`` of an
older commit) the two installations start in turns, so that the machine's load falls on both
alike; medians are printed. Beside them, each run, the peer: blackbox_exporter from exec to
``/-/healthy``, and the imports alone: ``python -c "import linkmon.daemon"`` and scapy's
``import scapy.layers.inet`` (which linkmon loads at start for path traces).

    .venv/bin/python bench/startup.py --runs 20
    .venv/bin/python bench/startup.py --runs 20 --compare /tmp/wt-old

Traffic stays on loopback; every wait is bounded (a start has 20 s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import BLACKBOX, CLOCK_TICKS, ROOT, free_port, get

START_WITHIN = 20.0
POLL = 0.005
READY = {"started", "healthz", "readyz"}  # the log line, /healthz and /readyz answering 200

CONFIG = """
agent: {{name: startup, timezone: Asia/Makassar}}
server: {{listen: "127.0.0.1:{port}"}}
storage: {{path: "{storage}"}}
defaults: {{interval: 200ms, timeout: 150ms, icmp: {{count: 2, spacing: 20ms}}}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center}}
  - {{id: kab-a, kind: kabupaten, name: Kabupaten A}}
  - {{id: kec-b, kind: kecamatan, name: Kecamatan B, parent: kab-a}}
links:
  - id: kec-b--kab
    from: kec-b
    to: kab-a
    network: m2m
    probes:
      - {{kind: tcp, target: "127.0.0.1:{target}"}}
alerting:
  receivers:
    - {{name: oncall, kind: webhook, url: "http://127.0.0.1:9/hook", timeout: 2s}}
"""


def cpu_with_children(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


def answers(url: str) -> bool:
    try:
        return get(url, timeout=1)[0] is not None
    except OSError:
        return False


def start_linkmon(checkout: Path, workdir: Path, target: int) -> dict[str, float]:
    """One start of the checkout's linkmon: seconds from exec to each sign of life, and the
    CPU seconds spent by then."""
    port = free_port()
    name = f"{checkout.name}-{port}"
    config = workdir / f"{name}.yml"
    config.write_text(CONFIG.format(port=port, storage=workdir / f"{name}.db", target=target))
    log_path = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    seen: dict[str, float] = {}
    with log_path.open("wb") as log:
        began = time.monotonic()
        process = subprocess.Popen(
            [str(checkout / ".venv/bin/linkmon"), "run", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            while not seen.keys() >= READY and time.monotonic() - began < START_WITHIN:
                if process.poll() is not None:
                    raise SystemExit(f"{checkout}: linkmon exited:\n{log_path.read_text()}")
                now = time.monotonic() - began
                if "started" not in seen and b"started as agent" in log_path.read_bytes():
                    seen["started"] = now
                if "healthz" not in seen and answers(url + "/healthz"):
                    seen["healthz"] = time.monotonic() - began
                if "healthz" in seen and "readyz" not in seen and answers(url + "/readyz"):
                    seen["readyz"] = time.monotonic() - began
                    seen["cpu"] = cpu_with_children(process.pid)
                time.sleep(POLL)
        finally:
            process.kill()
            process.wait()
    if "readyz" not in seen:
        raise SystemExit(
            f"{checkout}: not ready within {START_WITHIN:g} s:\n{log_path.read_text()}"
        )
    return seen


def start_blackbox(workdir: Path) -> float:
    """Seconds from exec to blackbox_exporter's /-/healthy."""
    config = workdir / "blackbox.yml"
    config.write_text("modules: {tcp_connect: {prober: tcp, timeout: 1s}}\n")
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    process = subprocess.Popen(
        [BLACKBOX, f"--config.file={config}", f"--web.listen-address={url[7:]}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - began < START_WITHIN:
            if answers(url + "/-/healthy"):
                return time.monotonic() - began
            time.sleep(POLL)
        raise SystemExit(f"blackbox_exporter not healthy within {START_WITHIN:g} s")
    finally:
        process.kill()
        process.wait()


def import_seconds(checkout: Path, module: str) -> float:
    """Seconds a fresh interpreter of the checkout takes to import ``module`` and exit."""
    began = time.monotonic()
    subprocess.run(
        [str(checkout / ".venv/bin/python"), "-c", f"import {module}"],
        check=True,
        timeout=START_WITHIN,
        cwd=tempfile.gettempdir(),
    )
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare", type=Path, help="another checkout with its own .venv")
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.compare.resolve()] if args.compare else [])
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with (
        tempfile.TemporaryDirectory(prefix="startup-") as tmp,
        contextlib.closing(socket.socket()) as target,
    ):
        workdir = Path(tmp)
        target.bind(("127.0.0.1", 0))
        target.listen(128)
        for _ in range(args.runs):
            for checkout in checkouts:
                for key, value in start_linkmon(checkout, workdir, target.getsockname()[1]).items():
                    results[str(checkout)][key].append(value)
            results["blackbox_exporter"]["healthz"].append(start_blackbox(workdir))
            results["import linkmon.daemon"]["exit"].append(import_seconds(ROOT, "linkmon.daemon"))
            results["import scapy.layers.inet"]["exit"].append(
                import_seconds(ROOT, "scapy.layers.inet")
            )
    print(f"{args.runs} runs each, in turns; load average now {os.getloadavg()[0]:.1f}")
    for what, series in results.items():
        figures = ", ".join(
            f"{key} {statistics.median(values):.3f} s (min {min(values):.3f}, "
            f"max {max(values):.3f})"
            for key, values in series.items()
        )
        print(f"{what}: {figures}")


if __name__ == "__main__":
    main()
