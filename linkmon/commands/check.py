"""`linkmon check-config`: the config's verdict before a daemon is started or reloaded on it."""

from __future__ import annotations

import typer

from .common import config_or_exit
from .options import ConfigOption


def check_config(config: ConfigOption) -> None:
    """Validate a config file; list every error by its path and exit non-zero if any."""
    cfg = config_or_exit(config)
    probes = sum(len(link.probes) for link in cfg.links)
    typer.echo(f"{config}: OK ({len(cfg.sites)} sites, {len(cfg.links)} links, {probes} probes)")
