"""The whole picture for one agent: every link's state, its dependencies, service per office.

:class:`Network` takes each probe result (:meth:`Network.observe`) and the passing of time
(:meth:`Network.tick`), judges the links (:mod:`linkmon.state.judgement`), applies their
dependencies and flap damping, works out which offices can serve (:mod:`linkmon.topology`)
and which alerts fire (:mod:`linkmon.state.alerting`), and hands back the :class:`Changes`.

* **Dependencies**: a link that would be DOWN while every ``depends_on`` link is down is
  UNREACHABLE (cause ``upstream:<root link ids>``) and pages no one. If the roots are all the
  agent's own uplinks, it is UNKNOWN (``own_uplink``): the agent is blind, not the link. While
  a parent is failing but not yet judged, a child's DOWN is held back (the parent decides
  within its own ``down_after``), so a hub cut never pages its kecamatan first. When the
  parents recover, an unreachable link stays as it is until fresh results of its own arrive:
  no burst of stale DOWNs.
* **Flapping**: more than ``flapping.changes`` changes into or out of DOWN within
  ``flapping.window`` set ``flapping``; it clears when at most half as many remain.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from linkmon.state.alerting import Alerting
from linkmon.state.facts import (
    OUT,
    SERVING,
    AlertChange,
    AlertKey,
    Changes,
    LinkSnapshot,
    LinkState,
    ServiceStatus,
    Transition,
)
from linkmon.state.judgement import LiveLink, LiveProbe, judge
from linkmon.state.rules import Layout, LinkRule, Rules, no_maintenance
from probes.base import ProbeResult

if TYPE_CHECKING:
    from linkmon.config import Config

_NO_CHANGES = Changes()


@dataclass
class _Step:
    """What one step collected, turned into :class:`Changes` at the end."""

    transitions: list[Transition] = field(default_factory=list)
    alerts: list[AlertChange] = field(default_factory=list)
    changed: dict[str, LiveLink] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.transitions or self.alerts or self.changed)


class Network:
    """Pure logic, no I/O: every method takes ``now`` (unix seconds), so tests drive it with a
    fake clock and the daemon with the real one."""

    def __init__(
        self,
        config: Config | Rules,
        now: float,
        restored: Mapping[str, LinkSnapshot] | None = None,
        firing: Mapping[AlertKey, float] | None = None,
    ) -> None:
        """Start from ``restored`` snapshots and the alerts storage kept ``firing`` (each
        with when it began), if any.

        Call :meth:`tick` right away: it resolves alerts whose subject a new configuration
        removed and fires what a restart left pending.
        """
        self._rules = config if isinstance(config, Rules) else Rules.from_config(config)
        self._layout = Layout(self._rules)
        self._links: dict[str, LiveLink] = {}
        self._alerting = Alerting(firing or {})
        self._service: dict[str, ServiceStatus] = {}
        self._service_changed: float | None = now  # earliest state change not yet in _service
        self._service_reconciled: dict[str, ServiceStatus] | None = None  # its alerts settled
        self._everything = True  # the next tick re-checks every alert
        # Links whose stored state must go: gone from the config since the last run or reload.
        self._removed = sorted(set(restored or ()) - self._rules.links.keys())
        self._pending = _Step()  # what a reload changed, reported with the next step
        for rule in self._rules.links.values():
            snapshot = (restored or {}).get(rule.id)
            self._links[rule.id] = _restore(rule, snapshot) if snapshot else _fresh(rule, now)
        self._alerting.adopt(self._rules, self._layout, self._links)

    # -- public ------------------------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        return self._rules

    def observe(self, link_id: str, probe_index: int, result: ProbeResult, now: float) -> Changes:
        """Take one probe result; returns what changed (possibly nothing).

        A result for a link or probe a reload removed is ignored.
        """
        link = self._links.get(link_id)
        if link is None or not 0 <= probe_index < len(link.probes):
            return _NO_CHANGES
        link.probes[probe_index].record(result, now, link.rule)
        step = _Step()
        self._settle(step, [link], now)
        return self._finish(step)

    def tick(self, now: float) -> Changes:
        """Apply what time alone changes: maintenance windows, flap damping, pending alerts.

        Call it every few seconds; its cost is one maintenance look-up per link. The first
        tick after start or reload re-checks every alert (what a restart left pending).
        """
        step = _Step()
        windows = self._rules.maintenance is not no_maintenance
        for link in self._links.values():
            if not (windows or link.flaps or link.flapping or link.maintenance):
                continue  # time alone changes nothing here: the common case at 10,000 links
            before = link.persisted()
            link.maintenance = self._rules.maintenance(link.id, now)
            self._update_flapping(link, now)
            if link.persisted() != before:
                step.changed[link.id] = link
        changed = list(step.changed.values())
        # Against what was last reconciled: a status request (service()) may have refreshed
        # _service since, and its changes still owe their alerts.
        services = None
        if self._everything or changed or self._services() is not self._service_reconciled:
            services = self._service_reconciled = self._services()
        self._alerting.reconcile(step.alerts, now, changed, changed, self._everything, services)
        self._everything = False
        return self._finish(step)

    def reconfigure(self, config: Config | Rules, now: float) -> None:
        """Adopt a new configuration, keeping the state of every link that still exists.

        Probes are matched by kind and target: an unchanged probe keeps its counters, a new
        one starts fresh. Call :meth:`tick` afterwards to resolve alerts of removed links.
        """
        rules = config if isinstance(config, Rules) else Rules.from_config(config)
        layout = Layout(rules)
        old = self._links
        self._rules, self._layout, self._links = rules, layout, {}
        for rule in rules.links.values():
            link = old.get(rule.id)
            if link is None:
                self._links[rule.id] = _fresh(rule, now)
                continue
            kept = {p.rule: p for p in link.probes}
            link.probes = [kept.get(p) or LiveProbe(p) for p in rule.probes]
            link.rule = rule
            self._links[rule.id] = link
        self._removed += [lid for lid in old if lid not in self._links]
        self._alerting.adopt(rules, layout, self._links)
        self._service_changed = now
        self._everything = True
        self._settle(self._pending, list(self._links.values()), now)

    def snapshot(self, link_ids: Iterable[str] | None = None) -> dict[str, LinkSnapshot]:
        """Every link, or those of ``link_ids`` that exist."""
        if link_ids is None:
            return {lid: link.snapshot() for lid, link in self._links.items()}
        return {
            lid: link.snapshot() for lid in link_ids if (link := self._links.get(lid)) is not None
        }

    def service(self) -> dict[str, ServiceStatus]:
        """Per office (every site that is not pusat or the DRC)."""
        return dict(self._services())

    def firing(self) -> dict[AlertKey, float]:
        """Alerts firing now, each with when it began."""
        return dict(self._alerting.firing)

    # -- evaluation --------------------------------------------------------------------------

    def _settle(self, step: _Step, start: list[LiveLink], now: float) -> None:
        """Re-evaluate ``start`` and, in dependency order, every link whose parents changed."""
        order, children = self._layout.order, self._layout.children
        queue = [(order[link.id], link.id) for link in start]
        heapq.heapify(queue)
        queued = {lid for _, lid in queue}
        touched: list[LiveLink] = []
        moved: list[LiveLink] = []  # state or suspicion changed: may change a roll-up
        while queue:
            _, lid = heapq.heappop(queue)
            queued.discard(lid)
            link = self._links[lid]
            before = (link.state, link.cause, link.roots, link.suspect)
            persisted = link.persisted()
            transition = self._evaluate(link, now)
            link.suspect = link.state not in OUT and link.failing_now()
            if transition is not None:
                step.transitions.append(transition)
                if self._service_changed is None:
                    self._service_changed = now
                self._update_flapping(link, now)
            if link.persisted() != persisted:
                step.changed[lid] = link
            touched.append(link)
            if (link.state, link.suspect) != (before[0], before[3]):
                moved.append(link)
            if (link.state, link.cause, link.roots, link.suspect) != before:
                for child in children[lid]:
                    if child not in queued:
                        queued.add(child)
                        heapq.heappush(queue, (order[child], child))
        self._alerting.reconcile(step.alerts, now, touched, moved)

    def _evaluate(self, link: LiveLink, now: float) -> Transition | None:
        state, cause, detail = judge(link)
        roots: frozenset[str] = frozenset()
        parents = [self._links[p] for p in link.rule.depends_on]
        blocked = bool(parents) and all(p.blocks for p in parents)
        behind = link.state is LinkState.UNREACHABLE or (
            link.state is LinkState.UNKNOWN and link.cause == "own_uplink"
        )
        if behind and not blocked:
            if not link.rechecking:
                # The parents are back: judge this link only on what it answers from now on.
                link.rechecking = True
                for probe in link.probes:
                    probe.forget()
                return None
            if state is LinkState.UNKNOWN:
                return None
        if blocked:
            link.rechecking = False
        if state is LinkState.UNKNOWN and link.state is not LinkState.UNKNOWN:
            return None  # no verdict yet (fresh start of a probe): keep what we knew
        if state is LinkState.DOWN and parents:
            if blocked:
                roots = frozenset().union(
                    *(p.roots if p.state is not LinkState.DOWN else {p.id} for p in parents)
                )
                if roots <= self._rules.own_uplinks:
                    state, cause = LinkState.UNKNOWN, "own_uplink"
                else:
                    state, cause = LinkState.UNREACHABLE, "upstream:" + "+".join(sorted(roots))
            elif all(p.blocks or p.suspect for p in parents):
                return None  # a parent is failing too: let it decide first
        link.rechecking = False
        return _move(link, state, cause, detail, roots, now)

    def _update_flapping(self, link: LiveLink, now: float) -> None:
        window, limit = self._rules.flap_window, self._rules.flap_changes
        while link.flaps and link.flaps[0] <= now - window:
            link.flaps.popleft()
        if not link.flapping and len(link.flaps) > limit:
            link.flapping, link.flapping_since = True, now
        elif link.flapping and len(link.flaps) <= limit // 2:
            link.flapping = False

    # -- service availability ------------------------------------------------------------------

    def _services(self) -> dict[str, ServiceStatus]:
        """Service per office, recomputed only after a state change (a search of the whole
        network: once per tick at most, not per result)."""
        now = self._service_changed
        if now is None:
            return self._service
        self._service_changed = None
        out = {lid for lid, link in self._links.items() if link.state in OUT}
        unknown = {lid for lid, link in self._links.items() if link.state is LinkState.UNKNOWN}
        result: dict[str, ServiceStatus] = {}
        for site, reach in self._layout.topology.reach(out, unknown).items():
            previous = self._service.get(site)
            if previous is not None and (previous.availability, previous.via, previous.reason) == (
                reach.availability,
                reach.via,
                reach.reason,
            ):
                result[site] = previous
                continue
            same = previous is not None and previous.availability is reach.availability
            since = previous.since if previous is not None and same else now
            result[site] = ServiceStatus(site, reach.availability, reach.via, reach.reason, since)
        self._service = result
        return result

    def _finish(self, step: _Step) -> Changes:
        if not (step or self._pending or self._removed):
            return _NO_CHANGES  # what nearly every result comes to
        pending, self._pending = self._pending, _Step()
        removed, self._removed = self._removed, []
        step.transitions[:0] = pending.transitions
        step.alerts[:0] = pending.alerts
        step.changed = {**pending.changed, **step.changed}
        return Changes(
            transitions=tuple(step.transitions),
            alerts=tuple(step.alerts),
            links=tuple(
                link.snapshot() for link in step.changed.values() if link.id in self._links
            ),
            forgotten=tuple(removed),
        )


def _fresh(rule: LinkRule, now: float) -> LiveLink:
    return LiveLink(rule=rule, probes=[LiveProbe(p) for p in rule.probes], since=now)


def _restore(rule: LinkRule, snap: LinkSnapshot) -> LiveLink:
    link = LiveLink(
        rule=rule,
        probes=[LiveProbe(p) for p in rule.probes],
        state=snap.state,
        since=snap.since,
        cause=snap.cause,
        detail=snap.detail,
        roots=frozenset(snap.upstream),
        flaps=deque(snap.flaps),
        flapping=snap.flapping,
        flapping_since=snap.flapping_since or snap.since,
        maintenance=snap.maintenance,
    )
    saved = {(p.kind, p.target): p for p in snap.probes}
    for probe in link.probes:
        old = saved.get((probe.rule.kind, probe.rule.target))
        if old is not None:
            probe.verdict, probe.failures, probe.successes = (
                old.verdict,
                old.failures,
                old.successes,
            )
        elif snap.state in SERVING:
            probe.verdict = True
        elif snap.state in OUT:
            probe.verdict, probe.failures = False, rule.down_after
    return link


def _move(
    link: LiveLink,
    state: LinkState,
    cause: str,
    detail: str,
    roots: frozenset[str],
    now: float,
) -> Transition | None:
    old = link.state
    link.cause, link.detail, link.roots = cause, detail, roots
    if state is old:
        return None
    link.state, link.since = state, now
    if (state is LinkState.DOWN and old is not LinkState.UNREACHABLE) or (
        old is LinkState.DOWN and state in SERVING
    ):
        link.flaps.append(now)  # a change that pages: what flap damping counts
    return Transition(
        link=link.id,
        old=old,
        new=state,
        at=now,
        cause=cause,
        detail=detail,
        site=link.rule.from_site,
    )
