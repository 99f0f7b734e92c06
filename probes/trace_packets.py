"""The packets of a trace: building its probes, reading the answers, and the socket filters
that let only those answers wake the tracer (:mod:`probes.trace`).
"""

from __future__ import annotations

import ctypes
import enum
import socket
import struct
from typing import TYPE_CHECKING

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import Packet, Raw

if TYPE_CHECKING:
    from probes.trace import TraceSpec

_SO_ATTACH_FILTER = 26
_PAYLOAD = b"linkmon\x00"  # 8 bytes: small packets for thin links


class Reply(enum.StrEnum):
    """What a hop answered: a fixed vocabulary, safe to store and to use as a label."""

    TIME_EXCEEDED = "time_exceeded"
    ECHO_REPLY = "echo_reply"
    PORT_UNREACHABLE = "port_unreachable"
    SYN_ACK = "syn_ack"
    RESET = "reset"
    NET_UNREACHABLE = "net_unreachable"
    HOST_UNREACHABLE = "host_unreachable"
    PROHIBITED = "prohibited"
    UNREACHABLE = "unreachable"

    @property
    def words(self) -> str:
        return self.value.replace("_", " ").replace("syn ack", "SYN-ACK")


_UNREACHABLE_CODES = {
    0: Reply.NET_UNREACHABLE,
    1: Reply.HOST_UNREACHABLE,
    3: Reply.PORT_UNREACHABLE,
    9: Reply.PROHIBITED,
    10: Reply.PROHIBITED,
    13: Reply.PROHIBITED,
}


# Classic BPF, so that a raw socket wakes us only for what may answer this trace: it sees every
# ICMP (or TCP) packet of the namespace, and a busy agent's ICMP probes send thousands a second.
_LDX_IHL, _LDB_IND, _LDH_IND, _LD_ABS = 0xB1, 0x50, 0x48, 0x20
_JEQ, _RET = 0x15, 0x06
_ACCEPT = (_RET, 0, 0, 0xFFFF)
_DROP = (_RET, 0, 0, 0)


def icmp_program(identifier: int) -> list[tuple[int, int, int, int]]:
    """Echo replies only with our identifier; errors (types 3, 11) all, they quote the probe."""
    return [
        (_LDX_IHL, 0, 0, 0),
        (_LDB_IND, 0, 0, 0),
        (_JEQ, 0, 3, 0),
        (_LDH_IND, 0, 0, 4),
        (_JEQ, 1, 0, identifier),
        _DROP,
        _ACCEPT,
    ]


def tcp_program(target: str, port: int) -> list[tuple[int, int, int, int]]:
    """Segments from the target's traced port only."""
    address = int.from_bytes(socket.inet_aton(target), "big")
    return [
        (_LD_ABS, 0, 0, 12),
        (_JEQ, 0, 3, address),
        (_LDX_IHL, 0, 0, 0),
        (_LDH_IND, 0, 0, 0),
        (_JEQ, 1, 0, port),
        _DROP,
        _ACCEPT,
    ]


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in program))
    sock.setsockopt(
        socket.SOL_SOCKET,
        _SO_ATTACH_FILTER,
        struct.pack("@HP", len(program), ctypes.addressof(code)),
    )


def probe_packet(spec: TraceSpec, source: str, ttl: int, tag: int, flow: int) -> bytes:
    """One probe, IP header included. ``flow`` is the ICMP identifier or the source port;
    ``tag`` tells the probe apart without touching what load balancers hash."""
    ip = IP(src=source, dst=spec.target, ttl=ttl, id=tag if spec.mode == "udp" else 0)
    packet: Packet
    if spec.mode == "icmp":
        # The first payload word cancels identifier and sequence number out of the checksum
        # (one's complement sum: x + ~x = 0xFFFF), so every probe has the same checksum.
        total = flow + tag
        word = struct.pack("!H", 0xFFFF - ((total & 0xFFFF) + (total >> 16)))
        packet = ip / ICMP(type=8, id=flow, seq=tag) / Raw(word + _PAYLOAD[2:])
    elif spec.mode == "udp":
        packet = ip / UDP(sport=flow, dport=spec.destination_port) / Raw(_PAYLOAD)
    else:
        packet = ip / TCP(sport=flow, dport=spec.destination_port, flags="S", seq=tag, window=1024)
    return bytes(packet)


def parse_answer(
    data: bytes, spec: TraceSpec, identifier: int, flow_port: int
) -> tuple[int, str, Reply] | None:
    """(probe tag, who answered, what) if ``data`` answers one of this trace's probes."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    proto = data[9]
    sender = socket.inet_ntoa(data[12:16])
    body = data[ihl:]
    if proto == socket.IPPROTO_TCP:
        if spec.mode != "tcp" or len(body) < 14 or sender != spec.target:
            return None
        sport, dport, _, ack = struct.unpack_from("!HHII", body)
        flags = body[13]
        if sport != spec.destination_port or dport != flow_port or not flags & 0x10:
            return None
        reply = Reply.SYN_ACK if flags & 0x12 == 0x12 else Reply.RESET if flags & 0x04 else None
        return None if reply is None else ((ack - 1) & 0xFFFFFFFF, sender, reply)
    if proto != socket.IPPROTO_ICMP or len(body) < 8:
        return None
    icmp_type, code = body[0], body[1]
    if icmp_type == 0:
        ident, seq = struct.unpack_from("!HH", body, 4)
        if spec.mode == "icmp" and ident == identifier and sender == spec.target:
            return seq, sender, Reply.ECHO_REPLY
        return None
    if icmp_type == 11:
        reply = Reply.TIME_EXCEEDED
    elif icmp_type == 3:
        reply = _UNREACHABLE_CODES.get(code, Reply.UNREACHABLE)
    else:
        return None
    quoted = body[8:]  # the probe's IP header and at least 8 bytes of what followed it
    if len(quoted) < 20 or quoted[0] >> 4 != 4:
        return None
    inner_ihl = (quoted[0] & 0x0F) * 4
    inner = quoted[inner_ihl : inner_ihl + 8]
    if len(inner) < 8 or socket.inet_ntoa(quoted[16:20]) != spec.target:
        return None
    inner_proto = quoted[9]
    if spec.mode == "icmp" and inner_proto == socket.IPPROTO_ICMP:
        kind, _, _, ident, seq = struct.unpack("!BBHHH", inner)
        return (seq, sender, reply) if kind == 8 and ident == identifier else None
    if spec.mode == "udp" and inner_proto == socket.IPPROTO_UDP:
        sport, dport = struct.unpack_from("!HH", inner)
        ip_id = struct.unpack_from("!H", quoted, 4)[0]
        ok = sport == flow_port and dport == spec.destination_port
        return (ip_id, sender, reply) if ok else None
    if spec.mode == "tcp" and inner_proto == socket.IPPROTO_TCP:
        sport, dport, seq = struct.unpack("!HHI", inner)
        ok = sport == flow_port and dport == spec.destination_port
        return (seq, sender, reply) if ok else None
    return None
