"""The Prober facade: dispatch, start-up, closing, and parsing a CLI target into a spec."""

from __future__ import annotations

import socket

import pytest

from probes import HttpSpec, IcmpSpec, Prober, ProbeSetupError, TcpSpec, spec_from_target
from tests.probes.conftest import ipv6_on_loopback


@pytest.mark.parametrize(
    ("kind", "target", "spec"),
    [
        ("icmp", "198.18.1.1", IcmpSpec("198.18.1.1")),
        ("icmp", "2001:db8::1", IcmpSpec("2001:db8::1")),
        ("tcp", "198.18.1.1:443", TcpSpec("198.18.1.1", 443)),
        ("tcp", "[2001:db8::1]:443", TcpSpec("2001:db8::1", 443)),
        ("tcp", "pusat.example:8443", TcpSpec("pusat.example", 8443)),
        ("http", "https://198.18.1.1/health", HttpSpec("https://198.18.1.1/health")),
    ],
)
def test_spec_from_target(kind: str, target: str, spec: object) -> None:
    assert spec_from_target(kind, target) == spec


def test_echo_count_applies_to_icmp_only() -> None:
    assert spec_from_target("icmp", "198.18.1.1", count=3) == IcmpSpec("198.18.1.1", count=3)
    assert spec_from_target("tcp", "198.18.1.1:22", count=3) == TcpSpec("198.18.1.1", 22)
    with pytest.raises(ValueError, match="icmp count must be between 1 and 1000, got 0"):
        spec_from_target("icmp", "198.18.1.1", count=0)


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("udp", "198.18.1.1", "probe kind must be one of icmp, tcp, http, got 'udp'"),
        ("icmp", "", "icmp address must be an IP address or host name, got ''"),
        ("tcp", "198.18.1.1", "tcp target must be host:port or \\[IPv6\\]:port, got '198.18.1.1'"),
        ("tcp", "198.18.1.1:99999", "tcp target must be host:port"),
        ("tcp", "198.18.1.1:http", "tcp target must be host:port"),
        ("tcp", "noc@198.18.1.1:22", "tcp target must be host:port"),
        ("tcp", "198.18.1.1:0", "tcp port must be between 1 and 65535, got 0"),
        (
            "http",
            "198.18.1.1/health",
            "http target must be a URL such as http://198.18.1.1/health/",
        ),
    ],
)
def test_bad_target_names_what_is_wrong(kind: str, target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec_from_target(kind, target)


async def test_run_refuses_what_it_cannot_run(prober: Prober) -> None:
    with pytest.raises(TypeError, match="not a probe spec"):
        await prober.run("198.18.1.1", timeout=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probe timeout must be positive, got 0"):
        await prober.run(TcpSpec("127.0.0.1", 9), timeout=0)


async def test_closed_prober_refuses_to_run() -> None:
    prober = Prober()
    await prober.close()
    with pytest.raises(ProbeSetupError, match="the prober is closed"):
        await prober.run(TcpSpec("127.0.0.1", 9), timeout=1)


@pytest.mark.root
async def test_start_opens_the_icmp_sockets_up_front_and_close_shuts_them() -> None:
    specs = [IcmpSpec("127.0.0.1"), IcmpSpec("127.0.0.2"), IcmpSpec("localhost")]
    if ipv6_on_loopback():
        specs.append(IcmpSpec("::1"))
    async with Prober() as prober:
        await prober.start(specs)  # names are resolved when they run, so open no socket yet
        engines = prober.icmp_engines
        assert len(engines) == (2 if ipv6_on_loopback() else 1)
        assert all(engine.mode == "raw" for engine in engines)
    assert prober.icmp_engines == ()
    assert all(engine.mode is None for engine in engines)


@pytest.mark.root
async def test_start_by_address_family() -> None:
    async with Prober() as prober:
        await prober.start(families=[socket.AF_INET])
        assert [(e.family, e.source, e.mode) for e in prober.icmp_engines] == [
            (socket.AF_INET, None, "raw")
        ]
        result = await prober.run(IcmpSpec("127.0.0.1", count=1), timeout=1)
        assert result.success and len(prober.icmp_engines) == 1  # the same socket serves it
