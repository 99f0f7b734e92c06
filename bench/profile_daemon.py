"""Where a large linkmon spends its time and memory: `linkmon run` on N loopback targets.

    .venv/bin/python bench/profile_daemon.py --targets 10000 [--warmup 40] [--window 20]

Writes the config scale.py uses (N ICMP links, 5 echoes every 10 s), runs the daemon in a child
whose cProfile switches on after ``--warmup`` seconds of event loop and off ``--window`` seconds
later, and prints the functions by internal and by cumulative time. cProfile makes Python code
about twice as slow: read the shares, not the absolute times (the CPU % is measured by
scale.py, without a profiler). Then the resident memory of a fresh interpreter after importing
linkmon and after loading that config (in-process, and as the daemon does, in a child
process), against the daemon's own. Traffic: loopback only.
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common as c

_PROFILED_DAEMON = """
import asyncio, cProfile, sys
warmup, window, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
del sys.argv[1:4]
profile = cProfile.Profile()
run_forever = asyncio.BaseEventLoop.run_forever

def profiled(loop):
    def stop():
        profile.disable()
        profile.dump_stats(out)

    def start():
        profile.enable()
        loop.call_later(window, stop)

    loop.call_later(warmup, start)
    return run_forever(loop)

asyncio.BaseEventLoop.run_forever = profiled
from linkmon.commands import main
sys.argv[0] = "linkmon"
main()
"""

_MEMORY_STAGES = """
import gc, sys
from pathlib import Path
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import linkmon.daemon, linkmon.paths, probes.trace
print(f"after imports:            {rss():7.0f} MiB")
from linkmon.config import load_config, load_config_apart
loader = load_config_apart if sys.argv[2] == "apart" else load_config
config = loader(Path(sys.argv[1]))
gc.collect()
print(f"after {loader.__name__ + ':':18s} {rss():7.0f} MiB ({len(config.links)} links)")
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--warmup", type=float, default=40.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=30)
    options = parser.parse_args()
    if not 1 <= options.targets <= 60000 or options.window <= 0 or options.warmup < 0:
        parser.error("--targets between 1 and 60000, --window > 0, --warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="linkmon-profile-") as tmp:
        config = Path(tmp) / "linkmon.yml"
        c.write_config(
            config,
            c.loopback_targets(options.targets),
            interval=10.0,
            timeout=2.0,
            count=5,
            spacing=0.1,
        )
        stats = Path(tmp) / "daemon.prof"
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PROFILED_DAEMON,
                str(options.warmup),
                str(options.window),
                str(stats),
                "run",
                "-c",
                str(config),
            ],
            cwd=c.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + options.warmup + options.window + 120
            while not stats.exists() and daemon.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1.0)  # the dump is written in one go; let it finish
            daemon_rss = rss_mib(daemon.pid)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
        if not stats.exists():
            raise SystemExit("the daemon ended before its profile was written")
        print(
            f"== linkmon run, {options.targets} ICMP targets x 5 echoes / 10 s: "
            f"{options.window:g} s profiled after {options.warmup:g} s =="
        )
        for order in ("tottime", "cumulative"):
            pstats.Stats(str(stats)).strip_dirs().sort_stats(order).print_stats(options.top)
        print("== resident memory ==")
        for loader in ("here", "apart"):  # as the daemon loads it / in this process
            subprocess.run(
                [sys.executable, "-c", _MEMORY_STAGES, str(config), loader],
                cwd=c.ROOT,
                check=True,
                timeout=300,
            )
        print(f"the daemon, running:      {daemon_rss:7.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
