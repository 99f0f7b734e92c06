"""The demo (`linkmon lab demo`): the Nunukan lab, linkmon watching it, and outages to watch.

It builds the lab, runs ``linkmon run`` inside the kabupaten hub's namespace with
config/lab-nunukan.yml, makes it reachable from the host (a port forward into the namespace:
nothing is added to the host's network), starts an alert receiver that prints every alert, and
plays a scenario with narration: a kecamatan cut, a lossy M2M link, the data center dark while
the DRC stays up, recovery. linkmon's view (``linkmon_link_state`` from /metrics) is printed as
it changes, beside an independent check with iputils ping. Ctrl-C (or SIGTERM) stops linkmon
and takes the lab down. Without a working ``linkmon run`` the scenario still plays, with a
warning, so the lab itself can be shown.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import yaml
from prometheus_client.parser import text_string_to_metric_families

import linkmon
from linkmon.lab.lab import SHIPPED_LAB, Lab
from linkmon.lab.topology import LabError

HUB = "kab-nunukan"
DAEMON_PORT = 9840
"""Where config/lab-nunukan.yml has linkmon listen, on the hub namespace's loopback."""
RECEIVER_PORT = 9999
LAB_CONFIG = Path(linkmon.__file__).resolve().parent.parent / "config" / "lab-nunukan.yml"
SETTLE_TIMEOUT = 20.0
"""Longest wait for linkmon to show what a step did (detection takes ~4 s at 1 s × 3)."""
HOLD = 3.0
"""Pause after each step so the change can be looked at."""


@dataclass(frozen=True)
class Step:
    narration: str
    act: Callable[[Lab], None]
    expect: dict[str, str]
    """Link states linkmon should reach: the step is over when /metrics shows them."""
    check: str
    """An address to ping from the hub, as an independent view of what the lab did."""


SCENARIO = (
    Step(
        "Kecamatan Krayan: the VPN line to the kabupaten is cut (a fibre cut on the way to the "
        "interior). Krayan keeps its Starlink backup.",
        lambda lab: lab.cut("kec-krayan--kab"),
        {"kec-krayan--kab": "down"},
        "198.18.30.8",
    ),
    Step(
        "Krayan's line is repaired.",
        lambda lab: lab.restore("kec-krayan--kab"),
        {"kec-krayan--kab": "up"},
        "198.18.30.8",
    ),
    Step(
        "Kecamatan Lumbis: its M2M link turns lossy, 40 % of round trips lost.",
        lambda lab: lab.loss("kec-lumbis--kab", 0.40),
        {"kec-lumbis--kab": "degraded"},
        "198.18.10.13",
    ),
    Step(
        "Lumbis: the loss clears.",
        lambda lab: lab.restore("kec-lumbis--kab"),
        {"kec-lumbis--kab": "up"},
        "198.18.10.13",
    ),
    Step(
        "The data center in Jakarta goes dark: traffic to it vanishes, the line stays up. The "
        "DRC in Batam stays up, so offices still serve, degraded, through the DRC.",
        lambda lab: lab.blackhole("kab-nunukan--dc"),
        {"kab-nunukan--dc": "down", "kab-nunukan--drc": "up"},
        "198.18.1.1",
    ),
    Step(
        "The data center is back: everything recovers.",
        lambda lab: lab.restore_all(),
        {"kab-nunukan--dc": "up"},
        "198.18.1.1",
    ),
)


@dataclass
class Watcher:
    """Polls linkmon's /metrics and prints every change of link state or service."""

    url: str
    say: Callable[[str], None]
    states: dict[str, str] = field(default_factory=dict)
    services: dict[str, float] = field(default_factory=dict)
    reachable: bool = False
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as reply:
                    text = reply.read().decode()
            except OSError:
                continue
            self.reachable = True
            self.update(text)

    def update(self, text: str) -> None:
        states: dict[str, str] = {}
        services: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "linkmon_link_state" and sample.value == 1:
                    states[sample.labels["link"]] = sample.labels["state"]
                elif sample.name == "linkmon_service_available":
                    services[sample.labels["site"]] = sample.value
        for link, state in states.items():
            if self.states.get(link, state) != state:
                self.say(f"  linkmon: link {link}: {self.states[link]} -> {state}")
        for site, value in services.items():
            if self.services.get(site, value) != value:
                self.say(
                    f"  linkmon: office {site} can serve online: "
                    f"{_service(self.services[site])} -> {_service(value)}"
                )
        self.states, self.services = states, services

    def wait_for(self, expect: dict[str, str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.states.get(link) == state for link, state in expect.items()):
                return True
            time.sleep(0.1)
        return False


def _service(value: float) -> str:
    return {1.0: "yes", 0.5: "degraded (DRC or backup path only)", 0.0: "no"}.get(value, str(value))


class Demo:
    def __init__(self, prefix: str, port: int, config: Path) -> None:
        self.prefix = prefix
        self.port = port
        self.config = config
        self.started = time.monotonic()
        self.lab: Lab | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.children: list[subprocess.Popen[bytes]] = []

    def say(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", flush=True)

    def run(self, once: bool) -> None:
        self.say("building the lab: Kabupaten Nunukan, its DC and DRC uplinks, 5 kecamatan")
        self.lab = lab = Lab.up(SHIPPED_LAB, prefix=self.prefix)
        self.say(
            f"lab {self.prefix!r} is up ({len(lab.topology.sites)} namespaces, "
            f"{len(lab.topology.links)} links)"
        )
        self.start_receiver(lab)
        watcher = Watcher(f"http://127.0.0.1:{self.port}/metrics", self.say)
        if self.start_daemon(lab):
            threading.Thread(target=watcher.run, daemon=True).start()
        self.show_where_to_look()
        if self.daemon is not None:
            links = {k.id: "up" for k in lab.topology.links}
            if not watcher.wait_for(links, SETTLE_TIMEOUT):
                self.say("  (not every link is up yet on linkmon; going on)")
            else:
                self.say("linkmon sees every link up")
        for step in SCENARIO:
            self.say(step.narration)
            step.act(lab)
            self.lab_check(lab, step.check)
            if self.daemon is not None and watcher.reachable:
                if not watcher.wait_for(step.expect, SETTLE_TIMEOUT):
                    self.say(f"  (linkmon has not shown {step.expect} within {SETTLE_TIMEOUT:g} s)")
                time.sleep(HOLD)
            else:
                time.sleep(HOLD * 2)
        watcher.stop.set()
        if once:
            self.say("scenario over")
            return
        self.say(
            "scenario over; linkmon keeps watching. Break things yourself, e.g. "
            f"`linkmon lab fault{self._opt} kec-sebuku--kab cut`, then `... restore`. "
            "Ctrl-C stops linkmon and takes the lab down."
        )
        threading.Event().wait()

    @property
    def _opt(self) -> str:
        return "" if self.prefix == "lm" else f" -p {self.prefix}"

    def start_receiver(self, lab: Lab) -> None:
        receiver = lab.popen(
            HUB,
            [sys.executable, "-m", "linkmon.lab.receiver", "--port", str(RECEIVER_PORT)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.children.append(receiver)
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != b"ready":
            raise LabError("the demo's alert receiver did not start")
        threading.Thread(target=self._relay_alerts, args=(receiver.stdout,), daemon=True).start()

    def _relay_alerts(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.say(f"  alert received: {line.decode(errors='replace').strip()}")

    def start_daemon(self, lab: Lab) -> bool:
        """Start linkmon in the hub and forward the host port to it; False (warned) if it fails."""
        config = yaml.safe_load(self.config.read_text())
        config["storage"] = {"path": str(lab.state_dir / "linkmon.db")}
        config["server"] = dict(config.get("server", {}), listen=f"127.0.0.1:{DAEMON_PORT}")
        config_file = lab.state_dir / "linkmon.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        lab.forward(HUB, DAEMON_PORT, self.port)
        log = lab.state_dir / "linkmon.log"
        linkmon_cmd = shutil.which("linkmon", path=str(Path(sys.executable).parent))
        if linkmon_cmd is None:
            self.say(
                "WARNING: the `linkmon` command is not installed next to this Python; "
                "the scenario plays without linkmon"
            )
            return False
        with open(log, "ab") as log_file:
            self.daemon = lab.popen(
                HUB,
                [linkmon_cmd, "run", "-c", str(config_file)],
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.daemon.poll() is None:
            health = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1):
                self.say(
                    f"linkmon runs in the hub's namespace ({lab.netns(HUB)}), "
                    f"config {config_file}, log {log}"
                )
                return True
            time.sleep(0.2)
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        self.say(
            "WARNING: linkmon did not start; the scenario plays without it. "
            "Its log ends:\n    " + "\n    ".join(tail)
        )
        self.stop_daemon()
        return False

    def show_where_to_look(self) -> None:
        url = f"http://127.0.0.1:{self.port}"
        self.say(f"""where to look (in another terminal):
    {url}/                          status page
    {url}/metrics                   Prometheus metrics
    .venv/bin/linkmon status --url {url}
    .venv/bin/linkmon lab status{self._opt}      the lab: links, faults, bridges""")

    def lab_check(self, lab: Lab, address: str) -> None:
        seen = lab.ping(HUB, address, count=3, interval=0.1, wait=0.5)
        self.say(
            f"  lab check (iputils ping from the hub): {address} answered "
            f"{seen.received}/3" + (f", {seen.errors[0]}" if seen.errors else "")
        )

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        self.daemon = None

    def close(self) -> None:
        self.stop_daemon()
        for child in self.children:
            child.terminate()
        if self.lab is not None:
            Lab.teardown(self.prefix)
            self.say(f"lab {self.prefix!r} is down")


def run_demo(prefix: str, port: int, config: Path = LAB_CONFIG, once: bool = False) -> None:
    """Play the demo; Ctrl-C or SIGTERM ends it, and everything is torn down either way."""
    demo = Demo(prefix, port, config)
    with _sigterm_as_interrupt():
        try:
            demo.run(once)
        except KeyboardInterrupt:
            demo.say("stopping")
        finally:
            with _sigterm_as_interrupt(ignore=True):
                demo.close()


@contextlib.contextmanager
def _sigterm_as_interrupt(ignore: bool = False) -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C; while tearing down, both wait for the teardown."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    handler = signal.SIG_IGN if ignore else interrupt
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
