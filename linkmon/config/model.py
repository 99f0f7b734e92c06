"""The config model: pydantic models, frozen and strict about keys, that a loaded config is
made of. What a field accepts is declared with the types of ``scalars`` and ``secrets``; what
values fields take when the YAML leaves them out, and how defaults flow down, is ``loading``'s
business: after loading every value is concrete."""

from __future__ import annotations

import re
import socket
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict

from linkmon.maintenance import Weekday, covering
from probes import HttpSpec, IcmpSpec, TcpSpec

from .scalars import (
    Clock,
    Duration,
    EchoCount,
    EchoSize,
    FilePath,
    Id,
    Interface,
    IpAddress,
    Listen,
    ProbeUrl,
    Ratio,
    Regex,
    Rounds,
    Spacing,
    StatusCodes,
    TcpTarget,
    Text,
    Timezone,
    WindowTime,
)
from .secrets import Headers, SecretUrl

SiteKind: TypeAlias = Literal["kecamatan", "kabupaten", "kota", "provinsi", "pusat", "drc"]
Network: TypeAlias = Literal["m2m", "jip", "vpn", "internet", "starlink", "other"]
PROBE_KINDS = ("icmp", "tcp", "http")

PARENT_KINDS: dict[str, tuple[str, ...]] = {
    "kecamatan": ("kabupaten", "kota"),
    "kabupaten": ("provinsi",),
    "kota": ("provinsi",),
    "provinsi": (),
    "pusat": (),
    "drc": (),
}
"""Which kind of site each kind of site may belong to: the Dukcapil hierarchy."""


class _Model(BaseModel):
    """Frozen, and strict about keys: a typo in the YAML must never silently do nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Agent(_Model):
    """This vantage point; ``name`` is the ``agent`` label (default: the host name)."""

    name: Id = Field(default_factory=lambda: _default_agent_name(socket.gethostname()))
    timezone: Timezone = "Asia/Makassar"
    language: Literal["id", "en"] = "id"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _default_agent_name(hostname: str) -> str:
    """The short host name made into a valid id (``kab-nunukan.local`` → ``kab-nunukan``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", hostname.split(".")[0])
    name = name.lstrip("._-")[:64]
    return name or "linkmon"


class Server(_Model):
    """The HTTP endpoint. ``listen`` port 0 picks a free port (tests); ``/-/reload`` is off
    unless ``enable_reload`` (a POST must not be able to swap the config by default).
    ``metrics_detail: link`` keeps per probe only success, loss, average RTT and failures: a
    national agent's /metrics shrinks about sixfold when dashboards need no per-target
    histograms."""

    listen: Listen = "127.0.0.1:9840"
    web_config: FilePath | None = None
    enable_reload: Annotated[bool, Strict()] = False
    metrics_detail: Literal["full", "link"] = "full"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class Storage(_Model):
    """The SQLite file; ``:memory:`` keeps nothing across restarts (tests only)."""

    path: FilePath = Path("linkmon.db")


class IcmpSettings(_Model):
    """Echoes per round, their spacing and payload size; small sizes suit 128 kbps links."""

    count: EchoCount = 5
    spacing: Spacing = 0.1
    size: EchoSize = 56


class Degraded(_Model):
    """A link is degraded when a round loses more than ``loss`` or its RTT exceeds ``rtt``."""

    loss: Ratio = 0.2
    rtt: Duration = 0.3


class ServiceHours(_Model):
    """When an office serves citizens, in the site's local time (for availability reports)."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: Clock = time(8, 0)
    end: Clock = time(15, 0)


class Defaults(_Model):
    interval: Duration = 10.0
    timeout: Duration = 2.0
    icmp: IcmpSettings = IcmpSettings()
    down_after: Rounds = 3
    up_after: Rounds = 2
    degraded: Degraded = Degraded()
    service_hours: ServiceHours = ServiceHours()


class Site(_Model):
    """An office or data center. ``timezone`` defaults to the agent's, ``name`` to ``id``."""

    id: Id
    kind: SiteKind
    name: Text = ""
    parent: Id | None = None
    timezone: Timezone = ""
    service_hours: ServiceHours = ServiceHours()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class _ProbeBase(_Model):
    """What every probe has. Each kind adds ``target_label`` (the ``target`` metric label,
    the same string as ``ProbeResult.target``) and ``spec()`` (what ``Prober.run`` takes)."""

    kind: str
    interval: Duration = 10.0
    timeout: Duration = 2.0
    source: IpAddress | None = None


class IcmpProbe(_ProbeBase):
    """Echo requests to an IP address (no name lookup: a DNS failure must not look like a
    failed link)."""

    kind: Literal["icmp"]
    target: IpAddress
    count: EchoCount = 5
    spacing: Spacing = 0.1
    size: EchoSize = 56
    interface: Interface | None = None

    @property
    def target_label(self) -> str:
        return self.target

    def spec(self) -> IcmpSpec:
        return IcmpSpec(
            address=self.target,
            count=self.count,
            spacing=self.spacing,
            size=self.size,
            source=self.source,
            interface=self.interface,
        )


class TcpProbe(_ProbeBase):
    """A TCP connect to ``host:port`` (``[IPv6]:port``); the host may be a DNS name."""

    kind: Literal["tcp"]
    target: TcpTarget

    @property
    def host(self) -> str:
        return self.target.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.target.rpartition(":")[2])

    @property
    def target_label(self) -> str:
        return self.target

    def spec(self) -> TcpSpec:
        return TcpSpec(host=self.host, port=self.port, source=self.source)


class HttpProbe(_ProbeBase):
    """A GET of ``url``; healthy when the status is in ``expect_status`` and the body matches."""

    kind: Literal["http"]
    url: ProbeUrl
    expect_status: StatusCodes = (200,)
    body_match: Annotated[str, Strict()] | None = None
    body_regex: Regex | None = None
    follow_redirects: Annotated[bool, Strict()] = True
    max_redirects: Annotated[int, Field(strict=True, ge=0, le=30)] = 5
    max_body_bytes: Annotated[int, Field(strict=True, ge=0, le=64 * 1024 * 1024)] = 65536
    verify_tls: Annotated[bool, Strict()] = True
    headers: Headers = {}

    @property
    def target_label(self) -> str:
        return self.url

    def spec(self) -> HttpSpec:
        return HttpSpec(
            url=self.url,
            expect_status=self.expect_status,
            body_match=self.body_match,
            body_regex=self.body_regex,
            follow_redirects=self.follow_redirects,
            max_redirects=self.max_redirects,
            max_body_bytes=self.max_body_bytes,
            verify_tls=self.verify_tls,
            headers=tuple((k, v.get_secret_value()) for k, v in self.headers.items()),
            source=self.source,
        )


ProbeConfig: TypeAlias = IcmpProbe | TcpProbe | HttpProbe
PROBE_CLASSES: dict[str, type[_ProbeBase]] = {
    "icmp": IcmpProbe,
    "tcp": TcpProbe,
    "http": HttpProbe,
}


class Link(_Model):
    """A path between two sites that this agent measures.

    ``depends_on`` lists upstream links; the link is unreachable (not down) only when ALL of
    them are down, so a kabupaten reaching pusat via the DC or the DRC lists both uplinks.
    ``interval``, ``timeout`` and ``icmp`` are what its probes inherit; each probe holds the
    values it runs with (and they are what the checks apply to).
    """

    id: Id
    from_site: Id = Field(alias="from")
    to_site: Id = Field(alias="to")
    network: Network
    depends_on: tuple[Id, ...] = ()
    interval: Duration = 10.0
    timeout: Duration = 2.0
    down_after: Rounds = 3
    up_after: Rounds = 2
    degraded: Degraded = Degraded()
    icmp: IcmpSettings = IcmpSettings()
    probes: tuple[Annotated[ProbeConfig, Field(discriminator="kind")], ...]


class Receiver(_Model):
    """Where alerts go. ``webhook``: one ``url`` gets Alertmanager webhook JSON (version 4).
    ``alertmanager``: every base URL of an HA cluster (``urls``, or one ``url``) gets
    ``POST <url>/api/v2/alerts``. After loading, ``urls`` holds every URL for both kinds."""

    name: Id
    kind: Literal["webhook", "alertmanager"]
    url: SecretUrl | None = None
    urls: tuple[SecretUrl, ...] = ()
    headers: Headers = {}
    timeout: Duration = 10.0
    send_resolved: Annotated[bool, Strict()] = True


class Flapping(_Model):
    """More than ``changes`` state changes within ``window``: flapping, one alert."""

    changes: Annotated[int, Field(strict=True, ge=2, le=1000)] = 6
    window: Duration = 600.0


class Rollup(_Model):
    """When ``share`` of a kabupaten's kecamatan links (at least ``min_links``) go down
    together, one regional incident instead of one page per kecamatan."""

    share: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)] = 0.5
    min_links: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 3


class Alerting(_Model):
    receivers: tuple[Receiver, ...] = ()
    resend_interval: Duration = 60.0
    flapping: Flapping = Flapping()
    rollup: Rollup = Rollup()
    outbox_max: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] = 10_000


class MaintenanceWindow(_Model):
    """Planned work on links or sites: alerts are suppressed and the links shown as in
    maintenance. One-off (``start``/``end`` as ``YYYY-MM-DD HH:MM``) or weekly (``weekdays``
    and ``HH:MM``; an end before the start runs past midnight). Times are local to the site
    (a listed link: its ``from`` site) unless ``timezone`` is given; ``linkmon.maintenance``
    turns them into spans of time."""

    links: tuple[Id, ...] = ()
    sites: tuple[Id, ...] = ()
    weekdays: tuple[Weekday, ...] = ()
    start: WindowTime
    end: WindowTime
    timezone: Timezone | None = None
    reason: Text = ""


class Config(_Model):
    """The whole validated config. Look-ups by id are dictionary look-ups."""

    agent: Agent = Field(default_factory=Agent)
    server: Server = Server()
    storage: Storage = Storage()
    defaults: Defaults = Defaults()
    sites: tuple[Site, ...] = ()
    links: tuple[Link, ...] = ()
    alerting: Alerting = Alerting()
    maintenance: tuple[MaintenanceWindow, ...] = ()

    _sites: dict[str, Site] = PrivateAttr(default_factory=dict)
    _links: dict[str, Link] = PrivateAttr(default_factory=dict)
    _children: dict[str, tuple[Site, ...]] = PrivateAttr(default_factory=dict)
    _links_from: dict[str, tuple[Link, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        self._sites.update((site.id, site) for site in self.sites)
        self._links.update((link.id, link) for link in self.links)
        for site in self.sites:
            if site.parent is not None:
                self._children[site.parent] = (*self._children.get(site.parent, ()), site)
        for link in self.links:
            self._links_from[link.from_site] = (*self._links_from.get(link.from_site, ()), link)

    def site(self, site_id: str) -> Site:
        """The site ``site_id``; ``KeyError`` if there is none."""
        return self._sites[site_id]

    def link(self, link_id: str) -> Link:
        """The link ``link_id``; ``KeyError`` if there is none."""
        return self._links[link_id]

    def links_from(self, site_id: str) -> tuple[Link, ...]:
        """Links whose ``from`` is ``site_id`` (an office's own links, parallel paths too)."""
        return self._links_from.get(site_id, ())

    def children(self, site_id: str) -> tuple[Site, ...]:
        """Sites whose ``parent`` is ``site_id`` (the kecamatan of a kabupaten)."""
        return self._children.get(site_id, ())

    def kabupaten_of(self, site_id: str) -> str | None:
        """The kabupaten/kota a site belongs to: itself, or the first one up its parents."""
        site: Site | None = self._sites.get(site_id)
        while site is not None:
            if site.kind in ("kabupaten", "kota"):
                return site.id
            site = self._sites.get(site.parent) if site.parent else None
        return None

    def kabupaten_of_link(self, link_id: str) -> str | None:
        """The ``kabupaten`` label of a link: that of its ``from`` site, else its ``to`` site."""
        link = self._links[link_id]
        return self.kabupaten_of(link.from_site) or self.kabupaten_of(link.to_site)

    def maintenance_periods(
        self, link_id: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, datetime, MaintenanceWindow]]:
        """Every maintenance span (UTC) covering ``link_id`` that overlaps [since, until),
        sorted by start (see ``linkmon.maintenance.covering``)."""
        link = self._links[link_id]
        ends = (link.from_site, link.to_site)
        return covering(self.maintenance, link.id, ends, self._zone_of, since, until)

    def in_maintenance(self, link_id: str, when: datetime) -> MaintenanceWindow | None:
        """The maintenance window covering ``link_id`` at ``when`` (aware, UTC), if any."""
        periods = self.maintenance_periods(link_id, when, when)
        return periods[0][2] if periods else None

    def _zone_of(self, site_id: str) -> ZoneInfo:
        return self._sites[site_id].zone
