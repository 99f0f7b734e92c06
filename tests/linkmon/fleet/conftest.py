"""A real Prometheus (Debian's) scraping STAND-IN agents, for the fleet view's queries.

The agents are ``tests/support/fake_linkmon.py``'s exporters, not linkmon: they serve the
contract's series with the labels a real agent sets, so the fleet's PromQL and its merge rules
meet a real Prometheus 2.42 in seconds. What real agents do in a real network is proven by
``tests/e2e/test_fleet.py`` on the lab.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import LINKMON, free_port
from tests.support.fake_linkmon import FakeAgent, nunukan_and_pusat
from tests.support.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.support.wait import wait_until

SCRAPE = 1.0


@dataclass
class StandInFleet:
    prometheus: PrometheusServer
    nunukan: FakeAgent
    pusat: FakeAgent

    def wait_scraped(self) -> None:
        """Until Prometheus holds both agents' sites (the first scrape of each)."""
        self.prometheus.wait_for(
            "count(count by (agent) (linkmon_site_info)) == 2", 20, "both agents scraped"
        )


@pytest.fixture
def stand_in_fleet(tmp_path: Path) -> Iterator[StandInFleet]:
    if not Path("/usr/bin/prometheus").exists():
        pytest.skip("Debian's prometheus is not installed (scripts/bootstrap.sh installs it)")
    nunukan, pusat = nunukan_and_pusat()
    try:
        targets = [ScrapeTarget(agent.start(), {"agent": agent.name}) for agent in (nunukan, pusat)]
        with running_prometheus(tmp_path / "prometheus", targets, interval=SCRAPE) as prometheus:
            fleet = StandInFleet(prometheus, nunukan, pusat)
            fleet.wait_scraped()
            yield fleet
    finally:
        nunukan.stop()
        pusat.stop()


@dataclass
class FleetServer:
    """A running `linkmon fleet`: its URL, and how to stop it for its output."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        """SIGTERM, wait, and everything the process wrote."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text(errors="replace")


@contextmanager
def fleet_server(
    prometheus: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[FleetServer]:
    """A real `linkmon fleet` process reading ``prometheus``, up and healthy."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="linkmon-fleet-") as tmp:
        log = Path(tmp) / "fleet.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [LINKMON, "fleet", "--prometheus", prometheus,
                 "--listen", f"127.0.0.1:{port}", *options],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        server = FleetServer(f"http://127.0.0.1:{port}", process, log)
        try:

            def healthy() -> bool:
                if process.poll() is not None:
                    raise AssertionError(
                        f"linkmon fleet exited {process.returncode}:\n{server.stop()}"
                    )
                try:
                    return httpx.get(server.url + "/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(healthy, 20, "linkmon fleet /healthz")
            yield server
        finally:
            server.stop()
