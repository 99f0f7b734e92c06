"""What people read: local times with WIB/WITA/WIT, durations, both languages."""

from __future__ import annotations

import pytest

from linkmon.alerts import text

T0 = 1_740_798_000.0  # 2025-03-01 03:00 UTC


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Jakarta", "10:00 WIB"),
        ("Asia/Makassar", "11:00 WITA"),
        ("Asia/Jayapura", "12:00 WIT"),
    ],
)
def test_clock_in_the_sites_zone(zone: str, shown: str) -> None:
    assert text.clock(T0, zone) == shown


def test_date_in_both_languages() -> None:
    assert text.date(T0, "Asia/Makassar", "id") == "1 Maret 2025 11:00 WITA"
    assert text.date(T0, "Asia/Makassar", "en") == "1 March 2025 11:00 WITA"


@pytest.mark.parametrize(
    ("seconds", "id_", "en"),
    [
        (0, "0 dtk", "0 s"),
        (45, "45 dtk", "45 s"),
        (11100, "3 j 5 m", "3 h 5 m"),
        (3 * 86400 + 7200, "3 hari 2 j", "3 d 2 h"),
    ],
)
def test_duration(seconds: float, id_: str, en: str) -> None:
    assert text.duration(seconds, "id") == id_
    assert text.duration(seconds, "en") == en


def test_link_down_and_restored_text() -> None:
    office = text.Place("Kecamatan Krayan", "Asia/Makassar")
    down = text.link_down(
        "id",
        link="kec-krayan--kab",
        office=office,
        peer="Disdukcapil Nunukan",
        network="m2m",
        cause="service_refused",
        detail="tcp 198.18.1.1:443: refused",
        since=T0,
    )
    assert down["summary"] == (
        "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan, m2m) putus sejak 11:00 WITA"
    )
    assert "menolak koneksi" in down["description"]
    assert "(tcp 198.18.1.1:443: refused)" in down["description"]
    up = text.link_restored(
        "en",
        link="kec-krayan--kab",
        office=office,
        peer="Disdukcapil Nunukan",
        since=T0,
        at=T0 + 4380,
    )
    assert up["summary"] == (
        "Link kec-krayan--kab (Kecamatan Krayan – Disdukcapil Nunukan) restored at 12:13 WITA"
    )
    assert "after 1 h 13 m down" in up["description"]


def test_unlisted_cause_is_shown_as_is() -> None:
    assert text.cause_text("upstream:kab-nunukan--dc", "id") == "upstream:kab-nunukan--dc"
    assert text.cause_text("path_down", "en") == "path down (no ping replies)"


def test_every_cause_is_written_in_both_languages() -> None:
    causes = {
        "path_down",
        "icmp_lost",
        "service_refused",
        "service_blocked",
        "http_status",
        "body_mismatch",
        "dns",
        "tls",
        "service_error",
        "loss",
        "rtt",
        "own_uplink",
        "own_lan",
        "agent_fault",
    }
    for language in text.LANGUAGES:
        assert all(text.cause_text(c, language) != c for c in causes)
