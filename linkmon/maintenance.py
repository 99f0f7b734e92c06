"""The maintenance calendar: when planned work covers a link.

A window is written in local time, one-off (``2026-11-30 22:00`` to ``2026-12-01 02:00``) or
weekly (weekdays and ``22:00`` to ``02:00``: an end before the start runs past midnight). The
state machine (no pages), the monitor (links shown in maintenance) and the report (time left
out of availability) all ask here, with plain values, so that the three agree on every minute.

Local time is the office's: a window that lists a link is read in the zone of the link's
``from`` site, one that lists a site in that site's zone, unless the window names a zone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal, Protocol, TypeAlias, TypeVar, get_args
from zoneinfo import ZoneInfo

Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
"""Monday first, as ``date.weekday()`` counts."""

Span: TypeAlias = tuple[datetime, datetime]
"""[start, end) in UTC."""


class PlannedWork(Protocol):
    """A maintenance window as the config holds it (``linkmon.config.MaintenanceWindow``):
    ``start``/``end`` are ``HH:MM`` when ``weekdays`` is set, else ``YYYY-MM-DD HH:MM``."""

    @property
    def links(self) -> Collection[str]: ...

    @property
    def sites(self) -> Collection[str]: ...

    @property
    def weekdays(self) -> Collection[str]: ...

    @property
    def start(self) -> str: ...

    @property
    def end(self) -> str: ...

    @property
    def timezone(self) -> str | None: ...


W = TypeVar("W", bound=PlannedWork)


def covering(
    windows: Iterable[W],
    link: str,
    ends: tuple[str, str],
    zone_of: Callable[[str], tzinfo],
    since: datetime,
    until: datetime,
) -> list[tuple[datetime, datetime, W]]:
    """Every span (UTC) of ``windows`` covering ``link`` (whose ``from`` and ``to`` sites are
    ``ends``) that overlaps [since, until), sorted by start; ``since == until`` asks for the
    spans covering that instant. ``zone_of`` gives a site's time zone."""
    for moment in (since, until):
        if moment.tzinfo is None:
            raise ValueError("since and until must be timezone-aware (UTC inside)")
    found: list[tuple[datetime, datetime, W]] = []
    for window in windows:
        zone = _zone(window, link, ends, zone_of)
        if zone is not None:
            spans = occurrences(window.start, window.end, window.weekdays, zone, since, until)
            found.extend((start, end, window) for start, end in spans)
    return sorted(found, key=lambda item: (item[0], item[1]))


def occurrences(
    start: str,
    end: str,
    weekdays: Collection[str],
    zone: tzinfo,
    since: datetime,
    until: datetime,
) -> list[Span]:
    """The spans (UTC) of one window, read in ``zone``, that overlap [since, until)."""
    spans: list[Span] = []
    if not weekdays:
        first = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
        last = datetime.strptime(end, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
        spans.append((first.astimezone(UTC), last.astimezone(UTC)))
    else:
        start_clock, end_clock = time.fromisoformat(start), time.fromisoformat(end)
        day = since.astimezone(zone).date() - timedelta(days=1)  # yesterday's may run past 0:00
        last_day = until.astimezone(zone).date()
        while day <= last_day:
            if WEEKDAYS[day.weekday()] in weekdays:
                end_day = day if end_clock > start_clock else day + timedelta(days=1)
                begins = datetime.combine(day, start_clock, tzinfo=zone)
                ends = datetime.combine(end_day, end_clock, tzinfo=zone)
                spans.append((begins.astimezone(UTC), ends.astimezone(UTC)))
            day += timedelta(days=1)
    if since == until:
        return [(s, e) for s, e in spans if s <= since < e]
    return [(s, e) for s, e in spans if s < until and e > since]


def _zone(
    window: PlannedWork, link: str, ends: tuple[str, str], zone_of: Callable[[str], tzinfo]
) -> tzinfo | None:
    """The time zone ``window`` is read in for ``link``, or None if it does not cover it."""
    from_site, to_site = ends
    if link in window.links or from_site in window.sites:
        site = from_site
    elif to_site in window.sites:
        site = to_site
    else:
        return None
    return ZoneInfo(window.timezone) if window.timezone else zone_of(site)
