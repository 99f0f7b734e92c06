"""The probe kinds, by name: how each is built and how a target for it is read.

A kind is a module with its spec and its :class:`~probes.base.Probe`; adding one is that module
and one line in :data:`REGISTRY`. The :class:`~probes.prober.Prober` builds every kind from
here and dispatches rounds by the spec's type, so nothing else lists the kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from probes import http, tcp
from probes.base import Probe
from probes.http import HttpProbe, HttpSpec
from probes.icmp import IcmpProbe, IcmpSpec
from probes.icmp_socket import IcmpMode
from probes.tcp import TcpProbe, TcpSpec

S = TypeVar("S")

ProbeSpec = IcmpSpec | TcpSpec | HttpSpec


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What the kinds are built with, one set per prober."""

    icmp_mode: IcmpMode = "auto"
    tcp_concurrency: int = tcp.DEFAULT_CONCURRENCY
    http_concurrency: int = http.DEFAULT_CONCURRENCY
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class Kind(Generic[S]):
    """One probe kind: its name (the config's and the metrics' ``kind``), its spec type, how to
    build its probe, and how to read a target given on the command line (``linkmon probe``)."""

    name: str
    spec: type[S]
    build: Callable[[ProbeOptions], Probe[S]]
    parse: Callable[[str, int | None], S]


def _icmp_target(target: str, count: int | None) -> IcmpSpec:
    return IcmpSpec(address=target) if count is None else IcmpSpec(address=target, count=count)


def _tcp_target(target: str, _count: int | None) -> TcpSpec:
    """``host:port`` or ``[v6-address]:port``."""
    try:
        parts = urlsplit(f"//{target}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None or parts.netloc != target or "@" in target:
        raise ValueError(f"tcp target must be host:port or [IPv6]:port, got {target!r}")
    return TcpSpec(host=host, port=port)


def _http_target(target: str, _count: int | None) -> HttpSpec:
    if "://" not in target:
        raise ValueError(f"http target must be a URL such as http://{target}/, got {target!r}")
    return HttpSpec(url=target)


REGISTRY: dict[str, Kind[Any]] = {
    kind.name: kind
    for kind in (
        Kind("icmp", IcmpSpec, lambda o: IcmpProbe(mode=o.icmp_mode), _icmp_target),
        Kind("tcp", TcpSpec, lambda o: TcpProbe(concurrency=o.tcp_concurrency), _tcp_target),
        Kind(
            "http",
            HttpSpec,
            lambda o: HttpProbe(concurrency=o.http_concurrency, ca_file=o.ca_file),
            _http_target,
        ),
    )
}
KINDS: tuple[str, ...] = tuple(REGISTRY)


def spec_from_target(kind: str, target: str, *, count: int | None = None) -> ProbeSpec:
    """The probe spec for ``linkmon probe KIND TARGET``; ValueError says what is wrong.

    ``count`` is the number of ICMP echoes; the other kinds have no use for it.
    """
    found = REGISTRY.get(kind)
    if found is None:
        raise ValueError(f"probe kind must be one of {', '.join(KINDS)}, got {kind!r}")
    spec: ProbeSpec = found.parse(target, count)
    return spec
