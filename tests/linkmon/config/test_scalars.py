"""linkmon/config/scalars.py: each kind of value (ids, names, addresses, host:port, URLs,
durations, time zones, times of day, interface names, regular expressions) is refused with a
message that says what was expected and quotes what was given, clipped to one short line."""

from __future__ import annotations

import time as clock

import pytest

from linkmon.config import ConfigError, parse_config
from tests.linkmon.config.cases import Table, assert_refused, each_file

INVALID: Table = [
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
    (
        "invalid-degraded-rtt",
        [
            'defaults.degraded.rtt: needs a unit: write "300s" or "300ms", not a bare number',
        ],
    ),
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
    (
        "invalid-http-credentials",
        [
            "links[0].probes[0].url: must not carry credentials (the URL is exported as a label); "
            "use headers",
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
    (
        "invalid-icmp-interface",
        [
            "links[0].probes[0].interface: must be a network interface name (1-15 characters), "
            "got 'eth0/1'",
        ],
    ),
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
    (
        "invalid-link-id",
        [
            "links[0].id: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, got 'kab nunukan dc'",
        ],
    ),
    ("invalid-listen-port", ["server.listen: port must be a number from 0 to 65535, got 98400"]),
    ("invalid-listen", ['server.listen: must be "host:port" or "[IPv6]:port", got \'127.0.0.1\'']),
    (
        "invalid-maintenance-date",
        [
            'maintenance[0].start: must be "YYYY-MM-DD HH:MM" (one-off) or "HH:MM" (weekly), got '
            "'2026-02-30 22:00'",
        ],
    ),
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
        "invalid-receiver-header-name",
        [
            "alerting.receivers[0].headers[\"X Token\"]: invalid header name 'X Token'",
        ],
    ),
    (
        "invalid-receiver-timeout",
        [
            'alerting.receivers[0].timeout: needs a unit: write "5s" or "5ms", not a bare number',
        ],
    ),
    ("invalid-receiver-url", ["alerting.receivers[0].url: must be an http:// or https:// URL"]),
    (
        "invalid-service-hours-time",
        [
            'sites[1].service_hours.end: must be a time "HH:MM" such as "08:00", got \'24:30\'',
        ],
    ),
    (
        "invalid-site-name-newline",
        [
            "sites[0].name: must not contain line breaks or control characters",
        ],
    ),
    (
        "invalid-site-timezone",
        [
            "sites[2].timezone: unknown time zone 'WITA' (use an IANA name: Asia/Jakarta (WIB), "
            "Asia/Makassar (WITA), Asia/Jayapura (WIT))",
        ],
    ),
    (
        "invalid-source-not-ip",
        [
            "links[0].probes[0].source: must be an IPv4 or IPv6 address, got 'eth0'",
        ],
    ),
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
]


@each_file(INVALID)
def test_invalid_value_fails_with_exact_errors(name: str, expected: list[str]) -> None:
    assert_refused(name, expected)


def test_a_megabyte_value_is_refused_quickly() -> None:
    text = f"sites: [{{id: a, kind: pusat, name: '{'é' * 1_000_000}'}}]\n"
    started = clock.monotonic()
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == ["sites[0].name: must be at most 300 characters"]
    assert clock.monotonic() - started < 10


def test_a_long_value_is_clipped_in_the_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"agent: {{name: '{'x' * 70}/'}}\n")
    assert caught.value.errors == [
        "agent.name: must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
        f"digit, got '{'x' * 56}..."
    ]
