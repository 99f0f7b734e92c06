"""HTTP(S) probe: status, body, redirects and TLS certificate expiry of one URL.

Building an SSL context costs about a millisecond of CPU, and a shared connection pool collapses
under hundreds of concurrent probes (httpcore scans every pooled connection for every request).
So :class:`HttpProbe` builds its SSL contexts once, keeps one httpx client per source address
and TLS mode, sends every probe on a connection of its own without any pool (so connect and TLS
time are measured every time) and bounds how many probes run at once.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import certifi
import httpcore
import httpx
from cryptography import x509

from probes.addresses import check_source
from probes.base import Failure, ProbeResult, Report, Round, TaskRounds
from probes.tcp import classify_connect_error

DEFAULT_CONCURRENCY = 256
USER_AGENT = "linkmon-probe"

# What httpcore raises through our transport (httpx only maps the exceptions of its own).
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)

# httpcore trace events (without ".started"/".complete") and the phase each one measures
_TRACED_PHASES = {
    "connection.connect_tcp": "connect",
    "connection.start_tls": "tls",
    "http11.receive_response_headers": "first_byte",
}


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """A GET of ``url`` and what a healthy answer looks like."""

    url: str
    expect_status: tuple[int, ...] = (200,)
    body_match: str | None = None
    body_regex: str | None = None
    follow_redirects: bool = True
    max_redirects: int = 5
    max_body_bytes: int = 65536
    verify_tls: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    def __post_init__(self) -> None:
        try:
            url = httpx.URL(self.url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"http url {self.url!r} is not valid: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"http url must start with http:// or https:// and name a host, got {self.url!r}"
            )
        if not self.expect_status or not all(100 <= s <= 599 for s in self.expect_status):
            raise ValueError(
                f"http expect_status must list codes from 100 to 599, got {self.expect_status!r}"
            )
        if self.body_regex is not None:
            try:
                _compiled(self.body_regex)
            except re.error as exc:
                raise ValueError(
                    f"http body_regex {self.body_regex!r} is not a valid regular expression: {exc}"
                ) from None
        if self.max_redirects < 0:
            raise ValueError(f"http max_redirects must be 0 or more, got {self.max_redirects}")
        if self.max_body_bytes < 0:
            raise ValueError(f"http max_body_bytes must be 0 or more, got {self.max_body_bytes}")
        for name, value in self.headers:
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise ValueError(f"http header {name!r} is not a valid header")
        check_source("http", self.source, url.host)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=1024)
def certificate_expiry(der: bytes) -> float:
    """notAfter of a DER certificate, in unix seconds (cached: the same few certificates recur)."""
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


@dataclass
class _Exchange:
    """What one probe has measured so far, kept so a timeout can still report it."""

    phases: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    status: int | None = None
    cert_expiry: float | None = None

    async def trace(self, event: str, _info: dict[str, Any]) -> None:
        """httpcore's trace hook: turns started/complete event pairs into phase durations."""
        now = time.perf_counter()
        name, _, stage = event.rpartition(".")
        if stage == "started":
            self.started[name] = now
        elif stage == "complete" and name in self.started:
            phase = _TRACED_PHASES.get(name)
            began = self.started.pop(name)
            if phase is not None:
                self.phases[phase] = self.phases.get(phase, 0.0) + now - began

    @property
    def in_tls_handshake(self) -> bool:
        return "connection.start_tls" in self.started


class _FreshConnection(httpx.AsyncBaseTransport):
    """An httpx transport that sends each request on a new connection, closed with the response."""

    def __init__(self, ssl_context: ssl.SSLContext, local_address: str | None) -> None:
        self._ssl_context = ssl_context
        self._local_address = local_address

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        connection = httpcore.AsyncHTTPConnection(
            core_request.url.origin,
            ssl_context=self._ssl_context,
            local_address=self._local_address,
        )
        try:
            response = await connection.handle_async_request(core_request)
        except BaseException:
            await connection.aclose()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ClosingBody(response, connection),
            extensions=response.extensions,
        )


class _ClosingBody(httpx.AsyncByteStream):
    """A response body that closes its connection when it is closed."""

    def __init__(self, response: httpcore.Response, connection: httpcore.AsyncHTTPConnection):
        self._response = response
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            await self._connection.aclose()


class HttpProbe:
    """The HTTP kind: SSL contexts built once, a client per source, a concurrency bound; each
    round runs in a task, and the wait for a free slot counts against its deadline.

    ``ca_file`` replaces certifi's CA bundle for verified probes (an internal CA, or a test CA).
    """

    def __init__(
        self, *, concurrency: int = DEFAULT_CONCURRENCY, ca_file: str | None = None
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"http concurrency must be at least 1, got {concurrency}")
        self._verified = ssl.create_default_context(cafile=ca_file or certifi.where())
        self._unverified = ssl.create_default_context()
        self._unverified.check_hostname = False
        self._unverified.verify_mode = ssl.CERT_NONE
        self._slots = asyncio.Semaphore(concurrency)
        self._clients: dict[tuple[bool, str | None], httpx.AsyncClient] = {}
        self._rounds = TaskRounds()

    def _client(self, verify: bool, source: str | None) -> httpx.AsyncClient:
        client = self._clients.get((verify, source))
        if client is None:
            client = httpx.AsyncClient(
                transport=_FreshConnection(self._verified if verify else self._unverified, source),
                trust_env=False,  # a proxy from the environment would probe the proxy, not the link
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
            self._clients[(verify, source)] = client
        return client

    def begin(self, spec: HttpSpec, deadline: float, report: Report) -> Round:
        return self._rounds.begin(self._run(spec, deadline), report)

    async def close(self) -> None:
        await self._rounds.close()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _run(self, spec: HttpSpec, deadline: float) -> ProbeResult:
        loop = asyncio.get_running_loop()
        timeout = deadline - loop.time()
        exchange = _Exchange()
        began: float | None = None
        try:
            async with asyncio.timeout_at(deadline), self._slots:
                began = time.perf_counter()
                return await self._exchange(spec, exchange, deadline - loop.time(), began)
        except (TimeoutError, httpx.TimeoutException, httpcore.TimeoutException):
            detail = f"no complete answer within {timeout:g}s"
            if began is None:
                detail += " (all HTTP probe slots were busy)"
            return _result(spec, exchange, began, Failure.TIMEOUT, detail)
        except (httpx.HTTPError, *_HTTPCORE_ERRORS, OSError) as exc:
            failure, detail = _classify(exc, exchange)
            return _result(spec, exchange, began, failure, detail)

    async def _exchange(
        self, spec: HttpSpec, exchange: _Exchange, remaining: float, began: float
    ) -> ProbeResult:
        client = self._client(spec.verify_tls, spec.source)
        request = client.build_request(
            "GET",
            spec.url,
            headers=spec.headers,
            timeout=remaining,
            extensions={"trace": exchange.trace},
        )
        redirects = 0
        while True:
            response = await client.send(request, stream=True)
            try:
                exchange.status = response.status_code
                if request.url.scheme == "https":
                    exchange.cert_expiry = _peer_certificate_expiry(response)
                if spec.follow_redirects and response.next_request is not None:
                    redirects += 1
                    if redirects > spec.max_redirects:
                        last = response.next_request.url
                        detail = f"more than {spec.max_redirects} redirects (last to {last})"
                        return _result(spec, exchange, began, Failure.TOO_MANY_REDIRECTS, detail)
                    request = response.next_request
                    continue
                if response.status_code not in spec.expect_status:
                    detail = (
                        f"status {response.status_code}, expected {_statuses(spec.expect_status)}"
                    )
                    return _result(spec, exchange, began, Failure.HTTP_STATUS, detail)
                body = await _read_capped(response, spec.max_body_bytes, exchange)
            finally:
                await response.aclose()
            mismatch = _body_mismatch(spec, body, response.encoding or "utf-8")
            if mismatch:
                return _result(spec, exchange, began, Failure.BODY_MISMATCH, mismatch)
            return _result(spec, exchange, began, None, "")


async def _read_capped(response: httpx.Response, cap: int, exchange: _Exchange) -> bytes:
    """At most ``cap`` bytes of the body as they came off the wire; the rest is never read."""
    started = time.perf_counter()
    body = bytearray()
    if cap > 0:
        async for chunk in response.aiter_raw():
            body += chunk[: cap - len(body)]
            if len(body) >= cap:
                break
    exchange.phases["transfer"] = (
        exchange.phases.get("transfer", 0.0) + time.perf_counter() - started
    )
    return bytes(body)


def _body_mismatch(spec: HttpSpec, body: bytes, encoding: str) -> str:
    if spec.body_match is None and spec.body_regex is None:
        return ""
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:  # the server named a charset Python does not know
        text = body.decode("utf-8", errors="replace")
    if spec.body_match is not None and spec.body_match not in text:
        return f"body does not contain {spec.body_match!r} (first {len(body)} bytes read)"
    if spec.body_regex is not None and _compiled(spec.body_regex).search(text) is None:
        return f"body does not match /{spec.body_regex}/ (first {len(body)} bytes read)"
    return ""


def _peer_certificate_expiry(response: httpx.Response) -> float | None:
    """The server certificate's notAfter, read even when it was not verified."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return certificate_expiry(der) if der else None


def _classify(exc: BaseException, exchange: _Exchange) -> tuple[Failure, str]:
    known = classify_connect_error(exc)
    if known is not None:
        return known
    if exchange.in_tls_handshake:
        return Failure.TLS, f"TLS handshake failed: {exc or type(exc).__name__}"
    protocol_errors = (
        httpx.ProtocolError,
        httpx.DecodingError,
        httpx.UnsupportedProtocol,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
    )
    if isinstance(exc, protocol_errors):
        return Failure.PROTOCOL, str(exc) or type(exc).__name__
    return Failure.ERROR, f"{type(exc).__name__}: {exc}"


def _statuses(codes: tuple[int, ...]) -> str:
    return ", ".join(str(code) for code in codes)


def _result(
    spec: HttpSpec, exchange: _Exchange, began: float | None, failure: Failure | None, detail: str
) -> ProbeResult:
    return ProbeResult(
        kind="http",
        target=spec.url,
        success=failure is None,
        duration=None if began is None else time.perf_counter() - began,
        failure=failure,
        detail=detail,
        phases=dict(exchange.phases),
        http_status=exchange.status,
        tls_cert_expiry=exchange.cert_expiry,
    )
