"""The monitor on a fake clock: a step stored and delivered with the clock's time, and the
state ticker (maintenance windows) moving only when the clock does.

The link's probe is on ``[::1]`` so that no path trace is due for it; results are handed to
the monitor directly, and the alert goes to a real receiver process on loopback.
"""

from __future__ import annotations

from pathlib import Path

from linkmon.alerts.model import rfc3339
from linkmon.config import parse_config
from linkmon.metrics import Metrics
from linkmon.monitor import Monitor
from probes.base import Failure, ProbeResult
from tests.support.clock import EPOCH, FakeClock
from tests.support.receiver import running_receiver
from tests.support.wait import wait_for

CONFIG = """
agent: {{name: kab-nunukan, timezone: Asia/Makassar, language: en}}
storage: {{path: {db}}}
sites:
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan}}
  - {{id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}}
links:
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m, down_after: 2,
     probes: [{{kind: tcp, target: "[::1]:9"}}]}}
maintenance:  # 2026-01-01 08:00 WITA is the fake clock's start
  - {{links: [kec-krayan--kab], start: "2026-01-01 08:05", end: "2026-01-01 09:00",
     reason: ganti router}}
alerting:
  receivers: [{{name: oncall, kind: webhook, url: "{url}"}}]
"""
REFUSED = ProbeResult(
    "tcp", "[::1]:9", success=False, failure=Failure.REFUSED, duration=0.001, detail="refused"
)


async def test_a_step_and_the_ticker_go_by_the_monitors_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    with running_receiver(tmp_path / "rx.jsonl") as rx:
        config = parse_config(CONFIG.format(db=tmp_path / "state.db", url=rx.url))
        monitor = Monitor(config, Metrics(config.agent.name), clock=clock)
        await monitor.start()
        try:
            for _ in range(2):
                monitor.observe("kec-krayan--kab", 0, REFUSED, clock.time())
                await clock.advance(10)
            await wait_for(lambda: rx.delivered(), 10, "the page")
            [body] = rx.delivered()
            assert body["alerts"][0]["startsAt"] == rfc3339(EPOCH + 10)
            assert body["alerts"][0]["labels"]["cause"] == "service_refused"
            assert monitor.storage is not None
            [outage] = monitor.storage.outages(0, EPOCH + 3600)
            assert (outage.start, outage.end) == (EPOCH + 10, None)
            assert monitor.network.snapshot()["kec-krayan--kab"].maintenance is None
            await clock.advance(5 * 60)  # into the window: the ticker sees it on this clock
            snapshot = monitor.network.snapshot()["kec-krayan--kab"]
            assert snapshot.maintenance == "ganti router"
        finally:
            await monitor.stop()
