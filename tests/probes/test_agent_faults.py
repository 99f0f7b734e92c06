"""The agent's own faults, for every kind: out of file descriptors, or its own firewall.

A probe that fails because of the host it runs on says nothing about the path, so it must come
back as ``Failure.AGENT`` with what ran out, never as a timeout or an unreachable target that
would page someone about a link that is fine. Everything runs for real in two network
namespaces made here, an "agent" and a "far end" joined by a veth pair (198.18.0.0/15 only):
the descriptor limit is lowered in a child process (``starved.py``), the firewall is an
nftables output rule inside the agent's namespace. The same targets without the fault, or with
a real fault of the path, still give the old results.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from linkmon.lab import netns
from probes import Failure, IcmpSpec, Prober, ProbeResult, TcpSpec
from probes.icmp_socket import IcmpMode
from probes.trace import TraceResult, TraceSpec, trace

pytestmark = pytest.mark.root

STARVED = Path(__file__).with_name("starved.py")
T = TypeVar("T")


@dataclass(frozen=True)
class Agent:
    """The agent's namespace (``netns``) and its end of the veth (``device``, ``address``);
    the far end answers ping, and its ``closed_port`` answers a SYN with a reset."""

    netns: str
    device: str
    address: str
    far: str
    closed_port: int = 9
    table: str = "linkmon_agent_test"

    def firewall(self, verdict: str) -> None:
        """An output rule on the agent: everything sent out of its veth gets ``verdict``."""
        netns.run(
            ["ip", "netns", "exec", self.netns, "nft", "add", "rule", "inet", self.table,
             "output", "oifname", self.device, *verdict.split()]
        )  # fmt: skip

    def open_firewall(self) -> None:
        netns.run(["ip", "netns", "exec", self.netns, "nft", "flush", "chain", "inet",
                   self.table, "output"])  # fmt: skip

    def inside(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``work`` in an event loop of a thread in the agent's namespace: the sockets it
        opens are the agent's."""
        with ThreadPoolExecutor(1, initializer=netns.enter, initargs=(self.netns,)) as thread:
            return thread.submit(lambda: asyncio.run(work())).result(timeout=60)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    tag = os.getpid() % 1_000_000
    ours, theirs = f"lmagent-{tag}", f"lmfar-{tag}"
    subnet = f"198.18.{200 + tag % 50}"
    here = Agent(ours, f"lmag{tag}", f"{subnet}.1", f"{subnet}.2")
    try:
        # the agent's group may use ICMP datagram sockets: its own sysctl, not the host's
        netns.add_namespace(ours, {"net.ipv4.ping_group_range": "0 0"})
        netns.add_namespace(theirs, {})
        netns.run(["ip", "-n", ours, "link", "add", here.device, "type", "veth", "peer", "name",
                   f"lmfar{tag}", "netns", theirs])  # fmt: skip
        netns.ip_batch(ours, [f"addr add {here.address}/30 dev {here.device}",
                              f"link set {here.device} up"])  # fmt: skip
        netns.ip_batch(theirs, [f"addr add {here.far}/30 dev lmfar{tag}",
                                f"link set lmfar{tag} up"])  # fmt: skip
        netns.nft(ours, f"""
            table inet {here.table} {{
              chain output {{ type filter hook output priority 0; policy accept; }}
            }}
        """)  # fmt: skip
        yield here
    finally:
        netns.delete_namespace(ours)
        netns.delete_namespace(theirs)


def starved(agent: Agent, plan: dict[str, Any]) -> dict[str, Any]:
    """Run ``starved.py`` with ``plan`` in the agent's namespace; its parsed output."""
    done = subprocess.run(
        ["ip", "netns", "exec", agent.netns, sys.executable, str(STARVED), json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output: dict[str, Any] = json.loads(done.stdout)
    return output


@pytest.mark.parametrize("icmp_mode", ["raw", "dgram"])
def test_out_of_file_descriptors_is_the_agents_fault_for_every_kind(
    agent: Agent, icmp_mode: str
) -> None:
    closed = {"host": agent.far, "port": agent.closed_port}
    url = {"url": f"http://{agent.far}:{agent.closed_port}/"}
    icmp = {"address": agent.far, "count": 2, "spacing": 0.01}
    plan = {
        "icmp_mode": icmp_mode,
        "warm": [["icmp", icmp], ["tcp", closed], ["http", url], ["trace", {"target": agent.far}]],
        "jobs": [
            ["icmp", icmp],  # its socket is open: the one-socket engine does not go blind
            ["icmp", {**icmp, "source": agent.address}],  # a new binding needs a new socket
            ["tcp", closed],
            ["http", url],
            ["trace", {"target": agent.far}],
            ["trace", {"target": agent.far, "source": agent.address}],
        ],
    }
    output = starved(agent, plan)
    assert [r["failure"] for r in output["warm"]] == [None, "refused", "refused", None]
    icmp_open, icmp_new, tcp, http, trace_routed, trace_bound = output["starved"]
    assert icmp_open["success"], icmp_open
    assert icmp_new["failure"] == "agent"
    assert icmp_new["detail"] == "cannot open an IPv4 ICMP socket: too many open files (EMFILE)"
    assert (tcp["failure"], tcp["detail"]) == ("agent", "too many open files (EMFILE)")
    assert (http["failure"], http["detail"]) == ("agent", "too many open files (EMFILE)")
    for traced in (trace_routed, trace_bound):
        assert traced["failure"] == "agent", traced
        assert traced["detail"] == "this host cannot trace now: too many open files (EMFILE)"


@pytest.mark.parametrize("verdict", ["drop", "reject"])
def test_the_agents_own_firewall_is_its_fault_not_the_paths(agent: Agent, verdict: str) -> None:
    async def probe_all() -> tuple[list[ProbeResult], TraceResult]:
        results = []
        modes: tuple[IcmpMode, ...] = ("raw", "dgram")
        for mode in modes:
            async with Prober(icmp_mode=mode) as prober:
                results.append(await prober.run(IcmpSpec(agent.far, count=2, spacing=0.01), 1))
        return results, await trace(TraceSpec(agent.far, wait=0.3))

    (raw, dgram), traced = agent.inside(probe_all)
    assert raw.success and dgram.success and traced.reached  # the path is fine
    agent.firewall(verdict)
    try:
        (raw, dgram), traced = agent.inside(probe_all)
    finally:
        agent.open_firewall()
    for result in (raw, dgram):
        assert result.failure is Failure.AGENT, result
        assert result.detail == (
            f"cannot send to {agent.far}: not permitted by this host (EPERM: its own firewall?)"
        )
        assert result.packets_sent == 0  # echoes the host kept in were never sent, nor lost
    assert traced.failure is Failure.AGENT and not traced.reached
    assert traced.stops() == (
        "this host cannot trace now: not permitted by this host (EPERM: its own firewall?)"
    )


def test_tcp_syns_dropped_by_the_agents_firewall_are_its_fault_once_the_kernel_retried(
    agent: Agent,
) -> None:
    """A dropped SYN gives connect() no error: the kernel retries (the first retry after about
    1 s) and counts a retry as retransmitted only once it left the host."""
    spec = TcpSpec(agent.far, agent.closed_port)

    async def connect(timeout: float) -> ProbeResult:
        async with Prober() as prober:
            return await prober.run(spec, timeout)

    assert agent.inside(lambda: connect(1.5)).failure is Failure.REFUSED  # the path is fine
    agent.firewall("drop")
    try:
        retried, early = agent.inside(lambda: connect(1.5)), agent.inside(lambda: connect(0.5))
    finally:
        agent.open_firewall()
    assert (retried.failure, retried.detail) == (
        Failure.AGENT,
        "the connection attempts could not leave this host (its own firewall?)",
    )
    assert early.failure is Failure.TIMEOUT  # before the first retry nobody can tell


def test_a_path_gone_during_a_connect_is_unreachable_not_the_agents_fault(agent: Agent) -> None:
    """Retries that could not leave because the route went away (a tunnel down, its routes
    withdrawn) are the path's fault: the route is looked up again before blaming the host."""
    unrouted = "198.18.199.9"
    spec = TcpSpec(unrouted, agent.closed_port)

    async def connect_while_the_route_goes() -> ProbeResult:
        async with Prober() as prober:
            loop = asyncio.get_running_loop()
            connecting = asyncio.ensure_future(prober.run(spec, 1.5))
            # The wait is the scenario: the route goes after the first SYN left (lost: nobody
            # answers for that address) and before the kernel retries it, 1 s after.
            await asyncio.sleep(0.2)
            withdraw = ["ip", "-n", agent.netns, "route", "del", f"{unrouted}/32"]
            await loop.run_in_executor(None, netns.run, withdraw)
            return await connecting

    netns.run(["ip", "-n", agent.netns, "route", "add", f"{unrouted}/32", "via", agent.far])
    try:
        result = agent.inside(connect_while_the_route_goes)
    finally:
        netns.run(["ip", "-n", agent.netns, "route", "del", f"{unrouted}/32"], check=False)
    assert (result.failure, result.detail) == (
        Failure.UNREACHABLE,
        "no route any more (Network is unreachable)",
    )
