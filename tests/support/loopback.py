"""A loopback-only `linkmon run` for the hardening tests, and a "link" to cut and restore.

Everything stays on 127.0.0.0/8. The link under test is a TCP listener on a loopback port
(:class:`SwitchableLink`): closed, a TCP probe to it is refused, so the link goes down; opened
again, it comes back. The daemon is a real process, started through an optional ``prefix``
(``setpriv ...``, ``unshare ...``) and watched through its log, so it works for HTTPS and for
starts that must fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.daemon import LINKMON, Samples, free_port, parse_metrics, value
from tests.support.wait import wait_until

__all__ = [
    "LINKMON",
    "free_port",
    "wait_until",
    "SwitchableLink",
    "LinkmonProcess",
    "write_config",
    "link_yaml",
    "tcp_probe",
    "nobody_dir",
    "start_linkmon",
    "running",
    "histogram",
    "AS_NOBODY",
    "readable_by_nobody",
]

ROOT = Path(__file__).resolve().parents[2]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class SwitchableLink:
    """A TCP port on 127.0.0.1 that answers while ``up`` and refuses while ``down``."""

    def __init__(self) -> None:
        self.port = free_port()
        self._sock: socket.socket | None = None
        self.up()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        if self._sock is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(1024)
            self._sock = sock

    def down(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self.down()


_LINKS = {"kab-a--dc": ("kab-a", "pusat-dc", "vpn"), "kec-b--kab": ("kec-b", "kab-a", "m2m")}


def link_yaml(link: str, *probes: str) -> str:
    """One entry of ``links:`` for :func:`write_config`: the uplink kab-a--dc (vpn) or the
    access link kec-b--kab (m2m), probing ``probes`` (each a flow-style YAML mapping)."""
    source, target, network = _LINKS[link]
    listed = "".join(f"      - {probe}\n" for probe in probes)
    return f"""
  - id: {link}
    from: {source}
    to: {target}
    network: {network}
    probes:
{listed}"""


def tcp_probe(target: str) -> str:
    return f'{{kind: tcp, target: "{target}"}}'


@contextlib.contextmanager
def nobody_dir(prefix: str) -> Iterator[Path]:
    """A directory the unprivileged user can read and write (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        shutil.chown(path, "nobody", "nogroup")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_config(
    path: Path,
    *,
    port: int,
    links: str | None = None,
    web_config: Path | None = None,
    enable_reload: bool = False,
    storage: Path | None = None,
    receiver_url: str | None = None,
    interval: str = "200ms",
    timeout: str = "150ms",
    down_after: int = 2,
    up_after: int = 1,
) -> Path:
    """A loopback config; without ``links``, one link probing linkmon's own port by TCP."""
    if links is None:
        links = link_yaml("kab-a--dc", tcp_probe(f"127.0.0.1:{port}"))
    server = f'listen: "127.0.0.1:{port}", enable_reload: {str(enable_reload).lower()}'
    if web_config is not None:
        server += f', web_config: "{web_config}"'
    receivers = (
        ""
        if receiver_url is None
        else f"""
alerting:
  resend_interval: 1h
  receivers:
    - {{name: oncall, kind: webhook, url: "{receiver_url}", timeout: 2s}}
"""
    )
    path.write_text(
        f"""
agent: {{name: hardening, timezone: Asia/Makassar}}
server: {{{server}}}
storage: {{path: "{storage or path.with_suffix(".db")}"}}
defaults: {{interval: {interval}, timeout: {timeout}, icmp: {{count: 2, spacing: 20ms}},
           down_after: {down_after}, up_after: {up_after}}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center}}
  - {{id: kab-a, kind: kabupaten, name: Kabupaten A}}
  - {{id: kec-b, kind: kecamatan, name: Kecamatan B, parent: kab-a}}
links:{links}{receivers}""",
        encoding="utf-8",
    )
    return path


@dataclass
class LinkmonProcess:
    """A started `linkmon run`; ``client`` reaches its web side (TLS and auth as configured)."""

    process: subprocess.Popen[bytes]
    log: Path
    base_url: str
    client_options: dict[str, Any] = field(default_factory=dict)
    log_from: int = 0  # where this run's output starts in a log shared by several runs

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.log_from)
            return log.read().decode("utf-8", errors="replace")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        with httpx.Client(**{"timeout": 10.0, **self.client_options}) as client:
            return client.get(self.base_url + path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        with httpx.Client(**{"timeout": 10.0, **self.client_options}) as client:
            return client.post(self.base_url + path, **kw)

    def metrics(self) -> Samples:
        response = self.get("/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    def value(self, name: str, **labels: str) -> float | None:
        return value(self.metrics(), name, **labels)

    def wait_started(self, timeout: float = 20.0) -> None:
        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"linkmon exited {self.process.returncode}:\n" + self.output())
            return "started as agent" in self.output()

        wait_until(started, timeout, "linkmon to start", every=0.05)

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("linkmon kept running:\n" + self.output()) from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_linkmon(
    config: Path,
    *,
    port: int,
    prefix: Sequence[str] = (),
    extra: Sequence[str] = (),
    scheme: str = "http",
    log: Path | None = None,
    command: Sequence[str] = (LINKMON,),
    env: dict[str, str] | None = None,
    **client_options: Any,
) -> LinkmonProcess:
    """Start `linkmon run -c config` without waiting; the log collects stdout and stderr."""
    log = log or config.with_suffix(".log")
    with log.open("ab") as out:
        log_from = out.tell()
        process = subprocess.Popen(
            [*prefix, *command, "run", "-c", str(config), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    return LinkmonProcess(process, log, f"{scheme}://127.0.0.1:{port}", client_options, log_from)


@contextlib.contextmanager
def running(config: Path, *, port: int, **kw: Any) -> Iterator[LinkmonProcess]:
    """A started linkmon, killed (by PID) when the block ends however it ends."""
    linkmon = start_linkmon(config, port=port, **kw)
    try:
        linkmon.wait_started()
        yield linkmon
    finally:
        linkmon.kill()


def histogram(samples: Samples, name: str) -> dict[float, float]:
    """Cumulative bucket counts of a one-series histogram, by upper bound (+Inf included)."""
    return {
        float(dict(labels)["le"]): v for (n, labels), v in samples.items() if n == f"{name}_bucket"
    }


def wait_for_connection(listener: socket.socket, seconds: float) -> bool:
    """Whether anything connected to ``listener`` within ``seconds``."""
    listener.settimeout(0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.close()
        return True
    return False


def readable_by_nobody(path: str) -> bool:
    return subprocess.run([*AS_NOBODY, "test", "-r", path, "-a", "-x", path]).returncode == 0
