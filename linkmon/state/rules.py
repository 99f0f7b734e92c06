"""What the state machine needs to know about the network, as plain values.

Built from a :class:`~linkmon.config.Config` (:meth:`Rules.from_config`) or by hand in tests;
:class:`Layout` holds the look-up tables derived from them once per (re)configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from linkmon.topology import Topology

if TYPE_CHECKING:
    from linkmon.config import Config


@dataclass(frozen=True, slots=True)
class ProbeRule:
    kind: str
    target: str


@dataclass(frozen=True, slots=True)
class LinkRule:
    id: str
    from_site: str
    to_site: str
    network: str
    probes: tuple[ProbeRule, ...]
    depends_on: tuple[str, ...] = ()
    down_after: int = 3
    up_after: int = 2
    max_loss: float = 0.2
    max_rtt: float = 0.3
    kabupaten: str | None = None  # the ``kabupaten`` label; default: that of the from site


@dataclass(frozen=True, slots=True)
class SiteRule:
    id: str
    kind: str
    name: str
    timezone: str
    kabupaten: str | None = None


def no_maintenance(link: str, now: float) -> str | None:
    return None


@dataclass(frozen=True)
class Rules:
    """The parts of the configuration the state machine reads.

    ``maintenance(link_id, now)`` names the window covering a link at ``now`` (or None).
    ``own_uplinks``: the agent's own first hops; what lies behind them is unknown when they fail.
    From a config these are the links leaving the agent's site (``agent.site`` when the config
    has it, else the site named like the agent) that other links depend on.
    """

    agent: str
    sites: Mapping[str, SiteRule]
    links: Mapping[str, LinkRule]
    own_uplinks: frozenset[str] = frozenset()
    flap_changes: int = 4
    flap_window: float = 300.0
    rollup_share: float = 0.5
    rollup_min_links: int = 3
    maintenance: Callable[[str, float], str | None] = no_maintenance

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        agent = config.agent
        sites = {
            s.id: SiteRule(
                id=s.id,
                kind=s.kind,
                name=s.name or s.id,
                timezone=s.timezone or agent.timezone,
                kabupaten=config.kabupaten_of(s.id),
            )
            for s in config.sites
        }
        links = {
            link.id: LinkRule(
                id=link.id,
                from_site=link.from_site,
                to_site=link.to_site,
                network=link.network,
                probes=tuple(ProbeRule(p.kind, p.target_label) for p in link.probes),
                depends_on=tuple(link.depends_on),
                down_after=link.down_after,
                up_after=link.up_after,
                max_loss=link.degraded.loss,
                max_rtt=link.degraded.rtt,
                kabupaten=config.kabupaten_of_link(link.id),
            )
            for link in config.links
        }
        agent_site = getattr(agent, "site", None) or agent.name
        needed = {parent for link in links.values() for parent in link.depends_on}
        own = frozenset(lid for lid in needed if links[lid].from_site == agent_site)
        alerting = config.alerting

        def maintenance(link_id: str, now: float) -> str | None:
            window = config.in_maintenance(link_id, datetime.fromtimestamp(now, UTC))
            return None if window is None else (window.reason or "maintenance")

        return cls(
            agent=agent.name,
            sites=sites,
            links=links,
            own_uplinks=own,
            flap_changes=alerting.flapping.changes,
            flap_window=alerting.flapping.window,
            rollup_share=alerting.rollup.share,
            rollup_min_links=alerting.rollup.min_links,
            # Asked for every link every tick: skip the look-up when no window exists.
            maintenance=maintenance if config.maintenance else no_maintenance,
        )


class Layout:
    """Look-up tables derived from the rules: dependency order, kabupaten members, paths.

    Raises ValueError for a rule naming an unknown site or link, or a dependency cycle.
    """

    def __init__(self, rules: Rules) -> None:
        links = rules.links
        for link in links.values():
            for parent in link.depends_on:
                if parent not in links:
                    raise ValueError(f"link {link.id}: depends_on names unknown link {parent}")
        self.topology = Topology(
            {s.id: s.kind for s in rules.sites.values()},
            [(link.id, link.from_site, link.to_site) for link in links.values()],
        )
        self.order = _topological(links)
        self.children: dict[str, list[str]] = {lid: [] for lid in links}
        self.kecamatan: dict[str, list[str]] = {}  # kabupaten → its kecamatan links
        self.member_of: dict[str, str] = {}  # kecamatan link → its kabupaten
        self.own_links: dict[str, list[str]] = {}  # office → the links leaving it
        for link in links.values():
            for parent in link.depends_on:
                self.children[parent].append(link.id)
            site = rules.sites[link.from_site]
            if site.kind == "kecamatan" and site.kabupaten:
                self.kecamatan.setdefault(site.kabupaten, []).append(link.id)
                self.member_of[link.id] = site.kabupaten
            self.own_links.setdefault(link.from_site, []).append(link.id)


def _topological(links: Mapping[str, LinkRule]) -> dict[str, int]:
    """Position of each link such that parents come before the links depending on them."""
    order: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(lid: str) -> None:
        if lid in order:
            return
        if lid in visiting:
            raise ValueError(f"link {lid}: depends_on forms a cycle")
        visiting.add(lid)
        for parent in links[lid].depends_on:
            visit(parent)
        visiting.discard(lid)
        order[lid] = len(order)

    for lid in links:
        visit(lid)
    return order
