"""Metrics detail: `server.metrics_detail: link` keeps the per-probe series a NOC alerts on."""

from __future__ import annotations

import pytest

from linkmon.metrics import PROBE_LABELS, SITE_LABELS, Metrics
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


def test_site_info_names_every_site_and_a_reload_drops_only_removed_ones() -> None:
    """The fleet view builds its tree from ``linkmon_site_info``: kind, parent, kabupaten and
    zone of every site, and a reload must not leave a scrape without the sites that stay."""
    from linkmon.config import parse_config
    from linkmon.metrics import site_labels

    def config(*kecamatan: str) -> str:
        sites = "".join(
            f"  - {{id: {kec}, kind: kecamatan, parent: kab-a, name: Kecamatan {kec}}}\n"
            for kec in kecamatan
        )
        return (
            "agent: {name: kab-a, timezone: Asia/Makassar}\n"
            "sites:\n"
            "  - {id: pusat-dc, kind: pusat, name: Data Center, timezone: Asia/Jakarta}\n"
            "  - {id: kab-a, kind: kabupaten, name: Kabupaten A}\n" + sites
        )

    metrics = Metrics("kab-a")
    first = parse_config(config("kec-b", "kec-c"))
    metrics.set_sites(site_labels(first, site) for site in first.sites)
    samples = parse_metrics(metrics.render().decode())
    assert value(samples, "linkmon_site_info", site="kec-b") == 1
    (labels,) = [
        dict(ls) for n, ls in samples if n == "linkmon_site_info" and ("site", "kec-b") in ls
    ]
    assert labels == {
        "agent": "kab-a",
        "site": "kec-b",
        "kind": "kecamatan",
        "name": "Kecamatan kec-b",
        "parent": "kab-a",
        "kabupaten": "kab-a",
        "timezone": "Asia/Makassar",
    }
    assert value(samples, "linkmon_site_info", site="pusat-dc", timezone="Asia/Jakarta") == 1

    values = [labels[name] for name in SITE_LABELS]
    kept = metrics.site_info.labels(*values)
    second = parse_config(config("kec-b"))
    metrics.set_sites(site_labels(second, site) for site in second.sites)
    samples = parse_metrics(metrics.render().decode())
    assert value(samples, "linkmon_site_info", site="kec-c") is None
    assert metrics.site_info.labels(*values) is kept  # never cleared in between
