"""Hostile targets on loopback, as their own process: what a broken or malicious far end does.

``python -m tests.support.hostile [--dns ADDRESS]`` listens on 127.0.0.1 and prints one JSON
line ``{"name": port, ...}`` once every service is up:

- ``huge_headers``: answers 200, then header lines without end;
- ``long_header_line``: one header line that never ends;
- ``slowloris``: drips its status line one byte a second;
- ``tls_garbage``: random bytes where a TLS ServerHello should be;
- ``silent``: accepts and never says anything;
- ``redirect_loop``: every path redirects to the next one, forever;
- ``endless_body``: a chunked body that never ends.

With ``--dns ADDRESS`` it also swallows every DNS query sent to ADDRESS:53 (UDP and TCP)
without answering: a name server that never resolves anything.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable

from tests.support.child import start_helper, stop_process

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return b""


async def huge_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for n in itertools.count():
        writer.write(b"X-Junk-%d: %s\r\n" % (n, b"a" * 4000))
        await writer.drain()


async def long_header_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Junk: ")
    while True:
        writer.write(b"a" * 16384)
        await writer.drain()


async def slowloris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


async def tls_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)  # the ClientHello
    while True:
        writer.write(os.urandom(4096))
        await writer.drain()
        await asyncio.sleep(0.01)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the prober gives up and closes


async def redirect_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while request := await _request(reader):
        path = request.split(b" ", 2)[1]
        step = int(path.rsplit(b"/", 1)[-1]) + 1 if path[-1:].isdigit() else 1
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: /loop/%d\r\nContent-Length: 0\r\n\r\n" % step
        )
        await writer.drain()


async def endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (8192, b"b" * 8192)
    while True:
        writer.write(chunk)
        await writer.drain()


SERVICES: dict[str, Handler] = {
    "huge_headers": huge_headers,
    "long_header_line": long_header_line,
    "slowloris": slowloris,
    "tls_garbage": tls_garbage,
    "silent": silent,
    "redirect_loop": redirect_loop,
    "endless_body": endless_body,
}


def _guarded(handler: Handler) -> Handler:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return serve


class _Swallow(asyncio.DatagramProtocol):
    """Reads DNS queries and answers none."""


async def main(dns: str | None) -> None:
    ports = {}
    servers = []
    for name, handler in SERVICES.items():
        server = await asyncio.start_server(_guarded(handler), "127.0.0.1", 0)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    if dns is not None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(_Swallow, local_addr=(dns, 53))
        servers.append(await asyncio.start_server(_guarded(silent), dns, 53))
    print(json.dumps(ports), flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


class HostileTargets:
    """The hostile process, started and killed by PID."""

    def __init__(self, dns: str | None = None) -> None:
        self.proc, line = start_helper(
            "tests.support.hostile",
            ["--dns", dns] if dns else [],
            "{",
            "hostile targets did not start",
        )
        self.ports: dict[str, int] = json.loads(line)

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dns", help="loopback address to swallow DNS queries on")
    asyncio.run(main(parser.parse_args().dns))
