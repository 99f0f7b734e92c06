"""Which offices can serve citizens online: their paths to pusat over the monitored links.

One answer for the live state (``linkmon.state``: the status page, the metric, the office
alerts) and for the monthly report (``linkmon.report``: office downtime), so the two agree.
It is asked with the links that are *out* and those that are *unknown*; every other link
carries traffic:

* a link is **out** while it is down, or unreachable behind a failed upstream link: either
  way the office on the far side has no working path through it (the upstream link on that
  path is down, or the link itself is), whatever this agent can still probe;
* a link is **unknown** while it is not judged: no verdict yet, or the agent itself is blind
  (its own uplink failed). Time on such a path is not "available": the report does not count
  it as measured, the live state says ``unknown``.

An office's path is as good as its worst part and an office gets the best of its paths:
over the first link listed between two sites to the DC is *available*; over a backup link
(a second link between the same two sites) or ending at the DRC it is *degraded* (still
serving); a path with an unknown link is *unknown*; with a link out, *unavailable*. Paths
never run through another pusat or DRC site: reaching the DRC is not reaching the DC.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

TERMINAL_KINDS = frozenset({"pusat", "drc"})


class Availability(StrEnum):
    """Can an office serve citizens online right now."""

    AVAILABLE = "available"
    DEGRADED = "degraded"  # only via the DRC or a backup path
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Reach:
    """An office's best path to pusat: ``via`` the links from the office outwards.

    ``reason``: ``drc`` or ``backup`` when degraded, ``no_path`` when unavailable, ``no_data``
    when the links that could carry it are not judged, ``not_monitored`` when no monitored
    path exists at all (the office is not watched from this agent).
    """

    availability: Availability
    via: tuple[str, ...]
    reason: str


# How good a path is, best first: what each grade means for service.
_GRADES = (
    (Availability.AVAILABLE, ""),
    (Availability.DEGRADED, "backup"),
    (Availability.DEGRADED, "drc"),
    (Availability.UNKNOWN, "no_data"),
    (Availability.UNAVAILABLE, "no_path"),
)
_DC, _BACKUP, _DRC, _UNKNOWN, _OUT = range(len(_GRADES))
NOT_MONITORED = Reach(Availability.UNKNOWN, (), "not_monitored")


class Topology:
    """The sites (id → kind) and the links (id, from site, to site) between them."""

    def __init__(self, sites: Mapping[str, str], links: Iterable[tuple[str, str, str]]) -> None:
        self._kinds = dict(sites)
        self._links: list[tuple[str, str, str]] = []
        self._adjacent: dict[str, list[tuple[str, str]]] = {}
        self._primary: set[str] = set()
        pairs: set[frozenset[str]] = set()
        for link_id, one, other in links:
            for end in (one, other):
                if end not in self._kinds:
                    raise ValueError(f"link {link_id}: names unknown site {end}")
            self._links.append((link_id, one, other))
            self._adjacent.setdefault(one, []).append((link_id, other))
            self._adjacent.setdefault(other, []).append((link_id, one))
            pair = frozenset((one, other))
            if pair not in pairs:  # the first link listed between two sites is the main one
                pairs.add(pair)
                self._primary.add(link_id)
        self.offices = tuple(s for s, kind in self._kinds.items() if kind not in TERMINAL_KINDS)

    def reach(self, out: Collection[str] = (), unknown: Collection[str] = ()) -> dict[str, Reach]:
        """Every office's best path, with the links of ``out`` and ``unknown`` as named.

        One search from pusat outwards, in order of grade (a bucket queue): the first time an
        office is reached is over its best path.
        """
        buckets: list[deque[tuple[str, tuple[str, ...]]]] = [deque() for _ in _GRADES]
        for site, kind in self._kinds.items():
            if kind in TERMINAL_KINDS:
                buckets[_DC if kind == "pusat" else _DRC].append((site, ()))
        best: dict[str, tuple[int, tuple[str, ...]]] = {}
        for grade, bucket in enumerate(buckets):
            while bucket:
                here, path = bucket.popleft()
                if here in best:
                    continue
                best[here] = (grade, path)
                for link_id, there in self._adjacent.get(here, ()):
                    if there in best or self._kinds[there] in TERMINAL_KINDS:
                        continue
                    if link_id in out:
                        worst = _OUT
                    elif link_id in unknown:
                        worst = _UNKNOWN
                    else:
                        worst = _DC if link_id in self._primary else _BACKUP
                    buckets[max(grade, worst)].append((there, (link_id, *path)))
        found: dict[str, Reach] = {}
        for office in self.offices:
            if office not in best:
                found[office] = NOT_MONITORED
                continue
            grade, via = best[office]
            availability, reason = _GRADES[grade]
            found[office] = Reach(availability, via, reason)
        return found

    def areas(self) -> list[Topology]:
        """The offices fallen apart into areas (typically one per kabupaten) that only their
        own links affect, each as a topology of its own: paths never cross pusat or the DRC.
        """
        terminal = {s: k for s, k in self._kinds.items() if k in TERMINAL_KINDS}
        found: list[Topology] = []
        seen: set[str] = set()
        for office in self.offices:
            if office in seen:
                continue
            area, stack = {office}, [office]
            while stack:
                for _, there in self._adjacent.get(stack.pop(), ()):
                    if there not in terminal and there not in area:
                        area.add(there)
                        stack.append(there)
            seen |= area
            links = [link for link in self._links if link[1] in area or link[2] in area]
            offices = {s: self._kinds[s] for s in self.offices if s in area}
            found.append(Topology({**terminal, **offices}, links))
        return found

    def links(self) -> list[str]:
        return [link_id for link_id, _, _ in self._links]
