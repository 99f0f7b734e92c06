"""deploy/linkmon.service: systemd accepts it, and it leaves linkmon one privilege, CAP_NET_RAW."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.loopback import LINKMON

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "linkmon.service"


def settings() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_least_privilege_essentials() -> None:
    service = settings()["Service"]

    def one(key: str) -> str:
        assert key in service, f"[Service] has no {key}="
        return service[key][-1]

    assert one("DynamicUser") == "yes" or one("User") not in ("", "root", "0")
    assert one("AmbientCapabilities") == "CAP_NET_RAW"
    assert one("CapabilityBoundingSet") == "CAP_NET_RAW"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "StateDirectory": "linkmon",
        "ConfigurationDirectory": "linkmon",
        "Restart": "on-failure",
    }.items():
        assert one(key) == value, key
    assert re.fullmatch(r"\S*/bin/kill -HUP \$MAINPID", one("ExecReload"))
    assert "PrivateUsers" not in service, "CAP_NET_RAW in a user namespace misses the host"
    assert re.fullmatch(r"/\S+/linkmon run -c /etc/linkmon/linkmon\.yml", one("ExecStart"))
    assert settings()["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's linkmon (systemd checks it exists),
    quoted: the checkout's path may contain a space."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = re.sub(r"ExecStart=\S+/linkmon ", f'ExecStart="{LINKMON}" ', UNIT.read_text())
    unit = tmp_path / "linkmon.service"
    unit.write_text(text)
    return unit


def test_systemd_analyze_verify_accepts_it(installed_unit: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "linkmon.service" not in done.stderr, done.stderr  # no warning about our unit


def test_systemd_rates_its_exposure_low(installed_unit: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for linkmon\.service: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout
