"""Traceroute: constant flow identifiers, matching on loopback, and where the path stops in the lab.

The lab tests trace from pusat-dc's namespace to Kecamatan Lumbis (198.18.10.13), two hops
away through the kabupaten hub (which answers from 198.19.0.1, its end of the uplink):

- kec-lumbis--kab cut: the hub answers "network unreachable": the trace stops at hop 1;
- kab-nunukan--dc cut (the hub's uplink): pusat-dc has no route at all: nothing from hop 1;
- blackholes (fibre cut beyond the devices): the hub answers "TTL exceeded", then silence,
  or silence from the first hop.

The hub rate-limits "network unreachable" (the kernel's route error_cost, about one per
second per sender, not a per-namespace sysctl), so a cut sometimes takes a second attempt.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from linkmon.lab import Lab
from probes.trace import MODES, Hop, Reply, TraceResult, TraceSpec, probe_packet, trace
from tests.support.labs import shipped_lab
from tests.support.staged import Staged

ROOT = Path(__file__).resolve().parents[2]
LUMBIS = "198.18.10.13"
HUB_UPLINK_END = "198.19.0.1"


# ------------------------------------------------------------------------------ no sockets


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target": "kec-lumbis"}, "trace target must be an IPv4 address"),
        ({"target": "::1"}, "trace target must be an IPv4 address"),
        ({"target": "127.0.0.1", "mode": "sctp"}, "trace mode must be one of icmp, udp, tcp"),
        ({"target": "127.0.0.1", "port": 80}, "only for udp or tcp mode"),
        ({"target": "127.0.0.1", "mode": "tcp", "port": 0}, "trace port must be 1-65535"),
        ({"target": "127.0.0.1", "max_hops": 0}, "trace max_hops must be 1-64"),
        ({"target": "127.0.0.1", "attempts": 9}, "trace attempts must be 1-5"),
        ({"target": "127.0.0.1", "wait": 0}, "trace wait must be more than 0"),
        ({"target": "127.0.0.1", "source": "localhost"}, "trace source must be an IPv4 address"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TraceSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_every_probe_of_a_trace_is_one_flow_for_a_load_balancer(mode: str) -> None:
    """What ECMP hashes — addresses, protocol, TOS and the first 4 transport bytes (ports;
    for ICMP type, code and checksum) — never changes between probes; the tag does."""
    spec = TraceSpec("198.18.10.13", mode)  # type: ignore[arg-type]
    packets = [
        probe_packet(spec, "198.18.1.1", ttl, tag, 40000)
        for ttl, tag in ((1, 1), (2, 2), (3, 77), (9, 65535), (16, 32768))
    ]
    if mode == "icmp":  # the checksum does not even depend on the identifier
        other = probe_packet(spec, "198.18.1.1", 1, 1, 65535)
        assert other[22:24] == packets[0][22:24] and other[24:26] != packets[0][24:26]

    def flow(data: bytes) -> tuple[bytes, ...]:
        ihl = (data[0] & 0x0F) * 4
        return data[1:2], data[9:10], data[12:20], data[ihl : ihl + 4]

    assert len({flow(p) for p in packets}) == 1
    assert len({p[8] for p in packets}) == 5  # TTLs differ
    if mode == "icmp":
        # Paris traceroute: the sequence number varies, the checksum does not.
        assert len({struct.unpack_from("!HH", p, 26) for p in packets}) == 5  # (id, seq)
        assert len({p[22:24] for p in packets}) == 1
    elif mode == "udp":
        assert len({p[4:6] for p in packets}) == 5  # the IP id is the tag
        assert len({p[20:28] for p in packets}) == 1  # ports, length, checksum
    else:
        assert len({p[24:28] for p in packets}) == 5  # the sequence number is the tag


def test_result_survives_json_and_says_where_it_stops() -> None:
    hub, dc = "198.19.0.1", "198.18.1.1"
    broken = TraceResult(
        dc,
        "udp",
        33434,
        "198.18.10.13",
        (Hop(1, hub, 0.002, Reply.TIME_EXCEEDED), Hop(2, hub, 0.003, Reply.NET_UNREACHABLE)),
        False,
        "",
        1.0,
        2.0,
        5,
    )
    assert broken.stops() == f"last answer from hop 2, {hub} (net unreachable)"
    assert broken.path == (hub, hub)
    assert TraceResult.from_dict(broken.to_dict()) == broken
    silent_tail = TraceResult(dc, "icmp", None, None, (Hop(1, hub), Hop(2), Hop(3)), False)
    assert silent_tail.stops() == f"last answer from hop 1, {hub}" and silent_tail.path == (hub,)
    assert (
        TraceResult(dc, "icmp", None, None, (Hop(1), Hop(2)), False).stops()
        == "no answer from any hop"
    )
    reached = TraceResult(
        dc, "tcp", 443, None, (Hop(1, None), Hop(2, dc, 0.01, Reply.SYN_ACK)), True
    )
    assert reached.stops() == f"reached {dc} at hop 2" and reached.path == (None, dc)


# ------------------------------------------------------------------------------ loopback


@pytest.mark.root
async def test_each_mode_reaches_a_loopback_target_with_its_own_kind_of_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        specs = [
            TraceSpec("127.0.0.1"),
            TraceSpec("127.0.0.1", "udp"),
            TraceSpec("127.0.0.1", "tcp", port),
            TraceSpec("127.0.0.1", "tcp", closed_port),
        ]
        # All at once: each trace must pick out its own answers.
        results = await asyncio.gather(*(trace(s) for s in specs), trace(specs[0]))
    expected = [
        Reply.ECHO_REPLY,
        Reply.PORT_UNREACHABLE,
        Reply.SYN_ACK,
        Reply.RESET,
        Reply.ECHO_REPLY,
    ]
    for result, reply in zip(results, expected, strict=True):
        assert result.reached and result.error == ""
        assert result.hops == (Hop(1, "127.0.0.1", result.hops[0].rtt, reply),)
        assert result.hops[0].rtt is not None and 0 <= result.hops[0].rtt < 0.5
        assert result.probes_sent == 1 and result.source == "127.0.0.1"
    # Concurrent traces of one target use different flows; the next trace of a target uses
    # the flow its last one used, so ECMP sends it the same way.
    assert results[0].flow != results[4].flow
    assert (await trace(specs[0])).flow == results[0].flow
    assert (await trace(specs[1])).flow == results[1].flow


@pytest.mark.root
async def test_a_source_address_this_host_lacks_is_a_setup_error() -> None:
    from probes import ProbeSetupError

    with pytest.raises(ProbeSetupError, match="trace source 198.18.99.1 cannot be used"):
        await trace(TraceSpec("127.0.0.1", source="198.18.99.1"))


@pytest.mark.root
def test_without_raw_sockets_the_error_names_the_fix(staged_for_nobody: Staged) -> None:
    code = (
        "import asyncio; from probes.trace import trace, TraceSpec\n"
        "asyncio.run(trace(TraceSpec('127.0.0.1')))"
    )
    done = staged_for_nobody.run(["-c", code])
    assert done.returncode != 0
    assert "ProbeSetupError: traceroute needs raw sockets" in done.stderr
    assert "CAP_NET_RAW" in done.stderr


# ------------------------------------------------------------------------------ the lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with shipped_lab(f"tr{os.getpid() % 1_000_000}") as lab:
        yield lab


@pytest.fixture(scope="module")
def at_pusat(lab: Lab) -> Iterator[ThreadPoolExecutor]:
    """A thread inside pusat-dc's namespace: traces run there, from the data center."""
    executor = lab.executor("pusat-dc")
    try:
        yield executor
    finally:
        executor.shutdown()


def _trace_from(where: ThreadPoolExecutor, spec: TraceSpec) -> TraceResult:
    return where.submit(asyncio.run, trace(spec)).result(timeout=30)


@pytest.mark.lab
@pytest.mark.root
@pytest.mark.parametrize("mode", MODES)
def test_cuts_at_two_depths_stop_the_trace_at_the_right_hop(
    lab: Lab, at_pusat: ThreadPoolExecutor, mode: str
) -> None:
    spec = TraceSpec(LUMBIS, mode, max_hops=8)  # type: ignore[arg-type]
    healthy = _trace_from(at_pusat, spec)
    assert healthy.reached and healthy.path == (HUB_UPLINK_END, LUMBIS), healthy
    assert healthy.probes_sent == 2  # no probe beyond the target
    for link, stops_at, where in (
        ("kec-lumbis--kab", 1, f"last answer from hop 1, {HUB_UPLINK_END} (net unreachable)"),
        ("kab-nunukan--dc", 0, f"no route from here to {LUMBIS}"),
    ):
        lab.cut(link)
        try:
            broken = _trace_from(at_pusat, spec)
        finally:
            lab.restore(link)
        assert not broken.reached, (link, broken)
        assert len(broken.path) == stops_at, (link, broken)
        assert broken.stops().startswith(where), (link, broken.stops())
    assert _trace_from(at_pusat, spec).path == healthy.path  # restored


@pytest.mark.lab
@pytest.mark.root
def test_silent_breaks_stop_after_the_last_hop_that_answers(
    lab: Lab, at_pusat: ThreadPoolExecutor
) -> None:
    spec = TraceSpec(LUMBIS, max_hops=6, spacing=0.02, wait=0.5)
    for link, path in (("kec-lumbis--kab", (HUB_UPLINK_END,)), ("kab-nunukan--dc", ())):
        lab.blackhole(link)
        try:
            broken = _trace_from(at_pusat, spec)
        finally:
            lab.restore(link)
        assert not broken.reached and broken.path == path, (link, broken)
        # The second attempt asks again only the hops that stayed silent.
        assert len(broken.hops) == 6 and broken.probes_sent == 6 + (6 - len(path))
        if path:
            assert broken.hops[0].reply is Reply.TIME_EXCEEDED
