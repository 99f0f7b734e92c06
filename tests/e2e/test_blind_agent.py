"""Issue 13, item 1: an agent that has lost its own network says "I am blind", not every link.

The lab is the shipped Nunukan lab plus the hub office's LAN (tests/support/labs.py): linkmon
runs on a PC of that LAN (its own namespace) with config/lab-nunukan.yml's links and the hub
router's end of the LAN as ``agent.gateway``; the webhook receiver is a real process in the hub
router's namespace, so that, like the relay on a real office LAN, it is reached through the
gateway. The LAN is cut for real (its veth pair set down): nothing answers the PC, the gateway
neither, and no alert can leave until the LAN is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from linkmon.lab import Lab
from tests.support.daemon import Linkmon, lab_config, linkmon_in_lab
from tests.support.lab_alerting import (
    FAST,
    SETTLE,
    LabReceiver,
    all_up,
    link_states,
    notifications,
    receiver_in_lab,
    storage_path,
    subjects,
    transitions,
)
from tests.support.labs import OFFICE_LAN, OFFICE_PC, gateway_of, office_lan_lab
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

CONFIG = Path(__file__).parents[2] / "config" / "lab-nunukan.yml"
LINK_PAGES = ("LinkDown", "RegionalIncident", "ServiceUnavailable")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with office_lan_lab(f"b{os.getpid() % 100_000}", tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def receiver(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabReceiver]:
    log = tmp_path_factory.mktemp("receiver") / "hook.jsonl"
    with receiver_in_lab(lab, "kab-nunukan", log, across=True) as started:
        yield started


def office_pc_config(lab: Lab, tmp: Path, receiver: LabReceiver) -> Path:
    """lab-nunukan.yml as the office PC runs it: the same links, probed from the PC (not from
    the hub's own address), its gateway and the relay beyond it."""
    links = yaml.safe_load(CONFIG.read_text())["links"]
    for link in links:
        for probe in link["probes"]:
            probe.pop("source", None)
    return lab_config(
        CONFIG,
        tmp,
        agent={"site": "kab-nunukan", "gateway": gateway_of(lab)},
        defaults=FAST,
        links=links,
        alerting={"receivers": [{"name": "relay", "kind": "webhook", "url": receiver.url}]},
    )


@pytest.fixture(scope="module")
def agent(
    lab: Lab, receiver: LabReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Linkmon]:
    path = office_pc_config(lab, tmp_path_factory.mktemp("agent"), receiver)
    with linkmon_in_lab(lab, OFFICE_PC, path) as daemon:
        wait_until(lambda: all_up(daemon), 30, "every link up from the office PC")
        yield daemon


def test_a_cut_office_lan_is_one_agent_blind_and_no_link_page(
    lab: Lab, agent: Linkmon, receiver: LabReceiver
) -> None:
    started = time.time()
    links = set(link_states(agent))
    lab.cut(OFFICE_LAN)
    try:
        agent.wait_value("linkmon_agent_blind", 1, 15, cause="own_lan")
        wait_until(
            lambda: set(link_states(agent).values()) == {"unknown"}, 15, "every link unknown"
        )
        doc = agent.status()["links"]
        assert {(link["state"], link["cause"]) for link in doc} == {("unknown", "own_lan")}
        time.sleep(SETTLE)  # long enough for a stray page (or a stray state) to show up
        assert set(link_states(agent).values()) == {"unknown"}
        # Nothing left the PC: the relay is beyond the gateway.
        assert notifications(receiver, started, accepted=False) == []
    finally:
        lab.restore(OFFICE_LAN)
    returned = time.time()

    wait_until(lambda: all_up(agent), 30, "every link up again")
    agent.wait_value("linkmon_agent_blind", 0, 10, cause="own_lan")

    def blind_and_sighted() -> bool:
        return len(notifications(receiver, started, alertname="AgentBlind")) >= 2

    wait_until(blind_and_sighted, 90, "AgentBlind and its resolve at the relay")
    time.sleep(SETTLE)
    pages = notifications(receiver, started, accepted=False)
    assert [(n.status, n.name, n.labels.get("cause")) for n in pages if n.answered == 200] == [
        ("firing", "AgentBlind", "own_lan"),
        ("resolved", "AgentBlind", "own_lan"),
    ], subjects(pages)
    assert not [n for n in pages if n.name in LINK_PAGES]  # not even an attempt
    firing = pages[0]
    assert firing.at >= returned  # delivered once the gateway was back
    assert firing.labels["site"] == "kab-nunukan" and firing.labels["severity"] == "critical"
    assert gateway_of(lab) in firing.annotations["summary"]
    # Back to their real state without a burst: every link went unknown and straight back up.
    db = storage_path(agent)
    for link in links:
        assert transitions(db, link, started) == [("up", "unknown"), ("unknown", "up")], link
