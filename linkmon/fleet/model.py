"""The fleet as one status document: every agent's series, merged into the daemon's shape.

Pure: :class:`Readings` (what Prometheus answered) in, a ``/api/v1/status`` document out, with
what only a fleet knows added: ``agents`` (each with ``state`` up or silent and ``last_seen``),
per link ``seen_by`` (every agent's own verdict) and ``seen_from`` (``both`` when every agent
that watches a link in trouble sees the trouble, ``one`` when some see it up).

Two rules carry the weight:

- **A silent agent is not a green agent.** An agent whose heartbeat is older than
  ``stale_after``, absent, or whose scrape fails says nothing: its verdicts count as unknown,
  never up. What it watched alone is unknown, with cause ``silent:<agent>`` and the time it was
  last seen (``since``); offices only it watched are unknown for the same reason.
- **Merging vantage points.** A link is the same link for every agent that names it with the
  same id, or with the same two ends and network. A direct verdict (up, degraded, down) beats
  "unreachable" (the agent could not look because of a link upstream of it); among direct
  verdicts the worst wins, and ``seen_from`` tells whether the others agree. An office serves
  if any live agent sees a working path for it (each agent knows the paths it can probe).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from .. import __version__
from ..api.summary import (
    LINK_WEIGHT,
    SERVICE_WEIGHT,
    SEVERITY,
    TERMINAL_KINDS,
    office_end,
    summarize,
)
from .prometheus import Sample

Status = dict[str, Any]
Labels = Mapping[str, str]

SERVICE_STATE = {1.0: "available", 0.5: "degraded", 0.0: "unavailable"}
_DIRECT = ("down", "degraded", "up")  # worst first: what an agent saw on the link itself
_RANK = {state: n for n, state in enumerate(SEVERITY)}


@dataclass(frozen=True)
class Readings:
    """What Prometheus answered at ``at`` (unix seconds), one list per question."""

    at: float
    known: Sequence[str] = ()  # agents with series in the look-back window
    heartbeat: Sequence[Sample] = ()  # per agent: time of its newest sample
    failing: Sequence[Sample] = ()  # up == 0: the last scrape failed
    versions: Sequence[Sample] = ()  # linkmon_build_info
    sites: Sequence[Sample] = ()  # linkmon_site_info
    states: Sequence[Sample] = ()  # per link its state label, and since when as the value
    flapping: Sequence[Sample] = ()
    maintenance: Sequence[Sample] = ()
    services: Sequence[Sample] = ()
    figures: Sequence[Sample] = ()  # per agent and link: "stat" rtt (average) or loss (worst)
    last_seen: Sequence[Sample] = ()  # silent agents: time of their newest sample in the window
    old_sites: Sequence[Labels] = ()  # silent agents: site_info series in the window
    old_links: Sequence[Labels] = ()  # silent agents: link series in the window


# linkmon's rule for ids (agent names, site ids): also what makes them safe inside PromQL
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Scope:
    """Which part of the fleet to show: some agents only, one kabupaten only, or all."""

    agents: tuple[str, ...] = ()
    kabupaten: str | None = None

    def __post_init__(self) -> None:
        for agent in self.agents:
            if not _ID.fullmatch(agent):
                raise ValueError(f"--agent {agent!r}: not an agent name (letters, digits, . _ -)")
        if self.kabupaten is not None and not _ID.fullmatch(self.kabupaten):
            raise ValueError(
                f"--kabupaten {self.kabupaten!r}: not a site id (letters, digits, . _ -)"
            )


@dataclass(frozen=True)
class Settings:
    """What is shown and how it is judged; ``stale_after`` suits a 15 s scrape with room for
    a remote-write batch."""

    scope: Scope = Scope()
    stale_after: float = 90.0
    name: str = "fleet"
    timezone: str = "Asia/Jakarta"
    language: str = "id"
    started_at: float | None = None


@dataclass(frozen=True)
class Agent:
    """What the fleet knows of one agent: when it last spoke, and whether it is silent now."""

    name: str
    last_seen: float | None
    failing: bool
    silent: bool
    version: str | None


@dataclass
class _Observation:
    """One agent's view of one link."""

    agent: str
    labels: Labels
    silent: bool
    state: str = "unknown"
    since: float | None = None
    flapping: bool = False
    maintenance: bool = False
    rtt: float | None = None
    loss: float | None = None

    @property
    def link(self) -> str:
        return self.labels["link"]

    @property
    def ends(self) -> tuple[frozenset[str], str]:
        return frozenset((self.labels["from"], self.labels["to"])), self.labels["network"]


def silent_agents(readings: Readings, stale_after: float) -> list[str]:
    """Agents to look up in the look-back window (their last sample, sites and links)."""
    return sorted(a.name for a in _agents(readings, stale_after).values() if a.silent)


def fleet_document(readings: Readings, settings: Settings) -> Status:
    """The status document of the whole fleet (or of ``settings.scope.kabupaten``)."""
    agents = _agents(readings, settings.stale_after)
    observations = _observations(readings, agents)
    links = [_link_doc(group, agents, readings.at) for group in _same_links(observations)]
    sites = _sites(readings, agents, observations)
    kinds = {site_id: info["kind"] for site_id, info in sites.items()}
    if settings.scope.kabupaten is not None:
        links = [link for link in links if _in_kabupaten(link, sites, settings.scope.kabupaten)]
        sites = _narrow(sites, links, settings.scope.kabupaten)
    serving: dict[str, list[float]] = defaultdict(list)
    for sample in readings.services:
        if not agents[sample.labels["agent"]].silent:
            serving[sample.labels["site"]].append(sample.value)
    # touched by a link someone watches (or watched: a silent agent's link is still its link)
    monitored = {o.labels[end] for o in observations for end in ("from", "to")}
    site_docs = [
        _site_doc(info, serving.get(info["id"], ()), info["id"] in monitored, agents, readings.at)
        for info in sites.values()
    ]
    _problems_first(site_docs, links, kinds)
    # The whole fleet lists every agent, one never seen with a site too; a kabupaten, those
    # that watch its links or name its offices (every agent names pusat: not a reason).
    kabupaten = settings.scope.kabupaten
    shown = set(agents) if kabupaten is None else set()
    shown |= {o["agent"] for link in links for o in link["seen_by"]}
    shown |= {
        a for info in sites.values() if info.get("kabupaten") == kabupaten for a in info["agents"]
    }
    return {
        "agent": {
            "name": settings.name,
            "timezone": settings.timezone,
            "zone_abbr": _zone_abbr(settings.timezone, readings.at),
            "language": settings.language,
            "version": __version__,
            "started_at": _iso(settings.started_at or readings.at),
        },
        "generated_at": _iso(readings.at),
        "summary": summarize(site_docs, links),
        "sites": site_docs,
        "links": links,
        "outages": [
            {
                "link": link["id"],
                "state": link["state"],
                "since": link["since"],
                "cause": link["cause"] or "",
                "alerted": False,  # Prometheus does not know what an agent paged
            }
            for link in links
            if link["state"] in ("down", "unreachable")
        ],
        "maintenance": [],
        "agents": [
            _agent_doc(agents[name], sites, settings.timezone)
            for name in sorted(shown, key=lambda name: (not agents[name].silent, name))
        ],
    }


# -- agents ------------------------------------------------------------------------------------


def _agents(readings: Readings, stale_after: float) -> dict[str, Agent]:
    heartbeat = _by_agent(readings.heartbeat)
    last_seen = _by_agent(readings.last_seen)
    # up and build_info carry the scrape target's agent label: a target without one is skipped
    failing = {s.labels["agent"] for s in readings.failing if s.labels.get("agent")}
    versions = {
        s.labels["agent"]: s.labels.get("version")
        for s in readings.versions
        if s.labels.get("agent")
    }
    names = set(readings.known) | set(heartbeat) | failing | set(versions)
    for samples in (readings.sites, readings.states, readings.services):
        names |= {s.labels["agent"] for s in samples}
    agents = {}
    for name in names:
        seen = heartbeat.get(name, last_seen.get(name))
        silent = name in failing or seen is None or readings.at - seen > stale_after
        agents[name] = Agent(name, seen, name in failing, silent, versions.get(name))
    return agents


def _by_agent(samples: Iterable[Sample]) -> dict[str, float]:
    return {s.labels["agent"]: s.value for s in samples if s.labels.get("agent")}


def _agent_doc(agent: Agent, sites: Mapping[str, Status], timezone: str) -> Status:
    own = sites.get(agent.name)  # by the contract's default, the agent sits in its namesake
    return {
        "name": agent.name,
        "state": "silent" if agent.silent else "up",
        "last_seen": None if agent.last_seen is None else _iso(agent.last_seen),
        "scrape_failing": agent.failing,
        "version": agent.version,
        "timezone": own["timezone"] if own else timezone,
    }


# -- sites -------------------------------------------------------------------------------------

_SITE_FIELDS = ("kind", "name", "parent", "kabupaten", "timezone")


def _sites(
    readings: Readings, agents: Mapping[str, Agent], observations: Sequence[_Observation]
) -> dict[str, Status]:
    """Every site any agent names; where agents disagree, a live agent's non-empty value wins,
    then the first agent by name (deterministic). An end of a link that no site series names
    (an agent older than ``linkmon_site_info``) is placed by its link's labels, so no link
    falls out of the tree."""
    rows = [(s.labels["agent"], s.labels) for s in readings.sites]
    rows += [(labels["agent"], labels) for labels in readings.old_sites]
    rows.sort(key=lambda row: (agents[row[0]].silent if row[0] in agents else True, row[0]))
    sites: dict[str, Status] = {}
    for agent, labels in rows:
        info = sites.setdefault(labels["site"], {"id": labels["site"], "agents": set()})
        info["agents"].add(agent)
        for name in _SITE_FIELDS:
            if not info.get(name) and labels.get(name):
                info[name] = labels[name]
    for o in observations:
        for end in ("from", "to"):
            info = sites.setdefault(o.labels[end], {"id": o.labels[end], "agents": set()})
            info["agents"].add(o.agent)
            if "kind" not in info:
                info.update(_guess_site(o.labels, end))
    for info in sites.values():
        info.setdefault("kind", "kecamatan")
        info.setdefault("name", info["id"])
        info.setdefault("timezone", "Asia/Jakarta")
    return sites


def _guess_site(labels: Labels, end: str) -> Status:
    """An uplink runs from its kabupaten to pusat, a kecamatan link from the kecamatan to it."""
    kabupaten = labels.get("kabupaten", "")
    if labels[end] == kabupaten:
        return {"kind": "kabupaten", "kabupaten": kabupaten}
    if end == "to":
        return {"kind": "pusat"}
    return {"kind": "kecamatan", "parent": kabupaten, "kabupaten": kabupaten}


def _site_doc(
    info: Status,
    serving: Sequence[float],
    monitored: bool,
    agents: Mapping[str, Agent],
    at: float,
) -> Status:
    # A province that no link touches is the fleet's heading for its kabupaten, not an office
    # whose service nobody watches (which would hold the whole fleet at unknown).
    heading = info["kind"] == "provinsi" and not monitored and not serving
    terminal = info["kind"] in TERMINAL_KINDS or heading
    return {
        "id": info["id"],
        "kind": info["kind"],
        "name": info["name"],
        "parent": info.get("parent") or None,
        "kabupaten": info.get("kabupaten") or None,
        "timezone": info["timezone"],
        "zone_abbr": _zone_abbr(info["timezone"], at),
        "service": None if terminal else _service(info, serving, monitored, agents),
    }


def _service(
    info: Status, serving: Sequence[float], monitored: bool, agents: Mapping[str, Agent]
) -> Status:
    """The best that any live agent says; unknown (as the daemon says it) when none says."""
    if serving:
        state = SERVICE_STATE.get(max(serving), "unknown")
        return {"state": state, "via": [], "reason": "no_path" if state == "unavailable" else ""}
    silent = sorted(a for a in info["agents"] if agents[a].silent)
    if any(not agents[a].silent for a in info["agents"]) or not silent:
        reason = "no_data" if monitored else "not_monitored"
    else:
        reason = "silent:" + ",".join(silent)
    return {"state": "unknown", "via": [], "reason": reason}


def _in_kabupaten(link: Status, sites: Mapping[str, Status], kabupaten: str) -> bool:
    return any(
        sites.get(end, {}).get("kabupaten") == kabupaten for end in (link["from"], link["to"])
    )


def _narrow(sites: dict[str, Status], links: Sequence[Status], kabupaten: str) -> dict[str, Status]:
    """The kabupaten's sites, the provinsi above them and the far ends of their links."""
    keep = {site_id for site_id, info in sites.items() if info.get("kabupaten") == kabupaten}
    keep |= {end for link in links for end in (link["from"], link["to"])}
    for site_id in list(keep):
        parent = sites.get(site_id, {}).get("parent")
        while parent and parent in sites and parent not in keep:
            keep.add(parent)
            parent = sites[parent].get("parent")
    return {site_id: info for site_id, info in sites.items() if site_id in keep}


# -- links -------------------------------------------------------------------------------------


def _observations(readings: Readings, agents: Mapping[str, Agent]) -> list[_Observation]:
    found: dict[tuple[str, str], _Observation] = {}

    def seen(labels: Labels) -> _Observation | None:
        agent = labels.get("agent", "")
        if agent not in agents or "link" not in labels:
            return None
        key = (agent, labels["link"])
        if key not in found:
            found[key] = _Observation(agent, labels, agents[agent].silent)
        observation = found[key]
        return None if observation.silent else observation

    for sample in readings.states:
        if (o := seen(sample.labels)) is not None:
            o.state = sample.labels.get("state", "unknown")
            o.since = sample.value
    for labels in readings.old_links:
        seen(labels)
    for sample in readings.flapping:
        if (o := seen(sample.labels)) is not None:
            o.flapping = True
    for sample in readings.maintenance:
        if (o := seen(sample.labels)) is not None:
            o.maintenance = True
    for sample in readings.figures:
        o = found.get((sample.labels["agent"], sample.labels["link"]))
        if o is not None and sample.value == sample.value:
            if sample.labels.get("stat") == "rtt":
                o.rtt = sample.value
            else:
                o.loss = sample.value
    return list(found.values())


def _same_links(observations: Sequence[_Observation]) -> list[list[_Observation]]:
    """Observations of one link, grouped: same id, or same two ends and network."""
    parent = list(range(len(observations)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    first: dict[object, int] = {}
    for n, observation in enumerate(observations):
        for key in (("id", observation.link), ("ends", observation.ends)):
            if key in first:
                parent[root(n)] = root(first[key])
            else:
                first[key] = n
    groups: dict[int, list[_Observation]] = defaultdict(list)
    for n, observation in enumerate(observations):
        groups[root(n)].append(observation)
    return list(groups.values())


def _link_doc(group: Sequence[_Observation], agents: Mapping[str, Agent], at: float) -> Status:
    live = [o for o in group if not o.silent and o.state != "unknown"]
    direct = [o for o in live if o.state in _DIRECT]
    if direct:
        chosen: _Observation | None = min(direct, key=lambda o: _DIRECT.index(o.state))
    else:
        chosen = next((o for o in live if o.state == "unreachable"), None)
    ids = sorted({o.link for o in group}, key=lambda i: (-sum(o.link == i for o in group), i))
    labels = (chosen or group[0]).labels
    silent = sorted({o.agent for o in group if o.silent})
    if chosen is not None:
        state, since, cause = chosen.state, chosen.since, None
    else:
        seen = [t for a in silent if (t := agents[a].last_seen) is not None]
        state, since = "unknown", max(seen, default=None)
        cause = "silent:" + ",".join(silent) if silent else None
    return {
        "id": ids[0],
        "from": labels["from"],
        "to": labels["to"],
        "network": labels["network"],
        "state": state,
        "since": _iso(since if since is not None and since == since else at),
        "cause": cause,
        "detail": "",
        "flapping": any(o.flapping for o in live),
        # Prometheus knows that a window covers the link, not its reason or end
        "maintenance": {"reason": "", "until": _iso(at)} if chosen and chosen.maintenance else None,
        "depends_on": [],
        "unreachable_via": None,
        "path": None,
        # the RTT gauge keeps the last round that had replies: not news about a link that is down
        "rtt_seconds": chosen.rtt if chosen and chosen.state in ("up", "degraded") else None,
        "loss": chosen.loss if chosen else None,
        # per-probe results stay with the agent (its own /api/v1/status): 10,000 more series
        # per refresh at 500 agents, for what neither the tree nor the page shows
        "probes": [],
        "seen_by": [_seen_doc(o, agents) for o in sorted(group, key=lambda o: o.agent)],
        "seen_from": _seen_from(state, live),
    }


def _seen_from(state: str, live: Sequence[_Observation]) -> str | None:
    """``both`` when every live agent that watches a link in trouble sees trouble, ``one`` when
    some see it up; nothing to tell about a link that is up, or that one agent alone watches."""
    if state in ("up", "unknown") or len(live) < 2:
        return None
    return "both" if all(o.state != "up" for o in live) else "one"


def _seen_doc(observation: _Observation, agents: Mapping[str, Agent]) -> Status:
    since = observation.since
    return {
        "agent": observation.agent,
        "link": observation.link,
        "state": observation.state,
        "since": None if since is None or since != since else _iso(since),
        "silent": observation.silent,
        "last_seen": (
            _iso(seen)
            if observation.silent and (seen := agents[observation.agent].last_seen) is not None
            else None
        ),
    }


# -- order -------------------------------------------------------------------------------------


def _problems_first(sites: list[Status], links: list[Status], kinds: Mapping[str, str]) -> None:
    """Sort in place: the worst first at every level (a kabupaten with a kecamatan down before
    one that is all up), then by name; links likewise under their office."""
    rank = {site["id"]: _RANK[_site_weight(site)] for site in sites}
    for link in links:
        office = office_end(link, kinds)
        if office in rank and link["maintenance"] is None:
            rank[office] = min(rank[office], _RANK[LINK_WEIGHT[link["state"]]])
    parents = {site["id"]: site["parent"] for site in sites}
    for site_id in list(rank):
        parent, hops = parents.get(site_id), 0
        while parent in rank and hops < len(rank):
            rank[parent] = min(rank[parent], rank[site_id])
            parent, hops = parents.get(parent), hops + 1
    sites.sort(key=lambda site: (rank[site["id"]], site["name"], site["id"]))
    links.sort(key=lambda link: (_RANK[LINK_WEIGHT[link["state"]]], link["id"]))


def _site_weight(site: Status) -> str:
    service = site["service"]
    return "up" if service is None else SERVICE_WEIGHT[service["state"]]


def _iso(ts: float) -> str:
    """The API's UTC text; time.gmtime, as 16,000 datetimes cost a tenth of a second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@lru_cache(maxsize=32)
def _zone_abbr(timezone: str, at: float) -> str:
    """WIB, WITA, WIT: three zones for thousands of sites, at one moment per document."""
    return datetime.fromtimestamp(at, ZoneInfo(timezone)).tzname() or timezone
