"""``linkmon fleet``: the status page and ``/api/v1/status`` for the whole fleet.

The page is the agents' own (``linkmon/static/``): it reads ``/api/v1/status`` of its origin,
and here that is the fleet's document. One refresh (one set of Prometheus queries) serves
every request for ``max_age`` seconds, and requests that arrive while it runs wait for that
same refresh: a wall of browsers costs Prometheus what one does. The document is built and
serialised on a worker thread, so ``/healthz`` answers while 500 agents are merged. When
Prometheus cannot be read, ``/api/v1/status`` says so with a 503 and the reason: an old
picture is never served as the current one.

A long-running process like the daemon: it imports no typer or rich.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..clock import SYSTEM_CLOCK, Clock
from ..web import PAGE_ROUTES
from ..webconfig import security_middleware, tls_context
from . import DEFAULT_LISTEN, Fleet
from .model import Readings, Settings, fleet_document
from .prometheus import Prometheus, PrometheusUnavailable
from .queries import read

log = logging.getLogger("linkmon.fleet")


class FleetView:
    """The fleet's document as JSON, at most ``max_age`` seconds old, one refresh at a time."""

    def __init__(
        self,
        fleet: Fleet,
        prometheus: Prometheus,
        clock: Clock = SYSTEM_CLOCK,
        max_age: float = 5.0,
    ) -> None:
        self.fleet = fleet
        self.prometheus = prometheus
        self.clock = clock
        self.max_age = max_age
        self.refreshes = 0
        self._answer: bytes | PrometheusUnavailable | None = None
        self._at = 0.0
        self._loading: asyncio.Future[None] | None = None

    async def body(self) -> bytes:
        """The document; raises :class:`PrometheusUnavailable` (kept as long as a document
        would be, so a Prometheus that is down is not asked again by every request)."""
        if self._answer is None or self.clock.monotonic() - self._at >= self.max_age:
            if self._loading is None:
                self._loading = asyncio.ensure_future(self._load())
            # shielded: a client that hangs up must not cancel the refresh others wait for
            await asyncio.shield(self._loading)
        answer = self._answer
        if isinstance(answer, PrometheusUnavailable):
            raise answer
        assert answer is not None
        return answer

    async def _load(self) -> None:
        settings = self.fleet.settings
        try:
            readings = await read(
                self.prometheus,
                settings.scope,
                self.clock.time(),
                settings.stale_after,
                self.fleet.lookback,
            )
            answer: bytes | PrometheusUnavailable = await asyncio.to_thread(
                _document, readings, settings
            )
        except PrometheusUnavailable as exc:
            answer = exc
        finally:
            self._loading = None
        self._report(answer)
        self._answer, self._at = answer, self.clock.monotonic()
        self.refreshes += 1

    def _report(self, answer: bytes | PrometheusUnavailable) -> None:
        """One log line when Prometheus fails or comes back, not one per refresh."""
        was = self._answer
        if isinstance(answer, PrometheusUnavailable) and str(answer) != str(was):
            log.error("%s — /api/v1/status answers 503 until it is back", answer)
        elif isinstance(was, PrometheusUnavailable) and not isinstance(
            answer, PrometheusUnavailable
        ):
            log.info("Prometheus at %s answers again", self.prometheus.url)


def _document(readings: Readings, settings: Settings) -> bytes:
    doc = fleet_document(readings, settings)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def create_fleet_app(view: FleetView, middleware: list[Middleware] | None = None) -> Starlette:
    async def status(_: Request) -> Response:
        try:
            body = await view.body()
        except PrometheusUnavailable as exc:
            return PlainTextResponse(f"{exc}\n", status_code=503)
        return Response(body, media_type="application/json")

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("OK\n")

    routes = [
        Route("/api/v1/status", status),
        Route("/healthz", healthz),
        Route("/-/healthy", healthz),
        *PAGE_ROUTES,
    ]
    return Starlette(routes=routes, middleware=middleware or [])


def split_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9850`` or ``[::1]:9850`` → host and port; ``ValueError`` names the problem."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_fleet(
    fleet: Fleet, listen: str, web_config: Path | None = None, max_age: float = 5.0
) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn's own signal handling)."""
    host, port = split_listen(listen)
    fleet = replace(fleet, settings=replace(fleet.settings, started_at=time.time()))
    async with fleet.connect() as prometheus:
        view = FleetView(fleet, prometheus, max_age=max_age)
        app = create_fleet_app(view, security_middleware(web_config))
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        config.load()
        config.ssl = tls_context(web_config)
        log.info("linkmon fleet on %s, reading %s", listen, fleet.prometheus)
        await uvicorn.Server(config).serve()
