"""The questions the fleet view asks Prometheus: one set per refresh, sent together.

Instant queries for what every agent says now, filtered in PromQL by ``--agent`` and
``--kabupaten`` so that a per-kabupaten Nagios check moves one kabupaten's series, not the
country's. Only when some agent is silent does a second round look back (``lookback``, a day
by default) for that agent alone: when it was last seen (a subquery over its heartbeat, which
works on Prometheus 2.42) and which sites and links it watched (the series index, no samples).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from .model import Readings, Scope, silent_agents
from .prometheus import Prometheus

# The last-seen subqueries look at the heartbeat every second over the last ten minutes (an
# agent that just stopped), every LAST_SEEN_STEP seconds beyond: "last seen" is that exact.
RECENT = 600
LAST_SEEN_STEP = 15


LINK = "agent, link, from, to, network, kabupaten"
SITE = "agent, site, kind, name, parent, kabupaten, timezone"


def _agents(names: tuple[str, ...]) -> str:
    if not names:
        return 'agent!=""'
    return 'agent=~"' + "|".join(name.replace(".", r"\\.") for name in names) + '"'


def _kabupaten(scope: Scope) -> tuple[str, str]:
    """Extra matchers for link and service series, and for site series: pusat, DRC and
    provinsi sites belong to no kabupaten and are kept (the model drops those not linked)."""
    if scope.kabupaten is None:
        return "", ""
    return f',kabupaten="{scope.kabupaten}"', f',kabupaten=~"{scope.kabupaten}|"'


def questions(scope: Scope) -> dict[str, str]:
    """The instant queries of one refresh, by the :class:`Readings` field they fill."""
    a = _agents(scope.agents)
    k, sites = _kabupaten(scope)
    return {
        "heartbeat": _heartbeat(a),
        "failing": f"up{{{a}}} == 0",
        "versions": f"linkmon_build_info{{{a}}}",
        # by the labels the model reads: instance and job would only make the answer longer
        "sites": f"group by ({SITE}) (linkmon_site_info{{{a}{sites}}})",
        # one answer per link: its state as a label, since when as the value
        "states": (
            f"max by ({LINK}, state) (linkmon_link_state_since_timestamp_seconds{{{a}{k}}}"
            f" * ignoring (state) group_left (state) (linkmon_link_state{{{a}{k}}} == 1))"
        ),
        "flapping": f"linkmon_link_flapping{{{a}{k}}} == 1",
        "maintenance": f"linkmon_link_in_maintenance{{{a}{k}}} == 1",
        "services": f"linkmon_service_available{{{a}{k}}}",
        "figures": (
            f"label_replace(avg by (agent, link) (linkmon_probe_rtt_avg_seconds{{{a}{k}}}),"
            f' "stat", "rtt", "", "")'
            f" or label_replace(max by (agent, link) (linkmon_probe_loss_ratio{{{a}{k}}}),"
            f' "stat", "loss", "", "")'
        ),
    }


def _heartbeat(agents: str) -> str:
    """Per agent, the time of its newest sample: build_info carries the scrape target's agent
    label, site_info linkmon's own, so either alone still finds the agent."""
    return (
        f"max by (agent) (timestamp(linkmon_build_info{{{agents}}})"
        f" or timestamp(linkmon_site_info{{{agents}}}))"
    )


def last_seen_query(agents: str, lookback: float) -> str:
    """When each agent's newest sample was, at most ``lookback`` seconds ago. A subquery,
    as Prometheus 2.42 has no function for a sample's time over a range; fine-grained where
    it matters most, and ``or`` keeps the fine answer where both have one."""
    heartbeat = _heartbeat(agents)
    recent = f"max_over_time({heartbeat}[{min(RECENT, lookback):.0f}s:1s])"
    return f"{recent} or max_over_time({heartbeat}[{lookback:.0f}s:{LAST_SEEN_STEP}s])"


async def read(
    prometheus: Prometheus, scope: Scope, at: float, stale_after: float, lookback: float
) -> Readings:
    """Everything the fleet document needs, as Prometheus holds it at ``at``."""
    asked = questions(scope)
    a = _agents(scope.agents)
    known, *answers = await asyncio.gather(
        prometheus.label_values(
            "agent", [f"linkmon_build_info{{{a}}}", f"linkmon_site_info{{{a}}}"], at - lookback, at
        ),
        *(prometheus.query(expr, at) for expr in asked.values()),
    )
    readings = Readings(at, tuple(known), **dict(zip(asked, answers, strict=True)))  # type: ignore[arg-type]
    silent = silent_agents(readings, stale_after)
    if not silent:
        return readings
    s = _agents(tuple(silent))
    k, sites = _kabupaten(scope)
    last_seen, old_sites, old_links = await asyncio.gather(
        prometheus.query(last_seen_query(s, lookback), at),
        prometheus.series([f"linkmon_site_info{{{s}{sites}}}"], at - lookback, at),
        prometheus.series([f"linkmon_link_up{{{s}{k}}}"], at - lookback, at),
    )
    return replace(readings, last_seen=last_seen, old_sites=old_sites, old_links=old_links)
