"""The registry of probe kinds: every kind is built, reached by its spec, and reads a target
given on the command line."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from probes import (
    KINDS,
    REGISTRY,
    HttpSpec,
    IcmpSpec,
    Prober,
    ProbeResult,
    ProbeSpec,
    TcpSpec,
    spec_from_target,
)
from tests.support.daemon import free_port
from tests.support.wait import wait_for


def test_the_kinds_are_the_configs_and_each_names_its_spec() -> None:
    assert KINDS == ("icmp", "tcp", "http")
    assert {name: kind.spec for name, kind in REGISTRY.items()} == {
        "icmp": IcmpSpec,
        "tcp": TcpSpec,
        "http": HttpSpec,
    }
    assert all(kind.name == name for name, kind in REGISTRY.items())


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.mark.root
async def test_every_kind_is_reached_by_its_spec_through_one_shape(listener: int) -> None:
    """One ``begin(spec, deadline, report)`` for every kind; each result comes back once."""
    specs: list[ProbeSpec] = [
        spec_from_target("icmp", "127.0.0.1", count=2),
        spec_from_target("tcp", f"127.0.0.1:{listener}"),
        spec_from_target("http", f"http://127.0.0.1:{free_port()}/"),
    ]
    loop = asyncio.get_running_loop()
    reports: list[ProbeResult | Exception] = []
    async with Prober() as prober:
        for spec in specs:
            prober.begin(spec, loop.time() + 2, reports.append)
        assert reports == [], "a round never reports from inside begin"
        await wait_for(lambda: len(reports) == len(specs), 5, "every round's report")
        await asyncio.sleep(0.05)  # the wait is the test: no second report comes
    by_kind = {r.kind: r for r in reports if isinstance(r, ProbeResult)}
    assert len(reports) == 3 and set(by_kind) == set(KINDS)
    assert by_kind["icmp"].success and by_kind["tcp"].success
    assert by_kind["http"].failure is not None and by_kind["http"].failure.value == "refused"


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
