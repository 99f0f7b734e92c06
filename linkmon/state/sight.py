"""Whether the agent can see at all: its LAN gateway, its own uplinks, its own faults.

An agent that lost its own network must say "I am blind", not page every link (issue #13):

* **own_lan**: its LAN next hop (``agent.gateway``) is judged down like a link (``down_after``
  failed rounds). Every link that would be DOWN meanwhile is UNKNOWN (``own_lan``). While the
  gateway is failing but not yet judged, or has not answered since a link began failing, that
  link's DOWN waits: whatever the phases of their rounds, a LAN cut never pages a link first.
* **own_uplink**: every link leaving the agent's own office (``agent.site``) is down. The
  uplinks are DOWN (the office has lost them, as far as anyone here can tell); the links behind
  them (``depends_on``) are UNKNOWN (``own_uplink``). The agent is blind when some are.
* **agent_fault**: a probe the agent itself could not run (:attr:`probes.Failure.AGENT`) for
  ``down_after`` rounds in a row is blind (:mod:`linkmon.state.judgement`); what it was short of
  (:func:`probes.base.agent_resource`) is the subject of the agent's fault alert.

When sight returns, the links it hid are judged again on fresh results only, as links behind a
recovered upstream link are: no burst of stale pages.
"""

from __future__ import annotations

from collections.abc import Mapping

from linkmon.state.facts import AgentSight, LinkState
from linkmon.state.judgement import LiveLink, LiveProbe
from linkmon.state.rules import GatewayRule, Rules
from probes.base import ProbeResult, agent_resource

GATEWAY = "agent.gateway"
"""How the gateway's probe is named among links (in the agent's fault alert)."""


class Gateway:
    """The agent's LAN next hop as the state machine keeps it: one probe of no link."""

    def __init__(self, rule: GatewayRule) -> None:
        self.rule = rule
        self.probe = LiveProbe(rule.probe)
        self.answered_at: float | None = None  # its last good round

    def record(self, result: ProbeResult, now: float) -> None:
        self.probe.record(result, now, self.rule)
        if result.success:
            self.answered_at = now

    @property
    def down(self) -> bool:
        return self.probe.verdict is False

    def unsure(self, link: LiveLink) -> bool:
        """Whether a DOWN of ``link`` must wait for the gateway: it is failing and not judged
        yet, or it has not answered since the link began failing. Not while the agent cannot
        probe the gateway at all (its own fault): then it vouches for nothing either way."""
        probe = self.probe
        if probe.blind or self.down:
            return False
        if probe.failures:
            return True
        since = link.failing_since()
        return since is not None and (self.answered_at is None or self.answered_at < since)


class Sight:
    """The agent's own state of sight, kept by :class:`~linkmon.state.network.Network`."""

    def __init__(self, rules: Rules) -> None:
        self.gateway: Gateway | None = None
        self.blind: str | None = None  # own_lan | own_uplink: what the agent alert says
        self.since = 0.0
        self.lan_down = False
        self.uplinks_down = False
        self.hidden_behind_uplinks: set[str] = set()  # links UNKNOWN (own_uplink)
        self.faulty: set[str] = set()  # links with a probe the agent cannot run
        self.adopt(rules)

    def adopt(self, rules: Rules) -> None:
        """Work on these rules (start, reload); an unchanged gateway keeps its verdict."""
        self.uplinks = tuple(sorted(rules.own_uplinks))
        if rules.gateway is None:
            self.gateway = None
        elif self.gateway is None or self.gateway.rule.target != rules.gateway.target:
            self.gateway = Gateway(rules.gateway)
        else:
            self.gateway.rule = rules.gateway

    def noticed(self, link: LiveLink) -> None:
        """Keep count of ``link`` after its state or probes changed: cheap enough per result."""
        if link.hidden and link.cause == "own_uplink":
            self.hidden_behind_uplinks.add(link.id)
        else:
            self.hidden_behind_uplinks.discard(link.id)
        if link.blind_probes:
            self.faulty.add(link.id)
        else:
            self.faulty.discard(link.id)

    def update(self, links: Mapping[str, LiveLink], now: float) -> bool:
        """Take the gateway's verdict and the uplinks' states; True when what the agent can
        see past changed (then every link must be judged again)."""
        lan = self.gateway is not None and self.gateway.down
        uplinks = bool(self.uplinks) and all(
            links[u].state is LinkState.DOWN for u in self.uplinks if u in links
        )
        changed = (lan, uplinks) != (self.lan_down, self.uplinks_down)
        self.lan_down, self.uplinks_down = lan, uplinks
        hiding = uplinks and bool(self.hidden_behind_uplinks)
        blind = "own_lan" if lan else "own_uplink" if hiding else None
        if blind != self.blind:
            self.blind, self.since = blind, now
        return changed

    def faults(self, links: Mapping[str, LiveLink]) -> dict[str, list[tuple[str, LiveProbe]]]:
        """Per resource the agent is short of, the probes it cannot run: (link id, probe)."""
        found: dict[str, list[tuple[str, LiveProbe]]] = {}
        probes = [(GATEWAY, self.gateway.probe)] if self.gateway is not None else []
        probes += [(lid, p) for lid in sorted(self.faulty) for p in links[lid].probes]
        for lid, probe in probes:
            if probe.blind and probe.last is not None:
                found.setdefault(agent_resource(probe.last.detail), []).append((lid, probe))
        return found

    def facts(self, links: Mapping[str, LiveLink]) -> AgentSight:
        faults = self.faults(links)
        return AgentSight(
            blind=self.blind,
            since=self.since,
            faults=tuple(sorted((resource, len(found)) for resource, found in faults.items())),
        )
