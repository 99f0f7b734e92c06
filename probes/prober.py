"""The one door the daemon and the CLI use: ``Prober.run(spec, timeout)`` for any probe kind.

The Prober owns what probes share: the ICMP engines (one socket per address family and
source/interface binding, opened on first use or at :meth:`Prober.start`), the HTTP SSL contexts,
clients and concurrency bound.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from probes.addresses import family_of
from probes.base import Failure, ProbeResult, ProbeSetupError
from probes.http import DEFAULT_CONCURRENCY, HttpProber, HttpSpec
from probes.icmp import IcmpEngine, IcmpMode, IcmpSpec, numeric_target
from probes.tcp import TcpSpec, probe_tcp

ProbeSpec = IcmpSpec | TcpSpec | HttpSpec
ProbeKind = Literal["icmp", "tcp", "http"]
KINDS: tuple[ProbeKind, ...] = ("icmp", "tcp", "http")

_EngineKey = tuple[socket.AddressFamily, str | None, str | None]


class Prober:
    """Runs probes of every kind with shared resources; use as ``async with Prober() as p``."""

    def __init__(
        self,
        *,
        icmp_mode: IcmpMode = "auto",
        http_concurrency: int = DEFAULT_CONCURRENCY,
        ca_file: str | None = None,
    ) -> None:
        self._icmp_mode: IcmpMode = icmp_mode
        self._engines: dict[_EngineKey, IcmpEngine] = {}
        self._http = HttpProber(concurrency=http_concurrency, ca_file=ca_file)
        self._closed = False

    @property
    def icmp_engines(self) -> tuple[IcmpEngine, ...]:
        """The ICMP engines open now: one socket each."""
        return tuple(self._engines.values())

    async def start(
        self, icmp_specs: Iterable[IcmpSpec] = (), *, families: Iterable[int] = ()
    ) -> None:
        """Open now the ICMP sockets these probes (or these unbound families) will need.

        A missing permission then fails at start-up, not at the first round, and the sockets
        exist before a daemon drops its privileges. Pass the specs rather than the families:
        sockets bound to a source or interface open only for specs. Host names are resolved at
        run time, so their sockets open on first use.
        """
        for family in families:
            self._engine(socket.AddressFamily(family), None, None)
        for spec in icmp_specs:
            target = _numeric(spec.address)
            if target is not None:
                self._engine(target[0], spec.source, spec.interface)

    async def close(self) -> None:
        self._closed = True
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()
        await self._http.aclose()

    async def __aenter__(self) -> Prober:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def run(self, spec: ProbeSpec, timeout: float) -> ProbeResult:
        """Run one probe; returns within ``timeout`` seconds. Only set-up faults raise."""
        if self._closed:
            raise ProbeSetupError("the prober is closed")
        if timeout <= 0:
            raise ValueError(f"probe timeout must be positive, got {timeout}")
        if isinstance(spec, IcmpSpec):
            target = _numeric(spec.address)
            if target is not None:
                engine = self._engine(target[0], spec.source, spec.interface)
                return await engine.ping(spec, target[1], timeout)
            return await self._run_icmp_by_name(spec, timeout)
        if isinstance(spec, TcpSpec):
            return await probe_tcp(spec, timeout)
        if isinstance(spec, HttpSpec):
            return await self._http.run(spec, timeout)
        raise TypeError(f"not a probe spec: {spec!r}")

    def run_soon(
        self, spec: ProbeSpec, timeout: float, done: Callable[[ProbeResult], object]
    ) -> bool:
        """Start ``spec`` and have the loop call ``done(result)`` within ``timeout``, without a
        task, if its kind allows (ICMP to an IP address); False, and nothing started, if not:
        then :meth:`run` it in a task."""
        if not isinstance(spec, IcmpSpec) or self._closed or timeout <= 0:
            return False
        target = _numeric(spec.address)
        if target is None:
            return False
        self._engine(target[0], spec.source, spec.interface).ping_then(
            spec, target[1], timeout, done
        )
        return True

    async def run_many(self, specs: Sequence[ProbeSpec], timeout: float) -> list[ProbeResult]:
        """Run probes all at once; results in the order of ``specs``.

        ICMP rounds to IP addresses are started together and awaited from one task per engine,
        which costs less CPU than a task per probe (see bench/icmp_scale.py).
        """
        results: list[ProbeResult | None] = [None] * len(specs)
        batches: dict[IcmpEngine, list[tuple[int, IcmpSpec, tuple[Any, ...]]]] = {}
        singles: list[int] = []
        for index, spec in enumerate(specs):
            target = _numeric(spec.address) if isinstance(spec, IcmpSpec) else None
            if isinstance(spec, IcmpSpec) and target is not None:
                engine = self._engine(target[0], spec.source, spec.interface)
                batch = batches.setdefault(engine, [])
                batch.append((index, spec, target[1]))
            else:
                singles.append(index)

        async def run_batch(engine: IcmpEngine, batch: list[tuple[int, IcmpSpec, Any]]) -> None:
            answers = await engine.ping_many([(spec, addr) for _, spec, addr in batch], timeout)
            for (index, _, _), answer in zip(batch, answers, strict=True):
                results[index] = answer

        async def run_single(index: int) -> None:
            results[index] = await self.run(specs[index], timeout)

        await asyncio.gather(
            *(run_batch(engine, batch) for engine, batch in batches.items()),
            *(run_single(index) for index in singles),
        )
        return [result for result in results if result is not None]

    async def _run_icmp_by_name(self, spec: IcmpSpec, timeout: float) -> ProbeResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(
                    spec.address, None, family=family_of(spec.source), type=socket.SOCK_RAW
                )
        except TimeoutError:
            return _icmp_failed(spec, Failure.TIMEOUT, "name resolution timed out")
        except socket.gaierror as exc:
            return _icmp_failed(spec, Failure.DNS, f"name not resolved: {exc.strerror}")
        timeout -= loop.time() - started
        if timeout <= 0:
            return _icmp_failed(spec, Failure.TIMEOUT, "name resolution took the whole timeout")
        family, sockaddr = infos[0][0], infos[0][4]
        engine = self._engine(family, spec.source, spec.interface)
        return await engine.ping(spec, sockaddr, timeout)

    def _engine(
        self, family: socket.AddressFamily, source: str | None, interface: str | None
    ) -> IcmpEngine:
        key = (family, source, interface)
        engine = self._engines.get(key)
        if engine is None:
            engine = IcmpEngine(family, source=source, interface=interface, mode=self._icmp_mode)
            engine.open()
            self._engines[key] = engine
        return engine


@functools.lru_cache(maxsize=65536)
def _numeric(address: str) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    return numeric_target(address)


def _icmp_failed(spec: IcmpSpec, failure: Failure, detail: str) -> ProbeResult:
    return ProbeResult(
        kind="icmp", target=spec.address, success=False, failure=failure, detail=detail
    )


def spec_from_target(kind: str, target: str, *, count: int | None = None) -> ProbeSpec:
    """The probe spec for ``linkmon probe KIND TARGET``; ValueError says what is wrong.

    ``count`` is the number of ICMP echoes; the other kinds have no use for it.
    """
    if kind == "icmp":
        return IcmpSpec(address=target) if count is None else IcmpSpec(address=target, count=count)
    if kind == "tcp":
        host, port = _split_host_port(target)
        return TcpSpec(host=host, port=port)
    if kind == "http":
        if "://" not in target:
            raise ValueError(f"http target must be a URL such as http://{target}/, got {target!r}")
        return HttpSpec(url=target)
    raise ValueError(f"probe kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _split_host_port(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6-address]:port``."""
    try:
        parts = urlsplit(f"//{target}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None or parts.netloc != target or "@" in target:
        raise ValueError(f"tcp target must be host:port or [IPv6]:port, got {target!r}")
    return host, port
