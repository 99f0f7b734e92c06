"""linkmon/config/messages.py: pydantic's errors in linkmon's words, at the path as the YAML is
written: wrong types, numbers out of range, unknown choices and keys (with the key probably
meant), missing keys."""

from __future__ import annotations

import pytest

from linkmon.config import ConfigError, parse_config
from tests.linkmon.config.cases import TESTDATA, Table, assert_refused, each_file

INVALID: Table = [
    ("invalid-agent-language", ["agent.language: must be 'id' or 'en', got 'ms'"]),
    ("invalid-degraded-loss", ["links[0].degraded.loss: must be at most 1"]),
    ("invalid-down-after", ["links[0].down_after: must be at least 1"]),
    ("invalid-enable-reload", ["server.enable_reload: must be true or false, got 'true'"]),
    ("invalid-flapping-changes", ["alerting.flapping.changes: must be at least 2"]),
    ("invalid-from-site-key", ["links[0].from_site: unknown key (did you mean 'from'?)"]),
    ("invalid-http-status", ["links[0].probes[0].expect_status[1]: must be at most 599"]),
    ("invalid-http-verify-tls", ["links[0].probes[0].verify_tls: must be true or false, got 'no'"]),
    ("invalid-icmp-count-type", ["links[0].probes[0].count: must be a whole number, got '5'"]),
    ("invalid-icmp-count", ["links[0].probes[0].count: must be at least 1"]),
    ("invalid-icmp-size", ["links[0].probes[0].size: must be at least 8"]),
    ("invalid-link-network-missing", ["links[0].network: required"]),
    (
        "invalid-link-network",
        [
            "links[0].network: must be 'm2m', 'jip', 'vpn', 'internet', 'starlink' or 'other', "
            "got 'mpls'",
        ],
    ),
    (
        "invalid-maintenance-weekday",
        [
            "maintenance[0].weekdays[0]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or "
            "'sun', got 'sunday'",
        ],
    ),
    ("invalid-outbox-max", ["alerting.outbox_max: must be at least 1"]),
    (
        "invalid-probe-kind-missing",
        [
            "links[0].probes[0].kind: required (one of 'icmp', 'tcp', 'http')",
        ],
    ),
    (
        "invalid-probe-kind",
        [
            "links[0].probes[0].kind: must be one of 'icmp', 'tcp', 'http', got 'ping'",
        ],
    ),
    (
        "invalid-receiver-kind",
        [
            "alerting.receivers[0].kind: must be 'webhook' or 'alertmanager', got 'telegram'",
        ],
    ),
    ("invalid-rollup-share", ["alerting.rollup.share: must be greater than 0"]),
    ("invalid-section-type", ["links: must be a list, got a mapping"]),
    (
        "invalid-service-hours-day",
        [
            "defaults.service_hours.days[0]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or "
            "'sun', got 'senin'",
            "defaults.service_hours.days[1]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or "
            "'sun', got 'selasa'",
        ],
    ),
    ("invalid-site-id-missing", ["sites[3].id: required"]),
    (
        "invalid-site-kind",
        [
            "sites[3].kind: must be 'kecamatan', 'kabupaten', 'kota', 'provinsi', 'pusat' or "
            "'drc', got 'desa'",
        ],
    ),
    ("invalid-unknown-link-key", ["links[0].intervall: unknown key (did you mean 'interval'?)"]),
    (
        "invalid-unknown-probe-key",
        [
            "links[0].probes[0].url: unknown key (allowed: kind, interval, timeout, source, "
            "target, count, spacing, size, interface)",
        ],
    ),
    ("invalid-unknown-section", ["alerts: unknown key (did you mean 'alerting'?)"]),
    ("invalid-up-after-type", ["links[0].up_after: must be a whole number, got 1.5"]),
]


@each_file(INVALID)
def test_invalid_value_fails_with_exact_errors(name: str, expected: list[str]) -> None:
    assert_refused(name, expected)


def test_metrics_detail_names_the_allowed_values() -> None:
    text = (TESTDATA / "good-minimal.yml").read_text()
    with pytest.raises(ConfigError) as raised:
        parse_config(f"server: {{metrics_detail: probe}}\n{text}")
    assert raised.value.errors == ["server.metrics_detail: must be 'full' or 'link', got 'probe'"]


def test_parse_config_without_a_file_names_its_source() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sites: 5\n")
    assert str(caught.value) == "<string>: sites: must be a list, got 5"


def test_a_key_that_is_not_a_word_is_quoted_and_clipped() -> None:
    key = "x y" + "z" * 60
    with pytest.raises(ConfigError) as caught:
        parse_config(f"agent: {{'{key}': 1}}\n")
    assert caught.value.errors == [
        f'agent["{key[:37]}..."]: unknown key (allowed: name, timezone, language)'
    ]
