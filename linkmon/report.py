"""A month's availability per link and per office, from the outage history (`linkmon report`).

The figures a Diskominfo needs to hold a telco to its SLA and to report upward:
availability %, number of outages, total downtime, longest outage and MTTR, both around the
clock (24×7) and within each office's service hours (``service_hours``, local time, working
days). How they are counted:

- The month is the office's own calendar month (a link's office is its ``from`` site):
  November in Krayan (WITA) starts an hour after November in Jakarta (WIB). For the running
  month, it ends now.
- A link is out while it is down or unreachable (behind a failed upstream link) — out of
  service as seen from this agent. An office is out while it has no path to pusat (DC or
  DRC) over links that are in service; via the DRC only still counts as serving. Offices are
  judged by :mod:`linkmon.topology`, as the live state judges them: time when the office's
  best path runs over a link that was not judged (no data, or the agent blind behind its own
  uplink) is not measured, neither available nor down.
- Maintenance windows are excluded: their time counts neither as measured time nor as
  downtime. For an office, the windows of its own links and of the links of the sites above
  it (its kabupaten, province) count.
- An outage counts once in a month (and in each month it spans) if any of it falls inside
  the measured time; its downtime, and the longest, are what falls inside. MTTR is downtime
  divided by the number of outages.
- Time linkmon was not running counts as available: the history only knows what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from .config import WEEKDAYS, Config, ServiceHours, Site
from .state import LinkState
from .storage import Storage
from .topology import NOT_MONITORED, Availability, Topology

Span = tuple[float, float]

# ------------------------------------------------------------------------------ time spans


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, with overlapping and touching spans joined; empty spans dropped."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Where both merged span lists cover."""
    found: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            found.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


def subtract(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """What of merged ``a`` merged ``b`` does not cover."""
    left: list[Span] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > start:
                left.append((start, b[k][0]))
            start = max(start, b[k][1])
            k += 1
        if start < end:
            left.append((start, end))
    return left


def total(spans: Iterable[Span]) -> float:
    return sum(end - start for start, end in spans)


# ------------------------------------------------------------------------------ figures


@dataclass(frozen=True, slots=True)
class Figures:
    """One link or office over one set of hours (24×7, or service hours); seconds."""

    measured: float
    downtime: float
    outages: int
    longest: float
    maintenance: float

    @property
    def availability(self) -> float | None:
        """Share of the measured time in service; None when nothing was measured."""
        return None if self.measured <= 0 else 1.0 - self.downtime / self.measured

    @property
    def mttr(self) -> float | None:
        return self.downtime / self.outages if self.outages else None


def figures(
    out: Sequence[Span],
    hours: Sequence[Span],
    maintenance: Sequence[Span],
    unknown: Sequence[Span] = (),
) -> Figures:
    """Count ``out`` within ``hours`` outside ``maintenance`` and ``unknown`` (not measured);
    all merged."""
    measured = subtract(subtract(hours, maintenance), unknown)
    parts = [total(intersect([span], measured)) for span in out]
    counted = [part for part in parts if part > 0]
    return Figures(
        total(measured),
        sum(counted),
        len(counted),
        max(counted, default=0.0),
        total(intersect(hours, maintenance)),
    )


def month_span(year: int, month: int, zone: ZoneInfo) -> Span:
    """The calendar month in ``zone`` as UTC timestamps [start, end)."""
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start.timestamp(), end.timestamp()


def service_spans(hours: ServiceHours, zone: ZoneInfo, period: Span) -> list[Span]:
    """The service hours (local working days) that fall in ``period``."""
    day = datetime.fromtimestamp(period[0], zone).date()
    last = datetime.fromtimestamp(period[1], zone).date()
    spans: list[Span] = []
    while day <= last:
        if WEEKDAYS[day.weekday()] in hours.days:
            spans.append(
                (
                    datetime.combine(day, hours.start, zone).timestamp(),
                    datetime.combine(day, hours.end, zone).timestamp(),
                )
            )
        day += timedelta(days=1)
    return intersect(merge(spans), [period])


# ------------------------------------------------------------------------------ the report


@dataclass(frozen=True, slots=True)
class Maintenance:
    link: str
    start: float
    end: float
    reason: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Row:
    """A link or an office with its month's figures, 24×7 and within service hours."""

    scope: Literal["link", "office"]
    id: str
    name: str
    group: str
    timezone: str
    period: Span
    full: Figures
    service: Figures


@dataclass(frozen=True, slots=True)
class Group:
    """A kabupaten/kota (or a site outside one, such as a province hub) and its rows."""

    id: str
    name: str
    offices: list[Row] = field(default_factory=list)
    links: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    agent: str
    timezone: str
    year: int
    month: int
    generated: float
    partial: bool
    groups: list[Group]
    maintenance: list[Maintenance]


class MonthNotBegun(ValueError):
    """The month asked for lies in the future: there is nothing to count yet."""


def _group_of(config: Config, site: Site) -> str:
    return config.kabupaten_of(site.id) or site.id


class _Builder:
    def __init__(self, config: Config, storage: Storage, year: int, month: int, now: float) -> None:
        self.config = config
        self.now = now
        self.periods: dict[str, Span] = {}
        for site in config.sites:
            start, end = month_span(year, month, site.zone)
            self.periods[site.id] = (start, min(end, now))
        live = [p for p in self.periods.values() if p[1] > p[0]]
        if not live:
            raise MonthNotBegun(f"{year}-{month:02d} has not begun yet")
        self.lo = min(p[0] for p in live)
        self.hi = max(p[1] for p in live)
        self.out: dict[str, list[Span]] = {link.id: [] for link in config.links}
        for outage in storage.outages(self.lo, self.hi):
            if outage.link in self.out:
                end = outage.end if outage.end is not None else now
                self.out[outage.link].append((max(outage.start, self.lo), min(end, self.hi)))
        self.out = {link: merge(spans) for link, spans in self.out.items()}
        self.unknown = self._unknown(storage)
        self.maintenance_log: list[Maintenance] = []
        self.link_maintenance = {link.id: self._maintenance(link.id) for link in config.links}

    def _unknown(self, storage: Storage) -> dict[str, list[Span]]:
        """When each link was not judged (no data, or the agent blind behind its own uplink):
        from a transition into UNKNOWN to the next transition of that link."""
        began = {
            link: self.lo
            for link, state in storage.states_at(self.lo).items()
            if state is LinkState.UNKNOWN and link in self.out
        }
        spans: dict[str, list[Span]] = {link: [] for link in self.out}
        for move in storage.transitions(self.lo, self.hi):
            if move.link not in spans:
                continue
            start = began.pop(move.link, None)
            if start is not None:
                spans[move.link].append((start, move.at))
            if move.new is LinkState.UNKNOWN:
                began[move.link] = move.at
        for link, start in began.items():
            spans[link].append((start, self.hi))
        return {link: merge(found) for link, found in spans.items()}

    def _maintenance(self, link_id: str) -> list[Span]:
        link = self.config.link(link_id)
        office = self.config.site(link.from_site)
        start, end = self.periods[office.id]
        if end <= start:
            return []
        spans = []
        for begin, finish, window in self.config.maintenance_periods(
            link_id, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        ):
            span = (max(begin.timestamp(), start), min(finish.timestamp(), end))
            spans.append(span)
            self.maintenance_log.append(Maintenance(link_id, *span, window.reason, office.timezone))
        return merge(spans)

    def link_row(self, link_id: str) -> Row | None:
        link = self.config.link(link_id)
        office = self.config.site(link.from_site)
        return self._row(
            "link", link.id, link.id, office, self.out[link.id], self.link_maintenance[link.id]
        )

    def office_row(self, site: Site, out: list[Span], unknown: list[Span]) -> Row | None:
        links: set[str] = set()
        chain = [site.id]  # the office, then the sites above it
        while (parent := self.config.site(chain[-1]).parent) and parent not in chain:
            chain.append(parent)
        for site_id in chain:
            links |= {link.id for link in self.config.links_from(site_id)}
        maintenance = merge(span for link in links for span in self.link_maintenance[link])
        return self._row("office", site.id, site.name, site, out, maintenance, unknown)

    def _row(
        self,
        scope: Literal["link", "office"],
        row_id: str,
        name: str,
        office: Site,
        out: list[Span],
        maintenance: list[Span],
        unknown: Sequence[Span] = (),
    ) -> Row | None:
        period = self.periods[office.id]
        if period[1] <= period[0]:
            return None
        zone = office.zone
        return Row(
            scope,
            row_id,
            name,
            _group_of(self.config, office),
            office.timezone,
            period,
            figures(out, [period], maintenance, unknown),
            figures(out, service_spans(office.service_hours, zone, period), maintenance, unknown),
        )

    def offices(self) -> dict[str, tuple[list[Span], list[Span]]]:
        """When each office was out (no path to pusat over links in service) and when its
        best path was not known, judged as the live state judges it (:mod:`linkmon.topology`);
        offices without a path even when every link is up are left out (not watched here).

        Each area of the network (typically a kabupaten) is swept on its own, from one moment
        a link of it went out, came back or turned unknown to the next.
        """
        config = self.config
        topology = Topology(
            {site.id: site.kind for site in config.sites},
            [(link.id, link.from_site, link.to_site) for link in config.links],
        )
        found: dict[str, tuple[list[Span], list[Span]]] = {}
        for area in topology.areas():
            found.update(self._sweep(area))
        return found

    def _sweep(self, area: Topology) -> dict[str, tuple[list[Span], list[Span]]]:
        changes = sorted(
            (moment, +1 if i == 0 else -1, which, link)
            for link in area.links()
            for which, spans in enumerate((self.out[link], self.unknown[link]))
            for span in spans
            for i, moment in enumerate(span)
        )
        watched = [office for office, reach in area.reach().items() if reach is not NOT_MONITORED]
        found: dict[str, tuple[list[Span], list[Span]]] = {office: ([], []) for office in watched}
        cache: dict[tuple[frozenset[str], frozenset[str]], dict[str, Availability]] = {}
        links: tuple[set[str], set[str]] = (set(), set())  # out, unknown
        for index, (moment, step, which, link) in enumerate(changes):
            if step > 0:
                links[which].add(link)
            else:
                links[which].discard(link)
            following = changes[index + 1][0] if index + 1 < len(changes) else moment
            if not (links[0] or links[1]) or following <= moment:
                continue
            key = (frozenset(links[0]), frozenset(links[1]))
            if key not in cache:
                reach = area.reach(*key)
                cache[key] = {office: reach[office].availability for office in watched}
            for office, availability in cache[key].items():
                if availability is Availability.UNAVAILABLE:
                    found[office][0].append((moment, following))
                elif availability is Availability.UNKNOWN:
                    found[office][1].append((moment, following))
        return {office: (merge(out), merge(unknown)) for office, (out, unknown) in found.items()}

    def build(self, year: int, month: int) -> Report:
        config = self.config
        groups: dict[str, Group] = {}

        def group(site: Site) -> Group:
            key = _group_of(config, site)
            if key not in groups:
                groups[key] = Group(key, config.site(key).name)
            return groups[key]

        for site_id, (out, unknown) in self.offices().items():
            site = config.site(site_id)
            row = self.office_row(site, out, unknown)
            if row is not None:
                group(site).offices.append(row)
        for link in config.links:
            row = self.link_row(link.id)
            if row is not None:
                group(config.site(link.from_site)).links.append(row)
        zone = config.agent.zone
        partial = self.now < month_span(year, month, zone)[1]
        log = sorted(self.maintenance_log, key=lambda m: (m.start, m.link))
        return Report(
            config.agent.name,
            config.agent.timezone,
            year,
            month,
            self.now,
            partial,
            list(groups.values()),
            log,
        )


def build_report(
    config: Config, storage: Storage, year: int, month: int, now: float | None = None
) -> Report:
    """The month's figures for every link and office in ``config``."""
    now = time.time() if now is None else now
    return _Builder(config, storage, year, month, now).build(year, month)
