"""`linkmon status` in words: the tree, the open outages, the offices, and the Nagios line.

Everything here reads the status document alone (never the config or the database), in
Bahasa Indonesia or English, with times in the zone of the office each line is about.
Durations count up to ``now``, by default the document's ``generated_at``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text

from ..alerts import text
from ..api.openapi import LINK_STATES
from ..api.summary import TERMINAL_KINDS, office_end

Status = dict[str, Any]

# Nagios plugin exit codes, by the summary's state.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
EXIT_CODES = {"up": OK, "degraded": WARNING, "down": CRITICAL, "unknown": UNKNOWN}
NAGIOS_WORDS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

_STYLE = {
    "up": "green",
    "degraded": "bold yellow",
    "down": "bold red",
    "unreachable": "bold magenta",
    "unknown": "bright_black",
    "available": "green",
    "unavailable": "bold red",
    "maintenance": "bold blue",
    "flapping": "yellow",
}

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "state.up": "NAIK",
        "state.degraded": "TERGANGGU",
        "state.down": "TURUN",
        "state.unknown": "TAK DIKETAHUI",
        "state.unreachable": "TAK TERJANGKAU",
        "since": "{state} sejak {when} ({duration})",
        "service.available": "LAYANAN ONLINE",
        "service.degraded": "LAYANAN TERBATAS",
        "service.unavailable": "LAYANAN TERHENTI",
        "service.unknown": "LAYANAN TAK DIKETAHUI",
        "reason.drc": "hanya melalui DRC",
        "reason.backup": "melalui jalur cadangan",
        "reason.no_data": "belum ada data",
        "reason.not_monitored": "tidak dipantau",
        "upstream": "link di atasnya turun: {links}",
        "maintenance": "pemeliharaan sampai {until}: {reason}",
        "flapping": "naik-turun berulang kali",
        "title": "linkmon {agent} · {date}",
        "overall": "Status: ",
        "links": "Link: {counts} (total {total})",
        "offices": "Kantor dapat melayani online: {online} dari {total}",
        "pusat": "Pusat",
        "outages": "Gangguan terbuka ({n})",
        "no_outages": "Tidak ada gangguan terbuka.",
        "alerted": "peringatan terkirim",
        "in_maintenance": "pemeliharaan",
        "windows": "Pemeliharaan ({n})",
        "group.unavailable": "Terhenti",
        "group.degraded": "Terbatas",
        "group.unknown": "Tak diketahui",
        "group.available": "Online",
        "nagios.links": "{n} dari {total} link {state}",
        "nagios.offices": "{online}/{total} kantor online",
        "nagios.ok": "semua {total} link naik",
        "nagios.maintenance": "{n} dalam pemeliharaan",
        "silent": "agen tidak melapor: {agents}",
        "last_seen": "{agent} terakhir terlihat {when} ({ago} lalu)",
        "never_seen": "{agent} belum pernah terlihat",
        "seen_from.both": "terlihat dari kedua ujung: {who}",
        "seen_from.one": "hanya terlihat dari satu ujung: {who}",
        "agents": "Agen: {total}",
        "nagios.silent": "agen tidak melapor: {names}",
    },
    "en": {
        "state.up": "UP",
        "state.degraded": "DEGRADED",
        "state.down": "DOWN",
        "state.unknown": "UNKNOWN",
        "state.unreachable": "UNREACHABLE",
        "since": "{state} since {when} ({duration})",
        "service.available": "SERVING ONLINE",
        "service.degraded": "SERVING, LIMITED",
        "service.unavailable": "CANNOT SERVE",
        "service.unknown": "SERVICE UNKNOWN",
        "reason.drc": "via the DRC only",
        "reason.backup": "via a backup path",
        "reason.no_data": "no data yet",
        "reason.not_monitored": "not monitored",
        "upstream": "upstream link down: {links}",
        "maintenance": "maintenance until {until}: {reason}",
        "flapping": "flapping (going up and down repeatedly)",
        "title": "linkmon {agent} · {date}",
        "overall": "Status: ",
        "links": "Links: {counts} (total {total})",
        "offices": "Offices able to serve online: {online} of {total}",
        "pusat": "Pusat",
        "outages": "Open outages ({n})",
        "no_outages": "No open outages.",
        "alerted": "alert sent",
        "in_maintenance": "maintenance",
        "windows": "Maintenance ({n})",
        "group.unavailable": "Cannot serve",
        "group.degraded": "Limited",
        "group.unknown": "Unknown",
        "group.available": "Online",
        "nagios.links": "{n} of {total} links {state}",
        "nagios.offices": "{online}/{total} offices online",
        "nagios.ok": "all {total} links up",
        "nagios.maintenance": "{n} in maintenance",
        "silent": "agent silent: {agents}",
        "last_seen": "{agent} last seen {when} ({ago} ago)",
        "never_seen": "{agent} never seen",
        "seen_from.both": "seen from both ends: {who}",
        "seen_from.one": "seen from one end only: {who}",
        "agents": "Agents: {total}",
        "nagios.silent": "silent agents: {names}",
    },
}

LANGUAGES = tuple(_WORDS)


def exit_code(doc: Status) -> int:
    return EXIT_CODES.get(doc["summary"]["state"], UNKNOWN)


def timestamp(value: str) -> float:
    """Seconds since the epoch from the API's ISO 8601 UTC text."""
    return datetime.fromisoformat(value).timestamp()


@dataclass(frozen=True)
class _View:
    """One document seen in one language, with the lookups every line needs."""

    doc: Status
    language: str
    now: float

    @property
    def words(self) -> dict[str, str]:
        return _WORDS[self.language]

    @cached_property
    def sites(self) -> dict[str, Mapping[str, Any]]:
        return {site["id"]: site for site in self.doc["sites"]}

    def site(self, site_id: str) -> Mapping[str, Any] | None:
        return self.sites.get(site_id)

    def timezone(self, site_id: str) -> str:
        site = self.site(site_id)
        return str(site["timezone"] if site else self.doc["agent"]["timezone"])

    def office_zone(self, link: Mapping[str, Any]) -> str:
        """The zone of the office whose link it is: the clock people there read."""
        return self.timezone(office_end(link, self.kinds))

    @cached_property
    def kinds(self) -> dict[str, str]:
        return {site["id"]: site["kind"] for site in self.doc["sites"]}

    def when(self, ts: float, timezone: str) -> str:
        """``08:12 WITA`` today, with the date in front when it was another day."""
        zone = ZoneInfo(timezone)
        if datetime.fromtimestamp(ts, zone).date() == datetime.fromtimestamp(self.now, zone).date():
            return text.clock(ts, timezone)
        return text.date(ts, timezone, self.language)

    def state_word(self, state: str) -> str:
        return self.words.get(f"state.{state}", state.upper())

    def since(self, link: Mapping[str, Any]) -> str:
        """``turun sejak 08:12 WITA (3 j 5 m)``, in the local time of the link's office."""
        ts = timestamp(link["since"])
        return self.words["since"].format(
            state=self.state_word(link["state"]).lower(),
            when=self.when(ts, self.office_zone(link)),
            duration=text.duration(self.now - ts, self.language),
        )

    def cause(self, cause: str | None) -> str:
        if not cause:
            return ""
        if cause.startswith("upstream:"):
            return self.words["upstream"].format(links=cause.removeprefix("upstream:"))
        if cause.startswith("silent:"):
            return self.silent(cause.removeprefix("silent:").split(","))
        return text.cause_text(cause, self.language)

    def silent(self, names: Sequence[str]) -> str:
        """``agent silent: kab-malinau last seen 08:12 WITA (5 m ago)`` (fleet documents)."""
        agents = {agent["name"]: agent for agent in self.doc.get("agents", ())}
        seen = []
        for name in names:
            agent = agents.get(name)
            if agent is None or agent["last_seen"] is None:
                seen.append(self.words["never_seen"].format(agent=name))
                continue
            ts = timestamp(agent["last_seen"])
            seen.append(
                self.words["last_seen"].format(
                    agent=name,
                    when=self.when(ts, agent["timezone"]),
                    ago=text.duration(self.now - ts, self.language),
                )
            )
        return self.words["silent"].format(agents="; ".join(seen))

    def service(self, service: Mapping[str, Any]) -> tuple[str, str]:
        """The office's service label and why, in words."""
        label = self.words.get(f"service.{service['state']}", service["state"].upper())
        reason = service["reason"]
        why = self.words.get(f"reason.{reason}") or (self.cause(reason) if reason else "")
        return label, why


def _rtt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _loss(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.0%}".replace("%", " %")


def _link_notes(view: _View, link: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The words under a link, with their style: since when and why, maintenance, flapping."""
    notes: list[tuple[str, str]] = []
    if link["state"] != "up":
        parts = [view.since(link), view.cause(link["cause"]), link["detail"]]
        notes.append((" · ".join(p for p in parts if p), ""))
        if link.get("path"):  # older daemons have no trace
            notes.append((f"traceroute: {link['path']}", ""))
    if link.get("seen_from"):  # fleet documents: the verdict of every agent that watches it
        who = ", ".join(
            f"{seen['agent']} {view.state_word(seen['state']).lower()}" for seen in link["seen_by"]
        )
        notes.append((view.words[f"seen_from.{link['seen_from']}"].format(who=who), ""))
    if link["maintenance"] is not None:
        until = timestamp(link["maintenance"]["until"])
        reason = link["maintenance"]["reason"]
        notes.append(
            (
                view.words["maintenance"].format(
                    until=view.when(until, view.office_zone(link)), reason=reason
                )
                if reason  # a fleet knows that a window covers the link, not why or until when
                else view.words["in_maintenance"],
                _STYLE["maintenance"],
            )
        )
    if link["flapping"]:
        notes.append((view.words["flapping"], _STYLE["flapping"]))
    return notes


@dataclass(frozen=True)
class _Line:
    """One line of the tree: a heading, a site or a link, and the guide drawn before it."""

    guide: str
    under: str = ""
    heading: str = ""
    site: Mapping[str, Any] | None = None
    link: Mapping[str, Any] | None = None


def _walk(view: _View) -> Iterator[_Line]:
    """Pusat and DRC first, then each top site with its links before the offices below it.

    A link hangs under its end nearer the kecamatan (an uplink under its kabupaten, a
    kecamatan link under the kecamatan), whichever end probes it.
    """
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for site in view.doc["sites"]:
        parent = site["parent"] if site["parent"] in view.kinds else None
        children.setdefault(parent, []).append(site)
    links_of: dict[str, list[Mapping[str, Any]]] = {}
    for link in view.doc["links"]:
        links_of.setdefault(office_end(link, view.kinds), []).append(link)

    def below(site: Mapping[str, Any], indent: str) -> Iterator[_Line]:
        entries = [_Line("", link=link) for link in links_of.get(site["id"], [])]
        entries += [_Line("", site=child) for child in children.get(site["id"], [])]
        for n, entry in enumerate(entries):
            last = n == len(entries) - 1
            deeper = indent + ("   " if last else "│  ")
            yield _Line(
                indent + ("└─ " if last else "├─ "), deeper, site=entry.site, link=entry.link
            )
            if entry.site is not None:
                yield from below(entry.site, deeper)

    roots = children.get(None, [])
    terminals = [s for s in roots if s["kind"] in TERMINAL_KINDS]
    if terminals:
        yield _Line("", heading=view.words["pusat"])
        for n, site in enumerate(terminals):
            last = n == len(terminals) - 1
            yield _Line("└─ " if last else "├─ ", site=site)
            yield from below(site, "   " if last else "│  ")
    for n, site in enumerate(s for s in roots if s["kind"] not in TERMINAL_KINDS):
        if n or terminals:
            yield _Line("", heading="")
        yield _Line("", site=site)
        yield from below(site, "")


def _site_text(view: _View, site: Mapping[str, Any]) -> Text:
    line = Text(f"{site['name']} ({site['id']})", style="bold")
    if site["service"] is not None:
        label, why = view.service(site["service"])
        line.append(" · ")
        line.append(label, style=_STYLE.get(site["service"]["state"], ""))
        if why:
            line.append(f" · {why}")
    return line


def _append_tree(out: Text, view: _View) -> None:
    lines = list(_walk(view))
    links = [(line.guide, line.link) for line in lines if line.link is not None]
    id_width = max((len(guide) + len(link["id"]) for guide, link in links), default=0)
    net_width = max((len(link["network"]) for _, link in links), default=0)
    state_width = max((len(view.state_word(link["state"])) for _, link in links), default=0)
    for line in lines:
        out.append(line.guide, style="bright_black")
        if line.link is not None:
            link = line.link
            out.append(link["id"].ljust(id_width - len(line.guide)))
            out.append(f"  {link['network']:<{net_width}}  ")
            out.append(
                view.state_word(link["state"]).ljust(state_width),
                style=_STYLE.get(link["state"], ""),
            )
            out.append(f"  {_rtt(link['rtt_seconds']):>9}  {_loss(link['loss']):>5}".rstrip())
            out.append("\n")
            for note, style in _link_notes(view, link):
                out.append(line.under + "   ", style="bright_black")
                out.append(note + "\n", style=style)
        elif line.site is not None:
            out.append_text(_site_text(view, line.site))
            out.append("\n")
        else:
            out.append(line.heading + "\n", style="bold")


def _append_outages(out: Text, view: _View) -> None:
    outages = sorted(view.doc["outages"], key=lambda o: o["since"])
    out.append("\n" + view.words["outages"].format(n=len(outages)) + "\n", style="bold")
    if not outages:
        out.append("  " + view.words["no_outages"] + "\n")
        return
    links = {link["id"]: link for link in view.doc["links"]}
    width = max(len(view.state_word(o["state"])) for o in outages)
    id_width = max(len(o["link"]) for o in outages)
    for outage in outages:
        link = links.get(outage["link"])
        ts = timestamp(outage["since"])
        zone = view.office_zone(link) if link else view.doc["agent"]["timezone"]
        out.append("  ")
        out.append(
            view.state_word(outage["state"]).ljust(width), style=_STYLE.get(outage["state"], "")
        )
        out.append(
            f"  {outage['link']:<{id_width}}  "
            + view.words["since"]
            .format(
                state="",
                when=view.when(ts, zone),
                duration=text.duration(view.now - ts, view.language),
            )
            .strip()
        )
        extras = [view.cause(outage["cause"])]
        if link is not None and link["maintenance"] is not None:
            extras.append(view.words["in_maintenance"])
        if outage["alerted"]:
            extras.append(view.words["alerted"])
        out.append("".join(f" · {e}" for e in extras if e) + "\n")


def _append_offices(out: Text, view: _View) -> None:
    """Which offices can serve citizens online now, worst first, names wrapped to be read."""
    summary = view.doc["summary"]
    out.append(
        "\n"
        + view.words["offices"].format(
            online=summary["offices_online"], total=summary["offices_total"]
        )
        + "\n",
        style="bold",
    )
    offices = [s for s in view.doc["sites"] if s["service"] is not None]
    for state in ("unavailable", "degraded", "unknown", "available"):
        group = [s for s in offices if s["service"]["state"] == state]
        if not group:
            continue
        names = []
        for site in group:
            _, why = view.service(site["service"])
            names.append(f"{site['name']} ({why})" if why and state == "degraded" else site["name"])
        head = f"  {view.words['group.' + state]} ({len(group)}):"
        out.append(head, style=_STYLE.get(state, ""))
        out.append(" " + _wrap_names(names, len(head) + 1) + "\n")


def _wrap_names(names: Sequence[str], indent: int, width: int = 100) -> str:
    """Names joined by commas, lines broken between names only, never inside one."""
    lines: list[str] = []
    line = ""
    for n, name in enumerate(names):
        item = name + ("," if n < len(names) - 1 else "")
        if line and indent + len(line) + 1 + len(item) > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


def _append_windows(out: Text, view: _View) -> None:
    windows = view.doc["maintenance"]
    if not windows:
        return
    out.append("\n" + view.words["windows"].format(n=len(windows)) + "\n", style="bold")
    links = {link["id"]: link for link in view.doc["links"]}
    for window in windows:
        first = window["links"][0] if window["links"] else None
        zone = (
            view.office_zone(links[first])
            if first in links
            else view.timezone(window["sites"][0])
            if window["sites"]
            else view.doc["agent"]["timezone"]
        )
        start, end = timestamp(window["start"]), timestamp(window["end"])
        covered = ", ".join([*window["links"], *window["sites"]])
        out.append(
            f"  {view.when(start, zone)} – {view.when(end, zone)} · {covered} · "
            f"{window['reason']}\n",
            style=_STYLE["maintenance"],
        )


def render(doc: Status, language: str, now: float | None = None) -> Text:
    """Everything a NOC officer asks, as text: header, tree, outages, offices, maintenance.

    ``now`` defaults to the document's ``generated_at``.
    """
    view = _View(doc, language, timestamp(doc["generated_at"]) if now is None else now)
    words, agent, summary = view.words, doc["agent"], doc["summary"]
    out = Text()
    out.append(
        words["title"].format(
            agent=agent["name"], date=text.date(view.now, agent["timezone"], language)
        )
        + "\n",
        style="bold",
    )
    out.append(words["overall"])
    out.append(view.state_word(summary["state"]), style=_STYLE.get(summary["state"], ""))
    counts = " · ".join(
        f"{n} {view.state_word(state).lower()}" for state, n in summary["links"].items() if n
    )
    out.append(
        "\n"
        + words["links"].format(counts=counts or "0", total=sum(summary["links"].values()))
        + "\n"
    )
    out.append(
        words["offices"].format(online=summary["offices_online"], total=summary["offices_total"])
        + "\n"
    )
    if "agents" in doc:  # a fleet document
        silent = [agent["name"] for agent in doc["agents"] if agent["state"] == "silent"]
        out.append(words["agents"].format(total=len(doc["agents"])))
        if silent:
            out.append(" · ")
            out.append(view.silent(silent), style=_STYLE["unknown"])
        out.append("\n")
    out.append("\n")
    _append_tree(out, view)
    _append_outages(out, view)
    _append_offices(out, view)
    _append_windows(out, view)
    out.rstrip()
    return out


def nagios_line(doc: Status, language: str) -> str:
    """``LINKMON CRITICAL: text | 'links_up'=14;;;0;24 ...``: one line, as Nagios plugins print."""
    view = _View(doc, language, timestamp(doc["generated_at"]))
    summary = doc["summary"]
    counts, total = summary["links"], sum(summary["links"].values())
    parts: list[str] = []
    for state in ("down", "unreachable", "degraded", "unknown"):
        names = [
            link["id"]
            for link in doc["links"]
            if link["state"] == state and link["maintenance"] is None
        ]
        if names:
            shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            parts.append(
                view.words["nagios.links"].format(
                    n=len(names), total=total, state=view.state_word(state).lower()
                )
                + f" ({shown})"
            )
    in_maintenance = sum(1 for link in doc["links"] if link["maintenance"] is not None)
    if in_maintenance:
        parts.append(view.words["nagios.maintenance"].format(n=in_maintenance))
    silent = [agent["name"] for agent in doc.get("agents", ()) if agent["state"] == "silent"]
    if silent:
        parts.append(view.words["nagios.silent"].format(names=", ".join(silent)))
    if not parts:
        parts.append(view.words["nagios.ok"].format(total=total))
    parts.append(
        view.words["nagios.offices"].format(
            online=summary["offices_online"], total=summary["offices_total"]
        )
    )
    perf = [f"'links_{state}'={counts[state]};;;0;{total}" for state in LINK_STATES]
    perf.append(f"'offices_online'={summary['offices_online']};;;0;{summary['offices_total']}")
    message = "; ".join(parts).replace("|", "/")
    return f"LINKMON {NAGIOS_WORDS[exit_code(doc)]}: {message} | {' '.join(perf)}"
