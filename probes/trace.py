"""Traceroute with constant flow identifiers: where does the path to a target stop?

Run when a link goes down (and now and then while it is up), it answers the NOC's first
question: is the break on our side, at the telco, or at pusat? The answer is the last hop
that still answers (``last answer from hop 3, 198.18.2.1``).

Paris traceroute style: every probe of one trace carries the same flow identifiers, so a
router that balances load per flow (ECMP hashes the addresses, the protocol and the first four
bytes of the transport header) sends all of them down the same path, and the hops listed are
one real path, not a mix of several:

- ``icmp``: echo requests with one identifier; the sequence number tells probes apart and a
  payload word cancels it out of the checksum, so type, code and checksum never change.
- ``udp``: one source and destination port and one payload (so one checksum); probes differ
  only in the IP identification field, which no load balancer hashes.
- ``tcp``: SYNs with one port pair; the sequence number tells probes apart. The target answers
  SYN-ACK (open port) or RST (closed), both with ``ack = seq + 1``.

scapy builds the packets; plain raw sockets send and receive them, so the kernel routes each
probe in the network namespace the caller runs in, with its current routes. Replies are
matched to probes by what ICMP errors quote of the probe. RTTs are kernel receive timestamps
minus the wall-clock time just before ``sendto``.

A trace never raises for a target it cannot reach: no route, silence and ICMP unreachables are
all data in the :class:`TraceResult`. So is a trace this host could not run (out of file
descriptors or buffers, its own firewall refusing the probes): ``failure`` is then
:attr:`Failure.AGENT`, and the trace says nothing of the path. Only set-up faults (no permission
for raw sockets, a source address this host does not have) raise :class:`ProbeSetupError`.
IPv4 only. The packets themselves are built and read in :mod:`probes.trace_packets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import secrets
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Literal, get_args

from probes.base import AgentFault, Failure, ProbeSetupError, agent_fault
from probes.trace_packets import (
    Reply,
    attach_filter,
    icmp_program,
    parse_answer,
    probe_packet,
    tcp_program,
)

# What the daemon, `linkmon trace` and the tests take from here (Reply and probe_packet live
# with the packets).
__all__ = [
    "MODES",
    "NO_ROUTE",
    "Hop",
    "Reply",
    "TraceMode",
    "TraceResult",
    "TraceSpec",
    "probe_packet",
    "route_source",
    "trace",
]

TraceMode = Literal["icmp", "udp", "tcp"]
MODES: tuple[TraceMode, ...] = get_args(TraceMode)
DEFAULT_PORTS: dict[str, int] = {"udp": 33434, "tcp": 80}
MAX_HOPS = 64
MAX_ATTEMPTS = 5
FLOW_PORTS = (33000, 60000)  # where a target's source port is chosen (stable per target)
NO_ROUTE = "no route from here"

_SO_TIMESTAMPNS = 35  # Linux; the socket module does not export these
_SOL_RAW = 255
_ICMP_FILTER = 1
_TIMESPEC = struct.Struct("@qq")
_ICMP_TYPES = (0, 3, 11)  # echo reply, destination unreachable, time exceeded

_used_identifiers: set[int] = set()


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """What to trace and how gently.

    At most ``max_hops`` probes per attempt, ``spacing`` seconds apart: with the defaults a
    trace sends at most 32 packets of 36-48 bytes at 20 per second, under 8 kbit/s, so even a
    128 kbit/s kecamatan line hardly notices. ``wait`` is how long answers are awaited after
    an attempt's last probe; a hop that stayed silent gets another probe in the next attempt.
    """

    target: str
    mode: TraceMode = "icmp"
    port: int | None = None
    max_hops: int = 16
    attempts: int = 2
    wait: float = 1.0
    spacing: float = 0.05
    source: str | None = None

    def __post_init__(self) -> None:
        _ipv4("trace target", self.target)
        if self.source is not None:
            _ipv4("trace source", self.source)
        if self.mode not in MODES:
            raise ValueError(f"trace mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.port is not None and (self.mode == "icmp" or not 1 <= self.port <= 65535):
            raise ValueError(
                f"trace port must be 1-65535 and only for udp or tcp mode, "
                f"got {self.port!r} with mode {self.mode}"
            )
        if not 1 <= self.max_hops <= MAX_HOPS:
            raise ValueError(f"trace max_hops must be 1-{MAX_HOPS}, got {self.max_hops}")
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise ValueError(f"trace attempts must be 1-{MAX_ATTEMPTS}, got {self.attempts}")
        if not 0 < self.wait <= 30:
            raise ValueError(f"trace wait must be more than 0 and at most 30 s, got {self.wait}")
        if not 0 <= self.spacing <= 1:
            raise ValueError(f"trace spacing must be 0-1 s, got {self.spacing}")

    @property
    def destination_port(self) -> int | None:
        return None if self.mode == "icmp" else self.port or DEFAULT_PORTS[self.mode]


def _ipv4(what: str, value: str) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{what} must be an IPv4 address, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class Hop:
    """One TTL: who answered (None: nobody), how fast, and with what."""

    ttl: int
    address: str | None = None
    rtt: float | None = None
    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class TraceResult:
    """The hops from 1 up to where the trace ended.

    ``reached``: the target itself answered. ``error``: the trace could not go on from this
    host (no route, sending refused); the hops before it still count, unless ``failure`` is
    :attr:`Failure.AGENT`: then this host could not trace, and where it stopped is no fact
    about the path.
    """

    target: str
    mode: TraceMode
    port: int | None
    source: str | None
    hops: tuple[Hop, ...]
    reached: bool
    error: str = ""
    started_at: float = 0.0
    duration: float = 0.0
    probes_sent: int = 0
    flow: int = 0
    """The ICMP identifier or the source port: the same for every trace of one target, unless
    another trace was using it."""
    failure: Failure | None = None

    @property
    def last_answer(self) -> Hop | None:
        """The furthest hop that answered at all."""
        return next((hop for hop in reversed(self.hops) if hop.address is not None), None)

    @property
    def path(self) -> tuple[str | None, ...]:
        """Addresses from hop 1 to the last hop that answered; None for a silent hop."""
        last = self.last_answer
        return tuple(hop.address for hop in self.hops[: last.ttl if last else 0])

    def stops(self) -> str:
        """Where the trace ended, in one line for people."""
        if self.failure is Failure.AGENT:
            return self.error
        last = self.last_answer
        if self.reached and last is not None:
            return f"reached {self.target} at hop {last.ttl}"
        if last is None:
            return self.error or "no answer from any hop"
        text = f"last answer from hop {last.ttl}, {last.address}"
        if last.reply is not None and last.reply is not Reply.TIME_EXCEEDED:
            text += f" ({last.reply.words})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "port": self.port,
            "source": self.source,
            "reached": self.reached,
            "error": self.error,
            "started_at": self.started_at,
            "duration": self.duration,
            "probes_sent": self.probes_sent,
            "flow": self.flow,
            "failure": self.failure.value if self.failure else None,
            "stops": self.stops(),
            "hops": [
                {
                    "ttl": h.ttl,
                    "address": h.address,
                    "rtt": h.rtt,
                    "reply": h.reply.value if h.reply else None,
                }
                for h in self.hops
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceResult:
        hops = tuple(
            Hop(int(h["ttl"]), h["address"], h["rtt"], Reply(h["reply"]) if h["reply"] else None)
            for h in data["hops"]
        )
        mode = data["mode"]
        if mode not in MODES:
            raise ValueError(f"unknown trace mode {mode!r}")
        return cls(
            target=str(data["target"]),
            mode=mode,
            port=data["port"],
            source=data["source"],
            hops=hops,
            reached=bool(data["reached"]),
            error=str(data["error"]),
            started_at=float(data["started_at"]),
            duration=float(data["duration"]),
            probes_sent=int(data["probes_sent"]),
            flow=int(data.get("flow", 0)),
            failure=Failure(data["failure"]) if data.get("failure") else None,
        )


async def trace(spec: TraceSpec) -> TraceResult:
    """Trace the path to ``spec.target`` from this host (its current network namespace).

    Takes at most ``attempts × (max_hops × spacing + wait)`` seconds, and much less when every
    hop up to the target, or to a hop that reports it unreachable, has answered.
    """
    started, t0 = time.time(), time.monotonic()

    def stopped(failure: Failure | None, error: str) -> TraceResult:
        port = spec.destination_port
        return TraceResult(
            spec.target, spec.mode, port, None, (), False, error, started, failure=failure
        )

    source = spec.source
    if source is None:
        try:
            source = route_source(spec.target)
        except OSError as exc:
            return stopped(*_send_error(spec.target, exc))
    try:
        session = _Session(spec, source)
    except AgentFault as exc:
        return stopped(Failure.AGENT, str(exc))
    try:
        await session.run()
    finally:
        session.close()
    return session.result(started, time.monotonic() - t0)


def _send_error(target: str, exc: OSError) -> tuple[Failure | None, str]:
    """Why a probe could not be sent: this host's fault, or no route (a fact about the path)."""
    short = agent_fault(exc)
    if short is not None:
        return Failure.AGENT, f"this host cannot trace now: {short}"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return None, f"{NO_ROUTE} to {target} ({exc.strerror})"
    return None, f"cannot send to {target} from here ({exc.strerror})"


def route_source(target: str) -> str:
    """The address this host sends from towards ``target`` (OSError if there is no route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((target, 9))
        return str(sock.getsockname()[0])


def _flow_hash(spec: TraceSpec) -> int:
    """Stable across traces and restarts: the same link is traced as the same flow each
    time, so a path change between two traces is a real one, not another ECMP branch."""
    return zlib.crc32(f"{spec.mode} {spec.target} {spec.destination_port}".encode())


def _flow_identifier(spec: TraceSpec) -> int:
    """The target's ICMP identifier, or the next one no other trace here is using."""
    base = _flow_hash(spec)
    for step in range(0xFFFF):
        ident = (base + step) % 0xFFFF + 1
        if ident not in _used_identifiers:
            _used_identifiers.add(ident)
            return ident
    raise ProbeSetupError("every ICMP identifier is taken by a running trace")


@dataclass
class _Sent:
    ttl: int
    at: float


class _Session:
    """One trace: its sockets, its flow identifiers and what has come back so far."""

    def __init__(self, spec: TraceSpec, source: str) -> None:
        self.spec = spec
        self.source = source
        self.sent: dict[int, _Sent] = {}  # by probe tag
        self.answers: dict[int, Hop] = {}  # by TTL
        self.terminal: int | None = None  # lowest TTL that ended the path (target or unreachable)
        self.highest = 0
        self.error = ""
        self.failure: Failure | None = None
        self._sockets: list[socket.socket] = []
        self._receivers: list[socket.socket] = []
        self._identifier = _flow_identifier(spec) if spec.mode == "icmp" else 0
        self._tags = itertools.count(secrets.randbelow(1 << 15))
        self._done = asyncio.Event()
        try:
            self._send_socket = self._open(socket.SOCK_RAW, socket.IPPROTO_RAW)
            icmp = self._open(socket.SOCK_RAW, socket.IPPROTO_ICMP)
            mask = 0xFFFFFFFF & ~sum(1 << t for t in _ICMP_TYPES)
            icmp.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", mask))
            attach_filter(icmp, icmp_program(self._identifier))
            self._receivers.append(icmp)
            if spec.mode == "tcp":
                tcp = self._open(socket.SOCK_RAW, socket.IPPROTO_TCP)
                attach_filter(tcp, tcp_program(spec.target, spec.destination_port or 0))
                self._receivers.append(tcp)
        except PermissionError:
            self.close()
            raise ProbeSetupError(
                "traceroute needs raw sockets: run linkmon as root or with "
                "CAP_NET_RAW (systemd AmbientCapabilities=CAP_NET_RAW)"
            ) from None
        self._flow_port = self._hold_port()
        self._flow = self._identifier if spec.mode == "icmp" else self._flow_port
        for sock in self._receivers:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self._send_socket.setblocking(False)

    def _hold_port(self) -> int:
        """Bind the flow's source port while tracing (the target's own port, or any free one
        if another socket has it), which also checks the source address is ours."""
        kind = socket.SOCK_STREAM if self.spec.mode == "tcp" else socket.SOCK_DGRAM
        preferred = FLOW_PORTS[0] + _flow_hash(self.spec) % (FLOW_PORTS[1] - FLOW_PORTS[0])
        holder = self._open(kind, 0)
        for port in (preferred, 0):
            try:
                holder.bind((self.source, port))
                return int(holder.getsockname()[1])
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    self.close()
                    raise ProbeSetupError(
                        f"trace source {self.source} cannot be used on this host: {exc.strerror}"
                    ) from None
        raise AssertionError("binding port 0 cannot be refused as in use")

    def _open(self, kind: int, proto: int) -> socket.socket:
        """A socket of this trace; :class:`AgentFault` if this host has none to give."""
        try:
            sock = socket.socket(socket.AF_INET, kind, proto)
        except PermissionError:
            raise  # no CAP_NET_RAW: a set-up fault, named by the caller
        except OSError as exc:
            short = agent_fault(exc)
            if short is None:
                raise
            self.close()
            raise AgentFault(f"this host cannot trace now: {short}") from None
        self._sockets.append(sock)
        return sock

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._receivers:
            if sock.fileno() >= 0:
                loop.remove_reader(sock.fileno())
        for sock in self._sockets:
            sock.close()
        _used_identifiers.discard(self._identifier)

    # -- sending ------------------------------------------------------------------------------

    def _next_tag(self) -> int:
        """A probe tag: 16 bits (ICMP sequence, IP id), never 0 (the kernel fills in an id 0)."""
        return next(self._tags) % 0xFFFF + 1

    def _send(self, ttl: int) -> bool:
        tag = self._next_tag()
        data = probe_packet(self.spec, self.source, ttl, tag, self._flow)
        self.sent[tag] = _Sent(ttl, time.time())
        try:
            self._send_socket.sendto(data, (self.spec.target, 0))
        except OSError as exc:  # no route (any more), a local firewall, no buffer space
            del self.sent[tag]
            self.failure, self.error = _send_error(self.spec.target, exc)
            return False
        self.highest = max(self.highest, ttl)
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._receivers:
            loop.add_reader(sock.fileno(), self._drain, sock)
        spec = self.spec
        for _ in range(spec.attempts):
            silent = [
                ttl
                for ttl in range(1, (self.terminal or spec.max_hops) + 1)
                if ttl not in self.answers
            ]
            if not silent:
                return
            for ttl in silent:
                if self.terminal is not None and ttl > self.terminal:
                    break
                if not self._send(ttl):
                    return
                if spec.spacing:
                    await self._until_done(spec.spacing)
            await self._until_done(spec.wait)
            if self._complete():
                return

    async def _until_done(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), seconds)

    def _complete(self) -> bool:
        """Every hop up to where the path ended has answered."""
        return self.terminal is not None and all(
            ttl in self.answers for ttl in range(1, self.terminal + 1)
        )

    # -- receiving ----------------------------------------------------------------------------

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                data, ancillary, _, _ = sock.recvmsg(1500, 64)
            except OSError:  # nothing left to read (or an error queued on the socket)
                return
            received = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanos = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                    received = seconds + nanos / 1e9
            self._match(data, received)

    def _match(self, data: bytes, received: float) -> None:
        found = parse_answer(data, self.spec, self._identifier, self._flow_port)
        if found is None:
            return
        tag, address, reply = found
        sent = self.sent.get(tag)
        if sent is None or sent.ttl in self.answers:
            return
        if self.terminal is not None and sent.ttl > self.terminal:
            return
        self.answers[sent.ttl] = Hop(sent.ttl, address, max(0.0, received - sent.at), reply)
        ends_path = address == self.spec.target or reply is not Reply.TIME_EXCEEDED
        if ends_path and (self.terminal is None or sent.ttl < self.terminal):
            self.terminal = sent.ttl
            for ttl in [t for t in self.answers if t > sent.ttl]:
                del self.answers[ttl]
        if self._complete():
            self._done.set()

    def result(self, started: float, duration: float) -> TraceResult:
        end = self.terminal or self.highest
        hops = tuple(self.answers.get(ttl, Hop(ttl)) for ttl in range(1, end + 1))
        reached = (
            self.terminal is not None and self.answers[self.terminal].address == self.spec.target
        )
        return TraceResult(
            self.spec.target,
            self.spec.mode,
            self.spec.destination_port,
            self.source,
            hops,
            reached,
            self.error,
            started,
            duration,
            len(self.sent),
            self._flow,
            self.failure,
        )
