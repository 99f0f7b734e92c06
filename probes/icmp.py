"""ICMP echo probe: ``count`` echo requests to a target, their RTTs and the loss.

:class:`IcmpProbe` is the kind. It keeps one :class:`~probes.icmp_engine.IcmpEngine` (one
socket) per address family, source and interface, opened on first use or ahead of time
(:meth:`IcmpProbe.open_for`, before a daemon drops its privileges). A round to an IP address
costs no task: the engine reports by callback. A host name is resolved first, in a task.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from probes.addresses import check_source, family_of
from probes.base import (
    AgentFault,
    Failure,
    ProbeResult,
    Report,
    Round,
    TaskRounds,
    agent_fault,
    report_soon,
    settle,
)
from probes.icmp_engine import IcmpEngine
from probes.icmp_socket import IcmpMode

MIN_SIZE = 8  # the payload carries an 8-byte token that tells our replies from anyone else's
MAX_SIZE = 65000
MAX_COUNT = 1000

_EngineKey = tuple[socket.AddressFamily, str | None, str | None]


@dataclass(frozen=True, slots=True)
class IcmpSpec:
    """``count`` echo requests to ``address``, ``spacing`` seconds apart, ``size`` payload bytes."""

    address: str
    count: int = 5
    spacing: float = 0.1
    size: int = 56
    source: str | None = None
    interface: str | None = None

    def __post_init__(self) -> None:
        if not self.address or self.address.strip() != self.address:
            raise ValueError(
                f"icmp address must be an IP address or host name, got {self.address!r}"
            )
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"icmp count must be between 1 and {MAX_COUNT}, got {self.count}")
        if not 0 <= self.spacing <= 60:
            raise ValueError(f"icmp spacing must be between 0 and 60 seconds, got {self.spacing}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(
                f"icmp size must be between {MIN_SIZE} and {MAX_SIZE} bytes, got {self.size}"
            )
        check_source("icmp", self.source, self.address)
        if self.interface is not None and not _valid_interface(self.interface):
            raise ValueError(
                f"icmp interface must be a network interface name, got {self.interface!r}"
            )


def _valid_interface(name: str) -> bool:
    return 0 < len(name) < 16 and "/" not in name and not any(c.isspace() for c in name)


class IcmpProbe:
    """The ICMP kind: the engines (one socket per binding) and the rounds to host names."""

    def __init__(self, *, mode: IcmpMode = "auto") -> None:
        self._mode: IcmpMode = mode
        self._engines: dict[_EngineKey, IcmpEngine] = {}
        self._by_name = TaskRounds()

    @property
    def engines(self) -> tuple[IcmpEngine, ...]:
        """The engines open now: one socket each."""
        return tuple(self._engines.values())

    def open_for(self, specs: Iterable[IcmpSpec] = (), families: Iterable[int] = ()) -> None:
        """Open now the sockets these probes (or these unbound families) will need.

        A missing permission then fails at start-up, not at the first round, and the sockets
        exist before a daemon drops its privileges. Sockets bound to a source or interface open
        only for specs; host names are resolved at run time, so theirs open on first use.
        """
        for family in families:
            self._engine(socket.AddressFamily(family), None, None)
        for spec in specs:
            target = _numeric(spec.address)
            if target is not None:
                self._engine(target[0], spec.source, spec.interface)

    def begin(self, spec: IcmpSpec, deadline: float, report: Report) -> Round:
        target = _numeric(spec.address)
        if target is None:
            return self._by_name.begin(self._resolve_then_ping(spec, deadline), report)
        try:
            engine = self._engine(target[0], spec.source, spec.interface)
        except AgentFault as exc:
            return report_soon(report, _failed(spec, Failure.AGENT, str(exc)))
        return engine.begin(spec, target[1], deadline, report)

    async def close(self) -> None:
        await self._by_name.close()
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()

    async def _resolve_then_ping(self, spec: IcmpSpec, deadline: float) -> ProbeResult:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                infos = await loop.getaddrinfo(
                    spec.address, None, family=family_of(spec.source), type=socket.SOCK_RAW
                )
        except TimeoutError:
            return _failed(spec, Failure.TIMEOUT, "name resolution timed out")
        except socket.gaierror as exc:
            return _failed(spec, Failure.DNS, f"name not resolved: {exc.strerror}")
        except OSError as exc:  # the resolver could not run here (EAI_SYSTEM: out of sockets)
            return _failed(spec, Failure.AGENT, agent_fault(exc) or str(exc))
        if loop.time() >= deadline:
            return _failed(spec, Failure.TIMEOUT, "name resolution took the whole timeout")
        family, sockaddr = infos[0][0], infos[0][4]
        try:
            engine = self._engine(family, spec.source, spec.interface)
        except AgentFault as exc:
            return _failed(spec, Failure.AGENT, str(exc))
        done: asyncio.Future[ProbeResult | Exception] = loop.create_future()
        rnd = engine.begin(spec, sockaddr, deadline, partial(settle, done))
        try:
            outcome = await done
        finally:
            rnd.cancel()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _engine(
        self, family: socket.AddressFamily, source: str | None, interface: str | None
    ) -> IcmpEngine:
        key = (family, source, interface)
        engine = self._engines.get(key)
        if engine is None:
            engine = IcmpEngine(family, source=source, interface=interface, mode=self._mode)
            engine.open()
            self._engines[key] = engine
        return engine


def _failed(spec: IcmpSpec, failure: Failure, detail: str) -> ProbeResult:
    return ProbeResult(
        kind="icmp", target=spec.address, success=False, failure=failure, detail=detail
    )


@functools.lru_cache(maxsize=65536)
def _numeric(address: str) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    return numeric_target(address)


def numeric_target(address: str) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    """Family and socket address of an IP literal (as the kernel will report it), else None."""
    try:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_RAW, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, sockaddr
