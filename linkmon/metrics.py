"""Prometheus metrics: names from the user contract, rendered fast enough for national scale.

The per-probe and per-link series (hundreds of thousands at 10,000 links) live in a compact
store of our own and are written straight to the text format: prometheus_client's objects
cost a lock, a value and a ``_created`` sample per series, and its ``generate_latest`` took
6 s for 10,000 links while holding the GIL. Each series' label text is escaped and joined once,
when the series is first seen; each update swaps in a new immutable tuple, so a render on
another thread reads every series whole (never two link states at 1, never a histogram whose
count disagrees with its buckets) without a lock. The few daemon-wide metrics stay on a
prometheus_client registry, appended to the render. Label values are bounded: ids from the
config, the probe kind, the target from the config and reasons from :class:`probes.Failure` —
never error text or timestamps.
"""

from __future__ import annotations

import asyncio
import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from probes import ProbeResult
from probes.base import AGENT_RESOURCES

from . import __version__, openfiles
from .state.facts import BLINDNESS

if TYPE_CHECKING:
    from .config import Config, Link, Site

LINK_LABELS = ("agent", "link", "from", "to", "network", "kabupaten")
PROBE_LABELS = (*LINK_LABELS, "kind", "target")
_probe_key = itemgetter(*PROBE_LABELS)  # label values in order: a series' key
_link_key = itemgetter(*LINK_LABELS)
SERVICE_LABELS = ("agent", "site", "kabupaten")
# Where each site sits: what a fleet view drawn from Prometheus needs to build the tree.
SITE_LABELS = ("agent", "site", "kind", "name", "parent", "kabupaten", "timezone")
LINK_STATES = ("up", "degraded", "down", "unknown", "unreachable")

# 0.5 ms doubling to ~16 s: spans loopback, fibre, VSAT and a congested 128 kbps kecamatan line.
RTT_BUCKETS = tuple(0.0005 * 2**k for k in range(16))
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The render thread gives the GIL back this often, for this long: the probe loop then runs
# uncontended instead of waiting a 5 ms switch interval for every syscall it makes.
RENDER_SLICE = 0.002
RENDER_PAUSE = 0.001
# Series rendered between two looks at the clock.
RENDER_BATCH = 200


class ProbeValues(NamedTuple):
    """One probe's series at one moment; ``None`` where the series does not exist (yet)."""

    success: float
    loss: float | None = None
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None
    rtt_stddev: float | None = None
    jitter: float | None = None
    sent: int | None = None
    received: int | None = None
    # counts per bucket of RTT_BUCKETS, then +Inf (not cumulative), then the sum
    histogram: tuple[float, ...] | None = None
    failures: tuple[tuple[str, int], ...] = ()


class LinkValues(NamedTuple):
    state: str
    since: float
    flapping: bool
    maintenance: bool
    changes: int


class _Series:
    """A series' label text, escaped and joined once, and its current values."""

    __slots__ = ("labels", "values")

    def __init__(self, labels: str, values: object) -> None:
        self.labels = labels
        self.values = values


class Metrics:
    """Every linkmon metric of one daemon; a registry of its own keeps tests and reloads apart."""

    def __init__(
        self, agent: str, registry: CollectorRegistry | None = None, detail: str = "full"
    ) -> None:
        self.agent = agent
        # "link": per probe only success, loss, average RTT and failures (server.metrics_detail)
        self.detail = detail
        self._probes: dict[tuple[str, ...], _Series] = {}
        self._links: dict[tuple[str, ...], _Series] = {}
        self._services: dict[tuple[str, ...], _Series] = {}
        self._sites: set[tuple[str, ...]] = set()
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.tls_expiry = Gauge(
            "linkmon_tls_cert_expiry_timestamp_seconds",
            "notAfter of the server certificate.",
            ("agent", "link", "target"),
            registry=r,
        )
        self.probe_errors = Counter(
            "linkmon_probe_errors",
            "Probe code that raised instead of returning a result.",
            ("agent", "kind"),
            registry=r,
        )
        self.alerts_queued = Gauge(
            "linkmon_alerts_queued",
            "Alert notifications not yet delivered.",
            ("agent", "receiver"),
            registry=r,
        )
        self.alert_deliveries = Counter(
            "linkmon_alert_deliveries",
            "Alert delivery attempts.",
            ("agent", "receiver", "result"),
            registry=r,
        )
        self.reload_ok = Gauge(
            "linkmon_config_last_reload_successful",
            "1 if the last configuration load succeeded.",
            ("agent",),
            registry=r,
        )
        self.reload_time = Gauge(
            "linkmon_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            ("agent",),
            registry=r,
        )
        self.scheduler_lag = Histogram(
            "linkmon_scheduler_lag_seconds",
            "How late probe rounds start against their schedule.",
            ("agent",),
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.round_lag = self.scheduler_lag.labels(agent)  # observed every round: looked up once
        self.rounds_skipped = Counter(
            "linkmon_scheduler_rounds_skipped",
            "Rounds skipped because the previous round of the same probe was still running.",
            ("agent",),
            registry=r,
        )
        self.site_info = Gauge(
            "linkmon_site_info",
            "1 for each site of the config: its kind, name, parent, kabupaten and time zone.",
            SITE_LABELS,
            registry=r,
        )
        # The agent itself: what it ran out of, and how the open-file limit is shared.
        self.resources_exhausted = Counter(
            "linkmon_agent_resource_exhausted",
            "Times the agent itself ran out of a resource (fds, buffers, memory, "
            "http_connections; firewall: its own refused a probe; other: a probe's socket "
            "could not be made): its own fault, never a link's.",
            ("agent", "resource"),
            registry=r,
        )
        self.blind = Gauge(
            "linkmon_agent_blind",
            "1 while the agent cannot see: its LAN gateway is down (own_lan), or every uplink "
            "of its office with links behind them (own_uplink); the links are unknown meanwhile.",
            ("agent", "cause"),
            registry=r,
        )
        self.fault_probes = Gauge(
            "linkmon_agent_fault_probes",
            "Probes the agent cannot run now for want of a resource (its own fault, "
            "down_after rounds in a row): their links are unknown (agent_fault), not down.",
            ("agent", "resource"),
            registry=r,
        )
        for cause in BLINDNESS:
            self.blind.labels(agent, cause).set(0)
        for resource in AGENT_RESOURCES:
            self.fault_probes.labels(agent, resource).set(0)
        self.http_connections = Gauge(
            "linkmon_http_connections", "HTTP connections open now.", ("agent",), registry=r
        )
        self.http_connections_max = Gauge(
            "linkmon_http_connections_max",
            "HTTP connections the web side may hold: what the open-file limit leaves once "
            "probing has its reserve.",
            ("agent",),
            registry=r,
        )
        self.http_connections_closed = Counter(
            "linkmon_http_connections_closed",
            "HTTP connections linkmon closed itself: at the limit, idle ones to make room and "
            "newcomers without a whole request (limit); without a complete request within the "
            "timeout (timeout).",
            ("agent", "reason"),
            registry=r,
        )
        Gauge("linkmon_open_fds", "File descriptors open.", ("agent",), registry=r).labels(
            agent
        ).set_function(openfiles.in_use)
        Gauge(
            "linkmon_max_fds", "The open-file limit (soft RLIMIT_NOFILE).", ("agent",), registry=r
        ).labels(agent).set_function(openfiles.current_limit)
        Gauge("linkmon_build_info", "linkmon version.", ("version", "python"), registry=r).labels(
            __version__, platform.python_version()
        ).set(1)

    # -- updates (event loop thread) -------------------------------------------------------

    def observe_probe(self, labels: dict[str, str], result: ProbeResult) -> None:
        key = _probe_key(labels)
        series = self._probes.get(key)
        if series is None:
            series = self._probes[key] = _Series(_label_text(PROBE_LABELS, key), _NO_VALUES)
        old: ProbeValues = series.values  # type: ignore[assignment]
        failures = old.failures
        if result.failure is not None:
            failures = _count(failures, result.failure.value)
        success = 1.0 if result.success else 0.0
        loss = result.loss
        if loss is None:
            loss = old.loss
        if self.detail == "link":
            rtt_avg = result.rtt_avg if result.rtts else old.rtt_avg
            values = ProbeValues(success, loss, rtt_avg=rtt_avg, failures=failures)
        elif result.kind == "icmp":
            stats = result.rtt_stats() or (old.rtt_min, old.rtt_avg, old.rtt_max, old.rtt_stddev)
            values = ProbeValues(
                success,
                loss,
                *stats,
                jitter=result.jitter if len(result.rtts) > 1 else old.jitter,
                sent=(old.sent or 0) + result.packets_sent,
                received=(old.received or 0) + result.packets_received,
                histogram=_observe(old.histogram, result.rtts) if result.rtts else old.histogram,
                failures=failures,
            )
        else:
            histogram = old.histogram
            if result.duration is not None and result.success:
                histogram = _observe(histogram, (result.duration,))
            values = ProbeValues(success, histogram=histogram, failures=failures)
        series.values = values
        if result.tls_cert_expiry is not None:
            self.tls_expiry.labels(self.agent, labels["link"], labels["target"]).set(
                result.tls_cert_expiry
            )

    def set_link(
        self,
        labels: dict[str, str],
        state: str,
        since: float,
        flapping: bool,
        maintenance: bool,
        changed: bool,
    ) -> None:
        key = _link_key(labels)
        series = self._links.get(key)
        if series is None:
            series = self._links[key] = _Series(_label_text(LINK_LABELS, key), None)
        old: LinkValues | None = series.values  # type: ignore[assignment]
        # A counter that exists at 0 from the start, so increase() sees the first change.
        changes = (old.changes if old is not None else 0) + (1 if changed else 0)
        # One tuple swapped in whole: a scrape sees the old state or the new, never both at 1.
        series.values = LinkValues(state, since, flapping, maintenance, changes)

    def set_service(self, site: str, kabupaten: str, availability: float | None) -> None:
        """``None`` drops the series (an office whose availability is not known)."""
        key = (self.agent, site, kabupaten)
        if availability is None:
            self._services.pop(key, None)
            return
        series = self._services.get(key)
        if series is None:
            self._services[key] = _Series(_label_text(SERVICE_LABELS, key), availability)
        else:
            series.values = availability

    def set_sight(self, blind: str | None, faults: dict[str, int]) -> None:
        """Whether the agent is blind (and why), and the probes it cannot run by resource."""
        for cause in BLINDNESS:
            self.blind.labels(self.agent, cause).set(1 if cause == blind else 0)
        for resource in AGENT_RESOURCES:
            self.fault_probes.labels(self.agent, resource).set(faults.get(resource, 0))

    def set_sites(self, sites: Iterable[dict[str, str]]) -> None:
        """One series per site; a reload drops only the sites it removed or changed, so a
        scrape never sees the sites that stay missing (a fleet view would call them gone)."""
        wanted = {tuple(labels[name] for name in SITE_LABELS) for labels in sites}
        for values in self._sites - wanted:
            self.site_info.remove(*values)
        for values in wanted - self._sites:
            self.site_info.labels(*values).set(1)
        self._sites = wanted

    def exhausted(self, resource: str) -> None:
        """The agent ran out of ``resource`` (see :func:`linkmon.openfiles.exhausted_resource`)."""
        self.resources_exhausted.labels(self.agent, resource).inc()

    def config_loaded(self, ok: bool) -> None:
        self.reload_ok.labels(self.agent).set(1 if ok else 0)
        if ok:
            self.reload_time.labels(self.agent).set(time.time())

    def forget(
        self, probe_series: Iterable[dict[str, str]], link_series: Iterable[dict[str, str]]
    ) -> None:
        """Drop series of probes and links a reload removed, so dashboards don't show ghosts."""
        for labels in probe_series:
            self._probes.pop(_probe_key(labels), None)
        for labels in link_series:
            self._links.pop(_link_key(labels), None)

    # -- the render (its own thread) -------------------------------------------------------

    def render(self) -> bytes:
        return b"".join(self.render_parts())

    def render_parts(self) -> list[bytes]:
        """The text format in parts (our families, then the registry's), to be sent one by
        one: one 67 MB write held the event loop for tens of ms. Yields the GIL as it goes."""
        # Copy the lists first: the loop thread may add series while we render.
        probes = [(s.labels, s.values) for s in list(self._probes.values())]
        links = [(s.labels, s.values) for s in list(self._links.values())]
        services = [(s.labels, s.values) for s in list(self._services.values())]
        out: list[bytes] = []
        pacer = _Pacer()
        for family in _FAMILIES:
            out.append(family.header)
            rows = (
                probes
                if family.source == "probe"
                else (links if family.source == "link" else services)
            )
            for start in range(0, len(rows), RENDER_BATCH):
                lines = family.lines(rows[start : start + RENDER_BATCH])
                out.append("".join(lines).encode())
                pacer.tick()
        out.append(generate_latest(self.registry))
        return out


# -- the families ----------------------------------------------------------------------------

Rows = list[tuple[str, object]]


class _Family:
    def __init__(
        self,
        name: str,
        kind: str,
        help_text: str,
        source: str,
        lines: Callable[[str, Rows], Iterator[str]],
    ) -> None:
        self.name = name
        self.source = source
        help_escaped = help_text.replace("\\", r"\\").replace("\n", r"\n")
        shown = name + "_total" if kind == "counter" else name
        self.header = f"# HELP {shown} {help_escaped}\n# TYPE {shown} {kind}\n".encode()
        self._lines = lines

    def lines(self, rows: Rows) -> Iterator[str]:
        return self._lines(self.name, rows)


def _gauge(field: str) -> Callable[[str, Rows], Iterator[str]]:
    index = ProbeValues._fields.index(field)

    def lines(name: str, rows: Rows) -> Iterator[str]:
        for labels, values in rows:
            value = values[index]  # type: ignore[index]
            if value is not None:
                yield f"{name}{{{labels}}} {_num(value)}\n"

    return lines


def _counter(field: str) -> Callable[[str, Rows], Iterator[str]]:
    index = ProbeValues._fields.index(field)

    def lines(name: str, rows: Rows) -> Iterator[str]:
        sample = name + "_total{"
        for labels, values in rows:
            value = values[index]  # type: ignore[index]
            if value is not None:
                yield f"{sample}{labels}}} {value}\n"

    return lines


def _histogram_lines(name: str, rows: Rows) -> Iterator[str]:
    bucket, count, total = name + "_bucket{", name + "_count{", name + "_sum{"
    for labels, values in rows:
        histogram = values.histogram  # type: ignore[attr-defined]
        if histogram is None:
            continue
        prefix = bucket + labels
        cumulative = list(accumulate(histogram[:-1]))
        for le, n in zip(_LE, cumulative, strict=True):
            yield f"{prefix}{le}{n}\n"
        yield f"{count}{labels}}} {cumulative[-1]}\n"
        yield f"{total}{labels}}} {_num(histogram[-1])}\n"


def _failure_lines(name: str, rows: Rows) -> Iterator[str]:
    sample = name + "_total{"
    for labels, values in rows:
        for reason, n in values.failures:  # type: ignore[attr-defined]
            yield f'{sample}{labels},reason="{reason}"}} {n}\n'


def _link_lines(value_of: Callable[[LinkValues], float]) -> Callable[[str, Rows], Iterator[str]]:
    def lines(name: str, rows: Rows) -> Iterator[str]:
        for labels, values in rows:
            yield f"{name}{{{labels}}} {_num(value_of(values))}\n"  # type: ignore[arg-type]

    return lines


def _link_state_lines(name: str, rows: Rows) -> Iterator[str]:
    for labels, values in rows:
        current = values.state  # type: ignore[attr-defined]
        for state in LINK_STATES:
            yield f'{name}{{{labels},state="{state}"}} {1 if state == current else 0}\n'


def _link_changes_lines(name: str, rows: Rows) -> Iterator[str]:
    sample = name + "_total{"
    for labels, values in rows:
        yield f"{sample}{labels}}} {values.changes}\n"  # type: ignore[attr-defined]


def _service_lines(name: str, rows: Rows) -> Iterator[str]:
    for labels, value in rows:
        yield f"{name}{{{labels}}} {_num(value)}\n"  # type: ignore[arg-type]


_FAMILIES = (
    _Family(
        "linkmon_probe_success",
        "gauge",
        "1 if the last probe round succeeded.",
        "probe",
        _gauge("success"),
    ),
    _Family(
        "linkmon_probe_duration_seconds",
        "histogram",
        "Echo RTT (icmp, one observation per reply), connect time (tcp), request time (http).",
        "probe",
        _histogram_lines,
    ),
    _Family(
        "linkmon_probe_packets_sent",
        "counter",
        "ICMP echo requests sent.",
        "probe",
        _counter("sent"),
    ),
    _Family(
        "linkmon_probe_packets_received",
        "counter",
        "ICMP echo replies received in time.",
        "probe",
        _counter("received"),
    ),
    _Family(
        "linkmon_probe_loss_ratio",
        "gauge",
        "Share of echoes lost in the last round.",
        "probe",
        _gauge("loss"),
    ),
    *(
        _Family(
            f"linkmon_probe_rtt_{stat}_seconds",
            "gauge",
            f"{stat} echo RTT of the last round.",
            "probe",
            _gauge(f"rtt_{stat}"),
        )
        for stat in ("min", "avg", "max", "stddev")
    ),
    _Family(
        "linkmon_probe_jitter_seconds",
        "gauge",
        "Mean difference of consecutive RTTs, last round.",
        "probe",
        _gauge("jitter"),
    ),
    _Family(
        "linkmon_probe_failures",
        "counter",
        "Failed probe rounds by reason.",
        "probe",
        _failure_lines,
    ),
    _Family(
        "linkmon_link_up",
        "gauge",
        "1 if the link is up or degraded.",
        "link",
        _link_lines(lambda v: 1 if v.state in ("up", "degraded") else 0),
    ),
    _Family(
        "linkmon_link_state", "gauge", "1 for the link's current state.", "link", _link_state_lines
    ),
    _Family(
        "linkmon_link_state_changes",
        "counter",
        "Link state transitions.",
        "link",
        _link_changes_lines,
    ),
    _Family(
        "linkmon_link_state_since_timestamp_seconds",
        "gauge",
        "When the link entered its current state.",
        "link",
        _link_lines(lambda v: v.since),
    ),
    _Family(
        "linkmon_link_flapping",
        "gauge",
        "1 while the link is flapping.",
        "link",
        _link_lines(lambda v: 1 if v.flapping else 0),
    ),
    _Family(
        "linkmon_link_in_maintenance",
        "gauge",
        "1 while a maintenance window covers the link.",
        "link",
        _link_lines(lambda v: 1 if v.maintenance else 0),
    ),
    _Family(
        "linkmon_service_available",
        "gauge",
        "1 if the office can serve citizens online, 0.5 via DRC or backup path only, 0 not.",
        "service",
        _service_lines,
    ),
)


# -- helpers ---------------------------------------------------------------------------------

_NO_VALUES = ProbeValues(0.0)
_BUCKETS = len(RTT_BUCKETS)
_INF = float("inf")


def _label_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``a="x",b="y"`` with the text format's escapes, built once per series."""
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _num(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _observe(
    histogram: tuple[float, ...] | None, observations: Iterable[float]
) -> tuple[float, ...]:
    counts = list(histogram) if histogram is not None else [0] * (_BUCKETS + 1) + [0.0]
    for value in observations:
        counts[bisect_left(RTT_BUCKETS, value)] += 1
        counts[-1] += value
    return tuple(counts)


def _count(failures: tuple[tuple[str, int], ...], reason: str) -> tuple[tuple[str, int], ...]:
    counts = dict(failures)
    counts[reason] = counts.get(reason, 0) + 1
    return tuple(counts.items())


class _Pacer:
    """Sleeps briefly every RENDER_SLICE of work, unless this thread runs an event loop."""

    def __init__(self) -> None:
        try:
            asyncio.get_running_loop()
            self._enabled = False  # sleeping here would stall the very loop we protect
        except RuntimeError:
            self._enabled = True
        self._since = time.perf_counter()

    def tick(self) -> None:
        if self._enabled and time.perf_counter() - self._since >= RENDER_SLICE:
            time.sleep(RENDER_PAUSE)
            self._since = time.perf_counter()


def link_labels(config: Config, link: Link) -> dict[str, str]:
    """The labels every series about a link carries."""
    return {
        "agent": config.agent.name,
        "link": link.id,
        "from": link.from_site,
        "to": link.to_site,
        "network": link.network,
        "kabupaten": config.kabupaten_of_link(link.id) or "",
    }


def site_labels(config: Config, site: Site) -> dict[str, str]:
    """The labels of a site's ``linkmon_site_info`` series; absent values are empty."""
    return {
        "agent": config.agent.name,
        "site": site.id,
        "kind": site.kind,
        "name": site.name or site.id,
        "parent": site.parent or "",
        "kabupaten": config.kabupaten_of(site.id) or "",
        "timezone": site.timezone or config.agent.timezone,
    }


_LE = [f',le="{_num(bound)}"}} ' for bound in (*RTT_BUCKETS, float("inf"))]
