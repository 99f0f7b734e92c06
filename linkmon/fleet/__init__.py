"""The fleet view: every agent's state, read from the Prometheus that scrapes them all.

One linkmon watches one vantage point; a NOC runs many, scraped by one Prometheus (or fed to
it by remote write from behind NAT). This package reads them back from Prometheus' HTTP API
and builds one status document in the daemon's own shape, so ``linkmon status --prometheus``
draws it with the single-agent renderer and ``linkmon fleet`` serves it to the same page.

- :mod:`.prometheus` the HTTP API client, every failure one clear :class:`PrometheusUnavailable`
- :mod:`.queries` what is asked, one set of queries per refresh
- :mod:`.model` the pure part: answers in, merged status document out (silent agents, both ends)
- :mod:`.server` ``linkmon fleet``: the page and ``/api/v1/status`` for the whole fleet

Nothing here imports typer or rich: the fleet server is a long-running process like the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from .model import Scope, Settings, fleet_document
from .prometheus import Prometheus, PrometheusUnavailable
from .queries import read

DEFAULT_LISTEN = "127.0.0.1:9850"  # where `linkmon fleet` serves unless told otherwise

__all__ = [
    "DEFAULT_LISTEN",
    "Fleet",
    "PrometheusUnavailable",
    "Scope",
    "Settings",
    "fleet_from_options",
    "fleet_status",
    "read_fleet",
]


@dataclass(frozen=True)
class Fleet:
    """Where the fleet is read from, what part of it, and how it is judged."""

    prometheus: str
    settings: Settings = field(default_factory=Settings)
    lookback: float = 86400.0  # how far back a silent agent is looked for
    timeout: float = 10.0
    ca_file: Path | None = None

    def connect(self) -> Prometheus:
        return Prometheus(self.prometheus, self.timeout, self.ca_file)


def fleet_from_options(
    prometheus: str | None,
    agents: Sequence[str] = (),
    kabupaten: str | None = None,
    stale_after: float = 90.0,
    language: str | None = None,
    timeout: float = 10.0,
    ca_file: Path | None = None,
) -> Fleet | None:
    """The fleet the command line asks for (None without ``--prometheus``); a ``ValueError``
    names the option that is wrong."""
    if prometheus is None:
        if agents or kabupaten is not None:
            raise ValueError("--agent and --kabupaten need --prometheus URL")
        return None
    if stale_after <= 0:
        raise ValueError(f"--stale-after must be above 0 seconds, not {stale_after:g}")
    settings = Settings(Scope(tuple(agents), kabupaten), stale_after, language=language or "id")
    return Fleet(prometheus, settings, timeout=timeout, ca_file=ca_file)


async def fleet_status(fleet: Fleet, prometheus: Prometheus, at: float) -> dict[str, Any]:
    """The fleet's status document as Prometheus knows it at ``at``."""
    settings = fleet.settings
    readings = await read(prometheus, settings.scope, at, settings.stale_after, fleet.lookback)
    return fleet_document(readings, settings)


def read_fleet(fleet: Fleet, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """:func:`fleet_status` for a one-shot command: connect, ask, close."""

    async def once() -> dict[str, Any]:
        async with fleet.connect() as prometheus:
            return await fleet_status(fleet, prometheus, clock.time())

    return asyncio.run(once())
