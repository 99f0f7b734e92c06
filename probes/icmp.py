"""ICMP echo probe: every target of an address family shares one socket.

Socket-per-host designs go quadratic (every raw socket receives every reply; smokeping_prober,
network_exporter and liboping all hit it at a few hundred hosts). Here one :class:`IcmpEngine`
per (family, source, interface) sends every echo from one socket, and one receive path matches
replies by identifier and sequence. RTTs are kernel receive timestamps (``SO_TIMESTAMPNS``)
minus the wall-clock time taken just before ``sendto``, so they stay exact while the event loop
is busy. The per-echo path allocates as little as possible: a completion hook per probe round
(a future for :meth:`IcmpEngine.ping`, a plain callback for :meth:`IcmpEngine.ping_then`, which
the daemon's scheduler uses so that a round costs no task), per-echo bookkeeping in plain lists
and one dict.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import os
import secrets
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from probes.addresses import check_source
from probes.base import Failure, ProbeResult, ProbeSetupError

IcmpMode = Literal["auto", "raw", "dgram"]

MIN_SIZE = 8  # the payload carries an 8-byte token that tells our replies from anyone else's
MAX_SIZE = 65000
MAX_COUNT = 1000

_SO_TIMESTAMPNS = 35  # Linux; the socket module does not export it
_SO_RCVBUFFORCE = 33
_SO_SNDBUFFORCE = 32
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3

_BUFFER_BYTES = 4 << 20  # a burst of thousands of replies must fit while we are still sending
_RECV_BYTES = 192  # both IP headers and both ICMP headers of an error fit; payloads are not needed
_ANC_BYTES = 128  # a timestamp, or an extended error with the offender's address
_DRAIN_EVERY = 64  # sends between two receive drains inside a burst
_TICKS_PER_SECOND = 1000  # the send/deadline wheel turns in milliseconds

_KEY = struct.Struct("!I")  # identifier and sequence read as one 32-bit key
_PACK_TAIL = struct.Struct("!HI").pack_into  # checksum, then identifier+sequence
_TIMESPEC = struct.Struct("@qq")
_EXTENDED_ERR = struct.Struct("@IBBBB")  # struct sock_extended_err up to ee_pad


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


@dataclass(frozen=True, slots=True)
class _Family:
    """What differs between ICMPv4 and ICMPv6."""

    af: socket.AddressFamily
    proto: int
    echo_request: int
    echo_reply: int
    errors: dict[int, str]  # ICMP error types we match back to an echo, by name
    codes: dict[tuple[int, int], str]
    recverr: tuple[int, int]  # (level, option) of IP_RECVERR / IPV6_RECVERR
    ee_origin: int

    def describe(self, icmp_type: int, code: int) -> str:
        return self.codes.get((icmp_type, code)) or self.errors.get(
            icmp_type, f"ICMP type {icmp_type}"
        )


_V4 = _Family(
    af=socket.AF_INET,
    proto=socket.IPPROTO_ICMP,
    echo_request=8,
    echo_reply=0,
    errors={3: "destination unreachable", 11: "time exceeded"},
    codes={
        (3, 0): "network unreachable",
        (3, 1): "host unreachable",
        (3, 2): "protocol unreachable",
        (3, 3): "port unreachable",
        (3, 4): "fragmentation needed",
        (3, 9): "network administratively prohibited",
        (3, 10): "host administratively prohibited",
        (3, 13): "communication administratively prohibited",
        (11, 0): "time exceeded (TTL expired in transit)",
    },
    recverr=(socket.IPPROTO_IP, _IP_RECVERR),
    ee_origin=_SO_EE_ORIGIN_ICMP,
)
_V6 = _Family(
    af=socket.AF_INET6,
    proto=socket.IPPROTO_ICMPV6,
    echo_request=128,
    echo_reply=129,
    errors={1: "destination unreachable", 3: "time exceeded"},
    codes={
        (1, 0): "no route to destination",
        (1, 1): "communication administratively prohibited",
        (1, 3): "address unreachable",
        (1, 4): "port unreachable",
        (3, 0): "time exceeded (hop limit exceeded in transit)",
    },
    recverr=(socket.IPPROTO_IPV6, _IPV6_RECVERR),
    ee_origin=_SO_EE_ORIGIN_ICMP6,
)
_FAMILIES = {socket.AF_INET: _V4, socket.AF_INET6: _V6}

# sendto errors that mean the target cannot be reached from here at all
_UNREACHABLE_SEND_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def setup_hint() -> str:
    """The fix for a process that may open neither a raw nor a datagram ICMP socket."""
    gid = os.getgid()
    return (
        f"ICMP probes need CAP_NET_RAW (raw socket) or an ICMP datagram socket, and this process "
        f"(uid {os.getuid()}, gid {gid}) may open neither. Fix: grant CAP_NET_RAW (systemd "
        f"AmbientCapabilities=CAP_NET_RAW, setcap cap_net_raw+ep, docker --cap-add NET_RAW) or "
        f"let its group use ICMP datagram sockets: "
        f"sysctl -w net.ipv4.ping_group_range='{gid} {gid}'"
    )


class _Round:
    """One probe round: ``count`` echoes to one target, answered or not by the deadline.

    The round holds the keys ``base`` .. ``base + count - 1`` (modulo the key space) from its
    start to its release, so echo ``i`` has key ``base + i``.
    """

    __slots__ = (
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
        "failure",
        "detail",
        "closed",
        "on_done",
        "packet",
        "payload_sum",
    )

    def __init__(
        self,
        sockaddr: tuple[Any, ...],
        count: int,
        spacing: float,
        start: float,
        deadline: float,
        on_done: Callable[[_Round], object],
        packet: tuple[bytearray, int],
    ) -> None:
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
        self.failure: Failure | None = None
        self.detail = ""
        self.closed = False
        self.on_done = on_done
        self.packet, self.payload_sum = packet


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
        if family not in _FAMILIES:
            raise ValueError(f"ICMP needs AF_INET or AF_INET6, got {family!r}")
        self.family = family
        self.source = source
        self.interface = interface
        self.requested_mode: IcmpMode = mode
        self._family = _FAMILIES[family]
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
        sock = self._socket()
        try:
            self._configure(sock)
            loop.add_reader(sock.fileno(), self._on_readable)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop = loop
        self._key_mask = 0xFFFFFFFF if self._raw else 0xFFFF
        self._next_key = secrets.randbits(32) & self._key_mask

    def _socket(self) -> socket.socket:
        fam = self._family
        if self.requested_mode in ("auto", "raw"):
            try:
                sock = socket.socket(fam.af, socket.SOCK_RAW, fam.proto)
            except PermissionError:
                if self.requested_mode == "raw":
                    raise ProbeSetupError(setup_hint()) from None
            except OSError as exc:
                raise self._family_error(exc) from None
            else:
                self._raw = True
                self._raw4 = fam.af == socket.AF_INET
                return sock
        try:
            return socket.socket(fam.af, socket.SOCK_DGRAM, fam.proto)
        except PermissionError:
            raise ProbeSetupError(setup_hint()) from None
        except OSError as exc:
            raise self._family_error(exc) from None

    def _family_error(self, exc: OSError) -> ProbeSetupError:
        name = "IPv4" if self.family == socket.AF_INET else "IPv6"
        return ProbeSetupError(f"cannot open an {name} ICMP socket: {exc.strerror}")

    def _configure(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        # If no socket on the host had timestamps on, the kernel switches them on through a
        # workqueue: replies read in the first moments after that carry the time of the read.
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        for force, plain in (
            (_SO_RCVBUFFORCE, socket.SO_RCVBUF),
            (_SO_SNDBUFFORCE, socket.SO_SNDBUF),
        ):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, _BUFFER_BYTES)
            except PermissionError:
                sock.setsockopt(
                    socket.SOL_SOCKET, plain, _BUFFER_BYTES
                )  # capped at rmem_max/wmem_max
        if self._raw:
            self._install_filter(sock)
        else:
            sock.setsockopt(*self._family.recverr, 1)  # ICMP errors arrive on the error queue
        if self.interface is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    raise ProbeSetupError(
                        f"icmp interface {self.interface!r} does not exist"
                    ) from None
                raise ProbeSetupError(
                    f"cannot bind the ICMP socket to interface {self.interface!r}: {exc.strerror}"
                    " (binding to an interface needs CAP_NET_RAW)"
                ) from None
        if self.source is not None:
            try:
                sock.bind(_sockaddr(self.family, self.source))
            except OSError as exc:
                raise ProbeSetupError(
                    f"icmp source {self.source} cannot be used: {exc.strerror}"
                    " (is it an address of this host?)"
                ) from None

    def _install_filter(self, sock: socket.socket) -> None:
        """Let only replies and errors in: on loopback a raw socket also reads our own requests."""
        wanted = [self._family.echo_reply, *self._family.errors]
        if self.family == socket.AF_INET:
            blocked = 0xFFFFFFFF
            for icmp_type in wanted:
                blocked &= ~(1 << icmp_type)
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", blocked))
        else:
            words = [0xFFFFFFFF] * 8  # a set bit blocks that type
            for icmp_type in wanted:
                words[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))

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

    async def ping(self, spec: IcmpSpec, sockaddr: tuple[Any, ...], timeout: float) -> ProbeResult:
        """Run one round of ``spec`` to the resolved ``sockaddr``; returns by ``timeout``."""
        done = self._new_future()
        rnd = self._start(spec, sockaddr, timeout, _resolve(done))
        try:
            await done
        finally:
            self._release(rnd)
        return _result(spec.address, rnd, timeout)

    def ping_then(
        self,
        spec: IcmpSpec,
        sockaddr: tuple[Any, ...],
        timeout: float,
        done: Callable[[ProbeResult], object],
    ) -> None:
        """Start one round and have the event loop call ``done(result)`` by ``timeout``.

        No task and no future: at thousands of rounds a second, asyncio's cost of a task per
        round is more than the round's own. ``done`` runs from the loop (``call_soon``), never
        from inside the receive path, so what it does cannot break the engine.
        """
        loop = self._loop
        assert loop is not None

        def finished(rnd: _Round) -> None:
            self._release(rnd)
            loop.call_soon(done, _result(spec.address, rnd, timeout))

        self._start(spec, sockaddr, timeout, finished)

    async def ping_many(
        self, jobs: Sequence[tuple[IcmpSpec, tuple[Any, ...]]], timeout: float
    ) -> list[ProbeResult]:
        """One round for each (spec, sockaddr), all at once, results in order.

        Cheaper than a task per round: one task awaits the rounds' futures one after another.
        """
        futures = [self._new_future() for _ in jobs]
        rounds = [
            self._start(spec, sockaddr, timeout, _resolve(done))
            for (spec, sockaddr), done in zip(jobs, futures, strict=True)
        ]
        try:
            for done in futures:
                await done
        finally:
            for rnd in rounds:
                self._release(rnd)
        return [
            _result(spec.address, rnd, timeout) for (spec, _), rnd in zip(jobs, rounds, strict=True)
        ]

    def _new_future(self) -> asyncio.Future[None]:
        if self._loop is None:
            raise ProbeSetupError("the ICMP engine is not open")
        return self._loop.create_future()

    def _start(
        self,
        spec: IcmpSpec,
        sockaddr: tuple[Any, ...],
        timeout: float,
        on_done: Callable[[_Round], object],
    ) -> _Round:
        """Reserve the keys of a new round, send its first echo and book its next visit;
        ``on_done(round)`` is called once, when the round ends."""
        loop = self._loop
        if loop is None or self._sock is None:
            raise ProbeSetupError("the ICMP engine is not open")
        now = loop.time()
        count = spec.count
        packet = self._packet(spec.size)
        rnd = _Round(sockaddr, count, spec.spacing, now, now + timeout, on_done, packet)
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
                    reason = f"cannot send to {rnd.host}: {exc.strerror}"
                    self._echo_failed(rnd, _send_failure(exc), reason)
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
            _SO_TIMESTAMPNS,
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


def _resolve(future: asyncio.Future[None]) -> Callable[[_Round], None]:
    """A round's completion hook that wakes whoever awaits ``future``."""

    def hook(_: _Round) -> None:
        if not future.done():
            future.set_result(None)

    return hook


def _result(target: str, rnd: _Round, timeout: float) -> ProbeResult:
    sent = rnd.sent
    measured = rnd.rtt_ns if sent == rnd.count else rnd.rtt_ns[:sent]
    rtts = tuple([rtt / 1e9 for rtt in measured if rtt >= 0])
    received = len(rtts)
    if received:
        lost = sent - received
        detail = f"{lost} of {sent} echoes lost" if lost else ""
        if lost and rnd.failure is not None:
            detail = f"{detail}; {rnd.detail}"
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
    if rnd.failure is not None:
        failure, detail = rnd.failure, rnd.detail
    else:
        failure, detail = Failure.TIMEOUT, f"no reply to {sent} echoes within {timeout:g}s"
    return ProbeResult(
        kind="icmp",
        target=target,
        success=False,
        failure=failure,
        detail=detail,
        packets_sent=sent,
    )


def _send_failure(exc: OSError) -> Failure:
    return Failure.UNREACHABLE if exc.errno in _UNREACHABLE_SEND_ERRNOS else Failure.ERROR


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


def _sockaddr(family: socket.AddressFamily, address: str) -> tuple[Any, ...]:
    return (address, 0) if family == socket.AF_INET else (address, 0, 0, 0)


def numeric_target(address: str) -> tuple[socket.AddressFamily, tuple[Any, ...]] | None:
    """Family and socket address of an IP literal (as the kernel will report it), else None."""
    try:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_RAW, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, sockaddr
