"""The agent-mode example for an office behind NAT: promtool accepts it and it feeds the
centre what a direct scrape would (job ``linkmon``, the ``agent`` label, linkmon's own labels).
That it works is shown on the lab: ``tests/e2e/test_fleet_nat.py`` runs it as shipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
AGENT_EXAMPLE = ROOT / "prometheus" / "agent-remote-write.example.yml"


def test_promtool_accepts_the_agent_example() -> None:
    done = subprocess.run(
        ["promtool", "check", "config", str(AGENT_EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_agent_example_sends_what_a_direct_scrape_would() -> None:
    config = yaml.safe_load(AGENT_EXAMPLE.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "linkmon" and job["honor_labels"] is True
    (group,) = job["static_configs"]
    assert group["labels"]["agent"] and group["targets"] == ["127.0.0.1:9840"]
    (remote,) = config["remote_write"]
    assert remote["url"].endswith("/api/v1/write")
    # an agent keeps no rules and sends no alerts of its own: those live at the centre
    assert "rule_files" not in config and "alerting" not in config
