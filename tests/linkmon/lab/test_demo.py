"""The demo: what it reports from linkmon's metrics, and that Ctrl-C always takes it all down."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from linkmon.lab.demo import Watcher
from tests.support.daemon import free_port

Leftovers = Callable[[str, set[int]], list[str]]

METRICS = """\
# TYPE linkmon_link_state gauge
linkmon_link_state{{link="kec-krayan--kab",state="up"}} {krayan_up}
linkmon_link_state{{link="kec-krayan--kab",state="down"}} {krayan_down}
linkmon_link_state{{link="kab-nunukan--dc",state="up"}} 1
linkmon_link_state{{link="kab-nunukan--dc",state="down"}} 0
# TYPE linkmon_service_available gauge
linkmon_service_available{{site="kec-krayan",kabupaten="kab-nunukan"}} {service}
"""


def test_watcher_reports_changes_of_link_state_and_service() -> None:
    said: list[str] = []
    watcher = Watcher("http://unused", said.append)
    watcher.update(METRICS.format(krayan_up=1, krayan_down=0, service=1))
    assert said == [] and watcher.states["kec-krayan--kab"] == "up"
    watcher.update(METRICS.format(krayan_up=0, krayan_down=1, service=0.5))
    assert said == [
        "  linkmon: link kec-krayan--kab: up -> down",
        "  linkmon: office kec-krayan can serve online: yes -> degraded (DRC or backup path only)",
    ]
    assert watcher.wait_for({"kec-krayan--kab": "down", "kab-nunukan--dc": "up"}, timeout=0.1)
    assert not watcher.wait_for({"kec-krayan--kab": "up"}, timeout=0.1)


def daemon_importable() -> bool:
    try:
        importlib.import_module("linkmon.daemon")
    except ImportError:
        return False
    return True


def start_demo(prefix: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkmon.lab.cli",
            "demo",
            "-p",
            prefix,
            "--port",
            str(free_port()),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(demo: subprocess.Popen[str], text: str, timeout: float) -> list[str]:
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen; output:\n" + "\n".join(lines))


@pytest.mark.lab
@pytest.mark.root
def test_ctrl_c_mid_scenario_takes_everything_down(prefix: str, leftovers: Leftovers) -> None:
    demo = start_demo(prefix)
    try:
        lines = read_until(demo, "Kecamatan Krayan: the VPN line", timeout=60)
        lines += read_until(demo, "lab check", timeout=10)
        assert "answered 0/3" in lines[-1]  # the cut is real
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=20)
    finally:
        demo.kill()
    assert demo.returncode == 0
    assert out.rstrip().endswith(f"lab {prefix!r} is down")
    assert leftovers(prefix, set()) == []


@pytest.mark.lab
@pytest.mark.root
@pytest.mark.skipif(not daemon_importable(), reason="`linkmon run` cannot start yet")
def test_scenario_shows_linkmon_detecting_each_fault(prefix: str, leftovers: Leftovers) -> None:
    demo = start_demo(prefix, "--once")
    try:
        out, _ = demo.communicate(timeout=150)
    finally:
        demo.kill()
    assert demo.returncode == 0, out
    assert "WARNING" not in out
    for change in (
        "link kec-krayan--kab: up -> down",
        "link kec-krayan--kab: down -> up",
        "link kec-lumbis--kab: up -> degraded",
        "link kab-nunukan--dc: up -> down",
        "link kab-nunukan--dc: down -> up",
    ):
        assert f"linkmon: {change}" in out, out
    assert "scenario over" in out and out.rstrip().endswith(f"lab {prefix!r} is down")
    assert leftovers(prefix, set()) == []
