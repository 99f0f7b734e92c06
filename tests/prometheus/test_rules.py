"""Prometheus alert and recording rules: promtool accepts them, their unit tests pass, and every
alert is tested both firing and staying quiet; the example scrape config matches what the rules
and dashboards assume.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import promql
from tests.support.linkmon_metrics import KNOWN_SERIES

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "rules" / "tests").glob("*.test.yml"))
EXAMPLE = PROMETHEUS / "prometheus.example.yml"
PROMTOOL = "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]
    ]


ALERTS = sorted({rule["alert"] for rule in rules() if "alert" in rule})
RECORDS = sorted({rule["record"] for rule in rules() if "record" in rule})


def test_rule_files_and_their_tests_exist() -> None:
    names = [path.name for path in RULE_FILES]
    assert names == ["linkmon-alerts.yml", "linkmon-recording.yml"]
    assert RULE_TESTS
    assert len(ALERTS) >= 10 and len(RECORDS) >= 5


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_pass() -> None:
    done = promtool("test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS)


def _alert_cases() -> tuple[set[str], set[str]]:
    """Alerts some unit test expects firing, and alerts some unit test expects quiet."""
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    return fired, quiet


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_is_tested_firing_and_quiet(alert: str) -> None:
    fired, quiet = _alert_cases()
    assert alert in fired, f"no unit test where {alert} fires"
    assert alert in quiet, f"no unit test where {alert} stays quiet"


@pytest.mark.parametrize("record", RECORDS)
def test_every_recording_rule_has_an_expected_value(record: str) -> None:
    tested = {
        check["expr"]
        for path in RULE_TESTS
        for case in load(path)["tests"]
        for check in case.get("promql_expr_test", [])
        if check.get("exp_samples")
    }
    assert any(record in expr for expr in tested), f"no promql_expr_test for {record}"


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_severity_and_text(alert: str) -> None:
    (rule,) = [r for r in rules() if r.get("alert") == alert]
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


def test_rules_use_only_metrics_linkmon_exports() -> None:
    for rule in rules():
        name = rule.get("alert") or rule.get("record")
        metrics = promql.metric_names(rule["expr"])
        assert metrics, f"{name}: selects no metric"
        assert metrics <= KNOWN_SERIES, f"{name}: unknown {metrics - KNOWN_SERIES}"
        for template in rule.get("annotations", {}).values():
            for query in re.findall(r'printf\s+"([^"]+)"', template):
                assert promql.metric_names(query) <= KNOWN_SERIES, f"{name}: {query}"


def test_unreachable_links_never_page_as_down() -> None:
    """One alert for the root cause: LinkDown selects the "down" state only."""
    (rule,) = [r for r in rules() if r.get("alert") == "LinkDown"]
    assert 'state="down"' in rule["expr"] and "unreachable" not in rule["expr"]


def test_promtool_accepts_the_example_scrape_config() -> None:
    done = promtool("check", "config", str(EXAMPLE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_scrape_config_is_what_rules_and_dashboards_expect() -> None:
    config = load(EXAMPLE)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "linkmon"]
    assert job["honor_labels"] is True  # keep linkmon's own agent label
    agents = [group["labels"]["agent"] for group in job["static_configs"]]
    assert len(agents) == len(set(agents)) >= 3, "one agent per kabupaten plus a central one"
    assert {PROMETHEUS / f for f in config["rule_files"]} == set(RULE_FILES)
    job_selectors = set(re.findall(r'up\{job="([^"]+)"', "".join(r["expr"] for r in rules())))
    dashboards = "".join(p.read_text() for p in (ROOT / "grafana" / "dashboards").glob("*.json"))
    job_selectors |= set(re.findall(r'up\{job=\\"([^"\\]+)\\"', dashboards))
    assert job_selectors == {"linkmon"}
