"""The Prober: every kind built from the registry, dispatch, start-up and closing."""

from __future__ import annotations

import socket

import pytest

from probes import IcmpSpec, Prober, ProbeSetupError, TcpSpec
from tests.probes.conftest import ipv6_on_loopback


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
