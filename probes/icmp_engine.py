"""The ICMP echo engine: every target of an address family shares one socket.

Socket-per-host designs go quadratic (every raw socket receives every reply; smokeping_prober,
network_exporter and liboping all hit it at a few hundred hosts). Here one :class:`IcmpEngine`
per (family, source, interface) sends every echo from one socket, and one receive path matches
replies by identifier and sequence. RTTs are kernel receive timestamps (``SO_TIMESTAMPNS``)
minus the wall-clock time taken just before ``sendto``, so they stay exact while the event loop
is busy. The per-echo path allocates as little as possible: a round reports by a plain
callback (:meth:`IcmpEngine.begin`: no task, no future, so that thousands of rounds a second
cost none), per-echo bookkeeping in plain lists and one dict.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from probes.base import Failure, ProbeResult, ProbeSetupError, Report, agent_fault
from probes.icmp_socket import FAMILIES, SO_TIMESTAMPNS, IcmpMode, open_socket

if TYPE_CHECKING:
    from probes.icmp import IcmpSpec


_RECV_BYTES = 192  # both IP headers and both ICMP headers of an error fit; payloads are not needed
_ANC_BYTES = 128  # a timestamp, or an extended error with the offender's address
_DRAIN_EVERY = 64  # sends between two receive drains inside a burst
_TICKS_PER_SECOND = 1000  # the send/deadline wheel turns in milliseconds

_KEY = struct.Struct("!I")  # identifier and sequence read as one 32-bit key
_PACK_TAIL = struct.Struct("!HI").pack_into  # checksum, then identifier+sequence
_TIMESPEC = struct.Struct("@qq")
_EXTENDED_ERR = struct.Struct("@IBBBB")  # struct sock_extended_err up to ee_pad


# sendto errors that mean the target cannot be reached from here at all
_UNREACHABLE_SEND_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


class _Round:
    """One probe round: ``count`` echoes to one target, answered or not by the deadline.

    The round holds the keys ``base`` .. ``base + count - 1`` (modulo the key space) from its
    start to its release, so echo ``i`` has key ``base + i``.
    """

    __slots__ = (
        "engine",
        "host",
        "sockaddr",
        "count",
        "spacing",
        "start",
        "deadline",
        "base",
        "sent",
        "sent_ns",
        "rtt_ns",
        "received",
        "errors",
        "unsent",
        "failure",
        "detail",
        "closed",
        "on_done",
        "packet",
        "payload_sum",
    )

    def __init__(
        self,
        engine: IcmpEngine,
        sockaddr: tuple[Any, ...],
        count: int,
        spacing: float,
        start: float,
        deadline: float,
        on_done: Callable[[_Round], object],
        packet: tuple[bytearray, int],
    ) -> None:
        self.engine = engine
        self.host: str = sockaddr[0]
        self.sockaddr = sockaddr
        self.count = count
        self.spacing = spacing
        self.start = start
        self.deadline = deadline
        self.base = 0
        self.sent = 0
        self.sent_ns = [0] * count
        self.rtt_ns = [-1] * count  # -1 until the reply comes
        self.received = 0
        self.errors = 0  # echoes that will never be answered (ICMP error, send failure)
        self.unsent = 0  # echoes this host could not send (they count as neither sent nor lost)
        self.failure: Failure | None = None
        self.detail = ""
        self.closed = False
        self.on_done = on_done
        self.packet, self.payload_sum = packet

    def cancel(self) -> None:
        """Stop waiting for this round: it reports nothing, its keys are free again."""
        self.engine._release(self)


class IcmpEngine:
    """Sends and matches the echoes of every target of one address family and binding.

    ``mode`` ``"auto"`` takes a raw socket when permitted (CAP_NET_RAW), else an ICMP datagram
    socket (``net.ipv4.ping_group_range``). With a raw socket the key of an echo is the 32-bit
    identifier+sequence (the identifier advances when the sequence wraps); with a datagram
    socket the kernel owns the identifier, so the key is the 16-bit sequence. Once the key
    space has wrapped, blocks still held by open rounds are skipped. The payload starts with a
    random per-engine token, checked on every reply, so other processes' echoes are never
    taken for ours.
    """

    def __init__(
        self,
        family: socket.AddressFamily,
        *,
        source: str | None = None,
        interface: str | None = None,
        mode: IcmpMode = "auto",
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"ICMP needs AF_INET or AF_INET6, got {family!r}")
        self.family = family
        self.source = source
        self.interface = interface
        self.requested_mode: IcmpMode = mode
        self._family = FAMILIES[family]
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw = False
        self._raw4 = False
        self._key_mask = 0xFFFF
        self._next_key = 0
        self._issued = 0  # keys handed out so far; past the key space size, check for reuse
        self._in_flight: dict[int, _Round] = {}  # key -> round, for every key of an open round
        self._token = secrets.token_bytes(8)
        self._packets: dict[int, tuple[bytearray, int]] = {}  # size -> (packet buffer, payload sum)
        # The wheel: tick -> rounds to visit then (send the next echo, or end at the deadline).
        # Every open round has exactly one pending visit; a heap orders the ticks in use.
        self._wheel: dict[int, list[_Round]] = {}
        self._ticks: list[int] = []
        self._pump_handle: asyncio.TimerHandle | None = None
        self._pump_tick = 0
        self._unread = 0

    @property
    def mode(self) -> Literal["raw", "dgram"] | None:
        """The socket type in use, once open."""
        if self._sock is None:
            return None
        return "raw" if self._raw else "dgram"

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def open(self) -> None:
        """Open the socket and start receiving; call from inside the event loop.

        Raises :class:`ProbeSetupError` naming the fix when ICMP is not permitted here, the
        source address is not on this host or the interface does not exist.
        """
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        sock, self._raw = open_socket(
            self._family, self.requested_mode, self.source, self.interface
        )
        self._raw4 = self._raw and self.family == socket.AF_INET
        try:
            loop.add_reader(sock.fileno(), self._on_readable)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop = loop
        self._key_mask = 0xFFFFFFFF if self._raw else 0xFFFF
        self._next_key = secrets.randbits(32) & self._key_mask

    def close(self) -> None:
        """Stop receiving and close the socket; rounds still running return what they have."""
        if self._sock is None or self._loop is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
        for rounds in self._wheel.values():
            for rnd in rounds:
                self._complete(rnd)
        self._wheel.clear()
        self._ticks.clear()
        self._in_flight.clear()

    def begin(
        self, spec: IcmpSpec, sockaddr: tuple[Any, ...], deadline: float, report: Report
    ) -> _Round:
        """Start one round of ``spec`` to the resolved ``sockaddr``; the event loop calls
        ``report(result)`` by ``deadline`` (event-loop time) unless the round is cancelled.

        No task and no future: at thousands of rounds a second, asyncio's cost of a task per
        round is more than the round's own. ``report`` runs from the loop (``call_soon``),
        never from inside the receive path, so what it does cannot break the engine.
        """
        loop = self._loop
        if loop is None or self._sock is None:
            raise ProbeSetupError("the ICMP engine is not open")

        def finished(rnd: _Round) -> None:
            self._release(rnd)
            loop.call_soon(report, _result(spec.address, rnd))

        return self._start(spec, sockaddr, deadline, finished)

    def _start(
        self,
        spec: IcmpSpec,
        sockaddr: tuple[Any, ...],
        deadline: float,
        on_done: Callable[[_Round], object],
    ) -> _Round:
        """Reserve the keys of a new round, send its first echo and book its next visit;
        ``on_done(round)`` is called once, when the round ends (unless it is cancelled)."""
        assert self._loop is not None
        now = self._loop.time()
        count = spec.count
        packet = self._packet(spec.size)
        rnd = _Round(self, sockaddr, count, spec.spacing, now, deadline, on_done, packet)
        mask = self._key_mask
        base = self._next_key
        if self._issued > mask - count:  # the key space has wrapped: skip blocks in flight
            base = self._free_block(base, count)
            if base < 0:  # needs 65,536 echoes in flight on a datagram socket
                self._echo_failed(rnd, Failure.ERROR, "too many echoes in flight on one socket")
                self._complete(rnd)
                return rnd
        rnd.base = base
        keys = (
            range(base, base + count)
            if base + count <= mask
            else [(base + i) & mask for i in range(count)]
        )
        self._in_flight.update(dict.fromkeys(keys, rnd))
        self._next_key = (base + count) & mask
        self._issued += count
        self._visit(rnd, now)
        return rnd

    def _free_block(self, base: int, count: int) -> int:
        """The first block of ``count`` keys from ``base`` on that no open round holds, or -1."""
        mask, in_flight = self._key_mask, self._in_flight
        for _ in range((mask + 1) // count):
            if all((base + i) & mask not in in_flight for i in range(count)):
                return base
            base = (base + count) & mask
        return -1

    def _packet(self, size: int) -> tuple[bytearray, int]:
        """The echo request buffer for ``size`` payload bytes and its constant checksum part."""
        found = self._packets.get(size)
        if found is None:
            payload = (self._token + bytes(range(256)) * (size // 256 + 1))[:size]
            padded = payload + b"\0" * (size % 2)
            total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
            total += self._family.echo_request << 8
            while total > 0xFFFF:
                total = (total & 0xFFFF) + (total >> 16)
            header = bytes([self._family.echo_request, 0, 0, 0, 0, 0, 0, 0])
            found = (bytearray(header + payload), total)
            self._packets[size] = found
        return found

    def _visit(self, rnd: _Round, now: float) -> None:
        """Send the echoes of ``rnd`` due by ``now`` and book its next visit, or end it."""
        if rnd.closed:
            return
        if now >= rnd.deadline:
            self._complete(rnd)
            return
        sent, count, spacing, start = rnd.sent, rnd.count, rnd.spacing, rnd.start
        if sent < count and start + sent * spacing <= now:
            sock = self._sock
            assert sock is not None
            packet, sockaddr, sent_ns = rnd.packet, rnd.sockaddr, rnd.sent_ns
            mask, raw4, pack_into, time_ns = self._key_mask, self._raw4, _PACK_TAIL, time.time_ns
            while True:
                key = (rnd.base + sent) & mask
                if raw4:
                    total = rnd.payload_sum + (key >> 16) + (key & 0xFFFF)
                    total = (total & 0xFFFF) + (total >> 16)
                    total = (total & 0xFFFF) + (total >> 16)
                    pack_into(packet, 2, ~total & 0xFFFF, key)
                else:
                    pack_into(packet, 2, 0, key)  # the kernel fills in the checksum
                rnd.sent = sent + 1
                sent_ns[sent] = time_ns()
                try:
                    sock.sendto(packet, sockaddr)
                except OSError as exc:
                    del self._in_flight[key]
                    failure, reason = _send_failure(exc)
                    if failure is Failure.AGENT:
                        rnd.unsent += 1
                    self._echo_failed(rnd, failure, f"cannot send to {rnd.host}: {reason}")
                sent += 1
                self._unread += 1
                if self._unread >= _DRAIN_EVERY:
                    self._on_readable()  # on loopback replies pile up while we are still sending
                if rnd.closed:
                    return
                if sent >= count or start + sent * spacing > now:
                    break
        later = start + sent * spacing if sent < count else rnd.deadline
        if later > rnd.deadline:
            later = rnd.deadline
        tick = int(later * _TICKS_PER_SECOND) + 1  # never early
        rounds = self._wheel.get(tick)
        if rounds is not None:
            rounds.append(rnd)
            return
        self._wheel[tick] = [rnd]
        heapq.heappush(self._ticks, tick)
        if self._pump_handle is None or tick < self._pump_tick:
            self._arm(tick)

    def _arm(self, tick: int) -> None:
        assert self._loop is not None
        if self._pump_handle is not None:
            self._pump_handle.cancel()
        self._pump_tick = tick
        self._pump_handle = self._loop.call_at(tick / _TICKS_PER_SECOND, self._pump)

    def _pump(self) -> None:
        """Visit the rounds of every tick that has come (or comes within a tick), in one batch."""
        self._pump_handle = None
        assert self._loop is not None
        horizon = self._loop.time() * _TICKS_PER_SECOND + 1
        ticks, wheel, visit = self._ticks, self._wheel, self._visit
        while ticks and ticks[0] <= horizon:
            tick = heapq.heappop(ticks)
            now = tick / _TICKS_PER_SECOND
            for rnd in wheel.pop(tick):
                visit(rnd, now)
        if ticks:
            self._arm(ticks[0])

    def _on_readable(self) -> None:
        """Drain the socket: match each reply to its echo, stamp it with the kernel's time."""
        self._unread = 0
        sock = self._sock
        if sock is None:
            return
        recvmsg = sock.recvmsg
        in_flight = self._in_flight
        token = self._token
        echo_reply = self._family.echo_reply
        raw, raw4, mask = self._raw, self._raw4, self._key_mask
        unpack_key, unpack_timespec, timestamp = (
            _KEY.unpack_from,
            _TIMESPEC.unpack_from,
            SO_TIMESTAMPNS,
        )
        while True:
            try:
                data, ancdata, _flags, address = recvmsg(_RECV_BYTES, _ANC_BYTES)
            except BlockingIOError:
                return
            except OSError:
                # A datagram socket reports an ICMP error once this way; details are queued.
                self._read_error_queue()
                continue
            # The kernel hands over whole ICMP headers; startswith and unpack bound the rest.
            offset = (data[0] & 0x0F) << 2 if raw4 else 0
            if data[offset] != echo_reply:
                if raw:
                    self._on_raw_error(data, offset, address[0])
                continue
            if not data.startswith(token, offset + 8):
                continue
            if raw:
                key = unpack_key(data, offset + 4)[0]
            else:
                key = data[offset + 6] << 8 | data[offset + 7]
            rnd = in_flight.pop(key, None)
            if rnd is None:
                continue  # late (round over) or duplicate
            idx = (key - rnd.base) & mask
            if idx >= rnd.sent or address[0] != rnd.host:
                in_flight[key] = rnd  # not the reply to an echo of ours
                continue
            if ancdata and ancdata[0][1] == timestamp:
                seconds, nanoseconds = unpack_timespec(ancdata[0][2])
                rtt = seconds * 1_000_000_000 + nanoseconds - rnd.sent_ns[idx]
            else:
                rtt = time.time_ns() - rnd.sent_ns[idx]
            rnd.rtt_ns[idx] = rtt if rtt > 0 else 0  # a wall-clock step must not give RTT < 0
            rnd.received += 1
            if rnd.received + rnd.errors == rnd.count:
                self._complete(rnd)

    def _on_raw_error(self, data: bytes, offset: int, sender: str) -> None:
        """Match a destination-unreachable or time-exceeded quoting one of our echoes."""
        fam = self._family
        icmp_type = data[offset]
        if icmp_type not in fam.errors:
            return
        inner = offset + 8  # the quoted IP header of our echo request
        if fam.af == socket.AF_INET:
            if len(data) < inner + 20 or data[inner + 9] != socket.IPPROTO_ICMP:
                return
            destination = socket.inet_ntop(socket.AF_INET, data[inner + 16 : inner + 20])
            echo = inner + ((data[inner] & 0x0F) << 2)
        else:
            if len(data) < inner + 40 or data[inner + 6] != socket.IPPROTO_ICMPV6:
                return
            destination = socket.inet_ntop(socket.AF_INET6, data[inner + 24 : inner + 40])
            echo = inner + 40
        if len(data) < echo + 8 or data[echo] != fam.echo_request:
            return
        key = _KEY.unpack_from(data, echo + 4)[0]
        self._on_echo_error(key, destination, fam.describe(icmp_type, data[offset + 1]), sender)

    def _read_error_queue(self) -> None:
        """Datagram sockets: read ICMP errors (IP_RECVERR) and match them to our echoes."""
        sock = self._sock
        if sock is None:
            return
        fam = self._family
        while True:
            try:
                data, ancdata, _flags, address = sock.recvmsg(
                    _RECV_BYTES, _ANC_BYTES, socket.MSG_ERRQUEUE
                )
            except OSError:
                return
            for level, ctype, cdata in ancdata:
                if (level, ctype) != fam.recverr or len(cdata) < _EXTENDED_ERR.size:
                    continue
                _errno, origin, icmp_type, code, _pad = _EXTENDED_ERR.unpack_from(cdata)
                if origin != fam.ee_origin or len(data) < 8 or data[0] != fam.echo_request:
                    continue
                key = data[6] << 8 | data[7]
                sender = _offender(cdata[16:]) or "?"
                self._on_echo_error(key, address[0], fam.describe(icmp_type, code), sender)

    def _on_echo_error(self, key: int, destination: str, what: str, sender: str) -> None:
        rnd = self._in_flight.get(key)
        if rnd is None or (key - rnd.base) & self._key_mask >= rnd.sent:
            return
        if destination.partition("%")[0] != rnd.host.partition("%")[0]:
            return
        del self._in_flight[key]
        self._echo_failed(rnd, Failure.UNREACHABLE, f"{what} from {sender}")

    def _echo_failed(self, rnd: _Round, failure: Failure, detail: str) -> None:
        """An echo that will never be answered; the first such reason is kept."""
        rnd.errors += 1
        if rnd.failure is None:
            rnd.failure, rnd.detail = failure, detail
        if rnd.received + rnd.errors == rnd.count:
            self._complete(rnd)

    def _complete(self, rnd: _Round) -> None:
        if not rnd.closed:
            rnd.closed = True
            rnd.on_done(rnd)

    def _release(self, rnd: _Round) -> None:
        """Forget a finished round: its unanswered keys become free again."""
        rnd.closed = True
        if rnd.received + rnd.errors < rnd.count:
            in_flight, mask = self._in_flight, self._key_mask
            for i in range(rnd.count):
                key = (rnd.base + i) & mask
                if in_flight.get(key) is rnd:
                    del in_flight[key]


def _result(target: str, rnd: _Round) -> ProbeResult:
    """What the round measured. Echoes this host could not send are not counted as sent: a
    round that got no reply after the agent failed to send is the agent's fault, not loss."""
    measured = rnd.rtt_ns if rnd.sent == rnd.count else rnd.rtt_ns[: rnd.sent]
    rtts = tuple([rtt / 1e9 for rtt in measured if rtt >= 0])
    received = len(rtts)
    sent = rnd.sent - rnd.unsent
    if received:
        lost = sent - received
        detail = f"{lost} of {sent} echoes lost" if lost else ""
        if rnd.failure is not None and (lost or rnd.unsent):
            detail = f"{detail}; {rnd.detail}" if detail else rnd.detail
        return ProbeResult(
            kind="icmp",
            target=target,
            success=True,
            duration=sum(rtts) / received,
            detail=detail,
            packets_sent=sent,
            packets_received=received,
            rtts=rtts,
        )
    if rnd.unsent:  # no reply, and this host kept echoes in: no fact about the path
        failure = Failure.AGENT
        detail = (
            rnd.detail
            if rnd.failure is Failure.AGENT
            else f"{rnd.unsent} of {rnd.sent} echoes could not be sent from this host"
        )
    elif rnd.failure is not None:
        failure, detail = rnd.failure, rnd.detail
    else:
        within = rnd.deadline - rnd.start
        failure, detail = Failure.TIMEOUT, f"no reply to {sent} echoes within {within:g}s"
    return ProbeResult(
        kind="icmp",
        target=target,
        success=False,
        failure=failure,
        detail=detail,
        packets_sent=sent,
    )


def _send_failure(exc: OSError) -> tuple[Failure, str]:
    """Why an echo could not be sent: this host's fault, no route, or something else."""
    short = agent_fault(exc)
    if short is not None:
        return Failure.AGENT, short
    if exc.errno in _UNREACHABLE_SEND_ERRNOS:
        return Failure.UNREACHABLE, str(exc.strerror)
    return Failure.ERROR, str(exc.strerror)


def _offender(raw: bytes) -> str | None:
    """The address in the sockaddr that follows a sock_extended_err (who sent the error)."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("@H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None
