"""Stand-ins for the services linkmon probes at pusat, the DRC and the kabupaten.

An HTTP and an HTTPS health endpoint (``GET /health`` answers 200 with the site's id) and plain
TCP listeners (accept, send one banner line, close), run inside a site's namespace so TCP and
HTTP probes cross the same links as ICMP. Deliberately small: it starts in a blink and
depends on nothing but the standard library.

Run: ``python -m linkmon.lab.services --site ID [--http P] [--https P --tls PEM] [--tcp P]...``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable

from linkmon.lab.netns import report_ready

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_MAX_HEAD = 16384


def _response(status: str, body: bytes, content_type: str, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


def http_handler(site: str) -> Handler:
    health = json.dumps({"status": "ok", "site": site}, separators=(",", ":")).encode() + b"\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            head_only = method == "HEAD"
            if method not in ("GET", "HEAD"):
                reply = _response("405 Method Not Allowed", b"", "text/plain", head_only)
            elif path.split("?", 1)[0] == "/health":
                reply = _response("200 OK", health, "application/json", head_only)
            else:
                reply = _response("404 Not Found", b"not found\n", "text/plain", head_only)
            writer.write(reply)
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
            ConnectionError,
            ssl.SSLError,
        ):
            pass
        finally:
            writer.close()

    return handle


def tcp_handler(site: str) -> Handler:
    banner = f"linkmon-lab {site}\r\n".encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(banner)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handle


async def serve(args: argparse.Namespace) -> None:
    servers = []
    if args.http:
        servers.append(
            await asyncio.start_server(http_handler(args.site), port=args.http, limit=_MAX_HEAD)
        )
    if args.https:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls)
        servers.append(
            await asyncio.start_server(
                http_handler(args.site), port=args.https, ssl=tls, limit=_MAX_HEAD
            )
        )
    for port in args.tcp:
        servers.append(await asyncio.start_server(tcp_handler(args.site), port=port))
    report_ready()
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True)
    parser.add_argument("--http", type=int)
    parser.add_argument("--https", type=int)
    parser.add_argument("--tls", metavar="PEM", help="private key and certificate chain")
    parser.add_argument("--tcp", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    if args.https and not args.tls:
        parser.error("--https needs --tls")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
