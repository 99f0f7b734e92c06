"""linkmon/maintenance.py: when planned work covers a link, in the local time of the office
(WIB, WITA, WIT) or of the zone the window names; one-off windows, weekly ones, and weekly ones
that run past midnight. First the calendar with plain values, then through the config, as the
state machine, the monitor and the report ask it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from linkmon.config import Config, load_config
from linkmon.maintenance import covering, occurrences
from tests.linkmon.config.cases import SECRETS, TESTDATA, utc

WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")


@dataclass(frozen=True)
class Window:
    """A window as the calendar needs it, without the config around it."""

    start: str
    end: str
    weekdays: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    timezone: str | None = None


def test_a_one_off_window_is_one_span_in_local_time() -> None:
    """22:00 WITA (UTC+8) on 30 Nov 2026 to 02:00 the next day: 14:00 to 18:00 UTC."""
    month = (utc("2026-11-01T00:00"), utc("2026-12-01T00:00"))
    assert occurrences("2026-11-30 22:00", "2026-12-01 02:00", (), WITA, *month) == [
        (utc("2026-11-30T14:00"), utc("2026-11-30T18:00"))
    ]
    later = (utc("2026-12-01T00:00"), utc("2027-01-01T00:00"))
    assert occurrences("2026-11-30 22:00", "2026-12-01 02:00", (), WITA, *later) == []


def test_a_weekly_window_past_midnight_counts_the_day_it_starts() -> None:
    """Sunday 22:00 to Monday 02:00 WIT (UTC+9); asked from Monday 00:00 local, Sunday's
    window is still on."""
    monday = utc("2026-11-29T15:00")  # Monday 30 Nov, 00:00 WIT
    spans = occurrences("22:00", "02:00", ("sun",), WIT, monday, monday)
    assert spans == [(utc("2026-11-29T13:00"), utc("2026-11-29T17:00"))]
    week = occurrences("22:00", "02:00", ("sun",), WIT, monday, monday + timedelta(days=7))
    assert [start for start, _ in week] == [utc("2026-11-29T13:00"), utc("2026-12-06T13:00")]


def test_an_instant_is_covered_from_the_start_up_to_the_end() -> None:
    start, end = utc("2026-11-30T14:00"), utc("2026-11-30T18:00")
    for moment, covered in ((start, True), (end - timedelta(seconds=1), True), (end, False)):
        spans = occurrences("2026-11-30 22:00", "2026-12-01 02:00", (), WITA, moment, moment)
        assert bool(spans) is covered, moment


def test_a_window_covers_a_link_by_id_or_by_either_site() -> None:
    """By id or by its ``from`` site: read in the from site's zone; by its ``to`` site: in the
    to site's zone; a zone named by the window wins."""
    zones = {"kec-krayan": WITA, "kota-jayapura": WIT}
    day = (utc("2026-11-29T12:00"), utc("2026-11-30T12:00"))
    ends = ("kec-krayan", "kota-jayapura")
    by_link = Window("2026-11-30 08:00", "2026-11-30 09:00", links=("l1",))
    by_to = Window("2026-11-30 08:00", "2026-11-30 09:00", sites=("kota-jayapura",))
    in_wib = Window("2026-11-30 08:00", "2026-11-30 09:00", sites=("kota-jayapura",),
                    timezone="Asia/Jakarta")  # fmt: skip
    other = Window("2026-11-30 08:00", "2026-11-30 09:00", links=("l2",))
    found = covering([by_link, by_to, in_wib, other], "l1", ends, zones.__getitem__, *day)
    assert found == [
        (utc("2026-11-29T23:00"), utc("2026-11-30T00:00"), by_to),
        (utc("2026-11-30T00:00"), utc("2026-11-30T01:00"), by_link),
        (utc("2026-11-30T01:00"), utc("2026-11-30T02:00"), in_wib),
    ]


def test_the_calendar_wants_aware_times() -> None:
    window = Window("2026-11-30 08:00", "2026-11-30 09:00", links=("l1",))
    naive = utc("2026-11-30T08:00").replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        covering([window], "l1", ("a", "b"), lambda site: WITA, naive, naive)


# ---- through the config


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch) -> Config:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return load_config(TESTDATA / "good-full.yml")


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
