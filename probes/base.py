"""What every probe kind is and returns: one shape, one result, one failure vocabulary.

Every kind is a :class:`Probe`: ``begin(spec, deadline, report)`` starts a round against one
target and calls ``report`` once, from the event loop, by ``deadline`` (the blackbox_exporter
``prober/`` pattern: one function shape per kind; the caller, not the probe, decides the
deadline). A round reports by callback so that a kind which needs no task (ICMP to an address:
thousands of rounds a second) costs none; kinds that do await things run each round in a task
of their own (:class:`TaskRounds`). A failed target is data (a :class:`ProbeResult` with
``success=False`` and a :class:`Failure` reason), never an exception; only set-up faults (no
permission for a raw socket, a source address this host lacks) are reported as
:class:`ProbeSetupError`. A probe the agent itself could not run (out of file descriptors,
buffers or memory, refused by its own firewall) is :attr:`Failure.AGENT`: no fact about the
path, so never read as a link outage.
This package never imports ``linkmon``: the daemon depends on the probes, not the reverse.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import math
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar


class Failure(enum.StrEnum):
    """Why a probe failed: a fixed vocabulary, safe to use as a metric label."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    DNS = "dns"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PROTOCOL = "protocol"
    ERROR = "error"
    AGENT = "agent"
    """The agent could not probe (what ran out is in ``detail``): says nothing of the path."""


class ProbeSetupError(Exception):
    """The probe cannot run at all here (permissions, bad address); the message names the fix."""


class AgentFault(ProbeSetupError):
    """A set-up fault of the moment: this host is out of something (file descriptors, buffers,
    memory). At start-up it stops the start like any set-up fault, with its message; in a round
    the kind reports it as a :attr:`Failure.AGENT` result, and the next round tries again."""


# OS errors that say this host, not the network, kept a probe from running, in the NOC's words.
_AGENT_ERRNOS = {
    errno.EMFILE: "too many open files (EMFILE)",
    errno.ENFILE: "too many open files on this host (ENFILE)",
    errno.ENOBUFS: "no buffer space (ENOBUFS)",
    errno.ENOMEM: "out of memory (ENOMEM)",
    errno.EPERM: "not permitted by this host (EPERM: its own firewall?)",
    errno.EACCES: "permission denied by this host (EACCES: its own firewall?)",
}

# OSErrors whose errno is not the system's: TLS error codes (1 is a failed certificate check,
# not EPERM), resolver and h_errno codes.
_NOT_ERRNO = (ssl.SSLError, socket.gaierror, socket.herror)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it was raised from, and the members of exception groups on the way
    (anyio reports failed connection attempts as a group)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(reversed(current.exceptions))
        for linked in (current.__context__, current.__cause__):
            if linked is not None:
                pending.append(linked)


def agent_fault(exc: BaseException) -> str | None:
    """What ran out on this host if ``exc`` (or anything it came from) is the agent's own fault;
    None if it is about the target or the path. A raw socket refused for want of CAP_NET_RAW is
    a set-up fault, not this: callers turn that into :class:`ProbeSetupError` first."""
    for cause in causes(exc):
        if (
            isinstance(cause, OSError)
            and not isinstance(cause, _NOT_ERRNO)
            and cause.errno in _AGENT_ERRNOS
        ):
            return _AGENT_ERRNOS[cause.errno]
    return None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe round measured.

    ``duration`` is the figure exported as ``linkmon_probe_duration_seconds``: the mean echo
    RTT for ICMP, the connect time for TCP, the whole request for HTTP.
    """

    kind: str
    target: str
    success: bool
    duration: float | None = None
    failure: Failure | None = None
    detail: str = ""
    packets_sent: int = 0
    packets_received: int = 0
    rtts: tuple[float, ...] = ()
    phases: dict[str, float] = field(default_factory=dict)
    http_status: int | None = None
    tls_cert_expiry: float | None = None

    @property
    def loss(self) -> float | None:
        """Share of echoes lost (0–1); ``None`` for probes that send no echoes."""
        if self.packets_sent == 0:
            return None
        return 1.0 - self.packets_received / self.packets_sent

    def rtt_stats(self) -> tuple[float, float, float, float] | None:
        """min, avg, max and population stddev of the echo RTTs; ``None`` without replies.

        One cheap pass: the daemon asks for these on every round of every target, and
        ``statistics.pstdev`` (exact fractions) cost more than the echoes themselves.
        """
        rtts = self.rtts
        if not rtts:
            return None
        avg = math.fsum(rtts) / len(rtts)
        variance = math.fsum([(rtt - avg) ** 2 for rtt in rtts]) / len(rtts)
        return min(rtts), avg, max(rtts), math.sqrt(variance)

    @property
    def rtt_min(self) -> float | None:
        return min(self.rtts) if self.rtts else None

    @property
    def rtt_max(self) -> float | None:
        return max(self.rtts) if self.rtts else None

    @property
    def rtt_avg(self) -> float | None:
        return math.fsum(self.rtts) / len(self.rtts) if self.rtts else None

    @property
    def rtt_stddev(self) -> float | None:
        stats = self.rtt_stats()
        return None if stats is None else stats[3]

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference between consecutive RTTs (RFC 3550 style, unsmoothed)."""
        rtts = self.rtts
        if len(rtts) < 2:
            return None
        return math.fsum([abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)]) / (
            len(rtts) - 1
        )


Report = Callable[[ProbeResult | Exception], object]
"""Receives a round's result, or the exception that kept the probe from producing one (a set-up
fault, or a bug in the probe)."""

SpecT = TypeVar("SpecT", contravariant=True)


class Round(Protocol):
    """A round in flight, as its caller holds it."""

    def cancel(self) -> object:
        """Stop the round. It reports nothing more, except a report already handed to the
        event loop; harmless on a round that has reported."""
        ...


class Probe(Protocol[SpecT]):
    """One kind of probe, with what its rounds share (sockets, TLS contexts, concurrency)."""

    def begin(self, spec: SpecT, deadline: float, report: Report) -> Round:
        """Start a round against ``spec``'s target. ``report`` is called exactly once, from the
        event loop (never from inside ``begin``), by ``deadline`` (event-loop time,
        ``loop.time()``), unless the round is cancelled first."""
        ...

    async def close(self) -> None:
        """Release what the rounds share; rounds still running report what they have."""
        ...


class TaskRounds:
    """The rounds of a kind that awaits things (connects, name lookups), one task each.

    Each round's outcome goes to its ``report``; :meth:`close` cancels what still runs.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[ProbeResult]] = set()

    def begin(self, work: Coroutine[Any, Any, ProbeResult], report: Report) -> Round:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(partial(self._done, report))
        return task

    def _done(self, report: Report, task: asyncio.Task[ProbeResult]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            report(task.result())
        elif isinstance(error, Exception):
            report(error)

    async def close(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def report_soon(report: Report, outcome: ProbeResult | Exception) -> Round:
    """Report ``outcome`` from the event loop: for what a kind knows before a round starts."""
    return asyncio.get_running_loop().call_soon(report, outcome)


def settle(
    future: asyncio.Future[ProbeResult | Exception], outcome: ProbeResult | Exception
) -> None:
    """A :data:`Report` into a future (bind it with ``functools.partial``): for whoever awaits
    a round instead of being called back."""
    if not future.done():
        future.set_result(outcome)
