"""Facts in, words out: the composer turns the state machine's alert changes into the alerts
receivers get — labels, fingerprint, group, and text in Bahasa Indonesia or English with the
time in the office's own zone (WIB, WITA, WIT); a removed subject's resolve in the agent's."""

from __future__ import annotations

import pytest

from linkmon.alerts.compose import Composer
from linkmon.alerts.model import Alert
from linkmon.config import parse_config
from linkmon.state import AlertChange, AlertKey, AlertKind, LinkRule, ProbeRule, Rules, SiteRule
from tests.support.alerting import SILENT, Agent

T0 = 1_740_798_000.0  # 2025-03-01 03:00 UTC: 10:00 WIB, 11:00 WITA, 12:00 WIT
LATER = T0 + 4380  # 1 h 13 m on
ICMP = (ProbeRule("icmp", "198.18.10.2"),)
ZONES = [
    ("Asia/Jakarta", "10:00 WIB", "11:13 WIB"),
    ("Asia/Makassar", "11:00 WITA", "12:13 WITA"),
    ("Asia/Jayapura", "12:00 WIT", "13:13 WIT"),
]
KECAMATAN = ("kec-krayan", "kec-lumbis", "kec-sebuku", "kec-sebatik", "kec-lumbis-ogong")

DOWN = AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab")
FLAPPING = AlertKey(AlertKind.LINK_FLAPPING, "kec-krayan--kab")
SERVICE = AlertKey(AlertKind.SERVICE_UNAVAILABLE, "kec-krayan")
REGION = AlertKey(AlertKind.REGIONAL_INCIDENT, "kab-nunukan")


def network_rules(zone: str, *, without: str = "") -> Rules:
    """Kabupaten Nunukan in ``zone``; ``without``: a kecamatan left out of the config."""
    sites = [
        SiteRule("pusat-dc", "pusat", "Data Center Ditjen Dukcapil", "Asia/Jakarta"),
        SiteRule("kab-nunukan", "kabupaten", "Disdukcapil Nunukan", zone, "kab-nunukan"),
        *(
            SiteRule(k, "kecamatan", f"Kecamatan {k[4:].title()}", zone, "kab-nunukan")
            for k in KECAMATAN
            if k != without
        ),
    ]
    links = [
        LinkRule("kab-nunukan--dc", "kab-nunukan", "pusat-dc", "vpn", ICMP),
        *(
            LinkRule(f"{k}--kab", k, "kab-nunukan", "m2m", ICMP, ("kab-nunukan--dc",))
            for k in KECAMATAN
            if k != without
        ),
    ]
    return Rules("kab-nunukan", {s.id: s for s in sites}, {link.id: link for link in links})


def resolve(key: AlertKey, removed: bool = False) -> AlertChange:
    return AlertChange(key, False, T0, LATER, removed=removed)


# Each kind as the state machine fires it: began at T0, decided 5 s later.
FIRINGS = {
    DOWN: AlertChange(DOWN, True, T0, T0 + 5, "path_down", "icmp 198.18.10.2: timeout"),
    FLAPPING: AlertChange(FLAPPING, True, T0, T0 + 5, "flapping", changes=7, window=600.0),
    SERVICE: AlertChange(
        SERVICE, True, T0, T0 + 5, "no_path", links=("kec-krayan--kab", "kec-krayan--kab-vsat")
    ),
    REGION: AlertChange(
        REGION, True, T0, T0 + 5, "path_down", down=3, total=5, offices=KECAMATAN[:3]
    ),
}
TEXTS = {
    "id": {
        DOWN: (
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan, m2m) putus sejak {at}",
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) pulih pukul {end}",
        ),
        FLAPPING: (
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) tidak stabil sejak {at}",
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) stabil kembali pukul "
            "{end}",
        ),
        SERVICE: (
            "Kecamatan Krayan tidak dapat melayani secara online sejak {at}",
            "Kecamatan Krayan dapat melayani online lagi pukul {end}",
        ),
        REGION: (
            "Gangguan wilayah Disdukcapil Nunukan: 3 dari 5 link kecamatan putus sejak {at}",
            "Gangguan wilayah Disdukcapil Nunukan selesai pukul {end}",
        ),
    },
    "en": {
        DOWN: (
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan, m2m) down since {at}",
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) restored at {end}",
        ),
        FLAPPING: (
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) flapping since {at}",
            "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) stable again at {end}",
        ),
        SERVICE: (
            "Kecamatan Krayan cannot serve online since {at}",
            "Kecamatan Krayan can serve online again at {end}",
        ),
        REGION: (
            "Regional incident Disdukcapil Nunukan: 3 of 5 kecamatan links down since {at}",
            "Regional incident Disdukcapil Nunukan over at {end}",
        ),
    },
}
DESCRIPTIONS = {
    "id": {
        DOWN: "Kecamatan Krayan tidak terhubung ke Disdukcapil Nunukan melalui m2m sejak "
        "1 Maret 2025 {at}. Penyebab: jalur putus (tidak ada balasan ping). "
        "(icmp 198.18.10.2: timeout)",
        FLAPPING: "Link kec-krayan--kab berubah status 7 kali dalam 10 m. Peringatan per "
        "perubahan ditahan sampai link stabil.",
        SERVICE: "Tidak ada jalur dari Kecamatan Krayan ke pusat (DC maupun DRC) sejak "
        "1 Maret 2025 {at}. Link putus: kec-krayan--kab, kec-krayan--kab-vsat.",
        REGION: "3 dari 5 link kecamatan di Disdukcapil Nunukan putus bersamaan sejak "
        "1 Maret 2025 {at}. Penyebab utama: jalur putus (tidak ada balasan ping). "
        "Kecamatan: Kecamatan Krayan, Kecamatan Lumbis, Kecamatan Sebuku.",
    },
    "en": {
        DOWN: "Kecamatan Krayan has no connection to Disdukcapil Nunukan over m2m since "
        "1 March 2025 {at}. Cause: path down (no ping replies). (icmp 198.18.10.2: timeout)",
        FLAPPING: "Link kec-krayan--kab changed state 7 times within 10 m. Per-change alerts "
        "are held until the link is stable.",
        SERVICE: "No path from Kecamatan Krayan to pusat (neither DC nor DRC) since "
        "1 March 2025 {at}. Links down: kec-krayan--kab, kec-krayan--kab-vsat.",
        REGION: "3 of 5 kecamatan links in Disdukcapil Nunukan went down together since "
        "1 March 2025 {at}. Main cause: path down (no ping replies). "
        "Kecamatan: Kecamatan Krayan, Kecamatan Lumbis, Kecamatan Sebuku.",
    },
}


@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize(("zone", "at", "end"), ZONES)
@pytest.mark.parametrize("key", [DOWN, FLAPPING, SERVICE, REGION], ids=str)
def test_each_kind_fires_and_resolves_in_the_offices_language_and_zone(
    language: str, zone: str, at: str, end: str, key: AlertKey
) -> None:
    composer = Composer(network_rules(zone), language=language, timezone="Asia/Makassar")
    [firing] = composer.compose([FIRINGS[key]])
    summary, restored = TEXTS[language][key]
    assert firing.annotations["summary"] == summary.format(at=at)
    assert firing.annotations["description"] == DESCRIPTIONS[language][key].format(at=at)
    assert (firing.key, firing.starts_at, firing.ends_at) == (str(key), T0, None)
    assert composer.firing() == [firing]
    [resolved] = composer.compose([resolve(key)])
    assert resolved.annotations["summary"] == restored.format(end=end)
    assert ("1 j 13 m" if language == "id" else "1 h 13 m") in resolved.annotations["description"]
    assert (resolved.labels, resolved.fingerprint) == (firing.labels, firing.fingerprint)
    assert (resolved.starts_at, resolved.ends_at, resolved.group) == (T0, LATER, firing.group)
    assert composer.firing() == []


def test_labels_and_group_of_each_kind() -> None:
    composer = Composer(network_rules("Asia/Makassar"), language="id", timezone="Asia/Makassar")
    by_key = {a.key: a for a in composer.compose(list(FIRINGS.values()))}
    down = by_key["LinkDown/kec-krayan--kab"]
    assert down.labels == {
        "alertname": "LinkDown",
        "agent": "kab-nunukan",
        "link": "kec-krayan--kab",
        "site": "kec-krayan",
        "kabupaten": "kab-nunukan",
        "network": "m2m",
        "severity": "critical",
        "cause": "path_down",
    }
    assert down.group == "link:kec-krayan--kab"
    flapping = by_key["LinkFlapping/kec-krayan--kab"]
    assert (flapping.labels["severity"], flapping.labels["cause"]) == ("warning", "flapping")
    assert flapping.group == "link:kec-krayan--kab"  # ordered with the link's LinkDown
    service = by_key["ServiceUnavailable/kec-krayan"]
    assert service.labels == {
        "alertname": "ServiceUnavailable",
        "agent": "kab-nunukan",
        "site": "kec-krayan",
        "kabupaten": "kab-nunukan",
        "severity": "critical",
        "cause": "no_path",
    }
    assert service.group == "site:kec-krayan"
    region = by_key["RegionalIncident/kab-nunukan"]
    assert region.labels == {
        "alertname": "RegionalIncident",
        "agent": "kab-nunukan",
        "site": "kab-nunukan",
        "kabupaten": "kab-nunukan",
        "severity": "critical",
        "cause": "path_down",
    }
    assert region.group == "kabupaten:kab-nunukan"


@pytest.mark.parametrize(
    ("language", "zone", "link_text", "office_text"),
    [
        (
            "id",
            "Asia/Jakarta",
            "Link kec-krayan--kab dihapus dari konfigurasi pada 1 Maret 2025 11:13 WIB.",
            "Kantor kec-krayan dihapus dari konfigurasi pada 1 Maret 2025 11:13 WIB.",
        ),
        (
            "en",
            "Asia/Makassar",
            "Link kec-krayan--kab was removed from the configuration on 1 March 2025 12:13 WITA.",
            "Office kec-krayan was removed from the configuration on 1 March 2025 12:13 WITA.",
        ),
        (
            "id",
            "Asia/Jayapura",
            "Link kec-krayan--kab dihapus dari konfigurasi pada 1 Maret 2025 13:13 WIT.",
            "Kantor kec-krayan dihapus dari konfigurasi pada 1 Maret 2025 13:13 WIT.",
        ),
    ],
)
def test_a_removed_link_or_office_is_resolved_as_removed_in_the_agents_zone(
    language: str, zone: str, link_text: str, office_text: str
) -> None:
    """The office is gone from the config, so is its zone: the agent's own zone dates it."""
    composer = Composer(network_rules("Asia/Makassar"), language=language, timezone=zone)
    down, service = composer.compose([FIRINGS[DOWN], FIRINGS[SERVICE]])
    composer.reconfigure(
        network_rules(zone, without="kec-krayan"), language=language, timezone=zone
    )
    gone = composer.compose([resolve(DOWN, removed=True), resolve(SERVICE, removed=True)])
    assert [a.annotations for a in gone] == [
        {"summary": link_text, "description": link_text},
        {"summary": office_text, "description": office_text},
    ]
    assert [(a.labels, a.fingerprint, a.ends_at) for a in gone] == [
        (down.labels, down.fingerprint, LATER),
        (service.labels, service.fingerprint, LATER),
    ]


def test_a_removed_regions_incident_says_it_is_no_longer_watched() -> None:
    composer = Composer(network_rules("Asia/Jayapura"), language="en", timezone="Asia/Jayapura")
    composer.compose([FIRINGS[REGION]])
    [gone] = composer.compose([resolve(REGION, removed=True)])
    assert gone.annotations["summary"] == (
        "Regional incident kab-nunukan no longer watched: its kecamatan links were removed "
        "from the configuration on 1 March 2025 13:13 WIT."
    )


def test_a_restart_resolves_with_the_labels_storage_kept() -> None:
    """A reload renamed the office since: the resolve still carries the firing's identity."""
    before = Composer(network_rules("Asia/Makassar"), language="id", timezone="Asia/Makassar")
    [firing] = before.compose([FIRINGS[DOWN]])
    stored = Alert.from_json(firing.to_json())
    renamed = network_rules("Asia/Makassar")
    sites = {
        **renamed.sites,
        "kec-krayan": SiteRule(
            "kec-krayan", "kecamatan", "Krayan Induk", "Asia/Makassar", "kab-nunukan"
        ),
    }
    after = Composer(
        Rules(renamed.agent, sites, renamed.links),
        language="id",
        timezone="Asia/Makassar",
        firing=[stored],
    )
    assert after.began() == {DOWN: T0}
    [resolved] = after.compose([resolve(DOWN)])
    assert (resolved.labels, resolved.fingerprint) == (firing.labels, firing.fingerprint)
    assert resolved.annotations["summary"].startswith("Link kec-krayan--kab (Krayan Induk")


def test_a_real_configs_outage_in_english() -> None:
    config = parse_config("""
agent: {name: kab-nunukan, timezone: Asia/Makassar, language: en}
sites:
  - {id: pusat-dc, kind: pusat, name: Data Center Ditjen Dukcapil, timezone: Asia/Jakarta}
  - {id: prov-kaltara, kind: provinsi, name: Kalimantan Utara}
  - {id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan, parent: prov-kaltara}
  - {id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}
links:
  - {id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m, down_after: 2,
     probes: [{kind: icmp, target: 198.18.10.2}]}
""")
    agent = Agent.from_config(config)
    alerts = [
        alert
        for at in (T0, T0 + 1)
        for alert in agent.step(agent.net.observe("kec-krayan--kab", 0, SILENT, at)).alerts
    ]
    [alert] = alerts
    assert alert.labels["kabupaten"] == "kab-nunukan"
    assert alert.annotations["summary"] == (
        "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan, m2m) down since 11:00 WITA"
    )
