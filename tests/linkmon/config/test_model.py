"""linkmon/config/model.py: good files load into the model with every value concrete, look-ups
by id and along the hierarchy answer, and the model is frozen."""

from __future__ import annotations

import socket
from datetime import time

import pytest

from linkmon.config import Config, HttpProbe, IcmpProbe, load_config, parse_config
from probes import HttpSpec, IcmpSpec
from tests.linkmon.config.cases import FILE_SECRET, LITERAL_SECRET, TESTDATA


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


@pytest.mark.parametrize("detail", ["full", "link"])
def test_metrics_detail_is_full_or_link(detail: str) -> None:
    text = (TESTDATA / "good-minimal.yml").read_text()
    config = parse_config(f"server: {{metrics_detail: {detail}}}\n{text}")
    assert config.server.metrics_detail == detail


def test_full_config_agent_server_storage(full: Config) -> None:
    assert full.agent.language == "en"
    assert (full.server.host, full.server.port) == ("::1", 0)
    assert full.server.web_config == TESTDATA / "web-config.yml"
    assert full.server.enable_reload is True
    assert full.storage.path == TESTDATA / "state" / "linkmon.db"


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
