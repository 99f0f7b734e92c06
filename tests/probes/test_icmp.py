"""ICMP probe on real sockets: loopback (127/8, ::1) and a peer network namespace.

Raw-socket tests run as root; the unprivileged ones run the probe as ``nobody`` in a child
process with ``net.ipv4.ping_group_range`` set for (or withheld from) its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from probes import Failure, IcmpSpec, Prober, ProbeResult, ProbeSetupError, ProbeSpec, TcpSpec
from tests.probes.conftest import (
    NOBODY,
    Peer,
    ipv6_on_loopback,
    ping_group_range,
    run_probes,
)
from tests.support.daemon import free_port
from tests.support.staged import Staged
from tests.support.wait import wait_for

LOOPBACK_RTT = 0.05  # generous for a noisy 2-core machine; loopback echoes take microseconds
SO_TIMESTAMPNS = 35


def in_flight(prober: Prober) -> int:
    """Keys held by open rounds on the prober's first ICMP socket: a round holds one per echo,
    sent or not, from its start until it ends."""
    return prober.icmp_engines[0].in_flight if prober.icmp_engines else 0


def socket_fds() -> int:
    """Sockets this process has open now."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # the directory listing's own fd, closed by now
            continue
    return count


@pytest.mark.root
async def test_echo_to_127_0_0_1_gives_per_packet_rtts_and_statistics(prober: Prober) -> None:
    result = await prober.run(IcmpSpec("127.0.0.1", count=3, spacing=0.02), timeout=2)
    assert result.success and result.failure is None, result.detail
    assert (result.kind, result.target) == ("icmp", "127.0.0.1")
    assert result.packets_sent == result.packets_received == 3
    assert result.loss == 0.0
    assert len(result.rtts) == 3 and all(0 < rtt < LOOPBACK_RTT for rtt in result.rtts)
    assert result.rtt_min is not None and result.rtt_max is not None
    assert result.rtt_min <= result.duration <= result.rtt_max  # type: ignore[operator]
    assert result.duration == pytest.approx(result.rtt_avg)
    assert result.jitter is not None and result.rtt_stddev is not None
    assert [engine.mode for engine in prober.icmp_engines] == ["raw"]


@pytest.mark.root
async def test_echo_to_ipv6_loopback(prober: Prober) -> None:
    if not ipv6_on_loopback():
        pytest.skip("IPv6 is disabled on lo (net.ipv6.conf.lo.disable_ipv6=1)")
    result = await prober.run(IcmpSpec("::1", count=3, spacing=0.02), timeout=2)
    assert result.success, result.detail
    assert len(result.rtts) == 3 and all(0 < rtt < LOOPBACK_RTT for rtt in result.rtts)


@pytest.mark.root
async def test_hundreds_of_127_x_targets_share_one_socket(prober: Prober) -> None:
    before = socket_fds()
    specs = [IcmpSpec(f"127.0.{i // 200}.{i % 200 + 1}", count=2, spacing=0.01) for i in range(600)]
    results = await asyncio.gather(*(prober.run(spec, timeout=3) for spec in specs))
    assert [r.packets_received for r in results] == [2] * len(specs)
    assert {r.target for r in results} == {spec.address for spec in specs}
    assert len(prober.icmp_engines) == 1
    assert socket_fds() - before == 1
    assert prober.icmp_engines[0].in_flight == 0


@pytest.mark.root
async def test_run_many_keeps_order_across_kinds(prober: Prober) -> None:
    port = free_port()
    specs: list[ProbeSpec] = [
        IcmpSpec("127.0.0.2", count=2, spacing=0.01),
        TcpSpec("127.0.0.1", port),
        IcmpSpec("127.0.0.3", count=1),
        IcmpSpec("localhost", count=1),  # a name: resolved, then run on its own
    ]
    results = await prober.run_many(specs, timeout=2)
    assert [r.target for r in results] == [
        "127.0.0.2",
        f"127.0.0.1:{port}",
        "127.0.0.3",
        "localhost",
    ]
    assert [r.success for r in results] == [True, False, True, True]
    assert results[1].failure is Failure.REFUSED


@pytest.mark.root
async def test_rounds_to_addresses_report_by_callback_without_a_task(
    prober: Prober, peer: Peer
) -> None:
    loop = asyncio.get_running_loop()
    results: dict[str, ProbeResult] = {}
    every = asyncio.Event()
    tasks_before = len(asyncio.all_tasks())

    def done(outcome: ProbeResult | Exception) -> None:
        assert isinstance(outcome, ProbeResult), outcome
        results[outcome.target] = outcome
        if len(results) == 4:
            every.set()

    started = loop.time()
    prober.begin(IcmpSpec("127.0.0.4", count=2, spacing=0.01), started + 1.0, done)
    prober.begin(IcmpSpec(peer.silent, count=2, spacing=0.01), started + 0.4, done)
    prober.begin(IcmpSpec(peer.rejecting, count=1), started + 1.0, done)
    assert len(asyncio.all_tasks()) == tasks_before, "no task per round"
    named = prober.begin(IcmpSpec("localhost", count=1), started + 1.0, done)
    assert isinstance(named, asyncio.Task), "a name is resolved in a task"
    await asyncio.wait_for(every.wait(), 2)
    took = loop.time() - started
    up, silent, refused = (results[t] for t in ("127.0.0.4", peer.silent, peer.rejecting))
    assert up.success and up.packets_received == 2
    assert silent.failure is Failure.TIMEOUT
    assert refused.failure is Failure.UNREACHABLE
    assert results["localhost"].success
    assert 0.35 <= took < 1.0  # the silent round ended at its own deadline, not later
    assert prober.icmp_engines[0].in_flight == 0


@pytest.mark.root
async def test_count_and_spacing_are_honoured(prober: Prober) -> None:
    started = time.monotonic()
    result = await prober.run(IcmpSpec("127.0.0.1", count=4, spacing=0.1), timeout=2)
    elapsed = time.monotonic() - started
    assert result.packets_sent == result.packets_received == 4
    assert 0.3 <= elapsed < 0.3 + 0.5  # three gaps, then the last reply ends the round at once


@contextlib.contextmanager
def kernel_receive_timestamps() -> Iterator[None]:
    """Hold receive timestamping on, and wait until the kernel stamps packets on arrival.

    When the first socket on a host asks for timestamps the kernel switches them on through a
    workqueue, and until then stamps packets when they are read. A datagram to ourselves, read
    20 ms late, tells which of the two we get.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", 0))
        deadline = time.monotonic() + 5
        while True:
            sent = time.time_ns()
            sock.sendto(b"?", sock.getsockname())
            time.sleep(0.02)  # the wait is the test: is a datagram read late stamped on arrival?
            _, ancdata, _, _ = sock.recvmsg(1, 64)
            seconds, nanoseconds = struct.unpack("@qq", ancdata[0][2])
            if seconds * 1_000_000_000 + nanoseconds - sent < 10_000_000:
                break
            assert time.monotonic() < deadline, "the kernel never stamped a packet on arrival"
        yield


@pytest.mark.root
async def test_rtt_is_the_kernel_timestamp_not_when_the_loop_got_round_to_it(
    prober: Prober,
) -> None:
    with kernel_receive_timestamps():
        task = asyncio.create_task(prober.run(IcmpSpec("127.0.0.1", count=1), timeout=2))
        while not prober.icmp_engines or prober.icmp_engines[0].in_flight == 0:
            await asyncio.sleep(0)  # until the echo is out
        time.sleep(0.2)  # the event loop is stuck while the reply arrives
        result = await task
    assert result.success
    assert result.rtts[0] < LOOPBACK_RTT


@pytest.mark.root
async def test_silent_target_is_a_timeout_with_every_echo_lost(prober: Prober, peer: Peer) -> None:
    started = time.monotonic()
    result = await prober.run(IcmpSpec(peer.silent, count=3, spacing=0.02), timeout=0.5)
    elapsed = time.monotonic() - started
    assert not result.success
    assert result.failure is Failure.TIMEOUT
    assert (result.packets_sent, result.packets_received, result.loss) == (3, 0, 1.0)
    assert 0.45 <= elapsed < 1.0


@pytest.mark.root
async def test_partial_loss_is_measured_not_failed(prober: Prober, peer: Peer) -> None:
    result = await prober.run(IcmpSpec(peer.lossy, count=4, spacing=0.02), timeout=1)
    assert result.success  # some replies came back: the link is up, with loss
    assert (result.packets_sent, result.packets_received, result.loss) == (4, 2, 0.5)
    assert len(result.rtts) == 2
    assert "2 of 4 echoes lost" in result.detail


@pytest.mark.root
async def test_destination_unreachable_is_unreachable(prober: Prober, peer: Peer) -> None:
    started = time.monotonic()
    result = await prober.run(IcmpSpec(peer.rejecting, count=2, spacing=0.02), timeout=2)
    assert result.failure is Failure.UNREACHABLE
    assert "host unreachable" in result.detail
    assert time.monotonic() - started < 1.0  # every echo was answered (with an error): no wait


@pytest.mark.root
async def test_target_in_a_namespace_through_source_and_interface(
    prober: Prober, peer: Peer
) -> None:
    spec = IcmpSpec(
        peer.answering, count=2, spacing=0.02, source=peer.gateway, interface=peer.device
    )
    result = await prober.run(spec, timeout=2)
    assert result.success and result.packets_received == 2, result.detail
    assert len(prober.icmp_engines) == 1
    plain = await prober.run(IcmpSpec("127.0.0.1", count=1), timeout=2)
    assert plain.success
    assert len(prober.icmp_engines) == 2  # one more socket for the other binding, no more


@pytest.mark.root
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (IcmpSpec("127.0.0.1", source="203.0.113.77"), "icmp source 203.0.113.77 cannot be used"),
        (IcmpSpec("127.0.0.1", interface="nosuchif0"), "interface 'nosuchif0' does not exist"),
    ],
)
async def test_bad_binding_is_a_setup_error(prober: Prober, spec: IcmpSpec, message: str) -> None:
    with pytest.raises(ProbeSetupError, match=message):
        await prober.run(spec, timeout=1)


@pytest.mark.root
async def test_sequence_space_wraps_and_skips_echoes_still_in_flight(
    prober: Prober, peer: Peer
) -> None:
    """White-box: put the key counter at the end of the space, with a block still in flight."""
    await prober.run(IcmpSpec("127.0.0.1", count=1), timeout=1)
    engine = prober.icmp_engines[0]
    last = engine._key_mask
    engine._next_key, engine._issued = last - 1, last  # as if the space had wrapped
    held = asyncio.create_task(prober.run(IcmpSpec(peer.silent, count=3, spacing=0), timeout=0.5))
    while engine.in_flight == 0:
        await asyncio.sleep(0)
    engine._next_key = last - 1  # the silent round holds last-1, last and 0
    result = await prober.run(IcmpSpec("127.0.0.1", count=5, spacing=0.01), timeout=1)
    assert result.packets_received == 5
    assert (await held).packets_sent == 3
    assert engine.in_flight == 0


@pytest.mark.root
async def test_cancelled_round_frees_its_sequence_numbers(prober: Prober, peer: Peer) -> None:
    task = asyncio.create_task(prober.run(IcmpSpec(peer.silent, count=3, spacing=0.05), timeout=5))
    await wait_for(lambda: in_flight(prober) == 3, 5, "the round holding its keys")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert prober.icmp_engines[0].in_flight == 0


@pytest.mark.root
async def test_closing_the_prober_ends_running_rounds(peer: Peer) -> None:
    prober = Prober()
    task = asyncio.create_task(prober.run(IcmpSpec(peer.silent, count=2, spacing=0), timeout=10))
    await wait_for(lambda: in_flight(prober) == 2, 5, "both echoes out")  # sent together
    started = time.monotonic()
    await prober.close()
    result = await asyncio.wait_for(task, 1)
    assert time.monotonic() - started < 1
    assert result.failure is Failure.TIMEOUT and result.packets_sent == 2


@pytest.mark.root
async def test_datagram_socket_in_process() -> None:
    """The 16-bit key path (the kernel owns the identifier), as root with gid 0 in the range."""
    with ping_group_range(0, 0):
        async with Prober(icmp_mode="dgram") as prober:
            specs = [IcmpSpec(f"127.0.1.{i}", count=3, spacing=0.01) for i in range(1, 101)]
            results = await prober.run_many(specs, timeout=2)
            assert [engine.mode for engine in prober.icmp_engines] == ["dgram"]
    assert all(
        r.packets_received == 3 and all(0 < t < LOOPBACK_RTT for t in r.rtts) for r in results
    )


@pytest.mark.root
def test_unprivileged_user_pings_through_a_datagram_socket(
    peer: Peer, staged_for_nobody: Staged
) -> None:
    jobs = [
        ("icmp", {"address": "127.0.0.1", "count": 3, "spacing": 0.02}),
        ("icmp", {"address": peer.rejecting, "count": 2, "spacing": 0.02}),
    ]
    if ipv6_on_loopback():
        jobs.append(("icmp", {"address": "::1", "count": 3, "spacing": 0.02}))
    with ping_group_range(NOBODY, NOBODY):
        code, output, stderr = run_probes(jobs, as_nobody=staged_for_nobody)
    assert code == 0, stderr
    assert set(output["modes"]) == {"dgram"}
    loopback, rejected, *ipv6 = output["results"]
    assert loopback["received"] == 3 and all(0 < rtt < LOOPBACK_RTT for rtt in loopback["rtts"])
    assert rejected["failure"] == "unreachable" and "host unreachable" in rejected["detail"]
    for result in ipv6:
        assert result["received"] == 3


@pytest.mark.root
def test_unprivileged_user_without_the_sysctl_gets_the_fix_named(
    staged_for_nobody: Staged,
) -> None:
    with ping_group_range(1, 0):  # the kernel default: nobody may
        code, _, stderr = run_probes(
            [("icmp", {"address": "127.0.0.1"})], as_nobody=staged_for_nobody
        )
    assert code == 3
    assert "CAP_NET_RAW" in stderr
    assert f"sysctl -w net.ipv4.ping_group_range='{NOBODY} {NOBODY}'" in stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": ""}, "icmp address must be an IP address or host name"),
        ({"address": "127.0.0.1", "count": 0}, "icmp count must be between 1 and 1000, got 0"),
        ({"address": "127.0.0.1", "spacing": -1}, "icmp spacing must be between 0 and 60"),
        ({"address": "127.0.0.1", "size": 4}, "icmp size must be between 8 and 65000 bytes, got 4"),
        ({"address": "127.0.0.1", "source": "eth0"}, "icmp source must be an IP address"),
        ({"address": "::1", "source": "127.0.0.1"}, "source 127.0.0.1 is IPv4 but the target ::1"),
        (
            {"address": "127.0.0.1", "interface": "a/b"},
            "icmp interface must be a network interface",
        ),
    ],
)
def test_bad_spec_is_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IcmpSpec(**kwargs)  # type: ignore[arg-type]
