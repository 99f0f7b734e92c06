"""Which alerts fire: reconciled from the links' and offices' states, not emitted per event.

An alert fires when its condition holds and nothing suppresses it (maintenance, flapping, a
regional roll-up, unreachable), and a firing alert resolves only when its condition ends —
suppression never swallows a resolve:

* ``LinkDown`` (critical): a link DOWN;
* ``LinkFlapping`` (warning): a link changing into or out of DOWN too often (see
  :mod:`linkmon.state.network`); its LinkDown pages are held meanwhile;
* ``ServiceUnavailable`` (critical): an office whose redundant paths are all gone — a
  single-path office is already paged by its LinkDown, one behind a failed hub by the hub's;
* ``RegionalIncident`` (critical): at least ``rollup.share`` and ``rollup.min_links`` of a
  kabupaten's kecamatan links down together, instead of one page each.

What comes out are :class:`~linkmon.state.facts.AlertChange` facts; the firing book keeps, per
key, when the alert began, so a restart that hands it back resolves what it owes and pages
nothing twice. An alert whose subject a reload removed is resolved as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from linkmon.state.facts import (
    OUT,
    SERVING,
    AlertChange,
    AlertKey,
    AlertKind,
    LinkState,
    ServiceStatus,
)
from linkmon.state.judgement import LiveLink
from linkmon.state.rules import Layout, Rules
from linkmon.topology import Availability


class Alerting:
    """The firing book (alert key → when it began) and the roll-up decisions."""

    def __init__(self, firing: Mapping[AlertKey, float]) -> None:
        self.firing: dict[AlertKey, float] = dict(firing)
        self.rollup: set[str] = set()  # kabupaten whose roll-up pages (or is about to)

    def adopt(self, rules: Rules, layout: Layout, links: Mapping[str, LiveLink]) -> None:
        """Work on these rules and links from now on (start, reload)."""
        self._rules, self._layout, self._links = rules, layout, links
        self.rollup &= layout.kecamatan.keys()

    def reconcile(
        self,
        out: list[AlertChange],
        now: float,
        links: Iterable[LiveLink],
        moved: Iterable[LiveLink],
        everything: bool = False,
        services: Mapping[str, ServiceStatus] | None = None,
    ) -> None:
        """Fire and resolve what ``links`` (or, with ``everything``, all subjects) call for.

        A kabupaten's roll-up is re-decided when one of its kecamatan links ``moved``; when
        that flips it, all of its links are re-checked (held pages go out, or are held).
        Office alerts are settled only when ``services`` are given: finding every office's
        path costs a search of the whole network, once per tick rather than per change.
        """
        layout = self._layout
        subjects = {link.id: link for link in (self._links.values() if everything else links)}
        kabupatens = (
            set(layout.kecamatan)
            if everything
            else {layout.member_of[link.id] for link in moved if link.id in layout.member_of}
        )
        for kab in sorted(kabupatens):
            covered = kab in self.rollup
            self._region(out, kab, now)
            if everything or (kab in self.rollup) != covered:
                subjects.update((lid, self._links[lid]) for lid in layout.kecamatan[kab])
        for link in subjects.values():
            self._link(out, link, now)
        if services is not None:
            for status in services.values():
                self._service(out, status, now)
        if everything:
            self._orphans(out, now)

    def _settle(
        self,
        out: list[AlertChange],
        key: AlertKey,
        now: float,
        holds: bool,
        may_fire: bool,
        fire: Callable[[], AlertChange],
    ) -> None:
        since = self.firing.get(key)
        if since is None and holds and may_fire:
            change = fire()
            self.firing[key] = change.since
            out.append(change)
        elif since is not None and not holds:
            del self.firing[key]
            out.append(AlertChange(key, firing=False, since=since, at=now))

    def _link(self, out: list[AlertChange], link: LiveLink, now: float) -> None:
        down_key, flap_key, firing = link.down_key, link.flap_key, self.firing
        if (
            link.state is not LinkState.DOWN
            and not link.flapping
            and down_key not in firing
            and flap_key not in firing
        ):
            return  # nothing to fire, nothing to resolve: what nearly every result comes to
        creating_down = (
            link.state is LinkState.DOWN
            and down_key not in firing
            and not link.flapping
            and not self._covered(link)
        )
        if creating_down:
            link.maintenance = self._rules.maintenance(link.id, now)
        self._settle(
            out,
            down_key,
            now,
            holds=link.state not in SERVING,
            may_fire=creating_down and link.maintenance is None,
            fire=lambda: AlertChange(
                down_key, True, link.since, now, cause=link.cause, detail=link.detail
            ),
        )
        self._settle(
            out,
            flap_key,
            now,
            holds=link.flapping,
            may_fire=link.flapping and self._rules.maintenance(link.id, now) is None,
            fire=lambda: AlertChange(
                flap_key,
                True,
                link.flapping_since,
                now,
                cause="flapping",
                changes=len(link.flaps),
                window=self._rules.flap_window,
            ),
        )

    def _covered(self, link: LiveLink) -> bool:
        """Whether a regional roll-up pages for this link (or is about to)."""
        return self._layout.member_of.get(link.id) in self.rollup

    def _region(self, out: list[AlertChange], kab: str, now: float) -> None:
        """Decide the roll-up for one kabupaten, before its links are reconciled.

        Once at least the roll-up share of its kecamatan links is down, one incident pages
        for all of them until every one is back; while enough are failing to get there, the
        ones already down wait instead of paging one by one.
        """
        members = [self._links[lid] for lid in self._layout.kecamatan[kab]]
        down = [m for m in members if m.state is LinkState.DOWN and m.maintenance is None]
        suspect = [m for m in members if m.suspect and m.maintenance is None]
        need = max(self._rules.rollup_min_links, math.ceil(self._rules.rollup_share * len(members)))
        key = AlertKey(AlertKind.REGIONAL_INCIDENT, kab)
        still_out = any(m.state in OUT for m in members)
        holds = still_out if key in self.firing else len(down) >= need
        if holds or (len(members) >= need and len(down) + len(suspect) >= need):
            self.rollup.add(kab)
        else:
            self.rollup.discard(kab)
        causes = sorted((m.cause for m in down), key=lambda c: -sum(d.cause == c for d in down))
        since = min((m.since for m in down), default=now)
        self._settle(
            out,
            key,
            now,
            holds=holds,
            may_fire=True,
            fire=lambda: AlertChange(
                key,
                True,
                since,
                now,
                cause=causes[0] if causes else "path_down",
                down=len(down),
                total=len(members),
                offices=tuple(m.rule.from_site for m in down),
            ),
        )

    def _service(self, out: list[AlertChange], status: ServiceStatus, now: float) -> None:
        own = [self._links[lid] for lid in self._layout.own_links.get(status.site, ())]
        key = AlertKey(AlertKind.SERVICE_UNAVAILABLE, status.site)
        # Only an office that lost every one of its own paths pages here: one with a single
        # link is paged by that link, one behind a failed hub by the hub's alerts.
        root_cause = bool(own) and all(link.state is LinkState.DOWN for link in own)
        may_fire = (
            root_cause
            and len(own) >= 2
            and not any(self._covered(link) for link in own)
            and not all(self._rules.maintenance(link.id, now) for link in own)
        )
        self._settle(
            out,
            key,
            now,
            holds=status.availability is Availability.UNAVAILABLE,
            may_fire=may_fire,
            fire=lambda: AlertChange(
                key, True, status.since, now, cause="no_path", links=tuple(link.id for link in own)
            ),
        )

    def _orphans(self, out: list[AlertChange], now: float) -> None:
        """Resolve alerts whose subject a reload removed: their resolve is still owed.

        A link alert's subject is a link; an office's, an office; a regional incident's, a
        kabupaten that still has kecamatan links to watch.
        """
        offices = set(self._layout.topology.offices)
        for key, since in list(self.firing.items()):
            if key.kind.about_link:
                gone = key.subject not in self._links
            elif key.kind is AlertKind.SERVICE_UNAVAILABLE:
                gone = key.subject not in offices
            else:
                gone = key.subject not in self._layout.kecamatan
            if gone:
                del self.firing[key]
                out.append(AlertChange(key, firing=False, since=since, at=now, removed=True))
