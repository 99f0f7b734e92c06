"""The metric names and labels linkmon promises (team brief, DESIGN.md "The contract with users").

Dashboards, alert rules and the stand-in exporter are all checked against this one table, so a
renamed metric breaks a test instead of silently blanking a NOC panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LINK_LABELS = ("agent", "link", "from", "to", "network", "kabupaten")
PROBE_LABELS = (*LINK_LABELS, "kind", "target")
SITE_LABELS = ("agent", "site", "kind", "name", "parent", "kabupaten", "timezone")

LINK_STATES = ("up", "degraded", "down", "unknown", "unreachable")
PROBE_KINDS = ("icmp", "tcp", "http")
DELIVERY_RESULTS = ("success", "retry", "dropped")

# 0.5 ms doubling to ~16 s: WAN RTTs from a LAN hop to a congested satellite path.
RTT_BUCKETS = tuple(0.0005 * 2**k for k in range(16))


@dataclass(frozen=True)
class Metric:
    name: str
    type: Literal["gauge", "counter", "histogram"]
    labels: tuple[str, ...]

    @property
    def series_names(self) -> tuple[str, ...]:
        """Names of the series Prometheus stores for this metric."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


CONTRACT: tuple[Metric, ...] = (
    Metric("linkmon_probe_success", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_duration_seconds", "histogram", PROBE_LABELS),
    Metric("linkmon_probe_packets_sent_total", "counter", PROBE_LABELS),
    Metric("linkmon_probe_packets_received_total", "counter", PROBE_LABELS),
    Metric("linkmon_probe_loss_ratio", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_rtt_min_seconds", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_rtt_avg_seconds", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_rtt_max_seconds", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_rtt_stddev_seconds", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_jitter_seconds", "gauge", PROBE_LABELS),
    Metric("linkmon_probe_failures_total", "counter", (*PROBE_LABELS, "reason")),
    Metric("linkmon_probe_errors_total", "counter", ("agent", "kind")),
    Metric("linkmon_link_up", "gauge", LINK_LABELS),
    Metric("linkmon_link_state", "gauge", (*LINK_LABELS, "state")),
    Metric("linkmon_link_state_changes_total", "counter", LINK_LABELS),
    Metric("linkmon_link_state_since_timestamp_seconds", "gauge", LINK_LABELS),
    Metric("linkmon_link_flapping", "gauge", LINK_LABELS),
    Metric("linkmon_link_in_maintenance", "gauge", LINK_LABELS),
    Metric("linkmon_service_available", "gauge", ("agent", "site", "kabupaten")),
    Metric("linkmon_site_info", "gauge", SITE_LABELS),
    Metric("linkmon_tls_cert_expiry_timestamp_seconds", "gauge", ("agent", "link", "target")),
    Metric("linkmon_alerts_queued", "gauge", ("agent", "receiver")),
    Metric("linkmon_alert_deliveries_total", "counter", ("agent", "receiver", "result")),
    Metric("linkmon_config_last_reload_successful", "gauge", ("agent",)),
    Metric("linkmon_config_last_reload_success_timestamp_seconds", "gauge", ("agent",)),
    Metric("linkmon_scheduler_lag_seconds", "histogram", ("agent",)),
    Metric("linkmon_agent_blind", "gauge", ("agent", "cause")),
    Metric("linkmon_agent_fault_probes", "gauge", ("agent", "resource")),
    # No agent label: Prometheus adds it from the scrape target (prometheus.example.yml).
    Metric("linkmon_build_info", "gauge", ("version", "python")),
)

# Series Prometheus itself writes for every scrape target.
PROMETHEUS_SERIES = frozenset({"up"})

KNOWN_SERIES = frozenset(name for m in CONTRACT for name in m.series_names) | PROMETHEUS_SERIES
