"""The outage fixture (tests/testdata/outages/) in a real state database, for history and report.

``config.yml`` has sites in WIB, WITA and WIT; ``outages.yml`` the outages (over midnight,
over a month boundary, inside and across maintenance, one still going on); ``expected.yml``
the report figures worked out by hand.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from linkmon.config import Config, load_config
from linkmon.state import Changes, LinkState, Transition
from linkmon.storage import Storage

FIXTURE = Path(__file__).resolve().parents[1] / "testdata" / "outages"
REPORTED_AT = datetime.fromisoformat("2026-12-05T00:00:00+00:00").timestamp()


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def outages() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load((FIXTURE / "outages.yml").read_text())
    return loaded


def expected() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURE / "expected.yml").read_text())
    return loaded


def install(directory: Path) -> Config:
    """The fixture config in ``directory``, its database filled as the state machine would:
    one transition out of service at the start of each outage, one back at its end."""
    shutil.copy(FIXTURE / "config.yml", directory / "config.yml")
    config = load_config(directory / "config.yml")
    with Storage(config.storage.path) as storage:
        for item in outages():
            link = config.link(item["link"])
            state = LinkState(item["state"])
            start = timestamp(item["start"])
            moves = [
                Transition(
                    link.id,
                    LinkState.UP,
                    state,
                    start,
                    "path_down",
                    "icmp: timeout",
                    link.from_site,
                )
            ]
            if item["end"] is not None:
                moves.append(
                    Transition(
                        link.id, state, LinkState.UP, timestamp(item["end"]), "", "", link.from_site
                    )
                )
            for move in moves:
                storage.record(Changes(transitions=(move,)), move.at)
    return config
