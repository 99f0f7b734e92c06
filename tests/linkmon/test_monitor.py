"""The monitor on a fake clock: a step stored and delivered with the clock's time, and the
state ticker (maintenance windows) moving only when the clock does.

The link's probe is on ``[::1]`` so that no path trace is due for it; results are handed to
the monitor directly, and the alert goes to a real receiver process on loopback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from linkmon.alerts.model import rfc3339
from linkmon.config import parse_config
from linkmon.metrics import Metrics
from linkmon.monitor import Monitor
from probes.base import Failure, ProbeResult
from tests.support.clock import EPOCH, FakeClock
from tests.support.receiver import ReceiverProcess, running_receiver
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


BLIND_CONFIG = """
agent: {{name: kab-nunukan, timezone: Asia/Makassar, language: en, gateway: "::1"}}
storage: {{path: {db}}}
defaults: {{down_after: 2, up_after: 1}}
sites:
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan}}
  - {{id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}}
links:
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m,
     probes: [{{kind: tcp, target: "[::1]:9"}}]}}
alerting:
  receivers: [{{name: oncall, kind: webhook, url: "{url}"}}]
"""
UNREACHABLE = ProbeResult("icmp", "::1", success=False, failure=Failure.UNREACHABLE)
TIMED_OUT = ProbeResult("tcp", "[::1]:9", success=False, failure=Failure.TIMEOUT)
EMFILE = ProbeResult(
    "tcp", "[::1]:9", success=False, failure=Failure.AGENT, detail="too many open files (EMFILE)"
)


@contextlib.asynccontextmanager
async def blind_monitor(
    tmp_path: Path,
) -> AsyncIterator[tuple[Monitor, FakeClock, ReceiverProcess]]:
    """A monitor on BLIND_CONFIG and a fake clock, alerting a real receiver on loopback."""
    clock = FakeClock()
    with running_receiver(tmp_path / "rx.jsonl") as rx:
        config = parse_config(BLIND_CONFIG.format(db=tmp_path / "state.db", url=rx.url))
        monitor = Monitor(config, Metrics(config.agent.name), clock=clock)
        await monitor.start()
        try:
            yield monitor, clock, rx
        finally:
            await monitor.stop()


async def test_the_gateway_down_is_one_agent_blind_page_and_a_metric(tmp_path: Path) -> None:
    """Gateway results come in as probe -1 of no link (daemon.jobs_for)."""
    async with blind_monitor(tmp_path) as (monitor, clock, rx):
        for _ in range(3):
            monitor.observe("kec-krayan--kab", 0, TIMED_OUT, clock.time())
            monitor.observe("agent.gateway", -1, UNREACHABLE, clock.time())
            await clock.advance(10)
        await wait_for(lambda: rx.delivered(), 10, "the page")
        [body] = rx.delivered()
        [alert] = body["alerts"]
        assert (alert["labels"]["alertname"], alert["labels"]["cause"]) == ("AgentBlind", "own_lan")
        assert alert["annotations"]["summary"] == (
            "linkmon kab-nunukan is blind: its LAN gateway ::1 at Disdukcapil Nunukan does "
            "not answer since 08:00 WITA"
        )
        blind = {"agent": "kab-nunukan", "cause": "own_lan"}
        assert monitor.metrics.registry.get_sample_value("linkmon_agent_blind", blind) == 1
        snapshot = monitor.network.snapshot()["kec-krayan--kab"]
        assert (snapshot.state.value, snapshot.cause) == ("unknown", "own_lan")
        await clock.advance(30)
        sent = [a["labels"]["alertname"] for b in rx.delivered() for a in b["alerts"]]
        assert sent == ["AgentBlind"]  # and no LinkDown for the link it cannot see


async def test_a_probe_the_agent_cannot_run_is_its_fault_and_a_metric(tmp_path: Path) -> None:
    async with blind_monitor(tmp_path) as (monitor, clock, rx):
        monitor.observe("agent.gateway", -1, ProbeResult("icmp", "::1", True), clock.time())
        for _ in range(3):
            monitor.observe("kec-krayan--kab", 0, EMFILE, clock.time())
            await clock.advance(10)
        await wait_for(lambda: rx.delivered(), 10, "the page")
        [alert] = rx.delivered()[0]["alerts"]
        assert (alert["labels"]["alertname"], alert["labels"]["resource"]) == ("AgentFault", "fds")
        labels = {"agent": "kab-nunukan", "resource": "fds"}
        value = monitor.metrics.registry.get_sample_value
        assert value("linkmon_agent_fault_probes", labels) == 1
        assert value("linkmon_agent_resource_exhausted_total", labels) == 3
