"""linkmon/config.py: good files load with the right resolved values; each bad file fails with
exactly the expected messages (blackbox_exporter's config_test style: a table of file and
errors); secrets never leak; the loader raises nothing but ConfigError on random input."""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time as clock
import urllib.parse
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkmon.config import (
    LOAD_APART_BYTES,
    Config,
    ConfigError,
    HttpProbe,
    IcmpProbe,
    TcpProbe,
    format_errors,
    load_config,
    load_config_apart,
    parse_config,
)
from probes import HttpSpec, IcmpSpec, TcpSpec

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "config"
EXAMPLES = Path(__file__).resolve().parents[2] / "config"
PLACEHOLDERS = ipaddress.ip_network("198.18.0.0/15")

SECRETS = {
    "LINKMON_TEST_PROBE_TOKEN": "probe-token-1234",
    "LINKMON_TEST_BOT_TOKEN": "123456:bot-secret-xyz",
    "LINKMON_TEST_AM_PASSWORD": "am-password-987",
}
FILE_SECRET = "am-token-from-file"
LITERAL_SECRET = "s3cr3tpath"


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LINKMON_TEST_UNSET_TOKEN", raising=False)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- bad files

INVALID: list[tuple[str, list[str]]] = [
    ("invalid-agent-language", ["agent.language: must be 'id' or 'en', got 'ms'"]),
    (
        "invalid-agent-name",
        [
            "agent.name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit, got 'kab/nunukan'",
        ],
    ),
    (
        "invalid-agent-timezone",
        [
            "agent.timezone: unknown time zone 'Asia/Nunukan' (use an IANA name: Asia/Jakarta "
            "(WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT))",
        ],
    ),
    ("invalid-degraded-loss", ["links[0].degraded.loss: must be at most 1"]),
    (
        "invalid-degraded-rtt",
        [
            'defaults.degraded.rtt: needs a unit: write "300s" or "300ms", not a bare number',
        ],
    ),
    (
        "invalid-depends-cycle",
        [
            "links[0].depends_on: dependency cycle: kec-krayan--kab -> kab-nunukan--dc -> "
            "kab-nunukan--drc -> kec-krayan--kab",
        ],
    ),
    ("invalid-depends-self", ["links[0].depends_on[0]: a link cannot depend on itself"]),
    ("invalid-depends-twice", ["links[1].depends_on[1]: 'kab-nunukan--drc' is listed twice"]),
    ("invalid-depends-unknown", ["links[0].depends_on[0]: unknown link 'kab-nunukan--drc'"]),
    ("invalid-down-after", ["links[0].down_after: must be at least 1"]),
    (
        "invalid-duration-bare-number",
        [
            'defaults.interval: needs a unit: write "10s" or "10ms", not a bare number',
        ],
    ),
    (
        "invalid-duration-negative",
        [
            "links[0].timeout: invalid duration '-1s': must not be negative",
        ],
    ),
    (
        "invalid-duration-order",
        [
            "links[0].interval: invalid duration '30s1m': units must go from largest to smallest, "
            "each once (d, h, m, s, ms)",
        ],
    ),
    (
        "invalid-duration-type",
        [
            'alerting.resend_interval: must be a duration such as "10s" or "500ms", got a list',
        ],
    ),
    (
        "invalid-duration-unit",
        [
            "defaults.timeout: invalid duration '2sec': use a number with a unit (e.g. 500ms, "
            "10s, 2m, 1h or 1m30s)",
        ],
    ),
    ("invalid-duration-zero", ["links[0].interval: must be longer than 0s"]),
    ("invalid-empty", ["the config is empty"]),
    ("invalid-enable-reload", ["server.enable_reload: must be true or false, got 'true'"]),
    ("invalid-flapping-changes", ["alerting.flapping.changes: must be at least 2"]),
    ("invalid-from-site-key", ["links[0].from_site: unknown key (did you mean 'from'?)"]),
    (
        "invalid-http-credentials",
        [
            "links[0].probes[0].url: must not carry credentials (the URL is exported as a label); "
            "use headers",
        ],
    ),
    (
        "invalid-http-header-newline",
        [
            "links[0].probes[0].headers.X-Site: must be printable ASCII, without line breaks",
        ],
    ),
    (
        "invalid-http-no-host",
        [
            "links[0].probes[0].url: must name a valid host (IP address or DNS name), got "
            "'https:///health'",
        ],
    ),
    (
        "invalid-http-regex",
        [
            "links[0].probes[0].body_regex: invalid regular expression: missing ), unterminated "
            "subpattern at position 0",
        ],
    ),
    (
        "invalid-http-scheme",
        [
            "links[0].probes[0].url: must be an http:// or https:// URL, got "
            "'ftp://198.18.1.1/health'",
        ],
    ),
    (
        "invalid-http-status-empty",
        [
            "links[0].probes[0].expect_status: must list at least one status code",
        ],
    ),
    ("invalid-http-status", ["links[0].probes[0].expect_status[1]: must be at most 599"]),
    ("invalid-http-verify-tls", ["links[0].probes[0].verify_tls: must be true or false, got 'no'"]),
    ("invalid-icmp-count-type", ["links[0].probes[0].count: must be a whole number, got '5'"]),
    ("invalid-icmp-count", ["links[0].probes[0].count: must be at least 1"]),
    (
        "invalid-icmp-echoes-defaults",
        [
            "defaults: icmp count × spacing (10 × 250ms = 2.5s) must be less than timeout 2s",
        ],
    ),
    (
        "invalid-icmp-echoes-link",
        [
            "links[0]: icmp count × spacing (5 × 100ms = 500ms) must be less than timeout 400ms",
        ],
    ),
    (
        "invalid-icmp-echoes-probe",
        [
            "links[0].probes[0]: icmp count × spacing (30 × 100ms = 3s) must be less than timeout "
            "2s",
        ],
    ),
    (
        "invalid-icmp-interface",
        [
            "links[0].probes[0].interface: must be a network interface name (1-15 characters), "
            "got 'eth0/1'",
        ],
    ),
    ("invalid-icmp-size", ["links[0].probes[0].size: must be at least 8"]),
    ("invalid-icmp-spacing", ["links[0].probes[0].spacing: must be at most 1m"]),
    (
        "invalid-icmp-target-hostname",
        [
            "links[0].probes[0].target: must be an IPv4 or IPv6 address, got 'dc.dukcapil.example'",
        ],
    ),
    (
        "invalid-icmp-target-ip",
        [
            "links[0].probes[0].target: must be an IPv4 or IPv6 address, got '198.18.1.256'",
        ],
    ),
    ("invalid-interval-probe", ["links[0].probes[0].interval: must be greater than timeout 2s"]),
    (
        "invalid-link-duplicate",
        [
            "links[1].id: duplicate link id 'kab-nunukan--dc' (also links[0])",
        ],
    ),
    ("invalid-link-from-unknown", ["links[0].from: unknown site 'kab-nunukn'"]),
    (
        "invalid-link-id",
        [
            "links[0].id: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, got 'kab nunukan dc'",
        ],
    ),
    ("invalid-link-network-missing", ["links[0].network: required"]),
    (
        "invalid-link-network",
        [
            "links[0].network: must be 'm2m', 'jip', 'vpn', 'internet', 'starlink' or 'other', "
            "got 'mpls'",
        ],
    ),
    ("invalid-link-no-probes", ["links[0].probes: a link needs at least one probe"]),
    ("invalid-link-same-ends", ["links[0].to: must not be the same site as from ('kab-nunukan')"]),
    ("invalid-link-to-unknown", ["links[0].to: unknown site 'pusat-drc'"]),
    ("invalid-listen-port", ["server.listen: port must be a number from 0 to 65535, got 98400"]),
    ("invalid-listen", ['server.listen: must be "host:port" or "[IPv6]:port", got \'127.0.0.1\'']),
    ("invalid-maintenance-covers-nothing", ["maintenance[0]: covers nothing: list links or sites"]),
    (
        "invalid-maintenance-date",
        [
            'maintenance[0].start: must be "YYYY-MM-DD HH:MM" (one-off) or "HH:MM" (weekly), got '
            "'2026-02-30 22:00'",
        ],
    ),
    ("invalid-maintenance-empty-weekly", ["maintenance[0].end: must differ from start 01:00"]),
    (
        "invalid-maintenance-oneoff-time",
        [
            'maintenance[0].end: a one-off window needs "YYYY-MM-DD HH:MM" (or add weekdays for a '
            "weekly one)",
        ],
    ),
    ("invalid-maintenance-order", ["maintenance[0].end: must be after start 2026-12-01 02:00"]),
    (
        "invalid-maintenance-time",
        [
            'maintenance[0].end: must be "YYYY-MM-DD HH:MM" (one-off) or "HH:MM" (weekly), got '
            "'03:60'",
        ],
    ),
    (
        "invalid-maintenance-timezone",
        [
            "maintenance[0].timezone: unknown time zone '+08:00' (use an IANA name: Asia/Jakarta "
            "(WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT))",
        ],
    ),
    (
        "invalid-maintenance-unknown-link",
        [
            "maintenance[0].links[0]: unknown link 'kab-nunukan--drc'",
        ],
    ),
    ("invalid-maintenance-unknown-site", ["maintenance[0].sites[0]: unknown site 'kec-sebatik'"]),
    (
        "invalid-maintenance-weekday",
        [
            "maintenance[0].weekdays[0]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or "
            "'sun', got 'sunday'",
        ],
    ),
    (
        "invalid-maintenance-weekly-date",
        [
            'maintenance[0].start: a weekly window takes a time "HH:MM", not a date',
        ],
    ),
    ("invalid-outbox-max", ["alerting.outbox_max: must be at least 1"]),
    ("invalid-probe-duplicate", ["links[0].probes[1]: same probe as probes[0] (icmp 198.18.1.1)"]),
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
        "invalid-receiver-duplicate",
        [
            "alerting.receivers[1].name: duplicate receiver name 'oncall' (also "
            "alerting.receivers[0])",
        ],
    ),
    (
        "invalid-receiver-header-name",
        [
            "alerting.receivers[0].headers[\"X Token\"]: invalid header name 'X Token'",
        ],
    ),
    (
        "invalid-receiver-kind",
        [
            "alerting.receivers[0].kind: must be 'webhook' or 'alertmanager', got 'telegram'",
        ],
    ),
    ("invalid-receiver-no-url", ["alerting.receivers[0].url: required"]),
    (
        "invalid-receiver-timeout",
        [
            'alerting.receivers[0].timeout: needs a unit: write "5s" or "5ms", not a bare number',
        ],
    ),
    ("invalid-receiver-url-and-urls", ["alerting.receivers[0]: give url or urls, not both"]),
    ("invalid-receiver-url", ["alerting.receivers[0].url: must be an http:// or https:// URL"]),
    (
        "invalid-receiver-webhook-urls",
        [
            "alerting.receivers[0].urls: a webhook receiver takes one url",
        ],
    ),
    ("invalid-rollup-share", ["alerting.rollup.share: must be greater than 0"]),
    (
        "invalid-secret-env-missing",
        [
            "alerting.receivers[0].url: environment variable LINKMON_TEST_UNSET_TOKEN is not set",
        ],
    ),
    (
        "invalid-secret-file-missing",
        [
            "alerting.receivers[0].headers.Authorization: cannot read secret file "
            "{dir}/secrets/missing-token: No such file or directory",
        ],
    ),
    (
        "invalid-secret-reference",
        [
            "alerting.receivers[0].headers.Authorization: '${' must start a reference like "
            "${TOKEN} (letters, digits, '_')",
        ],
    ),
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
    ("invalid-service-hours-order", ["sites[1].service_hours.end: must be after start 15:00"]),
    (
        "invalid-service-hours-time",
        [
            'sites[1].service_hours.end: must be a time "HH:MM" such as "08:00", got \'24:30\'',
        ],
    ),
    ("invalid-site-duplicate", ["sites[3].id: duplicate site id 'kec-krayan' (also sites[2])"]),
    ("invalid-site-id-missing", ["sites[3].id: required"]),
    (
        "invalid-site-kind",
        [
            "sites[3].kind: must be 'kecamatan', 'kabupaten', 'kota', 'provinsi', 'pusat' or "
            "'drc', got 'desa'",
        ],
    ),
    (
        "invalid-site-name-newline",
        [
            "sites[0].name: must not contain line breaks or control characters",
        ],
    ),
    (
        "invalid-site-parent-kind",
        [
            "sites[2].parent: a kecamatan belongs to a kabupaten or kota, but 'pusat-dc' is a "
            "pusat",
        ],
    ),
    ("invalid-site-parent-pusat", ["sites[0].parent: a pusat site has no parent"]),
    ("invalid-site-parent-self", ["sites[1].parent: a site cannot be its own parent"]),
    ("invalid-site-parent-unknown", ["sites[2].parent: unknown site 'kab-nunukn'"]),
    (
        "invalid-site-timezone",
        [
            "sites[2].timezone: unknown time zone 'WITA' (use an IANA name: Asia/Jakarta (WIB), "
            "Asia/Makassar (WITA), Asia/Jayapura (WIT))",
        ],
    ),
    (
        "invalid-source-family",
        [
            "links[0].probes[0].source: 198.18.0.1 is IPv4 but the target is IPv6",
        ],
    ),
    (
        "invalid-source-not-ip",
        [
            "links[0].probes[0].source: must be an IPv4 or IPv6 address, got 'eth0'",
        ],
    ),
    ("invalid-storage-directory", ["storage.path: {dir} is a directory"]),
    (
        "invalid-tcp-host",
        [
            "links[0].probes[0].target: 'dc dukcapil' is not an IP address or host name",
        ],
    ),
    (
        "invalid-tcp-ipv6-brackets",
        [
            'links[0].probes[0].target: an IPv6 address needs brackets: "[2001:db8::1]:443"',
        ],
    ),
    (
        "invalid-tcp-no-port",
        [
            'links[0].probes[0].target: must be "host:port" or "[IPv6]:port", got \'198.18.1.1\'',
        ],
    ),
    (
        "invalid-tcp-port-range",
        [
            "links[0].probes[0].target: port must be a number from 1 to 65535, got 70000",
        ],
    ),
    (
        "invalid-tcp-port-zero",
        [
            "links[0].probes[0].target: port must be a number from 1 to 65535, got 0",
        ],
    ),
    (
        "invalid-three-errors",
        [
            "agent.language: must be 'id' or 'en', got 'jv'",
            "links[0].probes[0].retries: unknown key (allowed: kind, interval, timeout, source, "
            "target, count, spacing, size, interface)",
            "links[0].timeout: must be less than interval 10s",
        ],
    ),
    ("invalid-timeout-defaults", ["defaults.timeout: must be less than interval 5s"]),
    ("invalid-timeout-link", ["links[0].timeout: must be less than interval 10s"]),
    ("invalid-timeout-probe", ["links[3].probes[0].timeout: must be less than interval 2s"]),
    (
        "invalid-top-level-list",
        [
            "the top level must be a mapping of sections (agent, sites, links, ...), got a list",
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
    ("invalid-web-config-missing", ["server.web_config: no such file: {dir}/missing-web.yml"]),
    ("invalid-yaml-alias-bomb", ["too large: more than 500000 values (YAML aliases?)"]),
    (
        "invalid-yaml-duplicate-key",
        [
            "line 12, column 5: duplicate key 'interval' (first at line 11)",
        ],
    ),
    (
        "invalid-yaml-python-tag",
        [
            "line 2, column 8: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
        ],
    ),
    ("invalid-yaml-recursive-alias", ["a YAML alias refers to a node that contains it"]),
    ("invalid-yaml-syntax", ["line 9, column 12: expected ',' or ']', but got ':'"]),
    ("invalid-yaml-tab", ["line 3, column 1: found character '\\t' that cannot start any token"]),
]


@pytest.mark.parametrize(("name", "expected"), INVALID, ids=[name for name, _ in INVALID])
def test_invalid_config_fails_with_exact_errors(
    name: str, expected: list[str], secrets_env: None
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(TESTDATA / f"{name}.yml")
    assert caught.value.errors == [e.replace("{dir}", str(TESTDATA)) for e in expected]
    assert caught.value.source == str(TESTDATA / f"{name}.yml")


def test_every_invalid_fixture_is_in_the_table() -> None:
    on_disk = {path.stem for path in TESTDATA.glob("invalid-*.yml")}
    assert on_disk == {name for name, _ in INVALID}
    assert len(on_disk) > 80


def test_every_error_is_reported_at_once() -> None:
    """A type error, an unknown key and a cross-check failure in one file: three messages."""
    with pytest.raises(ConfigError) as caught:
        load_config(TESTDATA / "invalid-three-errors.yml")
    assert len(caught.value.errors) == 3
    listing = format_errors(caught.value)
    assert listing.splitlines()[0] == f"{TESTDATA / 'invalid-three-errors.yml'}: 3 errors"
    assert [line.strip() for line in listing.splitlines()[1:]] == caught.value.errors


def test_errors_in_many_items_are_all_listed_with_their_own_index() -> None:
    links = "\n".join(
        f"  - {{id: l{i}, from: a, to: b, network: vpn, probes: [{{kind: icmp, target: 10.0.0.{i},"
        f" count: {0 if i % 2 else 1}}}]}}"
        for i in range(20)
    )
    text = f"sites: [{{id: a, kind: kabupaten}}, {{id: b, kind: pusat}}]\nlinks:\n{links}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [
        f"links[{i}].probes[0].count: must be at least 1" for i in range(1, 20, 2)
    ]


def test_reference_to_a_broken_item_is_not_reported_twice() -> None:
    """sites[1] has a bad kind; the link that names it must not add "unknown site"."""
    text = """
sites: [{id: a, kind: kabupaten}, {id: b, kind: desa}, {id: c, kind: pusat}]
links:
  - {id: l1, from: a, to: b, network: vpn, probes: [{kind: icmp, target: 10.0.0.1}]}
  - {id: l2, from: a, to: c, network: vpn, depends_on: [l3],
     probes: [{kind: icmp, target: 10.0.0.2}]}
  - {id: l3, from: a, to: c, network: vpn, probes: [{kind: icmp, target: 10.0.0.3, count: -1}]}
  - {id: l2, from: a, to: zz, network: vpn, probes: [{kind: icmp, target: 10.0.0.4}]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [
        "sites[1].kind: must be 'kecamatan', 'kabupaten', 'kota', 'provinsi', 'pusat' or 'drc', "
        "got 'desa'",
        "links[2].probes[0].count: must be at least 1",
        "links[3].id: duplicate link id 'l2' (also links[1])",
        "links[3].to: unknown site 'zz'",
    ]


def test_file_level_problems_are_config_errors(tmp_path: Path) -> None:
    cases: dict[Path, str] = {
        tmp_path / "missing.yml": "no such file",
        tmp_path: "is a directory, not a config file",
        Path("/dev/null"): "is not a regular file",
    }
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes("agent:\n  name: caf\xe9\n".encode("latin-1"))
    cases[latin1] = "line 2: not valid UTF-8 (byte 0xe9 at offset 18)"
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    cases[empty] = "the config is empty"
    for path, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert caught.value.errors == [message]
        assert str(caught.value) == f"{path}: {message}"


def test_unusable_paths_are_named_not_raised(tmp_path: Path) -> None:
    long_name = "x" * 300
    text = f"""
server: {{web_config: {tmp_path}}}
storage: {{path: {long_name}/linkmon.db}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=tmp_path)
    assert caught.value.errors == [
        f"server.web_config: not a regular file: {tmp_path}",
        f"storage.path: cannot use {str(tmp_path / long_name)[:97]}...: File name too long",
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbf" + (TESTDATA / "good-minimal.yml").read_bytes())
    assert len(load_config(path).links) == 1


def padded_copy(source: Path, target: Path) -> Path:
    """``source`` made large enough to be loaded apart, by a trailing comment."""
    text = source.read_text()
    target.write_text(text + "#" * (LOAD_APART_BYTES - len(text.encode())) + "\n")
    return target


def test_a_large_config_is_loaded_in_a_child_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[list[str]] = []
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        children.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    good = padded_copy(EXAMPLES / "nunukan.yml", tmp_path / "good.yml")
    assert load_config_apart(good) == load_config(good)
    bad = padded_copy(TESTDATA / "invalid-depends-cycle.yml", tmp_path / "bad.yml")
    with pytest.raises(ConfigError) as apart:
        load_config_apart(bad)
    with pytest.raises(ConfigError) as here:
        load_config(bad)
    assert (apart.value.errors, apart.value.source) == (here.value.errors, here.value.source)
    assert str(apart.value) == str(here.value)
    assert [args[-1] for args in children] == [str(good), str(bad)]
    small = TESTDATA / "good-minimal.yml"
    assert load_config_apart(small) == load_config(small)
    assert len(children) == 2  # a small file is loaded in-process


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false"])
def test_a_child_that_cannot_load_falls_back_to_loading_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, python: str
) -> None:
    good = padded_copy(EXAMPLES / "nunukan.yml", tmp_path / "good.yml")
    monkeypatch.setattr(sys, "executable", python)
    with caplog.at_level(logging.WARNING, logger="linkmon.config"):
        assert load_config_apart(good) == load_config(good)
    assert "cannot load the config in a child process, loading it here" in caplog.text


def test_yaml_1_2_scalars_times_and_words_stay_strings() -> None:
    """Unquoted 15:00 is 900 in YAML 1.1 and `no` is false; linkmon reads both as written."""
    text = """
defaults:
  service_hours: {start: 07:30, end: 15:00}
sites: [{id: no, kind: kabupaten}, {id: on, kind: pusat}]
links: [{id: l, from: no, to: on, network: vpn, probes: [{kind: icmp, target: 10.0.0.1}]}]
"""
    config = parse_config(text)
    assert config.defaults.service_hours.start == time(7, 30)
    assert config.defaults.service_hours.end == time(15, 0)
    assert [site.id for site in config.sites] == ["no", "on"]


def test_parse_config_without_a_file_names_its_source() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("sites: 5\n")
    assert str(caught.value) == "<string>: sites: must be a list, got 5"


def test_a_megabyte_value_is_refused_quickly() -> None:
    text = f"sites: [{{id: a, kind: pusat, name: '{'é' * 1_000_000}'}}]\n"
    started = clock.monotonic()
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == ["sites[0].name: must be at most 300 characters"]
    assert clock.monotonic() - started < 10


# --------------------------------------------------------------------------- good files


def test_design_contract_loads_with_defaults_resolved() -> None:
    """good-contract.yml is the YAML of DESIGN.md's "contract with users", unchanged."""
    config = load_config(TESTDATA / "good-contract.yml")
    assert (config.agent.name, config.agent.timezone, config.agent.language) == (
        "kab-nunukan",
        "Asia/Makassar",
        "id",
    )
    assert config.server.listen == "127.0.0.1:9840"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9840)
    assert config.server.web_config is None
    assert config.server.enable_reload is False
    assert config.storage.path == TESTDATA / "linkmon.db"
    assert [site.id for site in config.sites] == [
        "pusat-dc",
        "pusat-drc",
        "kab-nunukan",
        "kec-krayan",
    ]
    krayan = config.site("kec-krayan")
    assert (krayan.kind, krayan.parent, krayan.timezone) == (
        "kecamatan",
        "kab-nunukan",
        "Asia/Makassar",
    )

    uplink = config.link("kab-nunukan--dc")
    assert (uplink.from_site, uplink.to_site, uplink.network) == ("kab-nunukan", "pusat-dc", "vpn")
    assert (uplink.interval, uplink.timeout, uplink.down_after, uplink.up_after) == (10, 2, 3, 2)
    assert (uplink.degraded.loss, uplink.degraded.rtt) == (0.2, 0.3)
    assert [p.kind for p in uplink.probes] == ["icmp", "tcp", "http"]
    assert [p.target_label for p in uplink.probes] == [
        "198.18.1.1",
        "198.18.1.1:443",
        "https://198.18.1.1/health",
    ]
    for probe in uplink.probes:
        assert (probe.interval, probe.timeout) == (10, 2)
    icmp = uplink.probes[0]
    assert isinstance(icmp, IcmpProbe)
    assert (icmp.count, icmp.spacing, icmp.size) == (5, 0.1, 56)

    kecamatan = config.link("kec-krayan--kab")
    assert (kecamatan.interval, kecamatan.timeout, kecamatan.depends_on) == (5, 2, ())
    assert kecamatan.probes[0].spec() == IcmpSpec(
        address="198.18.10.2", count=5, spacing=0.1, size=56, source="198.18.0.1"
    )
    assert kecamatan.probes[0].interval == 5

    oncall, am = config.alerting.receivers
    assert (oncall.name, oncall.kind) == ("oncall", "webhook")
    assert [u.get_secret_value() for u in oncall.urls] == ["http://127.0.0.1:9999/hook"]
    assert (am.name, am.kind) == ("am", "alertmanager")
    assert [u.get_secret_value() for u in am.urls] == ["http://127.0.0.1:9093"]
    assert config.kabupaten_of("kec-krayan") == "kab-nunukan"
    assert config.maintenance == ()


def test_minimal_config_takes_every_built_in_default() -> None:
    config = load_config(TESTDATA / "good-minimal.yml")
    assert (config.agent.timezone, config.agent.language) == ("Asia/Makassar", "id")
    assert config.server.listen == "127.0.0.1:9840"
    assert config.server.enable_reload is False
    assert config.server.metrics_detail == "full"
    assert config.storage.path == TESTDATA / "linkmon.db"
    defaults = config.defaults
    assert (defaults.interval, defaults.timeout, defaults.down_after, defaults.up_after) == (
        10,
        2,
        3,
        2,
    )
    assert (defaults.icmp.count, defaults.icmp.spacing, defaults.icmp.size) == (5, 0.1, 56)
    assert (defaults.degraded.loss, defaults.degraded.rtt) == (0.2, 0.3)
    hours = config.site("kab-nunukan").service_hours
    assert (hours.days, hours.start, hours.end) == (
        ("mon", "tue", "wed", "thu", "fri"),
        time(8, 0),
        time(15, 0),
    )
    assert config.site("kab-nunukan").name == "kab-nunukan"
    alerting = config.alerting
    assert alerting.receivers == ()
    assert (alerting.resend_interval, alerting.outbox_max) == (60, 10_000)
    assert (alerting.flapping.changes, alerting.flapping.window) == (6, 600)
    assert (alerting.rollup.share, alerting.rollup.min_links) == (0.5, 3)
    (probe,) = config.link("kab-nunukan--dc").probes
    assert probe.spec() == IcmpSpec(address="198.18.1.1")


@pytest.mark.parametrize(
    ("hostname", "agent"),
    [
        ("kab-nunukan", "kab-nunukan"),
        ("kab-nunukan.dukcapil.local", "kab-nunukan"),
        ("_noc host#1", "noc-host-1"),
        ("", "linkmon"),
        ("x" * 80, "x" * 64),
    ],
)
def test_agent_name_defaults_to_the_host_name(
    hostname: str, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    assert load_config(TESTDATA / "good-minimal.yml").agent.name == agent


@pytest.fixture
def full(secrets_env: None) -> Config:
    return load_config(TESTDATA / "good-full.yml")


@pytest.mark.parametrize("detail", ["full", "link"])
def test_metrics_detail_is_full_or_link(detail: str) -> None:
    text = (TESTDATA / "good-minimal.yml").read_text()
    config = parse_config(f"server: {{metrics_detail: {detail}}}\n{text}")
    assert config.server.metrics_detail == detail


def test_metrics_detail_names_the_allowed_values() -> None:
    text = (TESTDATA / "good-minimal.yml").read_text()
    with pytest.raises(ConfigError) as raised:
        parse_config(f"server: {{metrics_detail: probe}}\n{text}")
    assert raised.value.errors == ["server.metrics_detail: must be 'full' or 'link', got 'probe'"]


def test_full_config_agent_server_storage(full: Config) -> None:
    assert full.agent.language == "en"
    assert (full.server.host, full.server.port) == ("::1", 0)
    assert full.server.web_config == TESTDATA / "web-config.yml"
    assert full.server.enable_reload is True
    assert full.storage.path == TESTDATA / "state" / "linkmon.db"


def test_full_config_sites_inherit_time_zone_name_and_service_hours(full: Config) -> None:
    assert full.site("pusat-dc").timezone == "Asia/Jakarta"
    assert full.site("kab-nunukan").timezone == "Asia/Makassar"
    assert full.site("kota-jayapura").zone.key == "Asia/Jayapura"
    assert full.site("prov-kaltara").name == "prov-kaltara"
    assert full.site("kec-krayan").name == "Kecamatan Krayan"
    kab = full.site("kab-nunukan").service_hours
    assert (kab.days, kab.start, kab.end) == (
        ("mon", "tue", "wed", "thu", "fri", "sat"),
        time(7, 30),
        time(16, 0),
    )
    jayapura = full.site("kota-jayapura").service_hours
    assert (jayapura.days, jayapura.start, jayapura.end) == (
        ("mon", "tue", "wed", "thu"),
        time(8, 0),
        time(14, 0),
    )


def test_full_config_defaults_flow_to_links_and_probes(full: Config) -> None:
    uplink = full.link("kab-nunukan--dc")
    assert (uplink.interval, uplink.timeout, uplink.down_after, uplink.up_after) == (20, 4, 4, 3)
    assert (uplink.degraded.loss, uplink.degraded.rtt) == (0.1, 0.5)
    icmp, tcp, http = uplink.probes
    assert isinstance(icmp, IcmpProbe)
    assert (icmp.interval, icmp.timeout, icmp.count, icmp.spacing, icmp.size) == (
        20,
        4,
        4,
        0.25,
        32,
    )
    assert (icmp.source, icmp.interface) == ("198.18.0.1", "wg0")
    assert isinstance(tcp, TcpProbe)
    assert (tcp.interval, tcp.timeout) == (20, 1.5)

    backup = full.link("kab-nunukan--drc")
    assert (backup.interval, backup.timeout, backup.down_after, backup.up_after) == (30, 5, 2, 3)
    assert (backup.degraded.loss, backup.degraded.rtt) == (0.1, 1.0)
    assert (backup.icmp.count, backup.icmp.spacing, backup.icmp.size) == (2, 0.25, 32)
    v4, v6, tcp6, tcp_name = backup.probes
    assert isinstance(v4, IcmpProbe) and isinstance(v6, IcmpProbe)
    assert (v4.interval, v4.timeout, v4.count, v4.spacing, v4.size) == (30, 5, 2, 0.25, 32)
    assert (v6.target, v6.interval, v6.timeout, v6.count, v6.spacing) == (
        "2001:db8::2",
        60,
        10,
        6,
        0.5,
    )
    assert isinstance(tcp6, TcpProbe) and isinstance(tcp_name, TcpProbe)
    assert (tcp6.target_label, tcp6.host, tcp6.port) == ("[2001:db8::2]:443", "2001:db8::2", 443)
    assert tcp6.spec() == TcpSpec(host="2001:db8::2", port=443)
    assert tcp_name.spec() == TcpSpec(host="drc.dukcapil.example", port=8443)

    kecamatan = full.link("kec-krayan--kab")
    assert kecamatan.depends_on == ("kab-nunukan--dc", "kab-nunukan--drc")
    assert (kecamatan.interval, kecamatan.probes[0].interval, kecamatan.probes[0].timeout) == (
        90,
        90,
        4,
    )
    starlink = full.link("kec-krayan--kab--starlink").probes[0]
    assert isinstance(starlink, HttpProbe)
    assert starlink.expect_status == (204,)


def test_full_config_http_probe_spec_carries_every_option(full: Config) -> None:
    http = full.link("kab-nunukan--dc").probes[2]
    assert isinstance(http, HttpProbe)
    assert http.spec() == HttpSpec(
        url="https://198.18.1.10/health",
        expect_status=(200, 204),
        body_match="ok",
        body_regex='"status":\\s*"ok"',
        follow_redirects=False,
        max_redirects=0,
        max_body_bytes=4096,
        verify_tls=False,
        headers=(("Authorization", "Bearer probe-token-1234"), ("X-Site", "kab-nunukan")),
        source="198.18.0.1",
    )


def test_full_config_alerting(full: Config) -> None:
    alerting = full.alerting
    assert (alerting.resend_interval, alerting.outbox_max) == (120, 500)
    assert (alerting.flapping.changes, alerting.flapping.window) == (4, 300)
    assert (alerting.rollup.share, alerting.rollup.min_links) == (0.75, 2)
    telegram, am, am_single, relay = alerting.receivers
    assert [u.get_secret_value() for u in telegram.urls] == [
        "https://198.18.0.5/bot123456:bot-secret-xyz/sendMessage?chat_id=-100"
    ]
    assert (telegram.timeout, telegram.send_resolved) == (5, False)
    assert [u.get_secret_value() for u in am.urls] == [
        "http://198.18.1.20:9093",
        "http://198.18.2.20:9093",
    ]
    assert am.headers["Authorization"].get_secret_value() == FILE_SECRET
    assert (am.timeout, am.send_resolved) == (10, True)
    assert [u.get_secret_value() for u in am_single.urls] == [
        "http://noc:am-password-987@198.18.1.21:9093"
    ]
    assert relay.urls[0].get_secret_value().endswith(LITERAL_SECRET)


def test_secrets_show_where_they_come_from_never_their_value(full: Config) -> None:
    telegram, am, am_single, relay = full.alerting.receivers
    assert str(telegram.urls[0]) == (
        "https://198.18.0.5/bot${LINKMON_TEST_BOT_TOKEN}/sendMessage?chat_id=-100"
    )
    assert str(am.headers["Authorization"]) == "file:secrets/am-token"
    assert str(am_single.urls[0]) == "http://noc:***@198.18.1.21:9093"
    assert str(relay.urls[0]) == "http://198.18.0.6:9099/…"
    shown = [repr(full), str(full), full.model_dump_json(), str(full.model_dump())]
    for text in shown:
        for secret in [*SECRETS.values(), FILE_SECRET, LITERAL_SECRET]:
            assert secret not in text


def test_a_secret_is_never_quoted_in_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LINKMON_TEST_BAD_URL", "ftp://user:hunter2@198.18.0.5/x")
    (tmp_path / "token").write_text("")
    (tmp_path / "bad").mkdir()
    text = """
alerting:
  receivers:
    - {name: a, kind: webhook, url: "${LINKMON_TEST_BAD_URL}"}
    - {name: b, kind: webhook, url: "http://198.18.0.5/", headers: {X-Token: "file:token"}}
    - {name: c, kind: webhook, url: "http://198.18.0.5/", headers: {X-Token: "file:bad"}}
    - name: d
      kind: webhook
      url: "http://198.18.0.5/"
      headers: {X-Token: "${LINKMON_TEST_BAD_URL}\\n"}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=tmp_path)
    assert caught.value.errors == [
        "alerting.receivers[0].url: must be an http:// or https:// URL",
        f"alerting.receivers[1].headers.X-Token: secret file {tmp_path / 'token'} is empty",
        f"alerting.receivers[2].headers.X-Token: secret file {tmp_path / 'bad'} is not a "
        "regular file",
        "alerting.receivers[3].headers.X-Token: must be printable ASCII, without line breaks",
    ]
    assert "hunter2" not in format_errors(caught.value)


# --------------------------------------------------------------------------- maintenance


def test_one_off_window_in_the_site_local_time(full: Config) -> None:
    """22:00–02:00 WITA (UTC+8) on 30 Nov 2026 is 14:00–18:00 UTC, for every link of the site."""
    for link_id in ("kec-krayan--kab", "kec-krayan--kab--starlink"):
        assert full.in_maintenance(link_id, utc("2026-11-30T13:59:59")) is None
        window = full.in_maintenance(link_id, utc("2026-11-30T14:00:00"))
        assert window is not None and window.reason == "Pemadaman PLN Krayan"
        assert full.in_maintenance(link_id, utc("2026-11-30T17:59:59")) is window
        assert full.in_maintenance(link_id, utc("2026-11-30T18:00:00")) is None
    assert full.in_maintenance("kab-nunukan--dc", utc("2026-11-30T15:00:00")) is None


def test_weekly_window_past_midnight(full: Config) -> None:
    """Sunday 22:00 to Monday 02:00 WITA: 14:00–18:00 UTC on Sundays (29 Nov 2026 is one)."""
    link = "kab-nunukan--drc"
    assert full.in_maintenance(link, utc("2026-11-29T13:59:00")) is None
    assert full.in_maintenance(link, utc("2026-11-29T14:00:00")) is not None
    assert full.in_maintenance(link, utc("2026-11-29T17:59:00")) is not None
    assert full.in_maintenance(link, utc("2026-11-29T18:00:00")) is None
    assert full.in_maintenance(link, utc("2026-11-28T15:00:00")) is None
    periods = full.maintenance_periods(link, utc("2026-11-01T00:00"), utc("2026-12-01T00:00"))
    assert [start.day for start, _, _ in periods] == [1, 8, 15, 22, 29]
    assert all(end - start == timedelta(hours=4) for start, end, _ in periods)
    assert all(start.tzinfo is not None for start, _, _ in periods)


def test_weekly_window_in_wit_and_in_an_explicit_zone(full: Config) -> None:
    """12:00–13:00 WIT (UTC+9) on Wednesday 2 Dec 2026; 09:00 WIB (UTC+7) on Mondays."""
    assert full.in_maintenance("kota-jayapura--dc", utc("2026-12-02T02:59")) is None
    assert full.in_maintenance("kota-jayapura--dc", utc("2026-12-02T03:30")) is not None
    assert full.in_maintenance("kota-jayapura--dc", utc("2026-12-02T04:00")) is None
    window = full.in_maintenance("kec-krayan--kab", utc("2026-11-30T02:30"))
    assert window is not None and window.reason == "In Jakarta time"
    assert full.in_maintenance("kec-krayan--kab--starlink", utc("2026-11-30T02:30")) is None


def test_maintenance_needs_aware_times_and_known_links(full: Config) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        full.in_maintenance("kec-krayan--kab", datetime(2026, 11, 30, 14, 0))
    with pytest.raises(KeyError):
        full.in_maintenance("no-such-link", utc("2026-11-30T14:00"))


# --------------------------------------------------------------------------- helpers


def test_hierarchy_helpers(full: Config) -> None:
    assert [link.id for link in full.links_from("kab-nunukan")] == [
        "kab-nunukan--dc",
        "kab-nunukan--drc",
    ]
    assert [link.id for link in full.links_from("kec-krayan")] == [
        "kec-krayan--kab",
        "kec-krayan--kab--starlink",
    ]
    assert [site.id for site in full.children("kab-nunukan")] == ["kec-krayan"]
    assert [site.id for site in full.children("prov-kaltara")] == ["kab-nunukan"]
    assert full.children("kec-krayan") == ()
    assert full.kabupaten_of("kec-krayan") == "kab-nunukan"
    assert full.kabupaten_of("kab-nunukan") == "kab-nunukan"
    assert full.kabupaten_of("kota-jayapura") == "kota-jayapura"
    assert full.kabupaten_of("prov-kaltara") is None
    assert full.kabupaten_of("pusat-dc") is None
    assert full.kabupaten_of("no-such-site") is None
    assert full.kabupaten_of_link("kab-nunukan--dc") == "kab-nunukan"
    assert full.kabupaten_of_link("kec-krayan--kab--starlink") == "kab-nunukan"
    with pytest.raises(KeyError):
        full.site("no-such-site")
    with pytest.raises(KeyError):
        full.link("no-such-link")


def test_models_are_frozen(full: Config) -> None:
    with pytest.raises(ValueError, match="frozen"):
        full.link("kab-nunukan--dc").interval = 1.0


# --------------------------------------------------------------------------- examples

NUNUKAN_KECAMATAN = [
    "Nunukan", "Nunukan Selatan", "Sebatik", "Sebatik Barat", "Sebatik Timur", "Sebatik Tengah",
    "Sebatik Utara", "Krayan", "Krayan Selatan", "Krayan Tengah", "Krayan Timur", "Krayan Barat",
    "Lumbis", "Lumbis Ogong", "Lumbis Pansiangan", "Lumbis Hulu", "Sebuku", "Tulin Onsoi",
    "Sembakung", "Sembakung Atulai", "Sei Menggaris",
]  # fmt: skip


def addresses(config: Config) -> list[str]:
    """Every address an example makes linkmon talk to: probe targets, sources, receivers."""
    found: list[str] = []
    for link in config.links:
        for probe in link.probes:
            if isinstance(probe, IcmpProbe):
                found.append(probe.target)
            elif isinstance(probe, TcpProbe):
                found.append(probe.host)
            else:
                found.append(urllib.parse.urlsplit(probe.url).hostname or "")
            if probe.source:
                found.append(probe.source)
    for receiver in config.alerting.receivers:
        found.extend(
            urllib.parse.urlsplit(u.get_secret_value()).hostname or "" for u in receiver.urls
        )
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yml")))
def test_example_loads_and_uses_only_placeholder_addresses(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.links
    # The lab configs also name loopback (the demo's receiver in the hub's namespace).
    lab = name.startswith("lab-")
    for address in map(ipaddress.ip_address, addresses(config)):
        assert address in PLACEHOLDERS or (lab and address.is_loopback), address
    for link in config.links:
        for probe in link.probes:
            probe.spec()


def test_nunukan_example_covers_the_kabupaten() -> None:
    config = load_config(EXAMPLES / "nunukan.yml")
    assert config.agent.timezone == "Asia/Makassar"
    assert config.site("pusat-dc").timezone == config.site("pusat-drc").timezone == "Asia/Jakarta"
    kecamatan = config.children("kab-nunukan")
    assert [site.name for site in kecamatan] == [f"Kecamatan {n}" for n in NUNUKAN_KECAMATAN]
    uplinks = {"kab-nunukan--dc", "kab-nunukan--drc"}
    assert {link.id for link in config.links_from("kab-nunukan")} == uplinks
    for link_id in uplinks:
        assert {p.kind for p in config.link(link_id).probes} == {"icmp", "tcp", "http"}
    parallel = 0
    for site in kecamatan:
        links = config.links_from(site.id)
        assert links and all(link.to_site == "kab-nunukan" for link in links)
        assert all(not link.depends_on for link in links)  # the agent reaches them directly
        assert all(isinstance(p, IcmpProbe) and p.size <= 32 for k in links for p in k.probes)
        parallel += len({link.network for link in links}) > 1
    assert parallel >= 2
    assert {link.network for link in config.links} >= {"m2m", "jip", "vpn", "starlink"}


def test_kaltim_example_covers_the_first_jip_members() -> None:
    config = load_config(EXAMPLES / "kaltim-jip.yml")
    members = config.children("prov-kaltim")
    assert [site.name.split(maxsplit=2)[-1] for site in members] == [
        "Samarinda",
        "Kutai Kartanegara",
        "Balikpapan",
        "Paser",
        "Bontang",
    ]
    for site in members:
        assert config.kabupaten_of(site.id) == site.id
        assert [link.network for link in config.links_from(site.id)] == ["jip"]
    assert {link.to_site for link in config.links_from("prov-kaltim")} == {"pusat-dc", "pusat-drc"}


# --------------------------------------------------------------------------- fuzzing


def exercise(config: Config) -> None:
    """What the daemon does with a config it got: nothing here may raise."""
    repr(config)
    config.model_dump_json()
    now = utc("2026-11-30T14:00")
    for site in config.sites:
        assert config.kabupaten_of(site.id) in (None, *(s.id for s in config.sites))
        assert site.zone.key == site.timezone
    for link in config.links:
        config.in_maintenance(link.id, now)
        config.kabupaten_of_link(link.id)
        for probe in link.probes:
            probe.spec()
            assert probe.timeout < probe.interval


def load_or_config_error(text: str) -> None:
    try:
        config = parse_config(text)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        return
    exercise(config)


FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(st.text(max_size=500))
def test_random_text_raises_only_config_error(text: str) -> None:
    load_or_config_error(text)


@FUZZ
@given(st.binary(max_size=500))
def test_random_bytes_raise_only_config_error(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".yml") as handle:
        handle.write(data)
        handle.flush()
        with contextlib.suppress(ConfigError):
            exercise(load_config(handle.name))


KEYS = sorted(
    {
        *("agent", "server", "storage", "defaults", "sites", "links", "alerting", "maintenance"),
        *("name", "timezone", "language", "listen", "web_config", "enable_reload", "path"),
        "metrics_detail",
        *("interval", "timeout", "icmp", "count", "spacing", "size", "down_after", "up_after"),
        *("degraded", "loss", "rtt", "service_hours", "days", "start", "end", "id", "kind"),
        *("parent", "from", "to", "network", "depends_on", "probes", "target", "source", "url"),
        *("interface", "expect_status", "body_match", "body_regex", "headers", "receivers"),
        *("urls", "send_resolved", "resend_interval", "flapping", "rollup", "outbox_max"),
        *("changes", "window", "share", "min_links", "links", "weekdays", "reason", "<<"),
    }
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "10s",
            "0s",
            "-1s",
            "1m30s",
            "500ms",
            "1e400h",
            "10",
            "icmp",
            "tcp",
            "http",
            "kabupaten",
            "kecamatan",
            "pusat",
            "vpn",
            "198.18.1.1",
            "::1",
            "[::1]:80",
            "198.18.1.1:443",
            "https://198.18.1.1/",
            "Asia/Makassar",
            "08:00",
            "2026-11-30 22:00",
            "${HOME}",
            "${LINKMON_NOT_SET}",
            "file:/nonexistent",
            "mon",
            "a\nb",
            "é" * 400,
        ]
    ),  # fmt: skip
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), STRUCTURES, max_size=8))
def test_random_structures_raise_only_config_error(document: dict[str, Any]) -> None:
    load_or_config_error(yaml.safe_dump(document, allow_unicode=True))


BASES = [
    yaml.safe_load((EXAMPLES / "nunukan.yml").read_text()),
    yaml.safe_load((TESTDATA / "good-full.yml").read_text()),
]


def node_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(node_paths(child, (*prefix, key)))
    return paths


@st.composite
def mangled_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A good config with up to three random edits: a key dropped, a value replaced by
    something of the wrong type (huge, unicode, newlines), an item duplicated, a key renamed."""
    document: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = node_paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        edit = draw(st.sampled_from(["drop", "replace", "duplicate", "rename"]))
        if edit == "drop":
            del parent[key]
        elif edit == "replace":
            parent[key] = draw(STRUCTURES | st.just("x" * 20_000) | st.just("\u202e\n\0\t"))
        elif edit == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif edit == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS) | st.text(max_size=8))] = parent.pop(key)
    return document


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=mangled_configs())
def test_mangled_good_configs_raise_only_config_error(
    document: dict[str, Any], secrets_env: None
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        config = parse_config(text, base_dir=TESTDATA)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        for secret in [*SECRETS.values(), FILE_SECRET]:
            assert secret not in str(exc)
        return
    exercise(config)


def test_environment_is_untouched_by_loading(secrets_env: None) -> None:
    before = dict(os.environ)
    load_config(TESTDATA / "good-full.yml")
    assert dict(os.environ) == before
