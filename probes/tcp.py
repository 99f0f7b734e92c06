"""TCP probe: how long a connection to host:port takes, and why it failed if it did.

Refused (the host answered with a reset: the service is down or blocked), unreachable (an ICMP
error or no route: the path is broken) and timeout (silence) point a NOC at different culprits,
so they are told apart.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

from probes.addresses import check_source, family_of
from probes.base import Failure, ProbeResult, ProbeSetupError

UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
)


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


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify_connect_error(exc: BaseException) -> tuple[Failure, str] | None:
    """The failure reason of a connection attempt from the exception chain, if it names one."""
    for cause in _causes(exc):
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


async def probe_tcp(spec: TcpSpec, timeout: float) -> ProbeResult:
    """Connect to ``spec`` within ``timeout`` seconds; a failed target is a result, not an error."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    phases: dict[str, float] = {}
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout_at(started + timeout):
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
        return _failed(spec, Failure.TIMEOUT, f"no answer within {timeout:g}s", phases)
    except OSError as exc:
        failure, detail = classify_connect_error(exc) or (Failure.ERROR, _describe_os_error(exc))
        return _failed(spec, failure, detail, phases)
    finally:
        if sock is not None:
            sock.close()
    phases["connect"] = connect
    return ProbeResult(
        kind="tcp", target=spec.target, success=True, duration=connect, phases=phases
    )


def _bind(sock: socket.socket, source: str) -> None:
    try:
        sock.bind((source, 0))
    except OSError as exc:
        raise ProbeSetupError(
            f"tcp source {source} cannot be used: {exc.strerror} (is it an address of this host?)"
        ) from None


def _failed(spec: TcpSpec, failure: Failure, detail: str, phases: dict[str, float]) -> ProbeResult:
    return ProbeResult(
        kind="tcp", target=spec.target, success=False, failure=failure, detail=detail, phases=phases
    )
