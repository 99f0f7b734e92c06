"""``linkmon fleet``: one reading of Prometheus for every request, the page, the API, health.

The cache is driven by a fake clock against a real Prometheus (requests counted on the wire);
the server runs as a real ``linkmon fleet`` process, and ``linkmon status --url`` reads it as it
reads an agent: the fleet's document is the agent's shape.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from linkmon.api.openapi import shape_problems
from linkmon.fleet import Fleet
from linkmon.fleet.prometheus import Prometheus, PrometheusUnavailable
from linkmon.fleet.queries import questions
from linkmon.fleet.server import FleetView
from tests.linkmon.fleet.conftest import StandInFleet, fleet_server
from tests.linkmon.test_daemon_imports import CLI_LIBRARIES, imported, reachable
from tests.support.clock import FakeClock
from tests.support.daemon import LINKMON, free_port
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[3]
ONE_REFRESH = len(questions(Fleet("").settings.scope)) + 1  # the instant queries + known agents


class Counting(httpx.AsyncHTTPTransport):
    """The real transport, counting what goes on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


def test_one_refresh_serves_every_request_until_it_is_old(stand_in_fleet: StandInFleet) -> None:
    async def scenario() -> None:
        clock = FakeClock(time.time())
        wire = Counting()
        fleet = Fleet(stand_in_fleet.prometheus.url)
        async with Prometheus(fleet.prometheus, transport=wire) as prometheus:
            view = FleetView(fleet, prometheus, clock, max_age=5.0)
            bodies = await asyncio.gather(*(view.body() for _ in range(50)))
            assert (view.refreshes, wire.requests) == (1, ONE_REFRESH)
            assert len(set(bodies)) == 1 and shape_problems(json.loads(bodies[0])) == []
            await clock.advance(4.9)
            await view.body()
            assert view.refreshes == 1
            await clock.advance(0.1)
            await asyncio.gather(*(view.body() for _ in range(10)))
            assert (view.refreshes, wire.requests) == (2, 2 * ONE_REFRESH)

    asyncio.run(scenario())


def test_prometheus_down_is_an_error_kept_like_a_document() -> None:
    """Every request during an outage of Prometheus must not wait for its own time-out."""

    async def scenario() -> None:
        clock = FakeClock(time.time())
        wire = Counting()
        fleet = Fleet(f"http://127.0.0.1:{free_port()}")
        async with Prometheus(fleet.prometheus, transport=wire) as prometheus:
            view = FleetView(fleet, prometheus, clock, max_age=5.0)
            for _ in range(3):
                with pytest.raises(PrometheusUnavailable, match="ConnectError"):
                    await view.body()
            assert view.refreshes == 1
            await clock.advance(5.0)
            with pytest.raises(PrometheusUnavailable):
                await view.body()
            assert view.refreshes == 2

    asyncio.run(scenario())


def test_the_server_answers_what_an_agent_answers(stand_in_fleet: StandInFleet) -> None:
    with fleet_server(stand_in_fleet.prometheus.url, "--refresh", "1") as server:
        url = server.url
        doc = httpx.get(url + "/api/v1/status", timeout=10).json()
        assert shape_problems(doc) == []
        assert {a["name"] for a in doc["agents"]} == {"kab-nunukan", "pusat-noc"}
        page = httpx.get(url + "/", timeout=5)
        assert (
            page.status_code == 200
            and "/api/v1/status" in httpx.get(url + "/static/app.js", timeout=5).text
        )
        # the agents' own command reads the fleet server as it reads an agent
        read = subprocess.run(
            [LINKMON, "status", "--url", url, "--lang", "en"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert read.returncode == 1, read.stdout + read.stderr  # Sebatik loses 40 %: degraded
        assert "linkmon fleet" in read.stdout and "Agents: 2" in read.stdout
        stand_in_fleet.nunukan.cut("kec-lumbis--kab-nunukan")

        def cut_served() -> bool:
            doc = httpx.get(url + "/api/v1/status", timeout=10).json()
            return bool(doc["summary"]["state"] == "down")

        wait_until(cut_served, 20, "the cut in the fleet's document")


def test_prometheus_down_is_503_with_the_reason() -> None:
    prometheus = f"http://127.0.0.1:{free_port()}"
    with fleet_server(prometheus) as server:
        url = server.url
        answer = httpx.get(url + "/api/v1/status", timeout=30)
        assert answer.status_code == 503
        assert answer.text.startswith(f"cannot read the fleet from Prometheus at {prometheus}")
        assert httpx.get(url + "/healthz", timeout=5).text == "OK\n"


def test_bad_options_are_named() -> None:
    done = subprocess.run(
        [LINKMON, "fleet", "--prometheus", "http://127.0.0.1:9090", "--listen", "9850"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "linkmon fleet: --listen '9850': expected HOST:PORT, e.g. 127.0.0.1:9850\n"
    )


def test_linkmon_fleet_reaches_its_server_without_the_cli_app() -> None:
    """Read from the code: every import statement reachable from the command's module."""
    modules = reachable("linkmon.commands.fleet")
    assert {"linkmon.fleet.server", "linkmon.fleet.model", "uvicorn", "httpx"} <= modules
    assert sorted(m for m in modules if m.startswith("linkmon.commands")) == [
        "linkmon.commands",
        "linkmon.commands.fleet",
    ]
    assert sorted(m for m in modules if m.split(".")[0] in CLI_LIBRARIES) == []


def test_a_running_fleet_server_never_loads_typer_or_rich(stand_in_fleet: StandInFleet) -> None:
    """The process's own record (PYTHONPROFILEIMPORTTIME, as for the daemon in
    tests/linkmon/test_daemon_imports.py): start, refreshes, the page, shutdown."""
    with fleet_server(
        stand_in_fleet.prometheus.url, env={"PYTHONPROFILEIMPORTTIME": "1"}
    ) as server:
        for path in ("/api/v1/status", "/", "/static/app.js", "/healthz"):
            assert httpx.get(server.url + path, timeout=30).status_code == 200, path
        output = server.stop()
    modules = imported(output)
    assert {"linkmon.fleet.server", "uvicorn", "httpx"} <= modules  # the record is complete
    assert sorted(m for m in modules if m.split(".")[0] in CLI_LIBRARIES) == []
