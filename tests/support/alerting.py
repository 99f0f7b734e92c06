"""Helpers for alerting tests: a small network to make real alerts with, waiting, and a real
Alertmanager (Debian ``prometheus-alertmanager``) to deliver to."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from linkmon.alerts.outbox import Outbox
from linkmon.state import Changes, LinkRule, Network, ProbeRule, Rules, SiteRule
from probes.base import Failure, ProbeResult
from tests.support.child import stop_process
from tests.support.wait import wait_until

GOOD = ProbeResult(
    "icmp",
    "198.18.10.2",
    success=True,
    duration=0.01,
    packets_sent=5,
    packets_received=5,
    rtts=(0.01,) * 5,
)
SILENT = ProbeResult(
    "icmp",
    "198.18.10.2",
    success=False,
    failure=Failure.TIMEOUT,
    packets_sent=5,
    packets_received=0,
)


def network(links: int = 1, name: str = "Kecamatan") -> Network:
    sites = {
        s.id: s
        for s in [
            SiteRule(
                "kab-nunukan", "kabupaten", "Kabupaten Nunukan", "Asia/Makassar", "kab-nunukan"
            )
        ]
    }
    rules = {}
    for n in range(links):
        sites[f"kec-{n}"] = SiteRule(
            f"kec-{n}", "kecamatan", f"{name} {n}", "Asia/Makassar", "kab-nunukan"
        )
        rules[f"kec-{n}--kab"] = LinkRule(
            f"kec-{n}--kab", f"kec-{n}", "kab-nunukan", "m2m", (ProbeRule("icmp", "198.18.10.2"),)
        )
    return Network(
        Rules(agent="kab-nunukan", sites=sites, links=rules, rollup_min_links=99), time.time()
    )


def rounds(net: Network, link: str, result: ProbeResult, count: int) -> Changes:
    """``count`` rounds of one result; the changes of all of them together."""
    merged = Changes()
    for _ in range(count):
        step = net.observe(link, 0, result, time.time())
        merged = Changes(
            merged.transitions + step.transitions,
            merged.alerts + step.alerts,
            merged.links + step.links,
        )
    return merged


@asynccontextmanager
async def delivering(outbox: Outbox) -> AsyncIterator[Outbox]:
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.05)


def statuses(bodies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["status"], b["alerts"][0]["fingerprint"]) for b in bodies]


# -- a real Alertmanager ----------------------------------------------------------------------

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
_AM_CONFIG = 'route: {receiver: "null"}\nreceivers: [{name: "null"}]\n'


def alertmanager_argv(workdir: Path, port: int, config_text: str = _AM_CONFIG) -> list[str]:
    """A standalone Alertmanager (no cluster port) on 127.0.0.1:``port``, its config (by
    default routing to nowhere) and data in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(config_text)
    return [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


class Alertmanager:
    """One standalone Alertmanager on loopback, stopped by PID; ``url`` is where it listens."""

    proc: subprocess.Popen[bytes]
    api: str  # where the test reaches its API

    def __init__(self, workdir: Path, port: int, config_text: str = _AM_CONFIG) -> None:
        self.port = port
        self.url = self.api = f"http://127.0.0.1:{port}"
        argv = alertmanager_argv(workdir, port, config_text)
        with (workdir / "alertmanager.log").open("w") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        self.wait_ready(15, "alertmanager")

    def wait_ready(self, timeout: float, what: str, every: float = 0.05) -> None:
        """Wait for ``/-/ready``; stopped (and AssertionError) if it exits or never gets there."""
        try:
            wait_until(self._ready, timeout, what, every=every)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited {self.proc.returncode}")
        try:
            return httpx.get(f"{self.api}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds now (resolved ones drop out)."""
        response = httpx.get(f"{self.api}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def stop(self) -> None:
        stop_process(self.proc)
