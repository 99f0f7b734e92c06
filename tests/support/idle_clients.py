"""Hostile HTTP clients, as their own process: thousands of connections held open and idle.

``python -m tests.support.idle_clients --port P --connections N --seconds S`` connects N times
to 127.0.0.1:P and holds every connection: half never send a byte (a stuck scraper), half send
a request line and then one header line every few seconds, never ending the headers (a
slow-loris). A connection the server closes is opened again at once, as an attacker would,
up to ``--max-reopened`` times. Everything is bounded: N connections, S seconds, the reopen
budget. It prints ``holding N`` once the first N connection attempts are made, and one JSON
line of counts (``opened``, ``reopened``, ``closed_by_server``) when it stops (after S seconds
or on SIGTERM).

:class:`IdleClients` starts and stops it from a test (by PID, also on failure).
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import selectors
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.child import start_helper, stop_process

TRICKLE_EVERY = 3.0  # seconds between two header lines of a slow-loris
REQUEST_LINE = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class _Holder:
    def __init__(self, port: int, seconds: float, max_reopened: int) -> None:
        self.port = port
        self.deadline = time.monotonic() + seconds
        self.reopen_budget = max_reopened
        self.selector = selectors.DefaultSelector()
        self.trickling: dict[socket.socket, float] = {}  # slow-loris -> next header line due
        self.started: set[socket.socket] = set()  # slow-loris that sent their request line
        self.counts = {"opened": 0, "reopened": 0, "closed_by_server": 0, "failed": 0}
        self.stopping = False

    def open(self, slowloris: bool) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.counts["failed"] += 1
            return
        self.counts["opened"] += 1
        self.selector.register(sock, selectors.EVENT_READ, slowloris)
        if slowloris:
            self.trickling[sock] = 0.0

    def closed(self, sock: socket.socket, slowloris: bool) -> None:
        self.selector.unregister(sock)
        self.trickling.pop(sock, None)
        self.started.discard(sock)
        sock.close()
        self.counts["closed_by_server"] += 1
        if self.reopen_budget > 0 and not self.stopping:
            self.reopen_budget -= 1
            self.counts["reopened"] += 1
            self.open(slowloris)

    def run(self) -> None:
        while not self.stopping and time.monotonic() < self.deadline:
            for key, _ in self.selector.select(timeout=0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.closed(sock, key.data)
            now = time.monotonic()
            for sock, due in list(self.trickling.items()):
                if due <= now:
                    line = b"X-Slow: 1\r\n" if sock in self.started else REQUEST_LINE
                    try:
                        sock.send(line)
                    except OSError:
                        continue  # not connected yet, or closed: the selector says which
                    self.started.add(sock)
                    self.trickling[sock] = now + TRICKLE_EVERY

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-reopened", type=int, default=1_000_000)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holder = _Holder(args.port, args.seconds, args.max_reopened)

    def stop(*_: Any) -> None:
        holder.stopping = True

    signal.signal(signal.SIGTERM, stop)
    for i in range(args.connections):
        holder.open(slowloris=i % 2 == 1)
    print(f"holding {args.connections}", flush=True)
    try:
        holder.run()
    finally:
        holder.close()
        print(json.dumps(holder.counts), flush=True)


class IdleClients:
    """The hostile clients as a child process; use :func:`holding_idle_connections`."""

    def __init__(self, port: int, connections: int, seconds: float) -> None:
        self.proc, _ = start_helper(
            "tests.support.idle_clients",
            ["--port", str(port), "--connections", str(connections), "--seconds", str(seconds)],
            "holding ",
            "idle clients did not start",
        )

    def stop(self) -> dict[str, int]:
        """Stop holding (SIGTERM, then by PID if need be); the counts it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except Exception:
            stop_process(self.proc)
            return {}
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


@contextmanager
def holding_idle_connections(port: int, connections: int, seconds: float) -> Iterator[IdleClients]:
    clients = IdleClients(port, connections, seconds)
    try:
        yield clients
    finally:
        if clients.proc.returncode is None:
            stop_process(clients.proc)


if __name__ == "__main__":
    main()
