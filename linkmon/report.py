"""`linkmon report`: a month's availability per link and per office, from the outage history.

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

import csv
import html
import io
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import typer

from .alerts.text import duration
from .config import WEEKDAYS, Config, ServiceHours, Site
from .history import UsageError, config_or_exit, local, open_storage
from .state import LinkState
from .storage import Storage, StorageError
from .topology import NOT_MONITORED, Availability, Topology

Span = tuple[float, float]
Format = Literal["text", "csv", "html"]
FORMATS: tuple[Format, ...] = ("text", "csv", "html")
_MONTH = re.compile(r"(\d{4})-(\d{2})")

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


def parse_month(text: str) -> tuple[int, int]:
    match = _MONTH.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise UsageError(f"--month must be YYYY-MM such as 2026-11, not {text!r}")
    return int(match.group(1)), int(match.group(2))


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
            raise UsageError(f"{year}-{month:02d} has not begun yet")
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


# ------------------------------------------------------------------------------ words

_MONTHS = {
    "id": (
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Laporan ketersediaan {month}",
        "agent": "Agen {agent} · dibuat {generated}",
        "partial": "Bulan berjalan: dihitung sampai {now}.",
        "offices": "Kantor",
        "links": "Link",
        "zone": "Zona",
        "avail_full": "Tersedia 24×7",
        "avail_service": "Tersedia jam layanan",
        "outages": "Gangguan",
        "downtime": "Total putus",
        "longest": "Terlama",
        "mttr": "MTTR",
        "outages_service": "Gangguan jam layanan",
        "downtime_service": "Putus jam layanan",
        "maint": "Pemeliharaan",
        "measured": "Waktu diukur",
        "maint_title": "Jendela pemeliharaan (dikecualikan)",
        "no_maint": "Tidak ada.",
        "reason": "Alasan",
        "start": "Mulai",
        "end": "Selesai",
        "link": "Link",
        "chart": "Ketersediaan kantor, {name}",
        "legend_full": "24×7",
        "legend_service": "jam layanan",
        "notes": "Cara menghitung",
        "note1": "Bulan dihitung menurut jam setempat kantor (WIB/WITA/WIT); jam layanan "
        "menurut service_hours tiap kantor, hari kerja saja.",
        "note2": "Link dianggap putus selama berstatus putus atau tak terjangkau. Kantor "
        "dianggap tidak dapat melayani selama tidak ada jalur ke pusat (DC atau "
        "DRC); melalui DRC saja tetap dihitung melayani.",
        "note3": "Waktu pemeliharaan tidak dihitung sebagai waktu diukur maupun waktu putus. "
        "MTTR = total putus / jumlah gangguan. Gangguan yang melewati batas bulan "
        "dihitung di tiap bulan dengan bagiannya masing-masing.",
        "note4": "Waktu ketika linkmon tidak berjalan dihitung tersedia.",
    },
    "en": {
        "title": "Availability report {month}",
        "agent": "Agent {agent} · generated {generated}",
        "partial": "Running month: counted up to {now}.",
        "offices": "Office",
        "links": "Link",
        "zone": "Zone",
        "avail_full": "Available 24×7",
        "avail_service": "Available service hours",
        "outages": "Outages",
        "downtime": "Downtime",
        "longest": "Longest",
        "mttr": "MTTR",
        "outages_service": "Outages service hours",
        "downtime_service": "Down service hours",
        "maint": "Maintenance",
        "measured": "Measured",
        "maint_title": "Maintenance windows (excluded)",
        "no_maint": "None.",
        "reason": "Reason",
        "start": "Start",
        "end": "End",
        "link": "Link",
        "chart": "Office availability, {name}",
        "legend_full": "24×7",
        "legend_service": "service hours",
        "notes": "How it is counted",
        "note1": "Months follow each office's local clock (WIB/WITA/WIT); service hours follow "
        "each office's service_hours, working days only.",
        "note2": "A link is out while down or unreachable. An office is out while it has no "
        "path to pusat (DC or DRC); via the DRC only still counts as serving.",
        "note3": "Maintenance time counts neither as measured time nor as downtime. MTTR = "
        "downtime / number of outages. An outage across a month boundary counts in "
        "each month with its part.",
        "note4": "Time linkmon was not running counts as available.",
    },
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3f} %"


def _dur(seconds: float | None, language: str) -> str:
    return "-" if not seconds else duration(seconds, language)


def _zone_abbr(timezone: str, at: float) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(timezone)).tzname() or timezone


def _columns(row: Row, language: str) -> list[str]:
    f, s = row.full, row.service
    return [
        row.name,
        _zone_abbr(row.timezone, row.period[0]),
        _pct(f.availability),
        _pct(s.availability),
        str(f.outages),
        _dur(f.downtime, language),
        _dur(f.longest, language),
        _dur(f.mttr, language),
        str(s.outages),
        _dur(s.downtime, language),
        _dur(f.maintenance, language),
    ]


def _headings(first: str, language: str) -> list[str]:
    w = _WORDS[language]
    return [
        first,
        w["zone"],
        w["avail_full"],
        w["avail_service"],
        w["outages"],
        w["downtime"],
        w["longest"],
        w["mttr"],
        w["outages_service"],
        w["downtime_service"],
        w["maint"],
    ]


def _month_name(report: Report, language: str) -> str:
    return f"{_MONTHS[language][report.month - 1]} {report.year}"


# ------------------------------------------------------------------------------ text


def render_text(report: Report, language: str) -> str:
    w = _WORDS[language]
    lines = [
        w["title"].format(month=_month_name(report, language)),
        w["agent"].format(agent=report.agent, generated=local(report.generated, report.timezone)),
    ]
    if report.partial:
        lines.append(w["partial"].format(now=local(report.generated, report.timezone)))
    for group in report.groups:
        lines += ["", f"== {group.name} ({group.id})"]
        for title, rows in ((w["offices"], group.offices), (w["links"], group.links)):
            if rows:
                lines += [
                    "",
                    *_table(
                        [_headings(title, language), *(_columns(r, language) for r in rows)], left=2
                    ),
                ]
    lines += ["", w["maint_title"]]
    if not report.maintenance:
        lines.append("  " + w["no_maint"])
    else:
        lines += _table(
            [
                [w["link"], w["start"], w["end"], w["reason"]],
                *(
                    [m.link, local(m.start, m.timezone), local(m.end, m.timezone), m.reason]
                    for m in report.maintenance
                ),
            ],
            left=4,
        )
    lines += ["", w["notes"], *(f"- {w[f'note{i}']}" for i in range(1, 5))]
    return "\n".join(lines)


def _table(rows: list[list[str]], left: int) -> list[str]:
    """Columns padded to their widest cell; the first ``left`` read left, figures right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# ------------------------------------------------------------------------------ csv

CSV_FIELDS = (
    "month",
    "scope",
    "id",
    "name",
    "kabupaten",
    "timezone",
    "hours",
    "availability",
    "outages",
    "downtime_seconds",
    "longest_seconds",
    "mttr_seconds",
    "measured_seconds",
    "maintenance_seconds",
)


def render_csv(report: Report) -> str:
    """One row per link or office and per set of hours (``24x7``, ``service``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    month = f"{report.year}-{report.month:02d}"
    for group in report.groups:
        for row in (*group.offices, *group.links):
            for hours, fig in (("24x7", row.full), ("service", row.service)):
                writer.writerow(
                    [
                        month,
                        row.scope,
                        row.id,
                        row.name,
                        group.id,
                        row.timezone,
                        hours,
                        "" if fig.availability is None else f"{fig.availability:.6f}",
                        fig.outages,
                        f"{fig.downtime:.0f}",
                        f"{fig.longest:.0f}",
                        "" if fig.mttr is None else f"{fig.mttr:.0f}",
                        f"{fig.measured:.0f}",
                        f"{fig.maintenance:.0f}",
                    ]
                )
    return buffer.getvalue()


# ------------------------------------------------------------------------------ html

_CSS = """
body { font: 11pt/1.35 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1b1f24;
       margin: 24px; }
h1 { font-size: 18pt; margin: 0 0 4px; }
h2 { font-size: 14pt; margin: 28px 0 8px; border-bottom: 2px solid #1b1f24; }
h3 { font-size: 11pt; margin: 14px 0 4px; }
p.meta { margin: 0; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 4px 0 10px; }
th, td { border: 1px solid #c8ccd1; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #eef0f2; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td:first-child { white-space: normal; }
td.bad { color: #b00020; font-weight: bold; }
svg { display: block; margin: 6px 0; }
ul.notes { font-size: 9pt; color: #333; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { margin: 0; }
  section.group + section.group { break-before: page; }
  tr, svg { break-inside: avoid; }
}
"""
_GOOD, _FAIR, _POOR = "#2e7d32", "#f9a825", "#c62828"


def _colour(value: float | None) -> str:
    if value is None:
        return "#9e9e9e"
    return _GOOD if value >= 0.995 else _FAIR if value >= 0.98 else _POOR


def _axis_floor(values: Sequence[float]) -> float:
    """Where the availability axis starts: low enough for the worst office, in nice steps."""
    worst = min(values, default=1.0)
    for floor in (0.99, 0.98, 0.95, 0.9, 0.8, 0.5):
        if worst >= floor + 0.002:
            return floor
    return 0.0


def chart(group: Group, floor: float, language: str) -> str:
    """Inline SVG: two bars per office, 24×7 and service hours, on an axis from ``floor`` to
    100 %. No script, no fonts or images from elsewhere: it prints and works offline."""
    w = _WORDS[language]
    rows = group.offices
    label_w, plot_w, bar_h, row_h, top = 250, 560, 9, 30, 34
    height = top + row_h * len(rows) + 28
    width = label_w + plot_w + 80

    def x(value: float) -> float:
        return label_w + plot_w * max(0.0, value - floor) / (1.0 - floor)

    title = html.escape(w["chart"].format(name=group.name))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{title}</text>',
        f'<rect x="{label_w}" y="20" width="10" height="8" fill="#455a64"/>'
        f'<text x="{label_w + 14}" y="28">{html.escape(w["legend_full"])}</text>'
        f'<rect x="{label_w + 70}" y="20" width="10" height="8" fill="#455a64" '
        f'fill-opacity="0.55"/>'
        f'<text x="{label_w + 84}" y="28">{html.escape(w["legend_service"])}</text>',
    ]
    for i, (colour, words) in enumerate(
        ((_GOOD, "≥ 99.5 %"), (_FAIR, "≥ 98 %"), (_POOR, "< 98 %"))
    ):
        lx = label_w + 250 + i * 90
        parts.append(
            f'<rect x="{lx}" y="20" width="10" height="8" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="28">{html.escape(words)}</text>'
        )
    steps = 5
    for i in range(steps + 1):
        tick = floor + (1.0 - floor) * i / steps
        gx = x(tick)
        parts.append(
            f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" '
            f'y2="{top + row_h * len(rows)}" stroke="#d0d4d8"/>'
            f'<text x="{gx:.1f}" y="{top + row_h * len(rows) + 14}" '
            f'text-anchor="middle">{tick * 100:g} %</text>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{html.escape(row.name)}</text>'
        )
        for offset, value, tint in (
            (3, row.full.availability, 1.0),
            (3 + bar_h + 2, row.service.availability, 0.55),
        ):
            if value is None:
                continue
            bar = x(value) - label_w
            parts.append(
                f'<rect x="{label_w}" y="{y + offset}" width="{bar:.1f}" '
                f'height="{bar_h}" fill="{_colour(value)}" fill-opacity="{tint}"/>'
                f'<text x="{label_w + bar + 4:.1f}" y="{y + offset + bar_h - 1}" '
                f'font-size="9">{value * 100:.2f} %</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(first: str, rows: list[Row], language: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _headings(first, language))
    body = []
    for row in rows:
        cells = _columns(row, language)
        tds = []
        for i, cell in enumerate(cells):
            value = (
                (row.full.availability, row.service.availability)[i - 2] if i in (2, 3) else None
            )
            cls = (
                ' class="bad"'
                if value is not None and value < 0.98
                else ' class="text"'
                if i < 2
                else ""
            )
            tds.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _meta(text: str) -> str:
    return f'<p class="meta">{html.escape(text)}</p>'


def render_html(report: Report, language: str) -> str:
    """A self-contained page: inline CSS and SVG, no script, nothing fetched; prints on A4."""
    w = _WORDS[language]
    month = _month_name(report, language)
    generated = local(report.generated, report.timezone)
    out = [
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{html.escape(w['title'].format(month=month))} · "
        f"{html.escape(report.agent)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(w['title'].format(month=month))}</h1>",
        _meta(w["agent"].format(agent=report.agent, generated=generated)),
    ]
    if report.partial:
        out.append(_meta(w["partial"].format(now=generated)))
    # One axis for every chart, so that bars compare across kabupaten.
    floor = _axis_floor(
        [
            v
            for g in report.groups
            for r in g.offices
            for v in (r.full.availability, r.service.availability)
            if v is not None
        ]
    )
    for group in report.groups:
        out.append(f'<section class="group"><h2>{html.escape(group.name)}</h2>')
        if group.offices:
            out.append(chart(group, floor, language))
            out.append(f"<h3>{html.escape(w['offices'])}</h3>")
            out.append(_html_table(w["offices"], group.offices, language))
        if group.links:
            out.append(f"<h3>{html.escape(w['links'])}</h3>")
            out.append(_html_table(w["links"], group.links, language))
        out.append("</section>")
    out.append(f"<section><h2>{html.escape(w['maint_title'])}</h2>")
    if report.maintenance:
        head = "".join(
            f'<th class="text">{html.escape(w[k])}</th>' for k in ("link", "start", "end", "reason")
        )
        rows = "".join(
            f"<tr><td>{html.escape(m.link)}</td>"
            f'<td class="text">{html.escape(local(m.start, m.timezone))}</td>'
            f'<td class="text">{html.escape(local(m.end, m.timezone))}</td>'
            f'<td class="text">{html.escape(m.reason)}</td></tr>'
            for m in report.maintenance
        )
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    else:
        out.append(f"<p>{html.escape(w['no_maint'])}</p>")
    notes = "".join(f"<li>{html.escape(w[f'note{i}'])}</li>" for i in range(1, 5))
    out.append(f'</section><h3>{html.escape(w["notes"])}</h3><ul class="notes">{notes}</ul>')
    out.append("</body></html>")
    return "\n".join(out)


# ------------------------------------------------------------------------------ command


def run_report(
    config: Config,
    month: str,
    fmt: str = "text",
    output: Path | None = None,
    language: str | None = None,
    now: float | None = None,
) -> int:
    """`linkmon report` without the command line; returns the exit code."""
    lang = language or config.agent.language
    try:
        if lang not in _WORDS:
            raise UsageError(f"--lang must be one of {', '.join(_WORDS)}, not {lang!r}")
        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        year, number = parse_month(month)
        with open_storage(config) as storage:
            report = build_report(config, storage, year, number, now)
    except (UsageError, StorageError) as exc:
        typer.echo(f"linkmon report: {exc}", err=True)
        return 2
    text = (
        render_text(report, lang)
        if fmt == "text"
        else render_csv(report)
        if fmt == "csv"
        else render_html(report, lang)
    )
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return 0
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        typer.echo(f"linkmon report: cannot write {output}: {exc.strerror}", err=True)
        return 2
    return 0


def report_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="linkmon YAML config file.")],
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (e.g. 2026-11).")],
    fmt: Annotated[str, typer.Option("--format", help="text, csv or html.")] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="id or en; default: the agent's language.")
    ] = None,
) -> None:
    """Availability per link and per office for a month: 24×7 and within service hours."""
    raise typer.Exit(run_report(config_or_exit(config), month, fmt, output, lang))
