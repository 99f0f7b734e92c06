"""`linkmon history`: the outages linkmon recorded, read from its SQLite state database.

An outage is a period a link was out of service as seen from this agent: down, or unreachable
behind a failed upstream link. Times are shown in the local time of the link's office (its
``from`` site: WIB, WITA or WIT), as the people there read the clock. The database is opened
read-only, so this runs safely beside the daemon.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from ..alerts.text import cause_text, duration
from ..config import Config
from ..durations import parse_duration
from ..storage import Outage, Storage, StorageError
from .common import UsageError, config_or_exit, local, open_storage
from .options import ConfigOption, JsonOption, LanguageOption

DEFAULT_SINCE = "30d"
_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?")

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Riwayat gangguan {agent} · {since} s.d. {until} ({n} gangguan)",
        "none": "Tidak ada gangguan tercatat.",
        "columns": "link|kantor|mulai|selesai|lama|status|penyebab",
        "ongoing": "masih berlangsung",
        "maintenance": "pemeliharaan",
        "down": "putus",
        "unreachable": "tak terjangkau",
    },
    "en": {
        "title": "Outage history {agent} · {since} to {until} ({n} outages)",
        "none": "No outages recorded.",
        "columns": "link|office|start|end|duration|state|cause",
        "ongoing": "ongoing",
        "maintenance": "maintenance",
        "down": "down",
        "unreachable": "unreachable",
    },
}


def parse_when(text: str, zone: ZoneInfo, now: float) -> float:
    """A moment from the command line: ``7d``/``12h`` ago, ``2026-11-01`` or
    ``2026-11-01 08:00`` in ``zone``, or ISO 8601 with a zone (``2026-11-01T00:00:00Z``)."""
    value = text.strip()
    match = _LOCAL.fullmatch(value)
    try:
        if match:
            year, month, day, hour, minute = (int(g or 0) for g in match.groups())
            return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()
        if value[:1].isdigit() and "-" in value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            return moment.timestamp()
        return now - parse_duration(value)
    except ValueError as exc:
        raise UsageError(
            f"{text!r} is not a time: use 7d / 12h (ago), 2026-11-01, '2026-11-01 08:00' "
            f"(local time) or 2026-11-01T00:00:00Z ({exc})"
        ) from None


@dataclass(frozen=True, slots=True)
class OutageView:
    """An outage as people read it: the office, local times, how long, and why."""

    outage: Outage
    office: str
    timezone: str
    maintenance: bool

    def length(self, now: float) -> float:
        return (self.outage.end if self.outage.end is not None else now) - self.outage.start


def links_of_site(config: Config, site_id: str) -> set[str]:
    """Links that touch a site, or belong to it as a kabupaten (its kecamatan links)."""
    return {
        link.id
        for link in config.links
        if site_id in (link.from_site, link.to_site) or config.kabupaten_of_link(link.id) == site_id
    }


def collect(
    config: Config,
    storage: Storage,
    since: float,
    until: float,
    link: str | None = None,
    site: str | None = None,
) -> list[OutageView]:
    """Outages overlapping [since, until), oldest first, filtered by link or site."""
    if link is not None and site is not None:
        raise UsageError("give --link or --site, not both")
    known_sites = {s.id for s in config.sites}
    if site is not None and site not in known_sites:
        raise UsageError(f"unknown site {site!r}; sites: {', '.join(sorted(known_sites))}")
    outages = storage.outages(since, until, link=link)
    if site is not None:
        wanted = links_of_site(config, site)
        outages = [o for o in outages if o.link in wanted or o.site == site]
    if link is not None and not outages and link not in {k.id for k in config.links}:
        raise UsageError(f"unknown link {link!r}: not in the config and no outages stored")
    views = []
    for outage in outages:
        office = config.site(outage.site) if outage.site in known_sites else None
        timezone = office.timezone if office else config.agent.timezone
        maintenance = outage.link in {k.id for k in config.links} and bool(
            config.maintenance_periods(
                outage.link,
                datetime.fromtimestamp(outage.start, UTC),
                datetime.fromtimestamp(outage.end if outage.end else until, UTC),
            )
        )
        views.append(
            OutageView(outage, office.name if office else outage.site, timezone, maintenance)
        )
    return views


def render_text(
    config: Config, views: list[OutageView], since: float, until: float, now: float, language: str
) -> str:
    words = _WORDS[language]
    zone = config.agent.timezone
    lines = [
        words["title"].format(
            agent=config.agent.name,
            since=local(since, zone),
            until=local(min(until, now), zone),
            n=len(views),
        )
    ]
    if not views:
        lines.append(words["none"])
        return "\n".join(lines)
    rows = [words["columns"].split("|")]
    for view in views:
        o = view.outage
        cause = cause_text(o.cause, language)
        if view.maintenance:
            cause += f" [{words['maintenance']}]"
        rows.append(
            [
                o.link,
                view.office,
                local(o.start, view.timezone),
                local(o.end, view.timezone) if o.end is not None else words["ongoing"],
                duration(view.length(now), language),
                words[o.state.value],
                cause,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return "\n".join(line.rstrip() for line in lines)


def to_json(views: list[OutageView], now: float) -> list[dict[str, Any]]:
    def iso(ts: float | None) -> str | None:
        return (
            None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )

    return [
        {
            "link": v.outage.link,
            "site": v.outage.site,
            "office": v.office,
            "state": v.outage.state.value,
            "cause": v.outage.cause,
            "detail": v.outage.detail,
            "start": iso(v.outage.start),
            "end": iso(v.outage.end),
            "start_local": local(v.outage.start, v.timezone),
            "end_local": local(v.outage.end, v.timezone) if v.outage.end else None,
            "duration_seconds": round(v.length(now), 3),
            "ongoing": v.outage.end is None,
            "maintenance": v.maintenance,
        }
        for v in views
    ]


def run_history(
    config: Config,
    link: str | None = None,
    site: str | None = None,
    since: str = DEFAULT_SINCE,
    until: str | None = None,
    as_json: bool = False,
    language: str | None = None,
    now: float | None = None,
) -> int:
    """`linkmon history` without the command line; returns the exit code."""
    now = time.time() if now is None else now
    lang = language or config.agent.language
    try:
        if lang not in _WORDS:
            raise UsageError(f"--lang must be one of {', '.join(_WORDS)}, not {lang!r}")
        zone = config.agent.zone
        start = parse_when(since, zone, now)
        end = parse_when(until, zone, now) if until else now
        if end <= start:
            raise UsageError(
                f"--until ({local(end, zone.key)}) must be after --since ({local(start, zone.key)})"
            )
        with open_storage(config) as storage:
            views = collect(config, storage, start, end, link, site)
    except (UsageError, StorageError) as exc:
        typer.echo(f"linkmon history: {exc}", err=True)
        return 2
    if as_json:
        typer.echo(json.dumps(to_json(views, now), indent=2))
    else:
        typer.echo(render_text(config, views, start, end, now, lang))
    return 0


def history_command(
    config: ConfigOption,
    link: Annotated[str | None, typer.Option(help="Only this link.")] = None,
    site: Annotated[
        str | None,
        typer.Option(help="Only links of this site (for a kabupaten: its kecamatan links too)."),
    ] = None,
    since: Annotated[
        str,
        typer.Option(
            help="From: 7d or 12h ago, 2026-11-01, '2026-11-01 08:00' (agent's local time) or "
            "2026-11-01T00:00:00Z."
        ),
    ] = DEFAULT_SINCE,
    until: Annotated[str | None, typer.Option(help="Up to (same forms); default now.")] = None,
    as_json: JsonOption = False,
    lang: LanguageOption = None,
) -> None:
    """Outages from the state database, in each office's local time."""
    raise typer.Exit(run_history(config_or_exit(config), link, site, since, until, as_json, lang))
