"""The Prometheus client: every way of failing is one clear message naming where and why.

Real sockets throughout: a real Prometheus refuses a bad query in its own words, a port with
nobody behind it refuses the connection, a listener that never answers times out, and small
HTTP servers on loopback play what a wrong URL finds (a web server, a proxy's login page).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from linkmon.fleet.prometheus import Prometheus, PrometheusUnavailable
from tests.linkmon.fleet.conftest import StandInFleet
from tests.support.daemon import free_port

Answer = tuple[int, str, bytes]  # status, content type, body


@contextmanager
def http_server(answer: Callable[[BaseHTTPRequestHandler], Answer]) -> Iterator[str]:
    """A real HTTP server on loopback answering every GET and POST with ``answer``."""

    class Handler(BaseHTTPRequestHandler):
        def reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, content_type, body = answer(self)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = reply  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def failure(url: str, expr: str = "up", timeout: float = 5.0, **options: Any) -> str:
    async def ask() -> None:
        async with Prometheus(url, timeout=timeout, **options) as prometheus:
            await prometheus.query(expr, 0.0)

    with pytest.raises(PrometheusUnavailable) as caught:
        asyncio.run(ask())
    return str(caught.value)


def test_nobody_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert failure(url) == (
        f"cannot read the fleet from Prometheus at {url}: ConnectError: All connection attempts "
        "failed"
    )


def test_no_answer_in_time() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert failure(url, timeout=0.3) == (
            f"cannot read the fleet from Prometheus at {url}: no answer within 0.3 s to 'up'"
        )


def test_a_web_server_that_is_not_prometheus() -> None:
    with http_server(lambda _: (404, "text/html", b"<h1>Not Found</h1>")) as url:
        assert failure(url) == (
            f"cannot read the fleet from Prometheus at {url}/api/v1/query: HTTP 404 Not Found "
            "(is this the base URL of a Prometheus, e.g. http://host:9090?): <h1>Not Found</h1>"
        )
    with http_server(lambda _: (200, "text/html", b"<html>login</html>")) as url:
        assert failure(url) == (
            f"cannot read the fleet from Prometheus at {url}/api/v1/query: the answer is not "
            "Prometheus API JSON: is this URL a Prometheus?"
        )


def test_credentials_are_sent_and_never_shown() -> None:
    seen: list[str] = []

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        seen.append(request.headers.get("Authorization", ""))
        return 401, "text/plain", b"Unauthorized"

    with http_server(answer) as url:
        with_password = url.replace("http://", "http://noc:rahasia@")
        message = failure(with_password)
    assert seen == ["Basic " + base64.b64encode(b"noc:rahasia").decode()]
    assert "rahasia" not in message
    assert message == (
        f"cannot read the fleet from Prometheus at {url.replace('http://', 'http://noc:***@')}"
        "/api/v1/query: HTTP 401 Unauthorized (give credentials in the URL: "
        "https://user:password@host:port): Unauthorized"
    )


def test_a_ca_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    message = failure("https://127.0.0.1:9090", ca_file=missing)
    assert message.startswith(
        f"cannot read the fleet from Prometheus at https://127.0.0.1:9090: cannot load CA file "
        f"{missing}: "
    )


def test_prometheus_refuses_a_query_in_its_own_words(stand_in_fleet: StandInFleet) -> None:
    url = stand_in_fleet.prometheus.url
    message = failure(url, expr="sum(")
    assert message.startswith(
        f"cannot read the fleet from Prometheus at {url}/api/v1/query: HTTP 400: bad_data: "
    )
    assert message.endswith("(query 'sum(')")


def test_a_range_vector_is_not_an_answer(stand_in_fleet: StandInFleet) -> None:
    url = stand_in_fleet.prometheus.url
    assert failure(url, expr="up[1m]") == (
        f"cannot read the fleet from Prometheus at {url}: expected an instant vector from "
        "'up[1m]', got matrix"
    )


def test_samples_keep_labels_and_values(stand_in_fleet: StandInFleet) -> None:
    async def ask() -> tuple[list[Any], list[str]]:
        async with Prometheus(stand_in_fleet.prometheus.url + "/") as prometheus:
            now = time.time()
            samples = await prometheus.query('linkmon_site_info{site="kec-krayan"}', now)
            agents = await prometheus.label_values("agent", ["linkmon_site_info"], now - 60, now)
            return samples, agents

    samples, agents = asyncio.run(ask())
    (krayan,) = samples
    assert krayan.value == 1.0
    assert {k: krayan.labels[k] for k in ("agent", "site", "kind", "parent")} == {
        "agent": "kab-nunukan",
        "site": "kec-krayan",
        "kind": "kecamatan",
        "parent": "kab-nunukan",
    }
    assert agents == ["kab-nunukan", "pusat-noc"]
