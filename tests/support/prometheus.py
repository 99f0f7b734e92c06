"""A real Prometheus (Debian's /usr/bin/prometheus) scraping linkmon agents, for end-to-end tests.

Dashboards and rules are proven by what Prometheus answers, not by reading them: this starts one
with a throw-away TSDB and a scrape config shaped like ``prometheus/prometheus.example.yml``
(job ``linkmon``, ``honor_labels``, one ``agent`` label per target), waits until it is ready and
stops it afterwards, whatever happened in between.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.support.daemon import free_port
from tests.support.wait import wait_until

PROMETHEUS = Path("/usr/bin/prometheus")
JOB = "linkmon"
T = TypeVar("T")


@dataclass(frozen=True)
class ScrapeTarget:
    """One linkmon agent's /metrics address and the target labels Prometheus adds."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


class PrometheusError(Exception):
    """Prometheus refused a query (bad PromQL, too many samples, ...); the message is its own."""


def scrape_config(
    targets: Sequence[ScrapeTarget], rule_files: Sequence[Path], interval: float
) -> dict[str, Any]:
    every = f"{round(interval * 1000)}ms"  # Prometheus durations take no fractions
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "honor_labels": True,
                "scrape_timeout": every,
                "static_configs": [
                    {"targets": [t.address], "labels": dict(t.labels)} for t in targets
                ],
            }
        ],
    }


class PrometheusServer:
    """The HTTP API of a running Prometheus, with errors raised instead of returned."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        response = self._client.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        result: list[dict[str, Any]] = self._get("/api/v1/query", params)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": start, "end": end, "step": step}
        result: list[dict[str, Any]] = self._get("/api/v1/query_range", params)["result"]
        return result

    def label_values(self, label: str, match: str | None, start: float, end: float) -> list[str]:
        """What Grafana's ``label_values(match, label)`` variable query asks Prometheus."""
        params: dict[str, Any] = {"start": start, "end": end}
        if match is not None:
            params["match[]"] = match
        values: list[str] = self._get(f"/api/v1/label/{label}/values", params)
        return values

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules", {})["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts", {})["alerts"]
        return alerts

    def wait_for(self, expr: str, timeout: float, what: str) -> list[dict[str, Any]]:
        """Poll an instant query until it returns something; fail naming ``what`` otherwise."""
        return wait_until(lambda: self.query(expr), timeout, what)


@contextmanager
def running_prometheus(
    workdir: Path,
    targets: Sequence[ScrapeTarget],
    rule_files: Sequence[Path] = (),
    interval: float = 1.0,
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` every ``interval`` seconds; stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, rule_files, interval)))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process, log_path)
        yield server
    finally:
        server.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: PrometheusServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {process.returncode}:\n{log.read_text()}"
                )
            try:
                if client.get(f"{server.url}/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"prometheus not ready after 30 s:\n{log.read_text()}")
