"""Metrics detail: `server.metrics_detail: link` keeps the per-probe series a NOC alerts on."""

from __future__ import annotations

import pytest

from linkmon.metrics import PROBE_LABELS, Metrics
from probes import Failure, ProbeResult
from tests.support.daemon import parse_metrics, value

LABELS = dict(
    zip(
        PROBE_LABELS,
        ("a", "kec-b--kab", "kec-b", "kab-a", "m2m", "kab-a", "icmp", "198.18.20.2"),
        strict=True,
    )
)


def rendered(detail: str) -> str:
    metrics = Metrics("a", detail=detail)
    metrics.observe_probe(
        LABELS,
        ProbeResult(
            kind="icmp",
            target="198.18.20.2",
            success=True,
            packets_sent=4,
            packets_received=3,
            rtts=(0.010, 0.012, 0.014),
        ),
    )
    metrics.observe_probe(
        LABELS,
        ProbeResult(
            kind="icmp",
            target="198.18.20.2",
            success=False,
            failure=Failure.TIMEOUT,
            packets_sent=4,
        ),
    )
    return metrics.render().decode()


def test_link_detail_keeps_success_loss_rtt_and_failures_only() -> None:
    samples = parse_metrics(rendered("link"))
    assert value(samples, "linkmon_probe_success", link="kec-b--kab") == 0
    assert value(samples, "linkmon_probe_loss_ratio", link="kec-b--kab") == 1.0
    assert value(samples, "linkmon_probe_rtt_avg_seconds", link="kec-b--kab") == pytest.approx(
        0.012
    )
    assert value(samples, "linkmon_probe_failures_total", reason="timeout") == 1
    dropped = {name for name, _ in samples} & {
        "linkmon_probe_duration_seconds_bucket",
        "linkmon_probe_packets_sent_total",
        "linkmon_probe_rtt_max_seconds",
        "linkmon_probe_jitter_seconds",
    }
    assert dropped == set()


def test_full_detail_is_at_least_six_times_the_link_detail_per_probe() -> None:
    full, link = parse_metrics(rendered("full")), parse_metrics(rendered("link"))
    per_probe = [len([k for k in s if ("link", "kec-b--kab") in k[1]]) for s in (full, link)]
    assert value(full, "linkmon_probe_duration_seconds_count", link="kec-b--kab") == 3
    assert per_probe[0] >= 6 * per_probe[1]
