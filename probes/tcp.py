"""TCP probe: how long a connection to host:port takes, and why it failed if it did.

Refused (the host answered with a reset: the service is down or blocked), unreachable (an ICMP
error or no route: the path is broken) and timeout (silence) point a NOC at different culprits,
so they are told apart. So is a connection this host never let out: out of file descriptors,
or its own firewall dropping the SYNs (the kernel retried them, but none left the host).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import Any

from probes.addresses import check_source, family_of
from probes.base import (
    Failure,
    ProbeResult,
    ProbeSetupError,
    Report,
    Round,
    TaskRounds,
    agent_fault,
    causes,
)

DEFAULT_CONCURRENCY = 2000  # connections in flight at once; each holds a file descriptor

UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
)

# struct tcp_info (linux/tcp.h, append-only ABI): tcpi_retransmits is byte 2 (SYN retries so
# far), tcpi_retrans the u32 at byte 36 (retransmissions that left the host and are unanswered).
_TCP_INFO_BYTES = 40
_RETRANS = struct.Struct("@I")


@dataclass(frozen=True, slots=True)
class TcpSpec:
    """A TCP connect to ``host``:``port``, optionally from ``source``."""

    host: str
    port: int
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.host or self.host.strip() != self.host:
            raise ValueError(f"tcp host must be an IP address or host name, got {self.host!r}")
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ValueError(f"tcp port must be between 1 and 65535, got {self.port!r}")
        check_source("tcp", self.source, self.host)

    @property
    def target(self) -> str:
        """``host:port``, with an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def classify_connect_error(exc: BaseException) -> tuple[Failure, str] | None:
    """The failure reason of a connection attempt from the exception chain, if it names one.

    The agent's own faults come first: an EMFILE wrapped in a DNS or TLS error is still the
    agent's."""
    detail = agent_fault(exc)
    if detail is not None:
        return Failure.AGENT, detail
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror):
            return Failure.DNS, f"name not resolved: {cause.strerror}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure.TLS, f"certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return Failure.TLS, f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return Failure.REFUSED, "connection refused"
        if isinstance(cause, OSError) and cause.errno in UNREACHABLE_ERRNOS:
            return Failure.UNREACHABLE, os.strerror(cause.errno)
    return None


def _describe_os_error(exc: OSError) -> str:
    """The system's words for an error (asyncio replaces strerror with its own message)."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


class TcpProbe:
    """The TCP kind: each round connects in a task; at most ``concurrency`` at once, and the
    wait for a free slot counts against the round's deadline."""

    def __init__(self, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError(f"tcp concurrency must be at least 1, got {concurrency}")
        self._slots = asyncio.Semaphore(concurrency)
        self._rounds = TaskRounds()

    def begin(self, spec: TcpSpec, deadline: float, report: Report) -> Round:
        return self._rounds.begin(self._connect(spec, deadline), report)

    async def close(self) -> None:
        await self._rounds.close()

    async def _connect(self, spec: TcpSpec, deadline: float) -> ProbeResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        phases: dict[str, float] = {}
        sock: socket.socket | None = None
        sockaddr: Any = None
        try:
            async with asyncio.timeout_at(deadline), self._slots:
                infos = await loop.getaddrinfo(
                    spec.host, spec.port, family=family_of(spec.source), type=socket.SOCK_STREAM
                )
                phases["resolve"] = loop.time() - started
                family, _type, _proto, _name, sockaddr = infos[0]
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                if spec.source is not None:
                    _bind(sock, spec.source)
                connect_started = time.perf_counter()
                await loop.sock_connect(sock, sockaddr)
                connect = time.perf_counter() - connect_started
        except TimeoutError:
            failure, detail = Failure.TIMEOUT, f"no answer within {deadline - started:.3g}s"
            if sock is not None and not _left_this_host(sock):
                failure, detail = _kept_in(spec, sock.family, sockaddr)
            return _failed(spec, failure, detail, phases)
        except OSError as exc:
            failure, detail = classify_connect_error(exc) or (
                Failure.ERROR,
                _describe_os_error(exc),
            )
            return _failed(spec, failure, detail, phases)
        finally:
            if sock is not None:
                sock.close()
        phases["connect"] = connect
        return ProbeResult(
            kind="tcp", target=spec.target, success=True, duration=connect, phases=phases
        )


def _left_this_host(sock: socket.socket) -> bool:
    """False when the kernel retried the SYN but no retry left this host (a firewall on the
    agent dropping it, or no route any more): it counts a retransmission only once it is out.
    True when one did, or nothing was retried yet (before the first retry, about 1 s, nobody
    can tell)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
    except OSError:
        return True
    if len(info) < _TCP_INFO_BYTES:
        return True
    return info[2] == 0 or _RETRANS.unpack_from(info, 36)[0] > 0


def _kept_in(spec: TcpSpec, family: int, sockaddr: Any) -> tuple[Failure, str]:
    """Why the SYNs stayed in: no route to the target now (the path is gone from here), or
    this host refused to send them."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            if spec.source is not None:
                probe.bind((spec.source, 0))
            probe.connect(sockaddr)  # a route lookup; nothing is sent
    except OSError as exc:
        if exc.errno in UNREACHABLE_ERRNOS:
            return Failure.UNREACHABLE, f"no route any more ({os.strerror(exc.errno)})"
        return Failure.AGENT, agent_fault(exc) or _describe_os_error(exc)
    return Failure.AGENT, "the connection attempts could not leave this host (its own firewall?)"


def _bind(sock: socket.socket, source: str) -> None:
    try:
        sock.bind((source, 0))
    except OSError as exc:
        if agent_fault(exc) is not None:
            raise
        raise ProbeSetupError(
            f"tcp source {source} cannot be used: {exc.strerror} (is it an address of this host?)"
        ) from None


def _failed(spec: TcpSpec, failure: Failure, detail: str, phases: dict[str, float]) -> ProbeResult:
    return ProbeResult(
        kind="tcp", target=spec.target, success=False, failure=failure, detail=detail, phases=phases
    )
