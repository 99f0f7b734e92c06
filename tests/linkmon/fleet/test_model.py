"""The fleet document from Prometheus' answers, without Prometheus: the merge rules, exactly.

Each test writes the answers a real Prometheus gives for a small fleet (the shape is checked
against a real one in ``test_queries.py``) and reads the document the NOC would see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from linkmon.api.openapi import shape_problems
from linkmon.fleet.model import Readings, Scope, Settings, fleet_document, silent_agents
from linkmon.fleet.prometheus import Sample

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
KAB, HUB, PUSAT = "kab-nunukan", "kab-nunukan", "pusat-dc"


def site(agent: str, site_id: str, kind: str, parent: str = "", kabupaten: str = "") -> Sample:
    labels = {
        "agent": agent,
        "site": site_id,
        "kind": kind,
        "name": site_id.replace("-", " ").title(),
        "parent": parent,
        "kabupaten": kabupaten,
        "timezone": "Asia/Jakarta" if kind in ("pusat", "drc") else "Asia/Makassar",
    }
    return Sample(labels, 1.0)


def link_labels(agent: str, link: str, network: str = "vpn") -> dict[str, str]:
    """Labels of a link named ``from--to[--path]`` (``dc`` is pusat-dc), as linkmon sets them."""
    from_site, to_site = link.split("--")[:2]
    to_site = {"dc": "pusat-dc"}.get(to_site, to_site)
    return {
        "agent": agent,
        "link": link,
        "from": from_site,
        "to": to_site,
        "network": network,
        "kabupaten": next((end for end in (from_site, to_site) if end.startswith("kab-")), ""),
    }


class Fleet:
    """Prometheus' answers for a fleet, built agent by agent."""

    def __init__(self) -> None:
        self.readings = Readings(NOW)

    def agent(self, name: str, age: float = 5.0, failing: bool = False) -> Fleet:
        r = self.readings
        heartbeat = () if failing else (Sample({"agent": name}, NOW - age),)
        self.readings = replace(
            r,
            known=(*r.known, name),
            heartbeat=(*r.heartbeat, *heartbeat),
            failing=(*r.failing, *((Sample({"agent": name}, 0.0),) if failing else ())),
            versions=(*r.versions, Sample({"agent": name, "version": "0.1.0"}, 1.0)),
        )
        return self

    def sites(self, *samples: Sample) -> Fleet:
        self.readings = replace(self.readings, sites=(*self.readings.sites, *samples))
        return self

    def link(
        self,
        agent: str,
        link: str,
        state: str,
        since: float = NOW - 600,
        network: str = "vpn",
        rtt: float | None = 0.030,
        maintenance: bool = False,
    ) -> Fleet:
        labels = link_labels(agent, link, network)
        r = self.readings
        self.readings = replace(
            r,
            states=(*r.states, Sample({**labels, "state": state}, since)),
            maintenance=(*r.maintenance, *((Sample(labels, 1.0),) if maintenance else ())),
            figures=(
                *r.figures,
                Sample({"agent": agent, "link": link, "stat": "loss"}, float(state == "down")),
                *((Sample({"agent": agent, "link": link, "stat": "rtt"}, rtt),) if rtt else ()),
            ),
        )
        return self

    def drop(self, agent: str, link: str) -> Fleet:
        """Forget every series of ``agent`` about ``link``."""

        def keep(samples: Sequence[Sample]) -> tuple[Sample, ...]:
            return tuple(
                s for s in samples if (s.labels["agent"], s.labels.get("link")) != (agent, link)
            )

        r = self.readings
        self.readings = replace(
            r,
            states=keep(r.states),
            maintenance=keep(r.maintenance),
            figures=keep(r.figures),
        )
        return self

    def service(self, agent: str, office: str, value: float) -> Fleet:
        sample = Sample({"agent": agent, "site": office, "kabupaten": KAB}, value)
        self.readings = replace(self.readings, services=(*self.readings.services, sample))
        return self

    def history(self, agent: str, last_seen: float | None, *links: str) -> Fleet:
        """What the look-back round answers for a silent agent."""
        r = self.readings
        self.readings = replace(
            r,
            last_seen=(
                *r.last_seen,
                *((Sample({"agent": agent}, last_seen),) if last_seen else ()),
            ),
            old_links=(*r.old_links, *(link_labels(agent, link) for link in links)),
        )
        return self

    def document(self, **settings: Any) -> dict[str, Any]:
        return fleet_document(self.readings, Settings(**settings))


def nunukan(hub_uplink: str = "up", pusat_uplink: str = "up") -> Fleet:
    """The hub agent (its uplink and two kecamatan) and the pusat agent (the same uplink)."""
    fleet = Fleet().agent(HUB).agent(PUSAT)
    for agent in (HUB, PUSAT):
        fleet.sites(
            site(agent, "pusat-dc", "pusat"),
            site(agent, KAB, "kabupaten", kabupaten=KAB),
            site(agent, "kec-krayan", "kecamatan", KAB, KAB),
            site(agent, "kec-lumbis", "kecamatan", KAB, KAB),
        )
    fleet.link(HUB, "kab-nunukan--dc", hub_uplink).link(PUSAT, "kab-nunukan--dc", pusat_uplink)
    fleet.link(HUB, "kec-krayan--kab-nunukan", "up", network="m2m")
    fleet.link(HUB, "kec-lumbis--kab-nunukan", "up", network="m2m")
    for office in (KAB, "kec-krayan", "kec-lumbis"):
        fleet.service(HUB, office, 1.0 if hub_uplink == "up" else 0.0)
    return fleet


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_a_healthy_fleet_is_one_tree_in_the_daemons_shape() -> None:
    doc = nunukan().document()
    assert shape_problems(doc) == []
    assert doc["summary"] == {
        "state": "up",
        "links": {"up": 3, "degraded": 0, "down": 0, "unknown": 0, "unreachable": 0},
        "offices_online": 3,
        "offices_total": 3,
    }
    assert [a["name"] for a in doc["agents"]] == [HUB, PUSAT]
    assert {a["state"] for a in doc["agents"]} == {"up"}
    assert doc["agent"]["name"] == "fleet" and doc["generated_at"] == "2026-01-01T00:00:00Z"
    uplink = by_id(doc["links"])["kab-nunukan--dc"]
    assert [seen["agent"] for seen in uplink["seen_by"]] == [HUB, PUSAT]
    assert uplink["seen_from"] is None  # nothing to tell while it is up
    assert by_id(doc["sites"])["kec-krayan"]["parent"] == KAB


def test_a_cut_uplink_seen_down_by_both_agents_is_seen_from_both_ends() -> None:
    doc = nunukan(hub_uplink="down", pusat_uplink="down").document()
    uplink = by_id(doc["links"])["kab-nunukan--dc"]
    assert uplink["state"] == "down"
    assert uplink["seen_from"] == "both"
    assert [(s["agent"], s["state"]) for s in uplink["seen_by"]] == [(HUB, "down"), (PUSAT, "down")]
    assert doc["summary"]["state"] == "down"
    assert doc["outages"] == [
        {
            "link": "kab-nunukan--dc",
            "state": "down",
            "since": "2025-12-31T23:50:00Z",
            "cause": "",
            "alerted": False,
        }
    ]


def test_a_cut_seen_by_one_agent_only_is_down_and_says_so() -> None:
    """The worst direct verdict wins (someone cannot get through) and the other is shown."""
    doc = nunukan(hub_uplink="down", pusat_uplink="up").document()
    uplink = by_id(doc["links"])["kab-nunukan--dc"]
    assert (uplink["state"], uplink["seen_from"]) == ("down", "one")
    assert uplink["rtt_seconds"] is None  # the last RTT of a link that is down is not news
    assert uplink["loss"] == 1.0


def test_same_ends_and_network_under_another_id_is_the_same_link() -> None:
    fleet = nunukan(hub_uplink="down").drop(PUSAT, "kab-nunukan--dc")
    fleet.link(PUSAT, "kab-nunukan--pusat-dc", "down")  # pusat's own name for the uplink
    doc = fleet.document()
    (uplink,) = [link for link in doc["links"] if link["to"] == "pusat-dc"]
    assert {(s["agent"], s["link"]) for s in uplink["seen_by"]} == {
        (HUB, "kab-nunukan--dc"),
        (PUSAT, "kab-nunukan--pusat-dc"),
    }
    assert uplink["seen_from"] == "both"


def test_parallel_paths_between_the_same_sites_stay_apart() -> None:
    fleet = nunukan()
    fleet.link(HUB, "kec-krayan--kab-nunukan--starlink", "down", network="starlink")
    states = {link["id"]: link["state"] for link in fleet.document()["links"]}
    assert states["kec-krayan--kab-nunukan"] == "up"
    assert states["kec-krayan--kab-nunukan--starlink"] == "down"


def test_a_direct_verdict_beats_unreachable() -> None:
    """Pusat cannot look past the cut uplink; the hub sees its kecamatan fine."""
    fleet = nunukan(hub_uplink="down", pusat_uplink="down")
    fleet.link(PUSAT, "kec-krayan--kab-nunukan", "unreachable", network="m2m")
    link = by_id(fleet.document()["links"])["kec-krayan--kab-nunukan"]
    assert link["state"] == "up"
    assert link["seen_from"] is None


def test_only_unreachable_verdicts_stay_unreachable() -> None:
    fleet = Fleet().agent(PUSAT).sites(site(PUSAT, "kec-krayan", "kecamatan", KAB, KAB))
    fleet.link(PUSAT, "kec-krayan--kab-nunukan", "unreachable", network="m2m")
    assert fleet.document()["links"][0]["state"] == "unreachable"


@pytest.mark.parametrize(
    "why",
    [
        pytest.param({"failing": True}, id="scrape-failing"),
        pytest.param({"age": 300.0}, id="heartbeat-too-old"),
    ],
)
def test_a_silent_agent_is_not_a_green_agent(why: Mapping[str, Any]) -> None:
    """Its last answers said up; the fleet says unknown, since when it was last seen."""
    fleet = nunukan()
    kab2 = "kab-malinau"
    fleet.agent(kab2, **why).sites(
        site(kab2, kab2, "kabupaten", kabupaten=kab2),
        site(kab2, "kec-mentarang", "kecamatan", kab2, kab2),
    )
    fleet.link(kab2, "kec-mentarang--kab-malinau", "up", network="m2m")
    fleet.service(kab2, "kec-mentarang", 1.0)
    fleet.history(kab2, NOW - 300, "kec-mentarang--kab-malinau")
    doc = fleet.document()
    link = by_id(doc["links"])["kec-mentarang--kab-malinau"]
    assert link["state"] == "unknown"
    assert link["cause"] == "silent:kab-malinau"
    assert link["since"] == "2025-12-31T23:55:00Z"  # last seen
    assert link["seen_by"][0]["silent"] and link["seen_by"][0]["last_seen"] == link["since"]
    office = by_id(doc["sites"])["kec-mentarang"]["service"]
    assert office == {"state": "unknown", "via": [], "reason": "silent:kab-malinau"}
    (agent,) = [a for a in doc["agents"] if a["name"] == kab2]
    assert agent["state"] == "silent" and agent["last_seen"] == "2025-12-31T23:55:00Z"
    assert doc["agents"][0]["name"] == kab2  # silent agents first
    assert doc["summary"]["state"] == "unknown"
    assert silent_agents(fleet.readings, 90.0) == [kab2]


def test_a_silent_agent_found_only_in_the_look_back_window() -> None:
    """Absent from every instant query (remote write stopped long ago): the look-back round
    names its links, and they are unknown, never dropped."""
    fleet = nunukan()
    fleet.readings = replace(fleet.readings, known=(*fleet.readings.known, "kab-malinau"))
    fleet.history("kab-malinau", NOW - 7200, "kec-mentarang--kab-malinau")
    doc = fleet.document()
    link = by_id(doc["links"])["kec-mentarang--kab-malinau"]
    assert (link["state"], link["cause"]) == ("unknown", "silent:kab-malinau")
    assert link["since"] == "2025-12-31T22:00:00Z"
    sites = by_id(doc["sites"])  # placed from the link's labels: no site series in the window
    assert sites["kec-mentarang"]["parent"] == "kab-malinau"
    assert sites["kec-mentarang"]["service"]["reason"] == "silent:kab-malinau"


def test_a_silent_agent_never_seen_has_no_last_seen() -> None:
    doc = Fleet().agent("kab-baru", failing=True).document()
    assert doc["agents"] == [
        {
            "name": "kab-baru",
            "state": "silent",
            "last_seen": None,
            "scrape_failing": True,
            "version": "0.1.0",
            "timezone": "Asia/Jakarta",
        }
    ]
    assert doc["summary"]["state"] == "unknown"  # no links at all


def test_a_live_agent_speaks_for_a_link_a_silent_one_also_watched() -> None:
    fleet = nunukan(hub_uplink="down", pusat_uplink="down")
    fleet.readings = replace(
        fleet.readings,
        heartbeat=tuple(s for s in fleet.readings.heartbeat if s.labels["agent"] != HUB),
        failing=(Sample({"agent": HUB}, 0.0),),
    )
    fleet.history(HUB, NOW - 60)
    doc = fleet.document()
    uplink = by_id(doc["links"])["kab-nunukan--dc"]
    assert uplink["state"] == "down"  # pusat still sees the cut
    assert uplink["seen_from"] is None  # one live vantage point: nothing to compare
    assert [(s["agent"], s["state"], s["silent"]) for s in uplink["seen_by"]] == [
        (HUB, "unknown", True),
        (PUSAT, "down", False),
    ]
    # the kecamatan only the hub watched are unknown, never up
    krayan = by_id(doc["links"])["kec-krayan--kab-nunukan"]
    assert (krayan["state"], krayan["cause"]) == ("unknown", f"silent:{HUB}")
    assert by_id(doc["sites"])["kec-krayan"]["service"]["state"] == "unknown"


def test_an_office_serves_if_any_live_agent_sees_a_path() -> None:
    """The hub reaches the DRC when the DC uplink is cut; pusat sees no path at all."""
    fleet = nunukan(hub_uplink="down", pusat_uplink="down")
    fleet.service(HUB, "kec-krayan", 0.5).service(PUSAT, "kec-krayan", 0.0)
    fleet.readings = replace(
        fleet.readings,
        services=tuple(
            s
            for s in fleet.readings.services
            if not (s.labels["agent"] == HUB and s.labels["site"] == "kec-krayan" and s.value == 0)
        ),
    )
    sites = by_id(fleet.document()["sites"])
    assert sites["kec-krayan"]["service"]["state"] == "degraded"
    assert sites["kec-lumbis"]["service"] == {
        "state": "unavailable",
        "via": [],
        "reason": "no_path",
    }


def test_problems_first_at_every_level() -> None:
    fleet = nunukan()
    kab2 = "kab-malinau"
    fleet.agent(kab2).sites(
        site(kab2, "prov-kaltara", "provinsi"),
        site(kab2, kab2, "kabupaten", "prov-kaltara", kab2),
        site(kab2, "kec-mentarang", "kecamatan", kab2, kab2),
        site(kab2, "kec-sungai-boh", "kecamatan", kab2, kab2),
    )
    fleet.link(kab2, "kec-mentarang--kab-malinau", "up", network="m2m")
    fleet.link(kab2, "kec-sungai-boh--kab-malinau", "down", network="m2m")
    fleet.service(kab2, "kec-mentarang", 1.0).service(kab2, "kec-sungai-boh", 0.0)
    fleet.service(kab2, kab2, 1.0)
    doc = fleet.document()
    order = [s["id"] for s in doc["sites"]]
    assert order.index("prov-kaltara") < order.index(KAB)  # its kecamatan is down
    assert order.index("kec-sungai-boh") < order.index("kec-mentarang")
    assert doc["links"][0]["id"] == "kec-sungai-boh--kab-malinau"
    assert by_id(doc["sites"])[kab2]["parent"] == "prov-kaltara"  # the province level


def test_one_kabupaten_keeps_its_offices_uplinks_province_and_pusat() -> None:
    fleet = nunukan()
    kab2 = "kab-malinau"
    fleet.agent(kab2).sites(
        site(kab2, "prov-kaltara", "provinsi"),
        site(kab2, kab2, "kabupaten", "prov-kaltara", kab2),
        site(kab2, "kec-mentarang", "kecamatan", kab2, kab2),
    )
    fleet.link(kab2, "kec-mentarang--kab-malinau", "up", network="m2m")
    fleet.sites(site(kab2, "pusat-dc", "pusat"))  # as Prometheus answers a kabupaten's query
    doc = fleet.document(scope=Scope(kabupaten=KAB))
    assert {s["id"] for s in doc["sites"]} == {"pusat-dc", KAB, "kec-krayan", "kec-lumbis"}
    assert {link["id"] for link in doc["links"]} == {
        "kab-nunukan--dc",
        "kec-krayan--kab-nunukan",
        "kec-lumbis--kab-nunukan",
    }
    assert [a["name"] for a in doc["agents"]] == [HUB, PUSAT]


def test_maintenance_is_known_without_its_reason_and_does_not_page() -> None:
    fleet = nunukan().drop(PUSAT, "kab-nunukan--dc").drop(HUB, "kab-nunukan--dc")
    fleet.link(HUB, "kab-nunukan--dc", "down", maintenance=True)
    doc = fleet.document()
    uplink = by_id(doc["links"])["kab-nunukan--dc"]
    assert uplink["maintenance"] == {"reason": "", "until": "2026-01-01T00:00:00Z"}
    assert doc["summary"]["links"]["down"] == 1
    assert doc["summary"]["state"] == "up"  # planned work pages no Nagios on-call
    assert shape_problems(doc) == []


def test_scope_refuses_names_that_are_not_ids() -> None:
    with pytest.raises(ValueError, match=r"--agent 'kab\"x': not an agent name"):
        Scope(agents=('kab"x',))
    with pytest.raises(ValueError, match="--kabupaten 'a b': not a site id"):
        Scope(kabupaten="a b")


def test_a_province_no_link_touches_is_a_heading_not_an_office() -> None:
    """Agents name their province as the parent of their kabupaten; nobody watches its own
    link. The fleet groups by it and does not count it as an office of unknown service."""
    fleet = nunukan()
    fleet.sites(site(HUB, "prov-kaltara", "provinsi"))
    doc = fleet.document()
    assert by_id(doc["sites"])["prov-kaltara"]["service"] is None
    assert doc["summary"]["state"] == "up" and doc["summary"]["offices_total"] == 3
    fleet.link(HUB, "prov-kaltara--dc", "up", network="jip")
    watched = by_id(fleet.document()["sites"])["prov-kaltara"]["service"]
    assert watched == {"state": "unknown", "via": [], "reason": "no_data"}
    fleet.readings = replace(fleet.readings, failing=(Sample({"agent": HUB}, 0.0),))
    silent = by_id(fleet.document()["sites"])["prov-kaltara"]["service"]
    assert silent == {"state": "unknown", "via": [], "reason": f"silent:{HUB}"}
