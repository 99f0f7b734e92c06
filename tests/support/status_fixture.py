"""A known status document (Kabupaten Nunukan, mid-incident) and a real HTTP server for it.

``status-nunukan.json`` is what the daemon answers on a bad morning: the Krayan relay is down
and takes the four Krayan kecamatan behind it out of reach, Lumbis Ogong lost its link and
serves through its Starlink backup to the DRC only, pusat refuses Tulin Onsoi's service port,
Sebatik Utara loses packets, Sembakung is down inside a maintenance window, Lumbis Hulu is
flapping and Sei Menggaris has just been added and has no results yet.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).with_name("status-nunukan.json")


def nunukan_status() -> dict[str, Any]:
    """A fresh copy of the fixture document: tests may change it freely."""
    return json.loads(FIXTURE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def all_up(doc: dict[str, Any]) -> dict[str, Any]:
    """The same network with every link up and every office online."""
    doc = copy.deepcopy(doc)
    for link in doc["links"]:
        link.update(
            state="up",
            cause=None,
            detail="",
            flapping=False,
            maintenance=None,
            unreachable_via=None,
            path=None,
            rtt_seconds=link["rtt_seconds"] or 0.02,
            loss=0.0,
        )
    for site in doc["sites"]:
        if site["service"] is not None:
            site["service"] = {"state": "available", "via": [], "reason": ""}
    doc["outages"], doc["maintenance"] = [], []
    doc["summary"] = {
        "state": "up",
        "links": {
            "up": len(doc["links"]),
            "degraded": 0,
            "down": 0,
            "unknown": 0,
            "unreachable": 0,
        },
        "offices_online": doc["summary"]["offices_total"],
        "offices_total": doc["summary"]["offices_total"],
    }
    return doc


@dataclass
class Reply:
    """What the stand-in daemon answers on /api/v1/status."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, doc: dict[str, Any]) -> Reply:
        return cls(body=json.dumps(doc).encode())


Answer = Callable[[Mapping[str, str]], Reply]
"""Given the request headers, what to answer."""


class _Handler(BaseHTTPRequestHandler):
    reply: Answer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path != "/api/v1/status":
            self.send_error(404)
            return
        reply = self.reply(dict(self.headers.items()))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: pytest shows failures, not every request."""


@contextmanager
def serve_status(reply: Answer) -> Iterator[str]:
    """A real HTTP server on loopback answering ``reply(headers)``; yields its base URL."""
    handler = type("Handler", (_Handler,), {"reply": staticmethod(reply)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
