"""`linkmon fleet`: the status page and /api/v1/status for the whole fleet, from Prometheus.

Parsed with argparse, not typer, for the reason ``linkmon run`` is: this process becomes a
long-running server (:mod:`linkmon.fleet.server`) and keeps what it imports.
:func:`linkmon.commands.main` calls :func:`main` before the typer app is imported; the app's
own ``fleet`` only lists the command in ``linkmon --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..fleet import DEFAULT_LISTEN, fleet_from_options

SUMMARY = "Serve the status page and /api/v1/status for the whole fleet, read from Prometheus."
LOG_LEVELS = ("debug", "info", "warning", "error")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkmon fleet", description=SUMMARY)
    add = parser.add_argument
    add("--prometheus", required=True, help="Base URL of the Prometheus with every agent.")
    add(
        "--listen",
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN}).",
    )
    add("--agent", action="append", default=[], help="Only this agent (repeatable).")
    add("--kabupaten", help="Only this kabupaten/kota.")
    add("--stale-after", type=float, default=90.0, help="Seconds without news: silent (90).")
    add("--refresh", type=float, default=5.0, help="Seconds one reading serves every request (5).")
    add("--lang", choices=("id", "en"), default="id", help="The page's language (id).")
    add("--timeout", type=float, default=10.0, help="Seconds to wait for Prometheus (10).")
    add("--ca-file", type=Path, help="CA certificate for an https Prometheus.")
    add("--web-config", type=Path, help="exporter-toolkit web-config.yml: TLS and basic auth.")
    add("--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="Default: info.")
    return parser


def main(argv: Sequence[str]) -> int:
    """Serve until SIGTERM or Ctrl-C; 2 when an option is wrong, named on stderr."""
    from ..fleet.server import serve_fleet, split_listen

    args = parser().parse_args(argv)
    try:
        split_listen(args.listen)
        if args.refresh <= 0 or args.timeout <= 0:
            raise ValueError("--refresh and --timeout must be above 0 seconds")
        fleet = fleet_from_options(
            args.prometheus,
            args.agent,
            args.kabupaten,
            args.stale_after,
            args.lang,
            args.timeout,
            args.ca_file,
        )
    except ValueError as exc:
        sys.stderr.write(f"linkmon fleet: {exc}\n")
        return 2
    assert fleet is not None
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per query is noise
    asyncio.run(serve_fleet(fleet, args.listen, args.web_config, args.refresh))
    return 0
