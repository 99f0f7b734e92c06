"""TCP probe on real sockets: loopback listeners, a closed port, and a peer namespace that drops
or rejects SYNs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from probes import Failure, Prober, ProbeSetupError, TcpSpec, spec_from_target
from tests.probes.conftest import Peer, ipv6_on_loopback, run_probes
from tests.support.daemon import free_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


async def test_connect_to_a_listening_port(prober: Prober, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = await prober.run(TcpSpec("127.0.0.1", port), timeout=2)
    assert result.success, result.detail
    assert (result.kind, result.target) == ("tcp", f"127.0.0.1:{port}")
    assert result.duration is not None and 0 < result.duration < 0.5
    assert result.phases["connect"] == result.duration


async def test_connect_over_ipv6(prober: Prober) -> None:
    if not ipv6_on_loopback():
        pytest.skip("IPv6 is disabled on lo")
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
        port = server.getsockname()[1]
        result = await prober.run(spec_from_target("tcp", f"[::1]:{port}"), timeout=2)
    assert result.success, result.detail
    assert result.target == f"[::1]:{port}"


async def test_closed_port_is_refused(prober: Prober) -> None:
    result = await prober.run(TcpSpec("127.0.0.1", free_port()), timeout=2)
    assert result.failure is Failure.REFUSED
    assert not result.success and result.duration is None


async def test_source_address_is_the_one_the_server_sees(
    prober: Prober, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    result = await prober.run(TcpSpec("127.0.0.1", port, source="127.0.0.7"), timeout=2)
    assert result.success, result.detail
    conn, (peer_address, _) = listener.accept()
    conn.close()
    assert peer_address == "127.0.0.7"


async def test_source_that_is_not_ours_is_a_setup_error(prober: Prober) -> None:
    with pytest.raises(ProbeSetupError, match="tcp source 203.0.113.9 cannot be used"):
        await prober.run(TcpSpec("127.0.0.1", 9, source="203.0.113.9"), timeout=1)


@pytest.mark.root
async def test_silently_dropped_syn_is_a_timeout(prober: Prober, peer: Peer) -> None:
    started = time.monotonic()
    result = await prober.run(TcpSpec(peer.silent, 443), timeout=0.5)
    assert result.failure is Failure.TIMEOUT
    assert 0.45 <= time.monotonic() - started < 1.0


@pytest.mark.root
async def test_icmp_host_unreachable_is_unreachable(prober: Prober, peer: Peer) -> None:
    result = await prober.run(TcpSpec(peer.rejecting, 443), timeout=2)
    assert result.failure is Failure.UNREACHABLE
    assert result.detail == "No route to host"


@pytest.mark.root
def test_name_that_does_not_resolve_is_a_dns_failure(peer: Peer) -> None:
    """Inside the peer namespace the resolver is unreachable: the lookup fails, nothing is sent."""
    code, output, stderr = run_probes(
        [("tcp", {"host": "nonexistent.invalid", "port": 80})], namespace=peer.namespace
    )
    assert code == 0, stderr
    assert output["results"][0]["failure"] == "dns"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "", "port": 80}, "tcp host must be an IP address or host name"),
        ({"host": "127.0.0.1", "port": 0}, "tcp port must be between 1 and 65535, got 0"),
        ({"host": "127.0.0.1", "port": 70000}, "tcp port must be between 1 and 65535, got 70000"),
        ({"host": "127.0.0.1", "port": 80, "source": "lo"}, "tcp source must be an IP address"),
        ({"host": "127.0.0.1", "port": 80, "source": "::1"}, "tcp source ::1 is IPv6 but the"),
    ],
)
def test_bad_spec_is_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TcpSpec(**kwargs)  # type: ignore[arg-type]
