"""Prometheus metrics: one registry per daemon, names from the user contract.

Probe figures are pushed into metric objects as results arrive; link state and service
availability are written on each transition. Label values are bounded: ids from the config,
the probe kind, the target from the config and reasons from :class:`probes.Failure` — never
error text or timestamps.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from probes import ProbeResult

from . import __version__

if TYPE_CHECKING:
    from .config import Config, Link

LINK_LABELS = ("agent", "link", "from", "to", "network", "kabupaten")
PROBE_LABELS = (*LINK_LABELS, "kind", "target")
LINK_STATES = ("up", "degraded", "down", "unknown", "unreachable")

# 0.5 ms doubling to ~16 s: spans loopback, fibre, VSAT and a congested 128 kbps kecamatan line.
RTT_BUCKETS = tuple(0.0005 * 2**k for k in range(16))
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every linkmon metric, on a registry of its own so tests and reloads stay isolated."""

    def __init__(self, agent: str, registry: CollectorRegistry | None = None,
                 detail: str = "full") -> None:
        self.agent = agent
        # "link": per probe only success, loss, average RTT and failures (server.metrics_detail)
        self.detail = detail
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.probe_success = Gauge(
            "linkmon_probe_success", "1 if the last probe round succeeded.", PROBE_LABELS,
            registry=r)
        self.probe_duration = Histogram(
            "linkmon_probe_duration_seconds",
            "Echo RTT (icmp, one observation per reply), connect time (tcp), request time (http).",
            PROBE_LABELS, buckets=RTT_BUCKETS, registry=r)
        self.packets_sent = Counter(
            "linkmon_probe_packets_sent", "ICMP echo requests sent.", PROBE_LABELS, registry=r)
        self.packets_received = Counter(
            "linkmon_probe_packets_received", "ICMP echo replies received in time.",
            PROBE_LABELS, registry=r)
        self.loss_ratio = Gauge(
            "linkmon_probe_loss_ratio", "Share of echoes lost in the last round.", PROBE_LABELS,
            registry=r)
        self.rtt = {
            stat: Gauge(f"linkmon_probe_rtt_{stat}_seconds", f"{stat} echo RTT of the last round.",
                        PROBE_LABELS, registry=r)
            for stat in ("min", "avg", "max", "stddev")
        }
        self.jitter = Gauge(
            "linkmon_probe_jitter_seconds", "Mean difference of consecutive RTTs, last round.",
            PROBE_LABELS, registry=r)
        self.failures = Counter(
            "linkmon_probe_failures", "Failed probe rounds by reason.", (*PROBE_LABELS, "reason"),
            registry=r)
        self.tls_expiry = Gauge(
            "linkmon_tls_cert_expiry_timestamp_seconds", "notAfter of the server certificate.",
            ("agent", "link", "target"), registry=r)
        self.probe_errors = Counter(
            "linkmon_probe_errors", "Probe code that raised instead of returning a result.",
            ("agent", "kind"), registry=r)

        self.link_up = Gauge("linkmon_link_up", "1 if the link is up or degraded.", LINK_LABELS,
                             registry=r)
        self.link_state = Gauge("linkmon_link_state", "1 for the link's current state.",
                                (*LINK_LABELS, "state"), registry=r)
        self.link_changes = Counter("linkmon_link_state_changes", "Link state transitions.",
                                    LINK_LABELS, registry=r)
        self.link_since = Gauge("linkmon_link_state_since_timestamp_seconds",
                                "When the link entered its current state.", LINK_LABELS,
                                registry=r)
        self.link_flapping = Gauge("linkmon_link_flapping", "1 while the link is flapping.",
                                   LINK_LABELS, registry=r)
        self.link_maintenance = Gauge("linkmon_link_in_maintenance",
                                      "1 while a maintenance window covers the link.",
                                      LINK_LABELS, registry=r)
        self.service_available = Gauge(
            "linkmon_service_available",
            "1 if the office can serve citizens online, 0.5 via DRC or backup path only, 0 not.",
            ("agent", "site", "kabupaten"), registry=r)

        self.alerts_queued = Gauge("linkmon_alerts_queued",
                                   "Alert notifications not yet delivered.",
                                   ("agent", "receiver"), registry=r)
        self.alert_deliveries = Counter("linkmon_alert_deliveries", "Alert delivery attempts.",
                                        ("agent", "receiver", "result"), registry=r)
        self.reload_ok = Gauge("linkmon_config_last_reload_successful",
                               "1 if the last configuration load succeeded.", ("agent",),
                               registry=r)
        self.reload_time = Gauge("linkmon_config_last_reload_success_timestamp_seconds",
                                 "When the configuration was last loaded successfully.",
                                 ("agent",), registry=r)
        self.scheduler_lag = Histogram(
            "linkmon_scheduler_lag_seconds", "How late probe rounds start against their schedule.",
            ("agent",), buckets=LAG_BUCKETS, registry=r)
        self.rounds_skipped = Counter(
            "linkmon_scheduler_rounds_skipped",
            "Rounds skipped because the previous round of the same probe was still running.",
            ("agent",), registry=r)
        Gauge("linkmon_build_info", "linkmon version.", ("version", "python"), registry=r).labels(
            __version__, platform.python_version()).set(1)

    def observe_probe(self, labels: dict[str, str], result: ProbeResult) -> None:
        values = tuple(labels[name] for name in PROBE_LABELS)
        self.probe_success.labels(*values).set(1 if result.success else 0)
        if self.detail == "link":
            if result.loss is not None:
                self.loss_ratio.labels(*values).set(result.loss)
            if result.rtt_avg is not None:
                self.rtt["avg"].labels(*values).set(result.rtt_avg)
        elif result.kind == "icmp":
            for rtt in result.rtts:
                self.probe_duration.labels(*values).observe(rtt)
            self.packets_sent.labels(*values).inc(result.packets_sent)
            self.packets_received.labels(*values).inc(result.packets_received)
            loss = result.loss
            if loss is not None:
                self.loss_ratio.labels(*values).set(loss)
            stats = {"min": result.rtt_min, "avg": result.rtt_avg, "max": result.rtt_max,
                     "stddev": result.rtt_stddev}
            for stat, value in stats.items():
                if value is not None:
                    self.rtt[stat].labels(*values).set(value)
            if result.jitter is not None:
                self.jitter.labels(*values).set(result.jitter)
        elif result.duration is not None and result.success:
            self.probe_duration.labels(*values).observe(result.duration)
        if result.failure is not None:
            self.failures.labels(*values, result.failure.value).inc()
        if result.tls_cert_expiry is not None:
            self.tls_expiry.labels(self.agent, labels["link"], labels["target"]).set(
                result.tls_cert_expiry)

    def set_link(self, labels: dict[str, str], state: str, since: float, flapping: bool,
                 maintenance: bool, changed: bool) -> None:
        values = tuple(labels[name] for name in LINK_LABELS)
        self.link_up.labels(*values).set(1 if state in ("up", "degraded") else 0)
        # Old state to 0 before the new one to 1: a scrape in between must never see two.
        for candidate in LINK_STATES:
            if candidate != state:
                self.link_state.labels(*values, candidate).set(0)
        self.link_state.labels(*values, state).set(1)
        self.link_since.labels(*values).set(since)
        self.link_flapping.labels(*values).set(1 if flapping else 0)
        self.link_maintenance.labels(*values).set(1 if maintenance else 0)
        if changed:
            self.link_changes.labels(*values).inc()
        else:
            # Create the counter at 0 so increase() sees the first change.
            self.link_changes.labels(*values)

    def set_service(self, site: str, kabupaten: str, availability: float) -> None:
        self.service_available.labels(self.agent, site, kabupaten).set(availability)

    def config_loaded(self, ok: bool) -> None:
        self.reload_ok.labels(self.agent).set(1 if ok else 0)
        if ok:
            self.reload_time.labels(self.agent).set(time.time())

    def forget(self, probe_series: Iterable[dict[str, str]],
               link_series: Iterable[dict[str, str]]) -> None:
        """Drop series of probes and links a reload removed, so dashboards don't show ghosts."""
        for labels in probe_series:
            values = tuple(labels[name] for name in PROBE_LABELS)
            for metric in (self.probe_success, self.probe_duration, self.packets_sent,
                           self.packets_received, self.loss_ratio, self.jitter, *self.rtt.values()):
                _remove(metric, values)
        for labels in link_series:
            values = tuple(labels[name] for name in LINK_LABELS)
            for metric in (self.link_up, self.link_since, self.link_flapping,
                           self.link_maintenance, self.link_changes):
                _remove(metric, values)
            for state in LINK_STATES:
                _remove(self.link_state, (*values, state))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _remove(metric: MetricWrapperBase, values: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*values)


def link_labels(config: Config, link: Link) -> dict[str, str]:
    """The labels every series about a link carries."""
    return {"agent": config.agent.name, "link": link.id, "from": link.from_site,
            "to": link.to_site, "network": link.network,
            "kabupaten": config.kabupaten_of_link(link.id) or ""}
