"""The embedded HTTP server, bounded so that no client can starve the probes of file descriptors.

uvicorn's own limits do not bound what matters here. ``limit_concurrency`` answers 503 only
after accepting, so every connection still costs a descriptor; h11 has no header timeout, so
a slow-loris that drips a header line every few seconds is held for ever; and asyncio's accept
loop, once out of descriptors, logs a traceback per failed ``accept()`` (185 MB a minute).
So linkmon accepts connections itself and hands each one to uvicorn's protocol:

- at most ``max_connections`` are open at once (the web side's share of the open-file limit,
  :mod:`linkmon.openfiles`; the few accepted per turn of the loop beyond it come out of the
  probes' margin). Beyond it, the connection idle the longest (no request in progress: a
  silent client, a slow-loris still sending headers, a keep-alive between requests) is closed
  to make room, as nginx drains idle connections; if none is idle the listener stops
  accepting until one is. New clients thus get through in time while thousands of idle
  connections are held against the port.
- a connection must complete a request within ``header_timeout`` of being accepted or of its
  previous answer, else it is closed.
- ``accept()`` failing for want of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses
  accepting for a second; it is counted, and logged once with a count (:mod:`linkmon.logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import uvicorn

from .clock import SYSTEM_CLOCK, Clock
from .metrics import Metrics
from .openfiles import exhausted_resource

log = logging.getLogger("linkmon.web")

HEADER_TIMEOUT = 10.0  # seconds for a whole request to arrive (Prometheus sends it at once)
KEEP_ALIVE = 5.0  # uvicorn closes a keep-alive connection idle this long between requests
ACCEPT_BATCH = 32  # connections accepted (each shedding an idle one) per turn of the loop
ACCEPT_RETRY = 1.0  # seconds before accepting again after running out of a resource
SWEEP_EVERY = 1.0
FULL_SAID_EVERY = 60.0
READ_SIZE = 16384
HEAD_LIMIT = 16384  # a longer head goes to uvicorn as it is, which answers 400

Peer = tuple[str, int]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Closer = Callable[[], None]


class ConnectionGuard:
    """The web side's connections: how many, which are idle since when, which to shed.

    A connection is known by its peer address (unique among a listener's open connections),
    which is also what the ASGI scope names as ``client``: :meth:`track` marks a connection
    busy while the application answers one of its requests. Each connection comes with the
    way to close it: a socket still waiting for its request is closed at once, a connection
    handed to uvicorn through its transport.
    """

    def __init__(
        self,
        max_connections: int,
        metrics: Metrics,
        clock: Clock = SYSTEM_CLOCK,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._metrics = metrics
        self._clock = clock
        self._open: dict[Peer, Closer | None] = {}  # None: a TLS handshake or a hand-over
        self._idle: OrderedDict[Peer, float] = OrderedDict()  # idle since, longest first
        self._room_made: list[Callable[[], None]] = []
        self._full_said: float | None = None
        metrics.http_connections_max.labels(metrics.agent).set(max_connections)
        metrics.http_connections.labels(metrics.agent).set_function(lambda: len(self._open))

    def __len__(self) -> int:
        return len(self._open)

    # -- the listener's side ----------------------------------------------------------------

    def make_room(self, newcomer: Peer) -> bool:
        """Called once ``newcomer`` is accepted. Beyond the limit, the connection idle the
        longest is closed to make room: at once if it still waits for its request, on the
        loop's next turn if uvicorn has it. False if every other connection is busy: the
        newcomer stays (one over the limit) and the listener should wait for room."""
        if len(self._open) <= self.max_connections:
            return True
        self._metrics.exhausted("http_connections")
        self._say_full()
        # the first one closed ends the walk, before its removal could upset the iteration
        return any(peer != newcomer and self._close(peer, "limit") for peer in self._idle)

    def _say_full(self) -> None:
        """Log that the limit is reached, at most once a minute: a flood makes it thousands
        of times a second, and even a filtered log call each time would cost the loop."""
        now = self._clock.monotonic()
        if self._full_said is not None and now - self._full_said < FULL_SAID_EVERY:
            return
        self._full_said = now
        log.warning(
            "web: %d connections open, all the open-file limit leaves it: closing the longest "
            "idle ones to make room (a flood of idle clients?); probing goes on",
            self.max_connections,
        )

    def accepted(self, peer: Peer, close: Closer | None) -> None:
        self._open[peer] = close
        self._idle[peer] = self._clock.monotonic()

    def connected(self, peer: Peer, close: Closer | None) -> None:
        """How to close ``peer`` from now on (None while it cannot be closed from here)."""
        if peer in self._open:
            self._open[peer] = close

    def closed(self, peer: Peer, close: Closer | None) -> None:
        """``peer``'s connection that ``close`` closed is gone; a newer connection from the
        same address (a port reused while the old one was closing) is left alone."""
        if peer in self._open and self._open[peer] is close:
            del self._open[peer]
            self._idle.pop(peer, None)
        self._room()

    def on_room(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` whenever a connection closes or goes idle (a listener paused
        because every connection was busy)."""
        self._room_made.append(resume)

    def _room(self) -> None:
        for resume in self._room_made:
            resume()

    def out_of(self, resource: str) -> None:
        self._metrics.exhausted(resource)

    def close_idle(self) -> None:
        for peer in list(self._idle):
            self._close(peer, "shutdown")

    # -- the application's side --------------------------------------------------------------

    def track(self, app: App) -> App:
        """``app`` with each request marking its connection busy until the answer is sent."""

        async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
            client = scope.get("client")
            peer = (str(client[0]), int(client[1])) if client else None
            if peer is not None:
                self._idle.pop(peer, None)
            try:
                await app(scope, receive, send)
            finally:
                if peer is not None and peer in self._open:
                    self._idle[peer] = self._clock.monotonic()
                    self._room()

        return tracked

    # -- time ------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Close every connection idle longer than the header timeout."""
        too_old = self._clock.monotonic() - self.header_timeout
        for peer, since in list(self._idle.items()):
            if since > too_old:
                break
            self._close(peer, "timeout")

    async def run(self) -> None:
        while True:
            await self._clock.sleep(SWEEP_EVERY)
            self.sweep()

    def _close(self, peer: Peer, reason: str) -> bool:
        close = self._open.get(peer)
        if close is None:
            return False  # a TLS handshake or a hand-over: its own timeout ends it
        self._idle.pop(peer, None)
        self._metrics.http_connections_closed.labels(self._metrics.agent, reason).inc()
        close()
        return True


def _closer(transport: asyncio.BaseTransport) -> Closer:
    def close() -> None:
        if transport.is_closing():
            return
        if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size():
            transport.abort()  # a client that does not read would hold a graceful close open
        else:
            transport.close()

    return close


class _Tracked(asyncio.Protocol):
    """uvicorn's protocol for one connection, given the request head read before it existed,
    and telling the guard when the connection opens and closes."""

    def __init__(
        self, inner: asyncio.Protocol, guard: ConnectionGuard, peer: Peer, head: bytes
    ) -> None:
        self._inner = inner
        self._guard = guard
        self._peer = peer
        self._head = head
        self._close: Closer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._close = _closer(transport)
        self._guard.connected(self._peer, self._close)
        self._inner.connection_made(transport)
        if self._head:
            head, self._head = self._head, b""
            self._inner.data_received(head)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.closed(self._peer, self._close)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _head_complete(buffer: bytearray) -> bool:
    return b"\r\n\r\n" in buffer or b"\n\n" in buffer or len(buffer) > HEAD_LIMIT


class BoundedListener:
    """Accepts on ``sock`` within the guard's limit; closed like an asyncio server.

    Over plain HTTP a connection is read by linkmon itself until its request head is whole,
    and only then handed to uvicorn: a connection that never sends a request (the silent and
    the slow-loris ones of a flood) costs a socket and a few bytes, and is shed in
    microseconds when room is needed. Over TLS the handshake comes first, so asyncio's
    transport takes the connection at once.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._factory = protocol_factory
        self._guard = guard
        self._ssl = ssl_context
        self._accepting = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        self._handovers: set[asyncio.Task[None]] = set()
        sock.setblocking(False)
        guard.on_room(self._resume)
        self._resume()

    def _resume(self) -> None:
        if not self._accepting and not self._closed and self._retry is None:
            self._loop.add_reader(self._sock.fileno(), self._accept_some)
            self._accepting = True

    def _pause(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self._sock.fileno())
            self._accepting = False

    def _retry_later(self) -> None:
        self._pause()

        def retry() -> None:
            self._retry = None
            self._resume()

        self._retry = self._loop.call_later(ACCEPT_RETRY, retry)

    def _accept_some(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                resource = exhausted_resource(exc.errno)
                if resource is None:
                    log.error("web: cannot accept a connection: %s", exc)
                    return
                self._guard.out_of(resource)
                log.error(
                    "web: cannot accept a connection: %s; the web side waits %g s, probing goes on",
                    exc.strerror,
                    ACCEPT_RETRY,
                )
                self._retry_later()
                return
            conn.setblocking(False)
            peer = (str(address[0]), int(address[1]))
            if self._ssl is None:
                self._read_head(conn, peer)
            else:
                self._guard.accepted(peer, None)
                self._hand_over(conn, peer, b"")
            if not self._guard.make_room(peer):
                self._pause()  # every connection busy: the guard resumes it when one is not
                return

    def _read_head(self, conn: socket.socket, peer: Peer) -> None:
        fd = conn.fileno()
        head = bytearray()

        def close() -> None:
            self._loop.remove_reader(fd)
            conn.close()
            self._guard.closed(peer, close)

        def readable() -> None:
            try:
                data = conn.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                close()
                return
            head.extend(data)
            if _head_complete(head):
                self._loop.remove_reader(fd)
                self._guard.connected(peer, None)
                self._hand_over(conn, peer, bytes(head))

        self._guard.accepted(peer, close)
        self._loop.add_reader(fd, readable)

    def _hand_over(self, conn: socket.socket, peer: Peer, head: bytes) -> None:
        task = self._loop.create_task(self._connect(conn, peer, head))
        self._handovers.add(task)
        task.add_done_callback(self._handovers.discard)

    async def _connect(self, conn: socket.socket, peer: Peer, head: bytes) -> None:
        def protocol() -> asyncio.Protocol:
            return _Tracked(self._factory(), self._guard, peer, head)

        try:
            await self._loop.connect_accepted_socket(
                protocol,
                conn,
                ssl=self._ssl,
                ssl_handshake_timeout=self._guard.header_timeout if self._ssl else None,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.debug("web: connection from %s:%d not set up: %s", *peer, exc)
            conn.close()
            self._guard.closed(peer, None)

    # -- what uvicorn's shutdown calls on its servers -----------------------------------------

    def close(self) -> None:
        self._closed = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()
        self._guard.close_idle()

    async def wait_closed(self) -> None:
        for task in list(self._handovers):
            task.cancel()


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the daemon's loop, on the daemon's listener, within the guard's bounds.
    The daemon, not uvicorn, owns SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config

        def create_protocol() -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return protocol

        listeners = [
            BoundedListener(sock, create_protocol, self.guard, config.ssl) for sock in sockets or []
        ]
        self.servers = listeners  # type: ignore[assignment]  # close() and wait_closed() suffice
        self.started = True


def web_settings(app: App, ssl_context: ssl.SSLContext | None) -> uvicorn.Config:
    """uvicorn's settings for the embedded server: h11 (whose connection state the guard
    relies on: a request is handed to the application once its headers are complete), no
    WebSocket, keep-alive closed after a short idle."""
    settings = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        timeout_keep_alive=int(KEEP_ALIVE),
    )
    settings.load()
    settings.ssl = ssl_context
    return settings
