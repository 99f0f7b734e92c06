"""Opening the socket an ICMP engine sends from: raw if permitted, else ICMP datagram.

What differs between ICMPv4 and ICMPv6 (types, codes, the error-queue option) is here too, so
that the engine (:mod:`probes.icmp_engine`) reads the same for both families.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any, Literal

from probes.base import AgentFault, ProbeSetupError, agent_fault

IcmpMode = Literal["auto", "raw", "dgram"]

SO_TIMESTAMPNS = 35  # Linux; the socket module does not export these
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


@dataclass(frozen=True, slots=True)
class IcmpFamily:
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


V4 = IcmpFamily(
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
V6 = IcmpFamily(
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
FAMILIES = {socket.AF_INET: V4, socket.AF_INET6: V6}


def open_socket(
    family: IcmpFamily, mode: IcmpMode, source: str | None, interface: str | None
) -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket bound as asked, and whether it is raw.

    Raises :class:`ProbeSetupError` naming the fix when ICMP is not permitted here, the source
    address is not on this host or the interface does not exist; :class:`AgentFault` when this
    host is out of sockets (file descriptors, memory) for now.
    """
    sock, raw = _socket(family, mode)
    try:
        _configure(sock, family, raw, source, interface)
    except BaseException:
        sock.close()
        raise
    return sock, raw


def _socket(family: IcmpFamily, mode: IcmpMode) -> tuple[socket.socket, bool]:
    if mode in ("auto", "raw"):
        try:
            return socket.socket(family.af, socket.SOCK_RAW, family.proto), True
        except PermissionError:
            if mode == "raw":
                raise ProbeSetupError(setup_hint()) from None
        except OSError as exc:
            raise _socket_error(family, exc) from None
    try:
        return socket.socket(family.af, socket.SOCK_DGRAM, family.proto), False
    except PermissionError:
        raise ProbeSetupError(setup_hint()) from None
    except OSError as exc:
        raise _socket_error(family, exc) from None


def _socket_error(family: IcmpFamily, exc: OSError) -> ProbeSetupError:
    name = "IPv4" if family.af == socket.AF_INET else "IPv6"
    short = agent_fault(exc)
    if short is not None:
        return AgentFault(f"cannot open an {name} ICMP socket: {short}")
    return ProbeSetupError(f"cannot open an {name} ICMP socket: {exc.strerror}")


def _configure(
    sock: socket.socket, family: IcmpFamily, raw: bool, source: str | None, interface: str | None
) -> None:
    sock.setblocking(False)
    # If no socket on the host had timestamps on, the kernel switches them on through a
    # workqueue: replies read in the first moments after that carry the time of the read.
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    for force, plain in (
        (_SO_RCVBUFFORCE, socket.SO_RCVBUF),
        (_SO_SNDBUFFORCE, socket.SO_SNDBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, _BUFFER_BYTES)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, _BUFFER_BYTES)  # capped at rmem/wmem_max
    if raw:
        _install_filter(sock, family)
    else:
        sock.setsockopt(*family.recverr, 1)  # ICMP errors arrive on the error queue
    if interface is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise ProbeSetupError(f"icmp interface {interface!r} does not exist") from None
            raise ProbeSetupError(
                f"cannot bind the ICMP socket to interface {interface!r}: {exc.strerror}"
                " (binding to an interface needs CAP_NET_RAW)"
            ) from None
    if source is not None:
        try:
            sock.bind(_sockaddr(family.af, source))
        except OSError as exc:
            raise ProbeSetupError(
                f"icmp source {source} cannot be used: {exc.strerror}"
                " (is it an address of this host?)"
            ) from None


def _install_filter(sock: socket.socket, family: IcmpFamily) -> None:
    """Let only replies and errors in: on loopback a raw socket also reads our own requests."""
    wanted = [family.echo_reply, *family.errors]
    if family.af == socket.AF_INET:
        blocked = 0xFFFFFFFF
        for icmp_type in wanted:
            blocked &= ~(1 << icmp_type)
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", blocked))
    else:
        words = [0xFFFFFFFF] * 8  # a set bit blocks that type
        for icmp_type in wanted:
            words[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))


def _sockaddr(family: socket.AddressFamily, address: str) -> tuple[Any, ...]:
    return (address, 0) if family == socket.AF_INET else (address, 0, 0, 0)


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
