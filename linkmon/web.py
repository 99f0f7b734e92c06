"""The HTTP side: /metrics, health, the status API and page, reload.

No endpoint takes a target from the caller: linkmon probes only what its config names
(blackbox_exporter's ``/probe?target=`` is an SSRF by design, CVE-2020-16248).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Protocol

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .api.openapi import openapi_document


class StatusSource(Protocol):
    """What the web side needs from the daemon."""

    @property
    def ready(self) -> bool: ...

    @property
    def reload_enabled(self) -> bool: ...

    def render_metrics(self) -> list[bytes]: ...

    def status(self) -> dict[str, Any]: ...

    async def reload(self) -> tuple[bool, str]: ...


def create_app(daemon: StatusSource, middleware: list[Middleware] | None = None) -> Starlette:
    # generate_latest is synchronous and slow at national scale: keep it off the loop, on a
    # thread of its own, so slow name lookups in the default pool never delay a scrape.
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")

    async def metrics(_: Request) -> Response:
        parts = await asyncio.get_running_loop().run_in_executor(renderer, daemon.render_metrics)
        return StreamingResponse(_send_in_parts(parts), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("OK\n")

    async def readyz(_: Request) -> Response:
        if daemon.ready:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready: first probe rounds still running\n", status_code=503)

    async def status(_: Request) -> Response:
        return JSONResponse(daemon.status())

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    async def reload(_: Request) -> Response:
        if not daemon.reload_enabled:
            return PlainTextResponse(
                "reload over HTTP is disabled; set server.enable_reload: true or send SIGHUP\n",
                status_code=403,
            )
        ok, message = await daemon.reload()
        return PlainTextResponse(message + "\n", status_code=200 if ok else 400)

    routes = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/-/healthy", healthz),
        Route("/readyz", readyz),
        Route("/-/ready", readyz),
        Route("/api/v1/status", status),
        Route("/api/v1/openapi.json", openapi),
        Route("/-/reload", reload, methods=["POST"]),
        *PAGE_ROUTES,
    ]
    return Starlette(routes=routes, middleware=middleware or [])


async def page(_: Request) -> Response:
    return HTMLResponse(_static("index.html"))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in types or "/" in name:
        return PlainTextResponse("not found\n", status_code=404)
    try:
        return Response(_static(name), media_type=types[suffix])
    except FileNotFoundError:
        return PlainTextResponse("not found\n", status_code=404)


# The status page reads /api/v1/status of its own origin: the fleet server serves it too.
PAGE_ROUTES = [Route("/", page), Route("/static/{name}", asset)]


def _static(name: str) -> str:
    return (resources.files("linkmon") / "static" / name).read_text(encoding="utf-8")


async def _send_in_parts(parts: list[bytes]) -> AsyncIterator[bytes]:
    """Hand the body to the server a part at a time (each one waits for the socket to drain),
    so the event loop never copies the whole body in one go."""
    for index, part in enumerate(parts):
        parts[index] = b""  # sent: let it go
        yield part
