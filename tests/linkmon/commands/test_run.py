"""`linkmon run`'s front door: what it says before a daemon starts (the daemon itself is
tests/linkmon/test_daemon.py; that it loads no CLI library, test_daemon_imports.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.daemon import LINKMON


def linkmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKMON, *args], capture_output=True, text=True, timeout=60)


def test_run_is_listed_with_the_other_commands_and_has_its_own_help() -> None:
    listing = linkmon("--help")
    assert listing.returncode == 0 and "run" in listing.stdout and "status" in listing.stdout
    help_text = linkmon("run", "--help")
    assert help_text.returncode == 0
    assert "--config" in help_text.stdout and "--user" in help_text.stdout


def test_a_bad_config_lists_every_error_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("""
defaults: {interval: 5 parsecs}
sites:
  - {id: kab-a, kind: kabupaten, name: A}
links:
  - {id: l1, from: nowhere, to: kab-a, network: vpn, probes: [{kind: icmp, target: 127.0.0.1}]}
""")
    done = linkmon("run", "-c", str(bad))
    assert done.returncode == 2
    assert "defaults.interval" in done.stderr and "links[0].from" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_command_line_values_are_named() -> None:
    missing = linkmon("run")
    assert missing.returncode == 2 and "-c/--config" in missing.stderr
    level = linkmon("run", "-c", "linkmon.yml", "--log-level", "loud")
    assert level.returncode == 2 and "--log-level" in level.stderr and "'loud'" in level.stderr
