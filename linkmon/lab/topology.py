"""The lab file: which sites exist, which links join them, and what addresses they get.

Everything is validated before a single namespace is made, so a typo in the lab file is an
error naming its path (``links[2].to: unknown site 'kec-krayn'``), never a half-built lab.
Routes are computed here too (least-cost path over the links), so the plumbing code only
applies them and a kecamatan behind the hub is really reached *through* the hub.
"""

from __future__ import annotations

import heapq
import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
"""RFC 2544 benchmarking range: the only addresses the lab ever uses."""

DEFAULT_LINK_SUBNETS = ipaddress.IPv4Network("198.19.0.0/16")
_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_IFNAMSIZ = 15
DIRECTIONS = ("both", "forward", "reverse")


class LabError(Exception):
    """The lab cannot do what was asked; the message says what and, where known, the fix."""


class TopologyError(LabError):
    """The lab file is invalid; ``errors`` lists every problem with its path."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{source}: invalid lab file:\n  " + "\n  ".join(errors))


@dataclass(frozen=True)
class Services:
    """Ports of the stand-in services a site runs (pusat's DC and DRC, the kabupaten)."""

    http: int | None = None
    https: int | None = None
    tcp: tuple[int, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(p for p in (self.http, self.https, *self.tcp) if p is not None)


@dataclass(frozen=True)
class Site:
    id: str
    kind: str
    address: ipaddress.IPv4Address
    """The site's own address (on its loopback), the one probes aim at."""
    services: Services | None


@dataclass(frozen=True)
class LinkEnd:
    site: str
    interface: ipaddress.IPv4Interface
    device: str
    """Device name inside the site's namespace: named after the site at the other end."""


@dataclass(frozen=True)
class Link:
    id: str
    index: int
    network: str
    bridge: bool
    """True: two TAP devices joined by the userspace bridge (delay possible); False: a veth."""
    from_end: LinkEnd
    to_end: LinkEnd
    cost: int = 1
    """Routing metric: the least-cost path wins; a backup path gets a higher cost."""

    @property
    def ends(self) -> tuple[LinkEnd, LinkEnd]:
        return (self.from_end, self.to_end)

    def end(self, site: str) -> LinkEnd:
        return self.from_end if self.from_end.site == site else self.to_end

    def peer(self, site: str) -> LinkEnd:
        return self.to_end if self.from_end.site == site else self.from_end


@dataclass(frozen=True)
class Route:
    destination: ipaddress.IPv4Network
    via: ipaddress.IPv4Address
    device: str


@dataclass(frozen=True)
class Topology:
    name: str
    sites: tuple[Site, ...]
    links: tuple[Link, ...]
    text: str
    """The lab file as read, kept so another process can rebuild this model from the state."""

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        raise LabError(f"unknown site {site_id!r}; sites: {', '.join(s.id for s in self.sites)}")

    def link(self, link_id: str) -> Link:
        for link in self.links:
            if link.id == link_id:
                return link
        raise LabError(f"unknown link {link_id!r}; links: {', '.join(k.id for k in self.links)}")

    def links_of(self, site_id: str) -> tuple[Link, ...]:
        return tuple(k for k in self.links if site_id in (k.from_end.site, k.to_end.site))

    def is_transit(self, site_id: str) -> bool:
        """A site with more than one link forwards packets between them (ip_forward on)."""
        return len(self.links_of(site_id)) > 1

    def routes(self, site_id: str, down: Collection[str] = ()) -> list[Route]:
        """Routes to every other site and link subnet along a least-cost path.

        Ties go to the path found first (links in file order), so with equal costs this is the
        shortest path in hops. Links in ``down`` are left out, as a routing protocol would
        leave out a dead link; sites cut off by them get no route at all.
        """
        up = [k for k in self.links if k.id not in down]
        first_hop: dict[str, Link] = {}
        best = {site_id: 0}
        order = 0  # tie-break: first found wins
        queue = [(0, order, site_id)]
        done: set[str] = set()
        while queue:
            cost, _, here = heapq.heappop(queue)
            if here in done:
                continue
            done.add(here)
            for link in up:
                if here not in (link.from_end.site, link.to_end.site):
                    continue
                there = link.peer(here).site
                if there not in best or cost + link.cost < best[there]:
                    best[there] = cost + link.cost
                    first_hop[there] = first_hop.get(here, link)
                    order += 1
                    heapq.heappush(queue, (best[there], order, there))
        routes: list[Route] = []
        local = {
            k.end(site_id).interface.network
            for k in up
            if site_id in (k.from_end.site, k.to_end.site)
        }
        found = {site: i for i, site in enumerate(best)}
        for dest_site in sorted(first_hop, key=lambda s: (best[s], found[s])):
            link = first_hop[dest_site]
            via = link.peer(site_id).interface.ip
            device = link.end(site_id).device
            dests = [ipaddress.IPv4Network(self.site(dest_site).address)]
            dests += [
                k.end(dest_site).interface.network
                for k in up
                if dest_site in (k.from_end.site, k.to_end.site)
                and k.end(dest_site).interface.network not in local
            ]
            known = {r.destination for r in routes}
            routes += [Route(d, via, device) for d in dests if d not in known]
        return routes


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read lab file {path}: {exc.strerror}") from exc
    return parse_topology(text, str(path))


def parse_topology(text: str, source: str = "<string>") -> Topology:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(source, [f"not valid YAML: {exc}"]) from exc
    checker = _Checker()
    topology = checker.topology(doc, text)
    if checker.errors or topology is None:
        raise TopologyError(source, checker.errors)
    return topology


class _Checker:
    """Collects every error in the lab file instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        # Site ids named in the file, valid or not: a bad site gives one error, not one per link.
        self.declared: set[str] = set()

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, required: set[str], optional: set[str]) -> bool:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return False
        for key in sorted(set(value) - required - optional, key=str):
            self.error(f"{path}.{key}", "unknown key")
        for key in sorted(required - set(value)):
            self.error(f"{path}.{key}", "required")
        return not required - set(value)

    def address(self, value: Any, path: str) -> ipaddress.IPv4Address | None:
        try:
            address = ipaddress.IPv4Address(str(value))
        except ValueError:
            self.error(path, f"{value!r} is not an IPv4 address")
            return None
        if address not in LAB_RANGE:
            self.error(path, f"{address} is outside the lab range {LAB_RANGE}")
            return None
        return address

    def subnet(self, value: Any, path: str) -> ipaddress.IPv4Network | None:
        try:
            net = ipaddress.IPv4Network(str(value))
        except ValueError as exc:
            self.error(path, f"{value!r} is not an IPv4 network ({exc})")
            return None
        if not net.subnet_of(LAB_RANGE):
            self.error(path, f"{net} is outside the lab range {LAB_RANGE}")
            return None
        return net

    def port(self, value: Any, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error(path, f"{value!r} is not a TCP port (1-65535)")
            return None
        return value

    def services(self, value: Any, path: str) -> Services | None:
        if not self.mapping(value, path, set(), {"http", "https", "tcp"}):
            return None
        http = self.port(value["http"], f"{path}.http") if "http" in value else None
        https = self.port(value["https"], f"{path}.https") if "https" in value else None
        tcp_raw = value.get("tcp", [])
        if not isinstance(tcp_raw, list):
            self.error(f"{path}.tcp", "must be a list of ports")
            tcp_raw = []
        tcp = tuple(p for i, p in enumerate(tcp_raw) if self.port(p, f"{path}.tcp[{i}]"))
        services = Services(http, https, tcp)
        if len(set(services.ports)) != len(services.ports):
            self.error(path, f"ports must differ, got {list(services.ports)}")
        return services

    def topology(self, doc: Any, text: str) -> Topology | None:
        if not self.mapping(doc, "lab file", {"sites", "links"}, {"name", "link_subnets"}):
            return None
        pool = DEFAULT_LINK_SUBNETS
        if "link_subnets" in doc:
            pool = self.subnet(doc["link_subnets"], "link_subnets") or pool
        sites = self.sites(doc["sites"])
        links = self.links(doc["links"], {s.id: s for s in sites}, pool)
        self.check_addresses(sites, links)
        return Topology(str(doc.get("name", "lab")), tuple(sites), tuple(links), text)

    def sites(self, raw: Any) -> list[Site]:
        if not isinstance(raw, list) or not raw:
            self.error("sites", "must be a non-empty list")
            return []
        sites: list[Site] = []
        for i, item in enumerate(raw):
            path = f"sites[{i}]"
            if not self.mapping(item, path, {"id", "address"}, {"kind", "services"}):
                continue
            site_id = str(item["id"])
            if not _SITE_ID.match(site_id):
                self.error(f"{path}.id", f"{site_id!r} must be lowercase letters, digits and '-'")
                continue
            if site_id in self.declared:
                self.error(f"{path}.id", f"duplicate site id {site_id!r}")
                continue
            self.declared.add(site_id)
            address = self.address(item["address"], f"{path}.address")
            services = None
            if item.get("services") is not None:
                services = self.services(item["services"], f"{path}.services")
            if address is not None:
                sites.append(Site(site_id, str(item.get("kind", "")), address, services))
        return sites

    def links(self, raw: Any, sites: dict[str, Site], pool: ipaddress.IPv4Network) -> list[Link]:
        if not isinstance(raw, list):
            self.error("links", "must be a list")
            return []
        free = pool.subnets(new_prefix=30)
        links: list[Link] = []
        devices: dict[str, set[str]] = {s: set() for s in sites}
        for i, item in enumerate(raw):
            path = f"links[{i}]"
            keys = {"id", "from", "to"}
            if not self.mapping(item, path, keys, {"network", "bridge", "subnet", "cost"}):
                continue
            link_id = str(item["id"])
            if any(k.id == link_id for k in links) or link_id in self.declared:
                self.error(f"{path}.id", f"duplicate id {link_id!r} (links and sites share ids)")
                continue
            ends = [str(item["from"]), str(item["to"])]
            bad = [(key, e) for key, e in zip(("from", "to"), ends, strict=True) if e not in sites]
            for key, end in bad:
                if end not in self.declared:
                    self.error(f"{path}.{key}", f"unknown site {end!r}")
            if ends[0] == ends[1]:
                self.error(path, f"a link joins two different sites, both ends are {ends[0]!r}")
            bridge = item.get("bridge", True)
            if not isinstance(bridge, bool):
                self.error(f"{path}.bridge", f"must be true or false, got {bridge!r}")
            cost = item.get("cost", 1)
            if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= 65535:
                self.error(f"{path}.cost", f"must be a whole number 1-65535, got {cost!r}")
                cost = None
            if "subnet" in item:
                subnet = self.subnet(item["subnet"], f"{path}.subnet")
                if subnet is not None and subnet.num_addresses < 4:
                    self.error(f"{path}.subnet", f"{subnet} is too small, use a /30 or larger")
                    subnet = None
            else:
                subnet = next(free, None)
                if subnet is None:
                    self.error(path, f"link_subnets {pool} has no /30 left")
            if (
                bad
                or ends[0] == ends[1]
                or subnet is None
                or not isinstance(bridge, bool)
                or cost is None
            ):
                continue
            hosts = list(subnet.hosts())[:2]
            made = []
            for site, peer, host in ((ends[0], ends[1], hosts[0]), (ends[1], ends[0], hosts[1])):
                device = _device_name(peer, devices[site])
                devices[site].add(device)
                interface = ipaddress.IPv4Interface(f"{host}/{subnet.prefixlen}")
                made.append(LinkEnd(site, interface, device))
            network = str(item.get("network", "other"))
            links.append(Link(link_id, len(links), network, bridge, made[0], made[1], cost))
        return links

    def check_addresses(self, sites: list[Site], links: list[Link]) -> None:
        nets = [(f"link {k.id!r}", k.from_end.interface.network) for k in links]
        for i, (name, net) in enumerate(nets):
            for other, other_net in nets[:i]:
                if net.overlaps(other_net):
                    self.error("links", f"subnet {net} of {name} overlaps {other} ({other_net})")
        seen: dict[ipaddress.IPv4Address, str] = {}
        for site in sites:
            if site.address in seen:
                self.error("sites", f"{site.id!r} and {seen[site.address]!r} share {site.address}")
            seen[site.address] = site.id
            for name, net in nets:
                if site.address in net:
                    self.error("sites", f"address {site.address} of {site.id!r} is inside {name}")


def _device_name(peer: str, taken: set[str]) -> str:
    """Name a link's device after the site at the other end, made unique and short enough."""
    name = peer[:_IFNAMSIZ]
    n = 2
    while name in taken:
        suffix = f".{n}"
        name = peer[: _IFNAMSIZ - len(suffix)] + suffix
        n += 1
    return name
