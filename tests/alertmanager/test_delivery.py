"""A real Alertmanager (Debian's prometheus-alertmanager 0.25) loaded with the shipped config.

Webhooks go to a receiver process on loopback; Telegram goes to a loopback stand-in of the
Bot API (``tests/support/telegram_api.py``), because the real service cannot be reached from
here. Alerts carry exactly the labels linkmon's agents and Prometheus' rules give them: the
agent's from linkmon's state machine on the example configs, the rules' from linkmon's metric
labels and the rule file (``tests/support/shipped_alertmanager.py``).

An inhibiting alert is pushed first and its page awaited before its targets are pushed, as
they arrive in practice (the rules wait ``for: 1m`` while linkmon's roll-up pages at once;
LinkmonDown fires minutes after the agent's last word). Pushed together, an alert whose
``startsAt`` is older than ``group_wait`` is flushed at once and may race the inhibitor in
Alertmanager itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.shipped_alertmanager import (
    Agent,
    ShippedAlertmanager,
    chat_of,
    kaltim,
    link_down_rule,
    linkmon_down_rule,
    nunukan,
    rule_alert,
    shipped_alertmanager,
)
from tests.support.wait import wait_until


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[ShippedAlertmanager]:
    with shipped_alertmanager(tmp_path) as running:
        yield running


def _alert_labels(notification: dict[str, object]) -> list[dict[str, str]]:
    return [a["labels"] for a in notification["alerts"]]  # type: ignore[attr-defined]


def test_a_hub_cut_is_one_notification_per_group(shipped: ShippedAlertmanager) -> None:
    """Kabupaten Nunukan's office is cut: Prometheus' rules fire LinkDown for both uplinks
    and all 21 kecamatan links (the rules do not roll up) and ServiceUnavailable; grouped by
    kabupaten and alert name, that is one message per group on each channel, not 23."""
    config = nunukan()
    links = [link.id for link in config.links]
    assert len(links) == 25  # 2 uplinks, 21 kecamatan, 2 Starlink backups
    downs = [link_down_rule(config, link) for link in links]
    unavailable = rule_alert(
        "ServiceUnavailable", {"agent": "kab-nunukan", "kabupaten": "kab-nunukan"}
    )
    shipped.push([*downs, unavailable])

    wait_until(lambda: len(shipped.notifications("disdukcapil-nunukan")) >= 2, 20, "2 webhooks")
    group_chat, kabid = chat_of("disdukcapil-nunukan"), chat_of("kabid-nunukan")
    wait_until(
        lambda: (
            len(shipped.telegram_texts(group_chat)) >= 2 and len(shipped.telegram_texts(kabid)) >= 2
        ),
        20,
        "2 Telegram messages to the group and 2 to the kabid",
    )
    hooks = shipped.notifications("disdukcapil-nunukan")
    by_group = {h["groupLabels"]["alertname"]: h for h in hooks}
    assert len(hooks) == 2 and set(by_group) == {"LinkDown", "ServiceUnavailable"}
    assert {labels["link"] for labels in _alert_labels(by_group["LinkDown"])} == set(links)
    assert by_group["LinkDown"]["groupLabels"] == {
        "kabupaten": "kab-nunukan",
        "alertname": "LinkDown",
    }
    assert _alert_labels(by_group["ServiceUnavailable"]) == [unavailable.labels]
    # Alertmanager's own count agrees: nothing else went out through either integration.
    assert shipped.notifications_sent("webhook") == 2
    assert shipped.notifications_sent("telegram") == 4
    assert shipped.notifications("noc-pusat") == []
    # The Telegram text: Bahasa Indonesia, one line per link up to 20, then where to look.
    (text,) = [t for t in shipped.telegram_texts(group_chat) if "LinkDown" in t]
    assert text.startswith("🔴 <b>25 × LinkDown</b> — kab-nunukan\n")
    assert text.count("\n• Link ") == 20 and "… dan lainnya: lihat " in text
    assert "• Link kab-nunukan--dc DOWN (kab-nunukan → pusat-dc, vpn)" in text
    assert shipped.telegram.calls[0].token == "BOT_TOKEN_PLACEHOLDER"


def test_an_agent_down_inhibits_its_link_alerts(shipped: ShippedAlertmanager) -> None:
    """kab-nunukan cannot be scraped: its LinkmonDown pages the NOC; what it said about its
    links (its own LinkDown, the rules' LinkDown) is held back. Another agent's alert is not."""
    agent = Agent(nunukan())
    agent.cut(["kec-krayan--kab"])
    own_down = agent.alert("LinkDown/kec-krayan--kab")
    rule_down = link_down_rule(agent.config, "kab-nunukan--dc")
    linkmon_down = linkmon_down_rule("kab-nunukan")
    other = link_down_rule(kaltim(), "kota-samarinda--prov")
    shipped.push([linkmon_down])
    wait_until(lambda: shipped.notifications("noc-pusat"), 20, "LinkmonDown at the NOC")
    shipped.push([own_down, rule_down, other])

    for alert in (own_down, rule_down):
        assert shipped.inhibitors(alert) == [linkmon_down.fingerprint]
    assert shipped.state(other)["state"] == "active"
    wait_until(lambda: shipped.telegram_texts(chat_of("diskominfo-kaltim")), 20, "Kaltim's page")
    (hook,) = shipped.notifications("noc-pusat")
    assert _alert_labels(hook) == [linkmon_down.labels]
    assert shipped.notifications("disdukcapil-nunukan") == []
    assert shipped.telegram_texts(chat_of("disdukcapil-nunukan")) == []
    assert shipped.telegram_texts(chat_of("kabid-nunukan")) == []


def test_a_regional_incident_inhibits_its_kecamatan_link_downs(
    shipped: ShippedAlertmanager,
) -> None:
    """Krayan goes down first (the agent pages its LinkDown), then every kecamatan: the agent
    rolls them up into one RegionalIncident. In Alertmanager that incident holds back the
    kecamatan LinkDowns, the agent's and the rules', but not the kabupaten's own DC uplink."""
    agent = Agent(nunukan())
    agent.cut(["kec-krayan--kab"])
    krayan = agent.alert("LinkDown/kec-krayan--kab")
    kecamatan = [link.id for link in agent.config.links if link.from_site.startswith("kec-")]
    agent.cut(kecamatan)
    incident = agent.alert("RegionalIncident/kab-nunukan")
    assert sorted(agent.firing) == ["LinkDown/kec-krayan--kab", "RegionalIncident/kab-nunukan"]
    rule_downs = [link_down_rule(agent.config, link) for link in kecamatan]
    uplink = link_down_rule(agent.config, "kab-nunukan--dc")
    shipped.push([incident])
    wait_until(lambda: shipped.notifications("disdukcapil-nunukan"), 20, "the incident's page")
    # The uplink first: Krayan's LinkDown started long ago, so its group is flushed the moment
    # it arrives, and whatever joins the group after that waits group_interval (1 min).
    shipped.push([uplink, krayan, *rule_downs])

    for alert in (krayan, *rule_downs):
        assert shipped.inhibitors(alert) == [incident.fingerprint]
    assert shipped.state(uplink)["state"] == "active"
    wait_until(lambda: len(shipped.notifications("disdukcapil-nunukan")) >= 2, 20, "2 webhooks")
    hooks = {h["groupLabels"]["alertname"]: h for h in shipped.notifications("disdukcapil-nunukan")}
    assert _alert_labels(hooks["RegionalIncident"]) == [incident.labels]
    assert _alert_labels(hooks["LinkDown"]) == [uplink.labels]


def test_the_dc_uplink_down_inhibits_service_only_via_drc(shipped: ShippedAlertmanager) -> None:
    """Offices served only via the DRC are the DC uplink's consequence: its LinkDown is the
    page. Where the DC uplink is not down (Kalimantan Timur here), ServiceOnlyViaDRC pages."""
    config = nunukan()
    dc = link_down_rule(config, "kab-nunukan--dc")
    via_drc = rule_alert("ServiceOnlyViaDRC", {"agent": "kab-nunukan", "kabupaten": "kab-nunukan"})
    elsewhere = rule_alert(
        "ServiceOnlyViaDRC", {"agent": "jip-kaltim", "kabupaten": "kota-samarinda"}
    )
    drc = link_down_rule(config, "kab-nunukan--drc")
    shipped.push([dc])
    wait_until(lambda: shipped.notifications("disdukcapil-nunukan"), 20, "the uplink's page")
    shipped.push([via_drc, elsewhere, drc])

    assert shipped.inhibitors(via_drc) == [dc.fingerprint]
    assert shipped.state(elsewhere)["state"] == "active"
    assert shipped.state(drc)["state"] == "active"  # only the DC uplink inhibits
