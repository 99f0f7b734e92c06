"""Run a real `linkmon run` process for end-to-end tests, and read its /metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.wait import wait_until

if TYPE_CHECKING:
    from linkmon.lab import Lab

LINKMON = str(Path(sys.executable).with_name("linkmon"))
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels`` (None if there is none)."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
    return found[0] if found else None


@dataclass
class Linkmon:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def metrics(self) -> Samples:
        return parse_metrics(httpx.get(self.url + "/metrics", timeout=5).text)

    def value(self, name: str, **labels: str) -> float | None:
        return value(self.metrics(), name, **labels)

    def wait_value(self, name: str, expected: float, timeout: float, **labels: str) -> float:
        """Seconds it took until the sample showed ``expected``."""
        start = time.monotonic()
        wait_until(
            lambda: self.value(name, **labels) == expected,
            timeout,
            f"{name}{labels} == {expected}",
            every=0.05,
        )
        return time.monotonic() - start

    def status(self) -> dict[str, Any]:
        return httpx.get(self.url + "/api/v1/status", timeout=5).json()  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> float:
        """Send ``sig``; return how long the process took to exit."""
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"linkmon did not stop within {timeout} s of {sig!r}"
                ) from None
        return time.monotonic() - start

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_linkmon(
    config: Path,
    url: str,
    *,
    prefix: Sequence[str] = (),
    extra: Sequence[str] = (),
    ready_timeout: float = 20.0,
    env: dict[str, str] | None = None,
) -> Iterator[Linkmon]:
    """`linkmon run -c config` (behind ``prefix``, e.g. `ip netns exec NS`), up at ``url``."""
    log = config.with_suffix(".log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [*prefix, LINKMON, "run", "-c", str(config), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
    daemon = Linkmon(process, url, log)
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"linkmon exited {process.returncode}:\n{daemon.output()}")
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, ready_timeout, f"linkmon at {url}", every=0.1)
        yield daemon
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextlib.contextmanager
def linkmon_in_lab(lab: Lab, site: str, config: Path) -> Iterator[Linkmon]:
    """`linkmon run` inside a lab site's namespace, reachable from the host via a forward."""
    import yaml

    listen = yaml.safe_load(config.read_text())["server"]["listen"]
    port = int(listen.rsplit(":", 1)[1])
    host_port = free_port()
    lab.forward(site, port, host_port)
    with running_linkmon(
        config, f"http://127.0.0.1:{host_port}", prefix=["ip", "netns", "exec", lab.netns(site)]
    ) as daemon:
        yield daemon


def lab_config(source: Path, tmp_path: Path, **changes: object) -> Path:
    """A copy of a lab config with its storage in ``tmp_path`` and top-level keys changed."""
    import yaml

    config = yaml.safe_load(source.read_text())
    config["storage"] = {"path": str(tmp_path / "linkmon.db")}
    for key, change in changes.items():
        if isinstance(change, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **change}
        else:
            config[key] = change
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
