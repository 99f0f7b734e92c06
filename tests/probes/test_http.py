"""HTTP(S) probe against real local servers: uvicorn + starlette over plain HTTP and over TLS
with a trustme CA, a listener that never answers, and a peer namespace for DNS/unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
import uvicorn
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from probes import Failure, HttpSpec, Prober, spec_from_target
from tests.probes.conftest import Peer, run_probes
from tests.support.daemon import free_port
from tests.support.wait import wait_until

BODY = "linkmon ok build=1234"


async def ok(_: Request) -> Response:
    return PlainTextResponse(BODY)


async def status(request: Request) -> Response:
    return Response(status_code=int(request.path_params["code"]))


async def redirect(request: Request) -> Response:
    hops = int(request.path_params["hops"])
    return RedirectResponse(f"/redirect/{hops - 1}" if hops > 1 else "/ok", status_code=302)


async def endless(_: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        block = b"x" * 65536
        while True:
            yield block
            await asyncio.sleep(0)  # lets the server notice that the client has gone

    return StreamingResponse(chunks())


async def echo(request: Request) -> Response:
    """Who asked, and with which X-Office header."""
    client = request.client.host if request.client else "?"
    return PlainTextResponse(f"client={client} office={request.headers.get('x-office')}")


APP = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/status/{code:int}", status),
        Route("/redirect/{hops:int}", redirect),
        Route("/endless", endless),
        Route("/echo", echo),
    ]
)


@dataclass(frozen=True)
class Servers:
    http: str
    https: str
    silent: str  # accepts connections (the kernel does) and never answers
    ca_file: str
    not_after: float  # the HTTPS certificate's notAfter, read from the certificate itself


@contextlib.contextmanager
def serve(sock: socket.socket, **tls: Any) -> Iterator[None]:
    """Run APP with uvicorn on ``sock`` in a thread for the duration of the block."""
    config = uvicorn.Config(
        APP, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, **tls
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 10, "the test HTTP server")
        if not server.started:
            raise RuntimeError("the test HTTP server did not start")
        yield
    finally:
        server.should_exit = True
        thread.join(5)


def bound() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    ca = trustme.CA()
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=42)
    cert = ca.issue_cert("127.0.0.1", "localhost", not_after=not_after)
    folder = tmp_path_factory.mktemp("tls")
    ca_file, pem = folder / "ca.pem", folder / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    expiry = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).not_valid_after_utc
    with contextlib.ExitStack() as stack:
        plain = stack.enter_context(bound())
        tls = stack.enter_context(bound())
        silent = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        stack.enter_context(serve(plain))
        stack.enter_context(serve(tls, ssl_certfile=str(pem)))
        yield Servers(
            http=f"http://127.0.0.1:{plain.getsockname()[1]}",
            https=f"https://127.0.0.1:{tls.getsockname()[1]}",
            silent=f"http://127.0.0.1:{silent.getsockname()[1]}",
            ca_file=str(ca_file),
            not_after=expiry.timestamp(),
        )


async def test_healthy_endpoint_with_phases(prober: Prober, servers: Servers) -> None:
    result = await prober.run(HttpSpec(f"{servers.http}/ok"), timeout=2)
    assert result.success, result.detail
    assert (result.kind, result.target, result.http_status) == ("http", f"{servers.http}/ok", 200)
    assert {"connect", "first_byte", "transfer"} <= result.phases.keys()
    assert "tls" not in result.phases and result.tls_cert_expiry is None
    assert result.duration is not None and result.duration >= sum(result.phases.values())


async def test_every_probe_opens_its_own_connection(prober: Prober, servers: Servers) -> None:
    spec = HttpSpec(f"{servers.http}/ok")
    for _ in range(3):
        result = await prober.run(spec, timeout=2)
        assert result.success and result.phases["connect"] > 0  # a TCP connect was timed


async def test_wrong_status(prober: Prober, servers: Servers) -> None:
    result = await prober.run(HttpSpec(f"{servers.http}/status/503"), timeout=2)
    assert (result.failure, result.http_status) == (Failure.HTTP_STATUS, 503)
    assert result.detail == "status 503, expected 200"
    listed = await prober.run(HttpSpec(f"{servers.http}/status/503", expect_status=(200, 503)), 2)
    assert listed.success


@pytest.mark.parametrize(
    ("match", "regex", "failure"),
    [
        ("build=", None, None),
        ("maintenance", None, Failure.BODY_MISMATCH),
        (None, r"build=\d{4}\b", None),
        (None, r"build=\d{5}", Failure.BODY_MISMATCH),
        ("linkmon ok", r"^linkmon", None),
    ],
)
async def test_body_substring_and_regex(
    prober: Prober, servers: Servers, match: str | None, regex: str | None, failure: Failure | None
) -> None:
    spec = HttpSpec(f"{servers.http}/ok", body_match=match, body_regex=regex)
    result = await prober.run(spec, timeout=2)
    assert result.failure is failure, result.detail
    assert result.http_status == 200


async def test_headers_and_source_address_are_used(prober: Prober, servers: Servers) -> None:
    spec = HttpSpec(
        f"{servers.http}/echo",
        headers=(("X-Office", "kec-krayan"),),
        source="127.0.0.9",
        body_match="client=127.0.0.9 office=kec-krayan",
    )
    result = await prober.run(spec, timeout=2)
    assert result.success, result.detail


async def test_self_signed_certificate_expiry_is_read_without_verification(
    prober: Prober, servers: Servers
) -> None:
    result = await prober.run(HttpSpec(f"{servers.https}/ok", verify_tls=False), timeout=2)
    assert result.success, result.detail
    assert result.tls_cert_expiry == servers.not_after
    assert result.phases["tls"] > 0


async def test_untrusted_certificate_is_a_tls_failure(prober: Prober, servers: Servers) -> None:
    result = await prober.run(HttpSpec(f"{servers.https}/ok"), timeout=2)
    assert result.failure is Failure.TLS
    assert "certificate not trusted" in result.detail


async def test_certificate_from_a_given_ca_is_verified(servers: Servers) -> None:
    async with Prober(ca_file=servers.ca_file) as prober:
        result = await prober.run(HttpSpec(f"{servers.https}/ok", body_match="ok"), timeout=2)
    assert result.success, result.detail
    assert result.tls_cert_expiry == servers.not_after


async def test_server_that_never_answers_is_a_timeout(prober: Prober, servers: Servers) -> None:
    started = time.monotonic()
    result = await prober.run(HttpSpec(f"{servers.silent}/"), timeout=0.5)
    assert result.failure is Failure.TIMEOUT
    assert result.http_status is None and "connect" in result.phases
    assert 0.45 <= time.monotonic() - started < 1.0


async def test_endless_body_is_cut_at_the_cap(prober: Prober, servers: Servers) -> None:
    cap = 100_000
    started = time.monotonic()
    spec = HttpSpec(f"{servers.http}/endless", max_body_bytes=cap, body_match="never there")
    result = await prober.run(spec, timeout=5)
    assert time.monotonic() - started < 2
    assert result.failure is Failure.BODY_MISMATCH
    read = re.search(r"first (\d+) bytes read", result.detail)
    assert read is not None and int(read.group(1)) <= cap
    plain = await prober.run(HttpSpec(f"{servers.http}/endless", max_body_bytes=cap), timeout=5)
    assert plain.success and plain.duration is not None and plain.duration < 2


@pytest.mark.parametrize(
    ("path", "follow", "expect", "failure", "final"),
    [
        ("/redirect/3", True, (200,), None, 200),
        ("/redirect/5", True, (200,), None, 200),
        ("/redirect/6", True, (200,), Failure.TOO_MANY_REDIRECTS, 302),
        ("/redirect/1", False, (200,), Failure.HTTP_STATUS, 302),
        ("/redirect/1", False, (302,), None, 302),
    ],
)
async def test_redirect_policy(
    prober: Prober,
    servers: Servers,
    path: str,
    follow: bool,
    expect: tuple[int, ...],
    failure: Failure | None,
    final: int,
) -> None:
    spec = HttpSpec(
        f"{servers.http}{path}", follow_redirects=follow, max_redirects=5, expect_status=expect
    )
    result = await prober.run(spec, timeout=2)
    assert (result.failure, result.http_status) == (failure, final), result.detail


async def test_closed_port_is_refused(prober: Prober) -> None:
    result = await prober.run(HttpSpec(f"http://127.0.0.1:{free_port()}/"), timeout=2)
    assert result.failure is Failure.REFUSED


async def test_concurrency_is_bounded(servers: Servers) -> None:
    async with Prober(http_concurrency=2) as prober:
        spec = HttpSpec(f"{servers.silent}/")
        results = await asyncio.gather(
            prober.run(spec, timeout=1.0),
            prober.run(spec, timeout=1.0),
            prober.run(spec, timeout=0.3),
        )
    assert [r.failure for r in results] == [Failure.TIMEOUT] * 3
    assert [r.duration is None for r in results] == [False, False, True]
    assert "all HTTP probe slots were busy" in results[2].detail


@pytest.mark.root
async def test_unreachable_host(prober: Prober, peer: Peer) -> None:
    result = await prober.run(HttpSpec(f"http://{peer.rejecting}/"), timeout=2)
    assert result.failure is Failure.UNREACHABLE


@pytest.mark.root
def test_name_that_does_not_resolve_is_a_dns_failure(peer: Peer) -> None:
    """Inside the peer namespace the resolver is unreachable: the lookup fails, nothing is sent."""
    code, output, stderr = run_probes(
        [("http", {"url": "http://nonexistent.invalid/"})], namespace=peer.namespace
    )
    assert code == 0, stderr
    assert output["results"][0]["failure"] == "dns"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://example.org/"}, "http url must start with http:// or https://"),
        ({"url": "http://"}, "http url"),
        ({"url": "http://x/", "expect_status": ()}, "http expect_status must list codes"),
        ({"url": "http://x/", "expect_status": (99,)}, "http expect_status must list codes"),
        ({"url": "http://x/", "body_regex": "("}, "http body_regex '\\(' is not a valid"),
        ({"url": "http://x/", "max_redirects": -1}, "http max_redirects must be 0 or more"),
        ({"url": "http://x/", "max_body_bytes": -1}, "http max_body_bytes must be 0 or more"),
        ({"url": "http://x/", "headers": (("Bad:Name", "v"),)}, "http header 'Bad:Name'"),
        ({"url": "http://x/", "source": "eth0"}, "http source must be an IP address"),
        ({"url": "http://[::1]/", "source": "127.0.0.1"}, "http source 127.0.0.1 is IPv4 but"),
    ],
)
def test_bad_spec_is_refused_with_a_clear_message(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpSpec(**kwargs)


def test_target_without_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="http target must be a URL such as http://198.18.1.1/"):
        spec_from_target("http", "198.18.1.1")
