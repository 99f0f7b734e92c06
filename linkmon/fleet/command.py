"""The ``linkmon fleet`` command: options in, :func:`linkmon.fleet.server.serve_fleet` run.

The only module of the package that imports typer; the server itself never does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import DEFAULT_LISTEN, fleet_from_options


def fleet_command(
    prometheus: Annotated[
        str, typer.Option(help="Base URL of the Prometheus that holds every agent's series.")
    ],
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve on.")] = DEFAULT_LISTEN,
    agent: Annotated[list[str] | None, typer.Option(help="Only this agent (repeatable).")] = None,
    kabupaten: Annotated[str | None, typer.Option(help="Only this kabupaten/kota.")] = None,
    stale_after: Annotated[
        float, typer.Option(help="Seconds without news before an agent is silent.")
    ] = 90.0,
    refresh: Annotated[
        float, typer.Option(help="Seconds one reading of Prometheus serves every request.")
    ] = 5.0,
    lang: Annotated[str, typer.Option(help="id or en: the page's language.")] = "id",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Prometheus.")] = 10.0,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA certificate for an https Prometheus.")
    ] = None,
    web_config: Annotated[
        Path | None,
        typer.Option(help="exporter-toolkit web-config.yml: TLS and basic auth, as the agents."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the status page and /api/v1/status for the whole fleet, read from Prometheus."""
    from .server import serve_fleet, split_listen  # the web stack only for this command

    try:
        split_listen(listen)
        if lang not in ("id", "en"):
            raise ValueError(f"--lang must be id or en, not {lang!r}")
        if refresh <= 0 or timeout <= 0:
            raise ValueError("--refresh and --timeout must be above 0 seconds")
        fleet = fleet_from_options(
            prometheus, agent or [], kabupaten, stale_after, lang, timeout, ca_file
        )
    except ValueError as exc:
        typer.echo(f"linkmon fleet: {exc}", err=True)
        raise typer.Exit(2) from None
    assert fleet is not None
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve_fleet(fleet, listen, web_config, refresh))
