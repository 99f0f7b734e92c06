"""`linkmon run`: the daemon, started without the CLI's machinery.

Parsed with argparse, not typer, because this process becomes the daemon: what it imports it
keeps for months. :func:`linkmon.commands.main` calls :func:`main` before the typer app is
imported; the app's own ``run`` only lists the command in ``linkmon --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import load_config_apart
from ..daemon import run_daemon
from .common import config_or_exit

SUMMARY = "Run the daemon: probe every link, serve /metrics and the status API, send alerts."
LOG_LEVELS = ("debug", "info", "warning", "error")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkmon run", description=SUMMARY)
    parser.add_argument(
        "-c", "--config", type=Path, required=True, help="linkmon YAML config file."
    )
    parser.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default="info", help="Default: info."
    )
    parser.add_argument("--user", help="Started as root: drop to this user after opening sockets.")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run until stopped; the exit code (2: the config or the start-up failed)."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe is noise
    config = config_or_exit(args.config, load_config_apart)  # a daemon keeps no parse's heap
    return asyncio.run(run_daemon(args.config, config, user=args.user))
