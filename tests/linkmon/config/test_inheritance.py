"""linkmon/config/inheritance.py: defaults flow to links, probes and sites; the checks that
involve two values apply to what each probe or office really runs with (issue #12, item 3),
and name where the values were written, or each probe they are wrong for."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from linkmon.config import (
    Config,
    ConfigError,
    HttpProbe,
    IcmpProbe,
    TcpProbe,
    load_config,
    parse_config,
)
from probes import TcpSpec
from tests.linkmon.config.cases import TESTDATA, Table, assert_refused, each_file

INVALID: Table = [
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
    ("invalid-interval-probe", ["links[0].probes[0].interval: must be greater than timeout 2s"]),
    ("invalid-service-hours-order", ["sites[1].service_hours.end: must be after start 15:00"]),
    ("invalid-timeout-defaults", ["defaults.timeout: must be less than interval 5s"]),
    ("invalid-timeout-link", ["links[0].timeout: must be less than interval 10s"]),
    ("invalid-timeout-probe", ["links[3].probes[0].timeout: must be less than interval 2s"]),
    # Issue #12 item 3 and the cross-checks audited with it: each message names where the
    # conflicting values were written, or the probe (office) they are wrong for.
    (
        "invalid-icmp-echoes-inherited",
        [
            "links[2].probes[0]: icmp count × spacing (5 × 100ms = 500ms) must be less than "
            "timeout 500ms",
        ],
    ),
    (
        "invalid-icmp-echoes-link-mixed",
        [
            "links[0].probes[1]: icmp count × spacing (5 × 100ms = 500ms) must be less than "
            "timeout 400ms",
        ],
    ),
    ("invalid-timeout-link-mixed", ["links[0].probes[1].timeout: must be less than interval 10s"]),
    ("invalid-interval-defaults", ["defaults.interval: must be greater than timeout 2s"]),
    ("invalid-service-hours-start", ["sites[1].service_hours.start: must be before end 15:00"]),
    ("invalid-service-hours-defaults", ["defaults.service_hours.end: must be after start 15:00"]),
]


@each_file(INVALID)
def test_conflicting_settings_fail_with_exact_errors(name: str, expected: list[str]) -> None:
    assert_refused(name, expected)


def test_a_short_timeout_is_no_error_where_no_probe_sends_echoes() -> None:
    """Issue #12 item 3 as reported: only TCP and HTTP probes, defaults 1s and 500ms."""
    config = load_config(TESTDATA / "good-echoes-unused.yml")
    for link in config.links:
        for probe in link.probes:
            assert (probe.interval, probe.timeout) == (1, 0.5)
    assert config.link("kab-nunukan--dc").probes[0].spec() == TcpSpec(host="198.18.1.1", port=443)


def test_timing_is_checked_on_what_each_probe_runs_with() -> None:
    config = load_config(TESTDATA / "good-timing-overridden.yml")
    assert [(p.interval, p.timeout) for link in config.links for p in link.probes] == [
        (5, 2),
        (20, 15),
        (60, 15),
    ]


def test_echoes_are_checked_on_what_each_icmp_probe_runs_with() -> None:
    config = load_config(TESTDATA / "good-echoes-overridden.yml")
    dc, drc = config.links
    (long_timeout,) = dc.probes
    few_echoes, tcp = drc.probes
    assert isinstance(long_timeout, IcmpProbe) and isinstance(few_echoes, IcmpProbe)
    assert (long_timeout.count, long_timeout.spacing, long_timeout.timeout) == (30, 0.1, 5)
    assert (few_echoes.count, few_echoes.spacing, few_echoes.timeout) == (3, 0.1, 0.4)
    assert isinstance(tcp, TcpProbe) and tcp.timeout == 0.4


def test_service_hours_are_checked_on_what_each_office_keeps() -> None:
    config = load_config(TESTDATA / "good-service-hours-overridden.yml")
    assert [(site.service_hours.start, site.service_hours.end) for site in config.sites] == [
        (time(0, 0), time(23, 59)),
        (time(7, 30), time(16, 0)),
    ]


def kecamatan(defaults: str, count: int, probe: str = "", uplink: str = "") -> str:
    """A kabupaten config: ``count`` kecamatan links with one ICMP probe each (with the keys
    ``probe``) and, if given, an uplink to pusat with the probe ``uplink``."""
    sites = ["{id: pusat-dc, kind: pusat}", "{id: kab-nunukan, kind: kabupaten}"]
    links = []
    for i in range(count):
        sites.append(f"{{id: kec-{i}, kind: kecamatan, parent: kab-nunukan}}")
        links.append(
            f"{{id: kec-{i}--kab, from: kec-{i}, to: kab-nunukan, network: m2m,"
            f" probes: [{{kind: icmp, target: 198.18.10.{i}{probe}}}]}}"
        )
    if uplink:
        links.append(
            f"{{id: kab--dc, from: kab-nunukan, to: pusat-dc, network: vpn, probes: [{uplink}]}}"
        )
    return "".join(
        [f"defaults: {defaults}\nsites:\n"]
        + [f"  - {site}\n" for site in sites]
        + ["links:\n"]
        + [f"  - {link}\n" for link in links]
    )


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.errors


def test_a_default_wrong_for_every_probe_that_takes_it_is_one_error() -> None:
    assert errors_of(kecamatan("{timeout: 500ms}", 21)) == [
        "defaults: icmp count × spacing (5 × 100ms = 500ms) must be less than timeout 500ms"
    ]


def test_a_default_wrong_for_some_probes_names_each_of_them() -> None:
    """The TCP uplink is fine with the default timeout: it is the ICMP probes that cannot
    fit their echoes in it."""
    text = kecamatan("{timeout: 500ms}", 3, uplink='{kind: tcp, target: "198.18.1.1:443"}')
    assert errors_of(text) == [
        f"links[{i}].probes[0]: icmp count × spacing (5 × 100ms = 500ms) must be less than "
        "timeout 500ms"
        for i in range(3)
    ]


def test_a_probe_that_writes_one_of_the_values_is_named() -> None:
    text = kecamatan("{timeout: 500ms}", 2, probe=", count: 2, timeout: 150ms")
    assert errors_of(text) == [
        f"links[{i}].probes[0]: icmp count × spacing (2 × 100ms = 200ms) must be less than "
        "timeout 150ms"
        for i in range(2)
    ]


def test_a_conflict_in_a_broken_defaults_section_waits_for_its_fix() -> None:
    """defaults.down_after is wrong: the timeout beside it is judged once the section loads."""
    text = kecamatan("{timeout: 500ms, down_after: 0}", 1)
    assert errors_of(text) == ["defaults.down_after: must be at least 1"]


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


DURATIONS = st.sampled_from(["100ms", "300ms", "500ms", "1s", "2s", "5s", "10s"])
SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "interval": DURATIONS,
        "timeout": DURATIONS,
        "icmp": st.fixed_dictionaries(
            {}, optional={"count": st.integers(1, 10), "spacing": DURATIONS}
        ),
    },
)
PROBE = st.fixed_dictionaries(
    {"kind": st.just("tcp")}, optional={"interval": DURATIONS, "timeout": DURATIONS}
) | st.fixed_dictionaries(
    {"kind": st.just("icmp")},
    optional={"interval": DURATIONS, "timeout": DURATIONS, "count": st.integers(1, 10)},
)


def seconds(text: str) -> float:
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def runs_with(levels: list[dict[str, Any]]) -> dict[str, float]:
    """What a probe runs with, worked out independently: the last level that sets a value
    wins, ``icmp:`` of defaults and links stands for the probe's own keys."""
    values = {"interval": 10.0, "timeout": 2.0, "count": 5.0, "spacing": 0.1}
    for level in levels:
        flat = {**level.get("icmp", {}), **{k: v for k, v in level.items() if k != "icmp"}}
        for key in values:
            if key in flat:
                value = flat[key]
                values[key] = seconds(value) if isinstance(value, str) else float(value)
    return values


@settings(max_examples=300, deadline=None)
@given(
    defaults=SETTINGS,
    links=st.lists(st.tuples(SETTINGS, st.lists(PROBE, min_size=1, max_size=3)), max_size=3),
)
def test_a_config_loads_exactly_when_every_probe_can_run_with_what_it_inherits(
    defaults: dict[str, Any], links: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> None:
    document: dict[str, Any] = {
        "defaults": defaults,
        "sites": [{"id": "a", "kind": "kabupaten"}, {"id": "b", "kind": "pusat"}],
        "links": [],
    }
    can_run = True
    for i, (link, probes) in enumerate(links):
        targets = [
            {**p, "target": f"198.18.{i}.{j}" if p["kind"] == "icmp" else f"198.18.{i}.{j}:443"}
            for j, p in enumerate(probes)
        ]
        document["links"].append(
            {"id": f"l{i}", "from": "a", "to": "b", "network": "vpn", **link, "probes": targets}
        )
        for probe in probes:
            values = runs_with([defaults, link, probe])
            can_run &= values["timeout"] < values["interval"]
            if probe["kind"] == "icmp":
                can_run &= values["count"] * values["spacing"] < values["timeout"]
    text = yaml.safe_dump(document)
    if can_run:
        parse_config(text)
    else:
        errors = errors_of(text)
        assert errors
        assert all("must be less than" in e or "must be greater than" in e for e in errors)
