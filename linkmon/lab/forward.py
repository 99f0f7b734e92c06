"""A TCP port on the host that leads into a lab namespace (how the demo shows linkmon's pages).

linkmon runs inside the hub's namespace, listening on that namespace's loopback. This process
binds the host port first, then moves into the namespace for good: every connection it makes
from then on starts inside, and ``lab down`` finds it among the namespace's processes. No
address, route or device is added to the host.

Run: ``python -m linkmon.lab.forward --listen HOST:PORT --netns NAME --to HOST:PORT``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket

from linkmon.lab.netns import enter, report_ready


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def serve(listener: socket.socket, host: str, port: int) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            inner_r, inner_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()  # nothing listens inside yet: the client sees the connection close
            return
        await asyncio.gather(_pipe(client_r, inner_w), _pipe(inner_r, client_w))
        for w in (client_w, inner_w):
            w.close()

    server = await asyncio.start_server(handle, sock=listener)
    report_ready()
    await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, type=_address, metavar="HOST:PORT")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--to", required=True, type=_address, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    listener = socket.create_server(args.listen, reuse_port=False)
    enter(args.netns)
    asyncio.run(serve(listener, *args.to))


if __name__ == "__main__":
    main()
