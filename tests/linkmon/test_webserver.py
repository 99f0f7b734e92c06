"""The bounded web server on real loopback sockets, its clock a fake one.

At its connection limit the connection idle the longest is shed for a new client, a busy one
never; a request that does not arrive whole within the header timeout is cut; accept()
running out of file descriptors pauses the listener, counts and logs it, and serves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from linkmon.metrics import Metrics
from linkmon.openfiles import in_use
from linkmon.webserver import ConnectionGuard, EmbeddedServer, Receive, Scope, Send, web_settings
from tests.support.clock import FakeClock
from tests.support.wait import wait_for

LIMIT = 4
HEADER_TIMEOUT = 10.0
AGENT = "test-agent"


@dataclass
class Web:
    port: int
    guard: ConnectionGuard
    metrics: Metrics
    clock: FakeClock
    gate: asyncio.Event
    busy: list[str] = field(default_factory=list)

    def sample(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, {"agent": AGENT, **labels})
        return found or 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def get(web: Web, path: str) -> bytes:
    reader, writer = await web.connect()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 10) == b""


@pytest.fixture
async def web() -> AsyncIterator[Web]:
    metrics = Metrics(AGENT)
    clock = FakeClock()
    guard = ConnectionGuard(LIMIT, metrics, clock=clock, header_timeout=HEADER_TIMEOUT)
    gate = asyncio.Event()
    busy: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            busy.append(scope["path"])
            await gate.wait()
        start: MutableMapping[str, Any] = {"type": "http.response.start", "status": 200}
        await send(start)
        await send({"type": "http.response.body", "body": b"OK\n"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = EmbeddedServer(web_settings(guard.track(app), None), guard)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    sweeper = asyncio.create_task(guard.run())
    await wait_for(lambda: server.started, 10, "the server started")
    try:
        yield Web(sock.getsockname()[1], guard, metrics, clock, gate, busy)
    finally:
        gate.set()
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(serving, 10)
        sweeper.cancel()
        sock.close()


async def test_at_the_limit_the_longest_idle_connection_makes_room(web: Web) -> None:
    idle = []
    for _ in range(LIMIT):
        idle.append(await web.connect())
        await web.clock.advance(1)
    await wait_for(lambda: len(web.guard) == LIMIT, 10, "every idle connection accepted")
    assert b"200 OK" in await get(web, "/healthz")
    assert await closed_by_server(idle[0][0])  # the oldest went
    assert web.sample("linkmon_http_connections_closed_total", reason="limit") >= 1
    assert web.sample("linkmon_agent_resource_exhausted_total", resource="http_connections") >= 1
    assert web.sample("linkmon_http_connections_max") == LIMIT
    for _, writer in idle:
        writer.close()


async def test_a_busy_connection_is_never_shed(web: Web) -> None:
    """With every connection busy, a newcomer is held one over the limit (it comes out of the
    probes' margin) and answered; then the listener waits for a connection to finish."""
    slow = [asyncio.create_task(get(web, "/slow")) for _ in range(LIMIT)]
    await wait_for(lambda: len(web.busy) == LIMIT, 10, "every slow request running")
    assert b"200 OK" in await get(web, "/healthz")
    assert web.sample("linkmon_agent_resource_exhausted_total", resource="http_connections") >= 1
    assert web.sample("linkmon_http_connections_closed_total", reason="limit") == 0
    assert not any(request.done() for request in slow)
    web.gate.set()
    assert all(b"200 OK" in answer for answer in await asyncio.gather(*slow))
    assert b"200 OK" in await get(web, "/healthz")


async def test_a_request_that_never_ends_is_cut_at_the_header_timeout(web: Web) -> None:
    reader, writer = await web.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    await wait_for(lambda: len(web.guard) == 1, 10, "the slow-loris accepted")
    await web.clock.advance(HEADER_TIMEOUT / 2)
    writer.write(b"X-Slow: 1\r\n")  # a byte now and then buys no time
    await writer.drain()
    assert len(web.guard) == 1
    await web.clock.advance(HEADER_TIMEOUT / 2)
    assert await closed_by_server(reader)
    assert web.sample("linkmon_http_connections_closed_total", reason="timeout") == 1
    writer.close()


async def test_out_of_file_descriptors_the_listener_waits_and_serves_again(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setblocking(False)
    filler: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use() + 16, hard))
    try:
        while True:  # every descriptor left (the client's socket exists): none for accept()
            try:
                filler.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                break
        client.connect_ex(("127.0.0.1", web.port))
        await wait_for(
            lambda: web.sample("linkmon_agent_resource_exhausted_total", resource="fds"),
            10,
            "accept() out of file descriptors",
        )
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    await loop.sock_sendall(client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(loop.sock_recv(client, 4096), 10)
    client.close()
    assert b"200 OK" in answer
    failures = [r for r in caplog.records if "cannot accept a connection" in r.getMessage()]
    assert len(failures) == 1 and "Too many open files" in failures[0].getMessage()
    assert failures[0].exc_info is None
