"""Checks across items, on the resolved config: unique ids, references to sites and links, the
site hierarchy, dependency cycles, probes of a link, receivers and maintenance windows.

Each takes its items with their index in the file (``Indexed``: items set aside for errors of
their own leave gaps) and the ids as written (``Written``), broken items' included, so that
a reference to a broken item is not reported a second time as unknown.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from .errors import Findings, Location, format_path
from .model import (
    PARENT_KINDS,
    IcmpProbe,
    Link,
    MaintenanceWindow,
    ProbeConfig,
    Receiver,
    Site,
    TcpProbe,
)
from .scalars import CLOCK

_T = TypeVar("_T")
Indexed: TypeAlias = Sequence[tuple[int, _T]]


@dataclass(frozen=True)
class Written:
    """Ids as the file writes them: sites, links, and the sites some link runs from or to."""

    sites: frozenset[str]
    links: frozenset[str]
    linked_sites: frozenset[str]


class _Unique:
    """Values that must not repeat across a list's items, and each one's first index, for
    "duplicate site id 'x' (also sites[2])"."""

    def __init__(self, items: Location, key: str, what: str) -> None:
        self.items, self.key, self.what = items, key, what
        self.first: dict[str, int] = {}

    def check(self, found: Findings, index: int, value: str) -> None:
        if value in self.first:
            also = f"{format_path(self.items)}[{self.first[value]}]"
            found.add(
                (*self.items, index, self.key), f"duplicate {self.what} {value!r} (also {also})"
            )
        else:
            self.first[value] = index


def check_sites(found: Findings, sites: Indexed[Site], written: Written) -> None:
    ids = _Unique(("sites",), "id", "site id")
    kinds = {site.id: site.kind for _, site in sites}
    for index, site in sites:
        path = ("sites", index)
        ids.check(found, index, site.id)
        if site.parent is None:
            continue
        allowed = PARENT_KINDS[site.kind]
        parent_kind = kinds.get(site.parent)
        if site.parent == site.id:
            found.add((*path, "parent"), "a site cannot be its own parent")
        elif not allowed:
            found.add((*path, "parent"), f"a {site.kind} site has no parent")
        elif parent_kind is None:
            if site.parent not in written.sites:
                found.add((*path, "parent"), f"unknown site {site.parent!r}")
        elif parent_kind not in allowed:
            found.add(
                (*path, "parent"),
                f"a {site.kind} belongs to a {' or '.join(allowed)}, "
                f"but {site.parent!r} is a {parent_kind}",
            )


def check_links(found: Findings, links: Indexed[Link], written: Written) -> None:
    ids = _Unique(("links",), "id", "link id")
    for index, link in links:
        path = ("links", index)
        ids.check(found, index, link.id)
        for key, site_id in (("from", link.from_site), ("to", link.to_site)):
            if site_id not in written.sites:
                found.add((*path, key), f"unknown site {site_id!r}")
        if link.from_site == link.to_site:
            found.add((*path, "to"), f"must not be the same site as from ({link.from_site!r})")
        listed: set[str] = set()
        for i, upstream in enumerate(link.depends_on):
            where = (*path, "depends_on", i)
            if upstream == link.id:
                found.add(where, "a link cannot depend on itself")
            elif upstream in listed:
                found.add(where, f"{upstream!r} is listed twice")
            elif upstream not in written.links:
                found.add(where, f"unknown link {upstream!r}")
            listed.add(upstream)
        _check_probes(found, path, link.probes)
    _check_cycles(found, links)


def _check_cycles(found: Findings, links: Indexed[Link]) -> None:
    """Name each dependency cycle once, at its link listed first in the file."""
    index_of = {link.id: index for index, link in links}
    upstream = {
        link.id: [u for u in link.depends_on if u in index_of and u != link.id] for _, link in links
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()
    for root in upstream:
        if root in state:
            continue
        path = [root]
        state[root] = 1
        stack = [iter(upstream[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min(cycle, key=lambda link_id: index_of[link_id])
                    at = cycle.index(first)
                    ordered = cycle[at:] + cycle[:at] + [first]
                    found.add(
                        ("links", index_of[first], "depends_on"),
                        f"dependency cycle: {' -> '.join(ordered)}",
                    )
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(upstream[nxt]))


def _check_probes(found: Findings, path: Location, probes: Sequence[ProbeConfig]) -> None:
    """The probes of one link: a link needs one; two alike would be one metric series; a
    source address must be of the target's family."""
    if not probes:
        found.add((*path, "probes"), "a link needs at least one probe")
    seen: dict[tuple[str, str], int] = {}
    for i, probe in enumerate(probes):
        where = (*path, "probes", i)
        key = (probe.kind, probe.target_label)
        if key in seen:
            found.add(
                where, f"same probe as probes[{seen[key]}] ({probe.kind} {probe.target_label})"
            )
        seen.setdefault(key, i)
        target = _target_address(probe)
        if probe.source is not None and target is not None:
            source_version = ipaddress.ip_address(probe.source).version
            if source_version != target.version:
                found.add(
                    (*where, "source"),
                    f"{probe.source} is IPv{source_version} but the target is IPv{target.version}",
                )


def _target_address(probe: ProbeConfig) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The target's IP address, when the target is one (not a DNS name)."""
    if isinstance(probe, IcmpProbe):
        host = probe.target
    elif isinstance(probe, TcpProbe):
        host = probe.host
    else:
        host = urllib.parse.urlsplit(probe.url).hostname or ""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_receivers(found: Findings, receivers: Indexed[Receiver]) -> None:
    """URLs as the kind takes them (an Alertmanager cluster has several), unique names."""
    names = _Unique(("alerting", "receivers"), "name", "receiver name")
    for index, receiver in receivers:
        path = ("alerting", "receivers", index)
        if receiver.url is not None and receiver.urls:
            found.add(path, "give url or urls, not both")
        elif receiver.kind == "webhook" and receiver.urls:
            found.add((*path, "urls"), "a webhook receiver takes one url")
        elif receiver.url is None and not receiver.urls:
            found.add((*path, "url"), "required")
        names.check(found, index, receiver.name)


def check_maintenance(
    found: Findings, windows: Indexed[MaintenanceWindow], written: Written
) -> None:
    for index, window in windows:
        path: Location = ("maintenance", index)
        if not window.links and not window.sites:
            found.add(path, "covers nothing: list links or sites")
        for i, link_id in enumerate(window.links):
            if link_id not in written.links:
                found.add((*path, "links", i), f"unknown link {link_id!r}")
        for i, site_id in enumerate(window.sites):
            if site_id not in written.sites:
                found.add((*path, "sites", i), f"unknown site {site_id!r}")
            elif site_id not in written.linked_sites:
                found.add(
                    (*path, "sites", i), f"covers nothing: no link runs from or to {site_id!r}"
                )
        _check_window_times(found, path, window)


def _check_window_times(found: Findings, path: Location, window: MaintenanceWindow) -> None:
    """Weekly windows take times of day, one-off windows dates; a window must not be empty."""
    weekly = bool(window.weekdays)
    clocks = [bool(CLOCK.fullmatch(t)) for t in (window.start, window.end)]
    for key, is_clock in zip(("start", "end"), clocks, strict=True):
        if weekly and not is_clock:
            found.add((*path, key), 'a weekly window takes a time "HH:MM", not a date')
        elif not weekly and is_clock:
            found.add(
                (*path, key),
                'a one-off window needs "YYYY-MM-DD HH:MM" (or add weekdays for a weekly one)',
            )
    if clocks == [weekly, weekly]:
        if weekly and window.start == window.end:
            found.add((*path, "end"), f"must differ from start {window.start}")
        elif not weekly and window.end <= window.start:
            found.add((*path, "end"), f"must be after start {window.start}")
