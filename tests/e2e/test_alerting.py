"""Issue 4: what on-call staff get when lab links really fail — pages, root causes, damping.

linkmon runs in the hub's namespace (kab-nunukan) with config/lab-nunukan.yml at 500 ms rounds
(down after 3 failed rounds, up after 2 good ones) and sends to a real webhook receiver process
in the same namespace; one test adds a second linkmon at pusat (config/lab-pusat.yml) that sees
the kecamatan only through the hub. A page is a notification the receiver accepted. Each test
faults links of its own, so the pages of one never stand in for those of another.
Delivery itself (503s, kill -9, Alertmanager) is in test_alert_delivery.py.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from linkmon.lab import Lab
from tests.support.daemon import Linkmon, lab_config, linkmon_in_lab, value
from tests.support.lab_alerting import (
    DOWN_AFTER,
    FAST,
    INTERVAL,
    SETTLE,
    UP_AFTER,
    LabReceiver,
    all_up,
    config_path,
    echoes_sent,
    link_doc,
    link_states,
    notifications,
    receiver_in_lab,
    storage_path,
    subjects,
    transitions,
)
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

CONFIG_DIR = Path(__file__).parents[2] / "config"
CUT = "kec-lumbis--kab"  # a kecamatan on a single M2M link
DC, DRC = "kab-nunukan--dc", "kab-nunukan--drc"
# 300 rounds of 5 echoes every 100 ms: 30 s.
LOSSY, LOSSY_INTERVAL, LOSSY_ECHOES, LOSSY_ROUNDS = "kec-sebuku--kab", 0.1, 5, 300
# One echo a round, so a round fails exactly when it is sent in the flap's down phase.
FLAPPY, FLAPPY_ROUNDS = "kec-sebatik--kab", 40
FLAPPING = {"changes": 4, "window": "15s"}


def service_doc(daemon: Linkmon, site: str) -> dict[str, Any]:
    sites: list[dict[str, Any]] = daemon.status()["sites"]
    service: dict[str, Any] = next(doc for doc in sites if doc["id"] == site)["service"]
    return service


def hub_config(tmp: Path, receiver: LabReceiver) -> Path:
    config = yaml.safe_load((CONFIG_DIR / "lab-nunukan.yml").read_text())
    for link in config["links"]:
        if link["id"] == LOSSY:
            link.update(
                interval=f"{LOSSY_INTERVAL * 1000:g}ms",
                timeout="80ms",
                icmp={"count": LOSSY_ECHOES, "spacing": "5ms", "size": 56},
            )
        elif link["id"] == FLAPPY:
            link["icmp"] = {"count": 1, "spacing": "50ms", "size": 56}
    source = tmp / "source.yml"
    source.write_text(yaml.safe_dump(config, sort_keys=False))
    return lab_config(
        source,
        tmp,
        defaults=FAST,
        links=config["links"],
        alerting={
            "receivers": [{"name": "oncall", "kind": "webhook", "url": receiver.url}],
            "flapping": FLAPPING,
        },
    )


@pytest.fixture(scope="module")
def receiver(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabReceiver]:
    tmp = tmp_path_factory.mktemp("hub-receiver")
    with receiver_in_lab(lab, "kab-nunukan", tmp / "hook.jsonl") as started:
        yield started


@pytest.fixture(scope="module")
def hub(
    lab: Lab, receiver: LabReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Linkmon]:
    path = hub_config(tmp_path_factory.mktemp("hub"), receiver)
    with linkmon_in_lab(lab, "kab-nunukan", path) as daemon:
        wait_until(lambda: all_up(daemon), 20, "every hub link up")
        yield daemon


@pytest.fixture
def faults(lab: Lab, hub: Linkmon) -> Iterator[Lab]:
    lab.restore_all()
    try:
        yield lab
    finally:
        lab.restore_all()
        wait_until(lambda: all_up(hub), 30, "every hub link up again")


def test_kecamatan_cut_pages_once_with_labels_and_resolves_once(
    faults: Lab, hub: Linkmon, receiver: LabReceiver
) -> None:
    started = time.time()
    faults.cut(CUT)
    [page] = wait_until(lambda: notifications(receiver, started, link=CUT), 10, "the page")
    took = page.at - started
    assert took <= DOWN_AFTER * INTERVAL + 2.0, f"paged {took:.2f} s after the cut"
    assert page.status == "firing"
    assert page.labels == {
        "alertname": "LinkDown",
        "agent": "kab-nunukan",
        "link": CUT,
        "site": "kec-lumbis",
        "kabupaten": "kab-nunukan",
        "network": "m2m",
        "severity": "critical",
        "cause": "path_down",
    }
    assert "Kecamatan Lumbis" in page.annotations["summary"]
    assert "WITA" in page.annotations["summary"]  # the office's own clock

    restored = time.time()
    faults.restore(CUT)
    wait_until(lambda: len(notifications(receiver, started, link=CUT)) >= 2, 10, "the resolve")
    time.sleep(SETTLE)
    pages = notifications(receiver, started)
    assert subjects(pages) == [("firing", "LinkDown", CUT), ("resolved", "LinkDown", CUT)]
    firing, resolved = pages
    assert (resolved.fingerprint, resolved.starts_at) == (firing.fingerprint, firing.starts_at)
    assert resolved.at - restored <= UP_AFTER * INTERVAL + 2.0


def test_hub_uplink_cut_seen_from_pusat_pages_the_uplink_only(faults: Lab, tmp_path: Path) -> None:
    """The pusat agent waits on /metrics only: reading the status API must not change pages."""
    config = yaml.safe_load((CONFIG_DIR / "lab-pusat.yml").read_text())
    kecamatan = [link["id"] for link in config["links"] if DC in link.get("depends_on", ())]
    assert len(kecamatan) == 6  # Krayan twice: its VPN and its Starlink backup
    with receiver_in_lab(faults, "pusat-dc", tmp_path / "hook.jsonl") as receiver:
        path = lab_config(
            CONFIG_DIR / "lab-pusat.yml",
            tmp_path,
            defaults=FAST,
            alerting={"receivers": [{"name": "noc", "kind": "webhook", "url": receiver.url}]},
        )
        with linkmon_in_lab(faults, "pusat-dc", path) as pusat:
            wait_until(lambda: all_up(pusat), 20, "every link up as seen from pusat")
            started = time.time()
            faults.cut(DC)
            behind_the_cut = {DC: "down", **{link: "unreachable" for link in kecamatan}}
            wait_until(
                lambda: link_states(pusat) == behind_the_cut,
                10,
                "uplink down, kecamatan unreachable",
            )
            wait_until(lambda: notifications(receiver, started), 10, "the uplink's page")
            time.sleep(SETTLE)
            pages = notifications(receiver, started)
            assert subjects(pages) == [("firing", "LinkDown", DC)]
            assert pages[0].labels["agent"] == "pusat-dc"
            assert pages[0].labels["cause"] == "path_down"  # a cut, not a blocked service
            for link in kecamatan:
                doc = link_doc(pusat, link)
                assert (doc["state"], doc["cause"], doc["unreachable_via"]) == (
                    "unreachable",
                    f"upstream:{DC}",
                    DC,
                )

            faults.restore(DC)
            wait_until(lambda: all_up(pusat), 10, "uplink and kecamatan up again")
            wait_until(lambda: len(notifications(receiver, started)) >= 2, 10, "the resolve")
            time.sleep(SETTLE)
            assert subjects(notifications(receiver, started)) == [
                ("firing", "LinkDown", DC),
                ("resolved", "LinkDown", DC),
            ]
            # Not one kecamatan went through DOWN, on the way out or back.
            for link in kecamatan:
                assert transitions(storage_path(pusat), link, started) == [
                    ("up", "unreachable"),
                    ("unreachable", "up"),
                ], link


def test_dc_down_drc_up_serves_degraded_and_both_down_is_unavailable(
    faults: Lab, hub: Linkmon, receiver: LabReceiver
) -> None:
    """Waits on the status API, polled as the NOC page polls it."""
    started = time.time()
    faults.cut(DC)
    wait_until(
        lambda: service_doc(hub, "kab-nunukan")["state"] == "degraded", 10, "service degraded"
    )
    assert service_doc(hub, "kab-nunukan") == {"state": "degraded", "via": [DRC], "reason": "drc"}
    assert service_doc(hub, "kec-lumbis")["via"] == [CUT, DRC]
    hub.wait_value("linkmon_service_available", 0.5, 5, site="kab-nunukan")
    hub.wait_value("linkmon_service_available", 0.5, 5, site="kec-lumbis")

    faults.cut(DRC)
    wait_until(
        lambda: service_doc(hub, "kab-nunukan")["state"] == "unavailable", 10, "service unavailable"
    )
    hub.wait_value("linkmon_service_available", 0, 5, site="kab-nunukan")
    hub.wait_value("linkmon_service_available", 0, 5, site="kec-lumbis")
    wait_until(
        lambda: notifications(receiver, started, alertname="ServiceUnavailable"),
        5,
        "the office's page",
    )
    time.sleep(SETTLE)
    # One page per uplink and one for the office that lost both; the kecamatan behind it
    # (their own links are fine) inherit it without a page each.
    paged = [
        ("firing", "LinkDown", DC),
        ("firing", "LinkDown", DRC),
        ("firing", "ServiceUnavailable", "kab-nunukan"),
    ]
    assert sorted(subjects(notifications(receiver, started))) == paged

    faults.restore(DC)
    faults.restore(DRC)
    hub.wait_value("linkmon_service_available", 1, 10, site="kab-nunukan")
    wait_until(lambda: len(notifications(receiver, started)) >= 6, 10, "three resolves")
    time.sleep(SETTLE)
    assert sorted(subjects(notifications(receiver, started))) == sorted(
        paged + [("resolved", name, subject) for _, name, subject in paged]
    )


def test_twenty_percent_loss_for_300_rounds_is_degraded_never_down(
    faults: Lab, hub: Linkmon, receiver: LabReceiver
) -> None:
    seen: set[str] = set()

    def counters() -> tuple[float, float]:
        samples = hub.metrics()
        seen.update(
            state
            for state in ("up", "degraded", "down", "unknown", "unreachable")
            if value(samples, "linkmon_link_state", link=LOSSY, state=state) == 1
        )
        return (
            value(samples, "linkmon_probe_packets_sent_total", link=LOSSY, kind="icmp") or 0,
            value(samples, "linkmon_probe_packets_received_total", link=LOSSY, kind="icmp") or 0,
        )

    started = time.time()
    faults.loss(LOSSY, 0.20)
    time.sleep(LOSSY_INTERVAL)  # let a round sent before the fault finish
    sent0, received0 = counters()
    wait_until(
        lambda: counters()[0] - sent0 >= LOSSY_ROUNDS * LOSSY_ECHOES,
        LOSSY_ROUNDS * LOSSY_INTERVAL * 2 + 10,
        f"{LOSSY_ROUNDS} rounds",
        every=0.25,
    )
    sent1, received1 = counters()
    loss = 1 - (received1 - received0) / (sent1 - sent0)
    assert abs(loss - 0.20) <= 0.05, f"the lab lost {loss:.1%} of {sent1 - sent0:.0f} echoes"

    changes = transitions(storage_path(hub), LOSSY, started)
    assert ("up", "degraded") in changes, changes
    assert {new for _, new in changes} <= {"up", "degraded"}, changes
    assert seen <= {"up", "degraded"}, seen
    assert notifications(receiver, started, accepted=False, link=LOSSY) == []


def test_flapping_link_pages_once_as_flapping_not_at_every_change(
    faults: Lab, hub: Linkmon, receiver: LabReceiver
) -> None:
    started = time.time()
    sent0 = echoes_sent(hub, FLAPPY)
    faults.flap(FLAPPY, 3 * INTERVAL)  # down 3 rounds, up 3 rounds
    flapping_seen = []

    def rounds_done() -> bool:
        flapping_seen.append(hub.value("linkmon_link_flapping", link=FLAPPY) == 1)
        return echoes_sent(hub, FLAPPY) - sent0 >= FLAPPY_ROUNDS

    wait_until(rounds_done, FLAPPY_ROUNDS * INTERVAL * 2, f"{FLAPPY_ROUNDS} rounds", every=0.25)
    faults.restore(FLAPPY)
    assert any(flapping_seen)
    downs = [new for _, new in transitions(storage_path(hub), FLAPPY, started) if new == "down"]
    assert len(downs) >= 4, f"went down only {len(downs)} times: the flap did not bite"

    # Calm again: the flapping alert resolves once its changes age out of the window.
    wait_until(
        lambda: ("resolved", "LinkFlapping", FLAPPY) in subjects(notifications(receiver, started)),
        30,
        "the flapping alert to resolve",
    )
    time.sleep(SETTLE)
    # Damping starts at change number changes+1, a down: the two downs before it page, then
    # only the one flapping alert, however often the link went down.
    assert subjects(notifications(receiver, started)) == [
        ("firing", "LinkDown", FLAPPY),
        ("resolved", "LinkDown", FLAPPY),
        ("firing", "LinkDown", FLAPPY),
        ("resolved", "LinkDown", FLAPPY),
        ("firing", "LinkFlapping", FLAPPY),
        ("resolved", "LinkFlapping", FLAPPY),
    ]
    assert hub.value("linkmon_link_flapping", link=FLAPPY) == 0


def test_invalid_config_on_sighup_keeps_probing_with_the_old_config(hub: Linkmon) -> None:
    """A short lab version of the reload tests in tests/linkmon/test_daemon.py."""
    path = config_path(hub)
    good = path.read_text()
    config = yaml.safe_load(good)
    config["links"] = [link for link in config["links"] if link["id"] != CUT]
    config["alerting"]["flaping"] = {"changes": 3}  # the typo that makes the file invalid
    try:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        hub.process.send_signal(signal.SIGHUP)
        hub.wait_value("linkmon_config_last_reload_successful", 0, 10)
        assert "alerting.flaping" in hub.output()
        # Still the old config: the link the bad file drops is still probed, round after round.
        sent = echoes_sent(hub, CUT)
        wait_until(
            lambda: echoes_sent(hub, CUT) >= sent + 3 * 3,
            5 * INTERVAL + 2,
            "three more rounds of the old config",
        )
        assert link_states(hub)[CUT] == "up"
    finally:
        path.write_text(good)
        hub.process.send_signal(signal.SIGHUP)
        hub.wait_value("linkmon_config_last_reload_successful", 1, 10)
