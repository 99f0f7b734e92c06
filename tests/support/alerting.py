"""Helpers for alerting tests: a small agent to make real alerts with, the step the monitor
takes with them, and a real Alertmanager (Debian ``prometheus-alertmanager``) to deliver to."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from linkmon.alerts.compose import Composer
from linkmon.alerts.model import Alert
from linkmon.alerts.outbox import Outbox
from linkmon.config import Config
from linkmon.state import Changes, LinkRule, LinkSnapshot, Network, ProbeRule, Rules, SiteRule
from linkmon.storage import Storage
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


@dataclass(frozen=True)
class Step:
    """One or more steps of the state machine: its facts, and its alerts in words."""

    changes: Changes
    alerts: tuple[Alert, ...]


class Agent:
    """The state machine and its composer, as the monitor holds them (restarted from
    ``storage`` when given): real alerts, made the way the daemon makes them."""

    def __init__(
        self,
        rules: Rules,
        storage: Storage | None = None,
        *,
        language: str = "id",
        timezone: str = "Asia/Makassar",
    ) -> None:
        restored: Mapping[str, LinkSnapshot] = storage.load_links() if storage else {}
        firing = storage.load_firing() if storage else []
        self.composer = Composer(rules, language=language, timezone=timezone, firing=firing)
        self.net = Network(rules, time.time(), restored=restored, firing=self.composer.began())

    @classmethod
    def from_config(cls, config: Config, storage: Storage | None = None) -> Agent:
        agent = config.agent
        return cls(
            Rules.from_config(config), storage, language=agent.language, timezone=agent.timezone
        )

    def step(self, changes: Changes) -> Step:
        return Step(changes, self.composer.compose(changes.alerts))

    def tick(self) -> Step:
        return self.step(self.net.tick(time.time()))

    def firing(self) -> list[Alert]:
        return self.composer.firing()


def commit(outbox: Outbox, storage: Storage | None, step: Step) -> None:
    """What the monitor does with a step: one storage write (with the outbox entries), then
    delivery."""
    now = time.time()
    outbox.commit(
        step.alerts,
        lambda routes: (
            storage.record(step.changes, now, alerts=step.alerts, routes=routes) if storage else []
        ),
    )


def network(links: int = 1, name: str = "Kecamatan") -> Agent:
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
    return Agent(Rules(agent="kab-nunukan", sites=sites, links=rules, rollup_min_links=99))


def rounds(agent: Agent, link: str, result: ProbeResult, count: int) -> Step:
    """``count`` rounds of one result; the changes of all of them together."""
    merged = Changes()
    for _ in range(count):
        step = agent.net.observe(link, 0, result, time.time())
        merged = Changes(
            merged.transitions + step.transitions,
            merged.alerts + step.alerts,
            merged.links + step.links,
        )
    return agent.step(merged)


@asynccontextmanager
async def delivering(outbox: Outbox) -> AsyncIterator[Outbox]:
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


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
