"""Issue 3: what linkmon shows on /metrics when a lab link really fails.

linkmon runs in the hub namespace (kab-nunukan) with config/lab-nunukan.yml: 1 s rounds,
down after 3 failed rounds, up after 2 good ones.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkmon.lab import Lab
from tests.support.daemon import Linkmon, lab_config, linkmon_in_lab
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

CONFIG = Path(__file__).parents[2] / "config" / "lab-nunukan.yml"
INTERVAL, DOWN_AFTER, UP_AFTER = 1.0, 3, 2


@pytest.fixture(scope="module")
def linkmon(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linkmon]:
    tmp = tmp_path_factory.mktemp("detection")
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    for link in config["links"]:
        if link["id"] == "kec-sebuku--kab":  # the loss-measuring link: 20 echoes a round
            link["icmp"] = {"count": 20, "spacing": "10ms", "size": 56}
    source = tmp / "source.yml"
    source.write_text(yaml.safe_dump(config, sort_keys=False))
    path = lab_config(source, tmp, links=config["links"], alerting={"receivers": []})
    with linkmon_in_lab(lab, "kab-nunukan", path) as daemon:
        for link in ("kec-krayan--kab", "kab-nunukan--dc", "kec-sebuku--kab", "kec-lumbis--kab"):
            daemon.wait_value("linkmon_link_up", 1, 20, link=link)
        yield daemon


@pytest.fixture
def faults(lab: Lab, linkmon: Linkmon) -> Iterator[Lab]:
    lab.restore_all()
    try:
        yield lab
    finally:
        lab.restore_all()
        for link in ("kec-krayan--kab", "kab-nunukan--dc", "kec-sebuku--kab"):
            linkmon.wait_value("linkmon_link_up", 1, 15, link=link)


def test_cut_is_down_within_down_after_rounds_and_up_after_restore(
    faults: Lab, linkmon: Linkmon
) -> None:
    faults.cut("kec-krayan--kab")
    took = linkmon.wait_value("linkmon_link_up", 0, 15, link="kec-krayan--kab")
    assert took <= DOWN_AFTER * INTERVAL + 1.0, f"down after {took:.2f} s"

    def traced() -> object:
        links = linkmon.status()["links"]
        return next(link for link in links if link["id"] == "kec-krayan--kab")["path"]

    where = wait_until(traced, 10, "the trace taken at the failure in the status")
    assert "198.18.30.8" in str(where)  # here: no route from the hub once its side is cut
    faults.restore("kec-krayan--kab")
    took = linkmon.wait_value("linkmon_link_up", 1, 15, link="kec-krayan--kab")
    assert took <= UP_AFTER * INTERVAL + 1.0, f"up again after {took:.2f} s"


def test_blackhole_is_detected_like_a_cut(faults: Lab, linkmon: Linkmon) -> None:
    faults.blackhole("kec-krayan--kab")
    took = linkmon.wait_value("linkmon_link_up", 0, 15, link="kec-krayan--kab")
    assert took <= DOWN_AFTER * INTERVAL + 1.0 + 0.8  # + the timeout a silent echo costs
    assert linkmon.value("linkmon_probe_failures_total", link="kec-krayan--kab", reason="timeout")


def test_loss_is_reported_within_five_points_over_200_echoes(faults: Lab, linkmon: Linkmon) -> None:
    labels = {"link": "kec-sebuku--kab", "kind": "icmp"}

    def counters() -> tuple[float, float]:
        samples = linkmon.metrics()
        from tests.support.daemon import value

        return (
            value(samples, "linkmon_probe_packets_sent_total", **labels) or 0,
            value(samples, "linkmon_probe_packets_received_total", **labels) or 0,
        )

    faults.loss("kec-sebuku--kab", 0.10)
    time.sleep(INTERVAL)  # let a round that started before the fault finish
    sent0, received0 = counters()
    wait_until(lambda: counters()[0] - sent0 >= 200, 30, "200 echoes")
    sent1, received1 = counters()
    loss = 1 - (received1 - received0) / (sent1 - sent0)
    assert abs(loss - 0.10) <= 0.05, f"measured {loss:.1%} over {sent1 - sent0:.0f} echoes"
    assert linkmon.value("linkmon_link_up", link="kec-sebuku--kab") == 1


def test_delay_shows_in_rtt_within_a_millisecond(faults: Lab, linkmon: Linkmon) -> None:
    overhead = faults.bridge_overhead("kec-lumbis--kab", count=100)
    faults.delay("kec-lumbis--kab", 0.040)
    expected = 0.080 + overhead
    labels = {"link": "kec-lumbis--kab", "kind": "icmp"}
    wait_until(
        lambda: (linkmon.value("linkmon_probe_rtt_min_seconds", **labels) or 0) > 0.07,
        10,
        "delay to show",
    )
    averages = []
    for _ in range(8):  # one sample per round
        averages.append(linkmon.value("linkmon_probe_rtt_avg_seconds", **labels))
        time.sleep(INTERVAL)
    median = statistics.median(a for a in averages if a is not None)
    assert abs(median - expected) <= 0.001, (
        f"median {median * 1000:.3f} ms, expected {expected * 1000:.3f} ms"
    )


def test_refused_service_keeps_icmp_up_while_tcp_and_http_fail(
    faults: Lab, linkmon: Linkmon
) -> None:
    faults.refuse("pusat-dc")
    wait_until(
        lambda: linkmon.value("linkmon_probe_success", link="kab-nunukan--dc", kind="tcp") == 0,
        10,
        "tcp to fail",
    )
    wait_until(
        lambda: linkmon.value("linkmon_probe_success", link="kab-nunukan--dc", kind="http") == 0,
        10,
        "http to fail",
    )
    assert linkmon.value("linkmon_probe_success", link="kab-nunukan--dc", kind="icmp") == 1
    linkmon.wait_value("linkmon_link_up", 0, 10, link="kab-nunukan--dc")
    link = next(item for item in linkmon.status()["links"] if item["id"] == "kab-nunukan--dc")
    assert link["cause"] == "service_refused", link
