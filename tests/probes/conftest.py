"""Fixtures for the probe tests: a peer network namespace, a sysctl, a child-process prober.

The peer namespace hangs off a veth pair with addresses in 198.19.x.0/29 (inside the
benchmarking range 198.18.0.0/15): one address answers, one drops everything (timeouts), one
rejects echo requests and TCP SYNs with ICMP host-unreachable, and one drops every other echo
request. A blackhole route for the /29 stays in place for the whole session, so if the veth ever
vanishes, test traffic dies here instead of following the default route off the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from probes import Prober
from tests.support.staged import Staged
from tests.support.wait import wait_until

NOBODY = 65534
RUN_PROBE = Path(__file__).with_name("run_probe.py")
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
IPV6_ON_LOOPBACK = Path("/proc/sys/net/ipv6/conf/lo/disable_ipv6")


@dataclass(frozen=True)
class Peer:
    namespace: str
    device: str  # our end of the veth pair
    gateway: str  # our address on it
    answering: str
    silent: str
    rejecting: str
    lossy: str


def sh(*command: str, stdin: str | None = None) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def _free_subnet() -> str:
    """A 198.19.x.0/29 with no address or route on this host yet (other tests may hold some)."""
    for step in range(16):
        third = 240 + (os.getpid() + step) % 16
        prefix = f"198.19.{third}"
        used = sh("ip", "-o", "addr", "show", "to", f"{prefix}.0/29") + sh(
            "ip", "route", "show", "table", "all", f"{prefix}.0/29"
        )
        if not used.strip():
            return prefix
    raise RuntimeError("no free 198.19.240-255.0/29 subnet for the peer namespace")


def _wait_until_routed(address: str, device: str) -> None:
    def routed() -> bool:
        route = sh("ip", "route", "get", address)
        return f"dev {device} " in route and "LOWER_UP" in sh("ip", "link", "show", device)

    wait_until(routed, 5, f"{address} routed through {device}")


@pytest.fixture(autouse=True)
def _root_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root (raw sockets, namespaces, other users)")


@pytest.fixture(scope="session")
def peer() -> Iterator[Peer]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    prefix = _free_subnet()
    tag = str(os.getpid())
    namespace, ours, theirs = f"lmprobe-{tag}", f"lmp{tag}h", f"lmp{tag}p"
    peer = Peer(
        namespace,
        ours,
        f"{prefix}.1",
        answering=f"{prefix}.2",
        silent=f"{prefix}.3",
        rejecting=f"{prefix}.4",
        lossy=f"{prefix}.5",
    )
    blackhole = ("blackhole", f"{prefix}.0/29", "metric", "4294967295")
    sh("ip", "route", "add", *blackhole)
    try:
        sh("ip", "netns", "add", namespace)
        sh("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs, "netns", namespace)
        sh("ip", "addr", "add", f"{peer.gateway}/29", "dev", ours)
        sh("ip", "link", "set", ours, "up")
        inside = ("ip", "netns", "exec", namespace)
        sh(*inside, "ip", "link", "set", "lo", "up")
        for address in (peer.answering, peer.silent, peer.rejecting, peer.lossy):
            sh(*inside, "ip", "addr", "add", f"{address}/29", "dev", theirs)
        sh(*inside, "ip", "link", "set", theirs, "up")
        sh(*inside, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")  # every reject is answered
        sh(*inside, "nft", "-f", "-", stdin=f"""
            table inet linkmon_probe_test {{
              chain input {{
                type filter hook input priority 0; policy accept;
                ip daddr {peer.silent} drop
                ip daddr {peer.rejecting} icmp type echo-request reject with icmp host-unreachable
                ip daddr {peer.rejecting} meta l4proto tcp reject with icmp host-unreachable
                ip daddr {peer.lossy} icmp type echo-request numgen inc mod 2 == 0 drop
              }}
            }}
        """)  # fmt: skip
        _wait_until_routed(peer.answering, ours)
        yield peer
    finally:
        with contextlib.suppress(RuntimeError):
            sh("ip", "link", "del", ours)
        with contextlib.suppress(RuntimeError):
            sh("ip", "netns", "del", namespace)
        sh("ip", "route", "del", *blackhole)


@contextlib.contextmanager
def ping_group_range(low: int, high: int) -> Iterator[None]:
    """Set net.ipv4.ping_group_range for the block, and put the old value back whatever happens."""
    saved = PING_GROUP_RANGE.read_text().split()
    PING_GROUP_RANGE.write_text(f"{low} {high}")
    try:
        yield
    finally:
        PING_GROUP_RANGE.write_text(" ".join(saved))


def ipv6_on_loopback() -> bool:
    return IPV6_ON_LOOPBACK.exists() and IPV6_ON_LOOPBACK.read_text().strip() == "0"


def run_probes(
    jobs: list[tuple[str, dict[str, Any]]],
    *,
    timeout: float = 2.0,
    as_nobody: Staged | None = None,
    namespace: str | None = None,
) -> tuple[int, dict[str, Any], str]:
    """Run probes in a child process, as nobody (from ``as_nobody``, linkmon staged where
    nobody can read it) and/or in another network namespace.

    Returns (exit code, parsed JSON output, stderr).
    """
    args = [str(timeout), json.dumps(jobs)]
    if as_nobody is not None:
        done = as_nobody.run([str(as_nobody.root / RUN_PROBE.name), *args])
    else:
        command = [sys.executable, str(RUN_PROBE), *args]
        if namespace is not None:
            command = ["ip", "netns", "exec", namespace, *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={"PATH": os.environ["PATH"]},
        )
    output = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, output, done.stderr


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    async with Prober() as prober:
        yield prober
