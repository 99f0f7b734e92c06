"""`linkmon lab` as people use it: real processes, and cleanup even after `kill -9`.

Each test builds a tiny lab of its own (DC, a hub, a kecamatan on a plain veth) under its own
prefix, so it can be killed and torn down without touching the session lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkmon.lab import Lab
from linkmon.lab.cli import app
from linkmon.lab.lab import STATE_ROOT
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

TINY = """
name: tiny
link_subnets: 198.19.100.0/24
sites:
  - {id: pusat-dc, kind: pusat, address: 198.18.101.1,
     services: {http: 80, https: 443, tcp: [9000]}}
  - {id: kab-x, kind: kabupaten, address: 198.18.100.1}
  - {id: kec-y, kind: kecamatan, address: 198.18.102.1}
links:
  - {id: kab-x--dc, from: kab-x, to: pusat-dc, network: vpn}
  - {id: kec-y--kab, from: kec-y, to: kab-x, network: m2m, bridge: false}
"""


Leftovers = Callable[[str, set[int]], list[str]]


def lab_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linkmon.lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yml"
    path.write_text(TINY)
    return path


def recorded_pids(prefix: str) -> set[int]:
    state = json.loads((STATE_ROOT / prefix / "state.json").read_text())
    return {p["pid"] for p in state["processes"]}


def test_up_fault_status_exec_down(prefix: str, tiny: Path, leftovers: Leftovers) -> None:
    done = lab_cli("up", "-f", str(tiny), "-p", prefix)
    assert done.returncode == 0, done.stderr
    assert f"lab {prefix!r} is up: 3 sites, 2 links" in done.stdout
    again = lab_cli("up", "-f", str(tiny), "-p", prefix)
    assert again.returncode == 1 and "is already up" in again.stderr

    ping = lab_cli(
        "exec", "-p", prefix, "pusat-dc", "--", "ping", "-c", "2", "-i", "0.1", "198.18.102.1"
    )
    assert ping.returncode == 0 and "2 received" in ping.stdout  # two hops, one a veth

    # The rest in-process: the many cases need no fresh interpreter each.
    def cli(*args: str, code: int = 0) -> str:
        done = CliRunner().invoke(app, [args[0], "-p", prefix, *args[1:]])
        assert done.exit_code == code, (args, done.stdout, done.stderr)
        return done.stdout if code == 0 else done.stderr

    cli("fault", "kab-x--dc", "loss", "10%")
    cli("fault", "kab-x--dc", "delay", "20ms", "--jitter", "5ms", "--direction", "forward")
    assert json.loads(cli("status", "--json"))["links"][0]["faults"] == {
        "loss": {"ratio": 0.1, "direction": "both"},
        "delay": {"forward": {"delay": 0.02, "jitter": 0.005}},
    }
    assert "FAULT: loss 10% both, delay 20ms±5ms forward" in cli("status")
    cli("fault", "kab-x--dc", "restore")
    assert json.loads(cli("status", "--json"))["links"][0]["faults"] == {}

    for args, message in [
        (("kec-y--kab", "delay", "10ms"), "kec-y--kab is a plain veth"),
        (("kab-x--dc", "frobnicate"), "unknown action 'frobnicate'"),
        (("kab-x--dc", "loss"), "loss needs a value"),
        (("kab-x--dc", "loss", "ten"), "loss must be a percentage like 10 or 10%, got 'ten'"),
        (("kab-x--dc", "delay", "20"), "duration '20' has no unit"),
        (("kab-x--dc", "cut", "now"), "cut takes no value"),
        (("kab-x--dc", "cut", "--direction", "up"), "--direction must be one of"),
        (("kab-z--dc", "cut"), "unknown link 'kab-z--dc'; links: kab-x--dc, kec-y--kab"),
    ]:
        assert message in cli("fault", *args, code=1)

    pids = recorded_pids(prefix)
    assert lab_cli("down", "-p", prefix).returncode == 0
    assert leftovers(prefix, pids) == []
    second = lab_cli("down", "-p", prefix)
    assert second.returncode == 0 and "nothing was left" in second.stdout
    gone = lab_cli("status", "-p", prefix)
    assert gone.returncode == 1 and f"no lab with prefix {prefix!r} is up" in gone.stderr


def test_down_after_kill9_of_up_midway(prefix: str, tiny: Path, leftovers: Leftovers) -> None:
    up = subprocess.Popen(
        [sys.executable, "-m", "linkmon.lab.cli", "up", "-f", str(tiny), "-p", prefix],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it once its services and bridges are starting: namespaces, devices, routes and
    # processes all exist, and the state file is incomplete.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and up.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if recorded_pids(prefix):
                break
        time.sleep(0.002)
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert up.returncode == -signal.SIGKILL, "`lab up` finished before it could be killed"
    done = lab_cli("down", "-p", prefix)
    assert done.returncode == 0 and "removed 3 namespaces" in done.stdout
    assert leftovers(prefix, set()) == []


def test_down_after_kill9_of_lab_processes_and_lost_state(
    prefix: str, tiny: Path, leftovers: Leftovers
) -> None:
    """The lab processes left outlive the lost state file (the flapper reads it at every
    change of its link: it once died there, and `lab down` found one process of two)."""
    assert lab_cli("up", "-f", str(tiny), "-p", prefix).returncode == 0
    assert lab_cli("fault", "-p", prefix, "kab-x--dc", "flap", "1s").returncode == 0
    assert lab_cli("fault", "-p", prefix, "pusat-dc", "refuse").returncode == 0
    flapped = Lab.load(prefix).topology.link("kab-x--dc").from_end
    pids = recorded_pids(prefix)
    assert len(pids) == 3  # services, bridge, flapper
    crashed = min(pids)
    os.kill(crashed, signal.SIGKILL)  # a crashed lab process...
    (STATE_ROOT / prefix / "state.json").unlink()  # ...and a lost state file
    wait_until(lambda: not running(crashed), 10, "the killed lab process gone")
    was_up = device_up(f"{prefix}-{flapped.site}", flapped.device)
    wait_until(
        lambda: device_up(f"{prefix}-{flapped.site}", flapped.device) != was_up,
        10,
        "the flapper changing its link once more without the state file",
    )
    done = lab_cli("down", "-p", prefix)
    assert done.returncode == 0 and "removed 3 namespaces, stopped 2 processes" in done.stdout
    assert leftovers(prefix, pids) == []


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def device_up(namespace: str, device: str) -> bool:
    shown = subprocess.run(
        ["ip", "-n", namespace, "-j", "link", "show", "dev", device],
        capture_output=True,
        text=True,
        check=True,
    )
    return "UP" in json.loads(shown.stdout)[0]["flags"]
