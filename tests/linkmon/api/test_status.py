"""The status document as the daemon builds it: from the monitor's state, at the monitor's time.

The monitor here runs on a clock stopped in the middle of a maintenance night in 2026, so
every time in the document (when it was made, which window is open, until when) must come
from that clock: the machine's own date would find no window open at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from linkmon.api.openapi import status_schema
from linkmon.config import parse_config
from linkmon.metrics import Metrics
from linkmon.monitor import Monitor
from tests.support.clock import FakeClock

NIGHT = datetime.fromisoformat("2026-11-30T23:00:00+08:00").timestamp()  # 23:00 WITA
STARTED = NIGHT - 3600

CONFIG = """
agent: {{name: kab-nunukan, timezone: Asia/Makassar}}
storage: {{path: {db}}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center, timezone: Asia/Jakarta}}
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Kabupaten Nunukan}}
  - {{id: kec-krayan, kind: kecamatan, parent: kab-nunukan, name: Kecamatan Krayan}}
links:
  - {{id: kab-nunukan--dc, from: kab-nunukan, to: pusat-dc, network: vpn,
     probes: [{{kind: tcp, target: "198.18.1.1:443"}}]}}
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m,
     probes: [{{kind: tcp, target: "198.18.30.8:443"}}]}}
maintenance:
  - {{links: [kab-nunukan--dc], start: "2026-11-30 22:00", end: "2026-12-01 02:00", reason: PLN}}
"""


@pytest.fixture
async def document(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    config = parse_config(CONFIG.format(db=tmp_path / "state.db"))
    monitor = Monitor(config, Metrics(config.agent.name), clock=FakeClock(NIGHT))
    await monitor.start()
    try:
        yield monitor.status(version="test", started_at=STARTED)
    finally:
        await monitor.stop()


async def test_every_time_comes_from_the_monitors_clock(document: dict[str, Any]) -> None:
    assert document["generated_at"] == "2026-11-30T15:00:00Z"
    assert document["agent"]["started_at"] == "2026-11-30T14:00:00Z"
    window = {
        "links": ["kab-nunukan--dc"],
        "sites": [],
        "reason": "PLN",
        "start": "2026-11-30T14:00:00Z",
        "end": "2026-11-30T18:00:00Z",
    }
    assert document["maintenance"] == [window]
    uplink = next(link for link in document["links"] if link["id"] == "kab-nunukan--dc")
    assert uplink["maintenance"] == {"reason": "PLN", "until": "2026-11-30T18:00:00Z"}
    zones = {site["id"]: site["zone_abbr"] for site in document["sites"]}
    assert zones == {"pusat-dc": "WIB", "kab-nunukan": "WITA", "kec-krayan": "WITA"}


async def test_the_document_is_what_the_schema_promises(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        status_schema(), format_checker=jsonschema.FormatChecker()
    )
    assert [error.message for error in validator.iter_errors(document)] == []
    assert document["summary"]["links"]["unknown"] == 2  # nothing probed yet
