"""The wire of a bridged lab link: Ethernet frames copied between two TAP devices, late on purpose.

The kernel here has no netem, so delay and jitter live in this process: each frame read from
one TAP is written to the other ``delay ± jitter`` later (uniform, like netem's default). With
jitter, frames may overtake each other, as under netem; without it order is kept. Settings per
direction change at run time over a UNIX seqpacket socket (JSON in, JSON out), which also
reports how late frames left compared with when they were due — the bridge's own share of
any RTT. It opens the ``to`` site's TAP from inside that namespace, then moves into the
``from`` site's namespace for good, so ``ip netns pids`` finds it when the lab goes down.

Run: ``python -m linkmon.lab.bridge --from NS:DEV --to NS:DEV --control PATH``
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from linkmon.lab.netns import enter, report_ready

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_PR_SET_TIMERSLACK = 29
_MAX_PENDING = 10_000
"""Frames held at once before new ones are dropped (netem's default limit is 1000)."""
_PRIORITY = 10
"""SCHED_FIFO priority: above every ordinary process, below the kernel's own threads (50)."""
_BURST = 64
"""Frames read from one TAP per wake-up, so a flood on one side cannot starve the other."""


@dataclass
class Direction:
    """Settings and counters of one direction (forward = from-site to to-site)."""

    delay: float = 0.0
    jitter: float = 0.0
    frames: int = 0
    dropped: int = 0
    late_total: float = 0.0
    late_max: float = 0.0

    def report(self) -> dict[str, Any]:
        out = asdict(self)
        out["late_avg"] = self.late_total / self.frames if self.frames else 0.0
        return out


class Bridge:
    def __init__(self, tap_from: int, tap_to: int, control: socket.socket) -> None:
        self.control = control
        self.forward = Direction()
        self.reverse = Direction()
        self.routes = {tap_from: (tap_to, self.forward), tap_to: (tap_from, self.reverse)}
        self.pending: list[tuple[float, int, int, bytes, Direction]] = []
        self.seq = 0
        self.random = random.Random()

    def run(self) -> None:
        readers = [*self.routes, self.control.fileno()]
        while True:
            timeout = max(0.0, self.pending[0][0] - time.monotonic()) if self.pending else None
            ready, _, _ = select.select(readers, [], [], timeout)
            for fd in ready:
                if fd == self.control.fileno():
                    self.serve_control()
                else:
                    self.receive(fd)
            self.send_due()

    def receive(self, fd: int) -> None:
        out_fd, direction = self.routes[fd]
        for _ in range(_BURST):
            try:
                frame = os.read(fd, 65536)
            except (BlockingIOError, OSError):
                return
            now = time.monotonic()
            wait = direction.delay
            if direction.jitter:
                wait = max(0.0, wait + self.random.uniform(-direction.jitter, direction.jitter))
            if len(self.pending) >= _MAX_PENDING:
                direction.dropped += 1
                continue
            self.seq += 1
            heapq.heappush(self.pending, (now + wait, self.seq, out_fd, frame, direction))

    def send_due(self) -> None:
        while self.pending and self.pending[0][0] <= time.monotonic():
            due, _, out_fd, frame, direction = heapq.heappop(self.pending)
            try:
                os.write(out_fd, frame)
            except OSError:  # the far TAP is down (link cut): the frame is lost, as on a wire
                direction.dropped += 1
                continue
            late = time.monotonic() - due
            direction.frames += 1
            direction.late_total += late
            direction.late_max = max(direction.late_max, late)

    def serve_control(self) -> None:
        conn, _ = self.control.accept()
        with conn:
            conn.settimeout(1.0)
            try:
                request = json.loads(conn.recv(65536) or b"{}")
                self.apply(request)
                reply: dict[str, Any] = {
                    "forward": self.forward.report(),
                    "reverse": self.reverse.report(),
                    "pending": len(self.pending),
                }
            except (ValueError, TypeError, KeyError) as exc:
                reply = {"error": str(exc)}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode())

    def apply(self, request: dict[str, Any]) -> None:
        """Apply ``{"forward": {"delay": s, "jitter": s}, "reverse": {...}}`` (any part), all
        or nothing."""
        changes = []
        for name, direction in (("forward", self.forward), ("reverse", self.reverse)):
            for key, value in request.get(name, {}).items():
                if key not in ("delay", "jitter") or not 0 <= float(value) < 3600:
                    raise ValueError(f"{name}.{key}={value!r}: want delay/jitter in seconds")
                changes.append((direction, key, float(value)))
        for direction, key, value in changes:
            setattr(direction, key, value)


def open_tap(device: str) -> int:
    """Attach to a persistent TAP device (made by `ip tuntap add`) in the current namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", device.encode(), _IFF_TAP | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="from_end", required=True, metavar="NS:DEV")
    parser.add_argument("--to", dest="to_end", required=True, metavar="NS:DEV")
    parser.add_argument("--control", required=True, metavar="PATH")
    args = parser.parse_args(argv)
    from_ns, from_dev = args.from_end.split(":", 1)
    to_ns, to_dev = args.to_end.split(":", 1)

    # Wake-ups exactly when a frame is due, not up to 50 µs later (the default timer slack),
    # and ahead of ordinary processes: on a busy 2-core machine a normal-priority bridge
    # delayed 1 % of frames by 3-30 ms; at real-time priority p99 stays within 0.5 ms. Work
    # per wake-up is bounded (_BURST frames), and the kernel caps real-time tasks at 95 %.
    ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(_PRIORITY))
    except PermissionError:
        print(
            "bridge: no real-time priority (needs CAP_SYS_NICE); delays may wobble", file=sys.stderr
        )
    enter(to_ns)
    tap_to = open_tap(to_dev)
    enter(from_ns)  # and stay: `lab down` finds the bridge among the from site's processes
    tap_from = open_tap(from_dev)

    if os.path.exists(args.control):
        os.unlink(args.control)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    control.bind(args.control)
    control.listen(8)
    report_ready()
    Bridge(tap_from, tap_to, control).run()


if __name__ == "__main__":
    main()
