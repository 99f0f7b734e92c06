"""The fleet's queries on a real Prometheus 2.42 (Debian 12's) scraping stand-in agents.

Every question of a refresh must parse and answer on the Prometheus NOCs run here, the
last-seen subquery included; the merged document must show what the agents export.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from linkmon.api.openapi import shape_problems
from linkmon.fleet import Fleet, Scope, Settings, read_fleet
from linkmon.fleet.prometheus import Prometheus
from linkmon.fleet.queries import last_seen_query, questions, read
from tests.linkmon.fleet.conftest import SCRAPE, StandInFleet
from tests.support.wait import wait_until

CUT = "kec-lumbis--kab-nunukan"


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_every_question_answers_on_prometheus_2_42(stand_in_fleet: StandInFleet) -> None:
    async def ask() -> dict[str, int]:
        async with Prometheus(stand_in_fleet.prometheus.url) as prometheus:
            now = time.time()
            readings = await read(prometheus, Scope(), now, 90.0, 3600.0)
            answers = {name: len(getattr(readings, name)) for name in questions(Scope())}
            # the look-back round, asked here although no agent is silent
            last = await prometheus.query(last_seen_query('agent!=""', 3600.0), now)
            answers["last_seen"] = len(last)
            answers["known"] = len(readings.known)
            return answers

    # the look-back subquery steps on whole seconds: it sees an agent from its second scrape
    wait_until(
        lambda: len(stand_in_fleet.prometheus.query(last_seen_query('agent!=""', 3600.0))) == 2,
        10,
        "the look-back subquery to see both agents",
    )
    answers = asyncio.run(ask())
    empty = {name for name, n in answers.items() if n == 0}
    # nothing fails, flaps or is in maintenance in the stand-in fleet before a cut
    assert empty == {"failing", "flapping", "maintenance"}, answers
    assert answers["known"] == 2 and answers["heartbeat"] == 2


def test_the_whole_fleet_in_one_document(stand_in_fleet: StandInFleet) -> None:
    stand_in_fleet.nunukan.cut(CUT)
    wait_until(
        lambda: stand_in_fleet.prometheus.query(
            f'linkmon_link_state{{link="{CUT}",state="down"}}==1'
        ),
        20,
        "the cut seen by Prometheus",
    )
    doc = read_fleet(Fleet(stand_in_fleet.prometheus.url))
    assert shape_problems(doc) == []
    assert {a["name"]: a["state"] for a in doc["agents"]} == {
        "kab-nunukan": "up",
        "pusat-noc": "up",
    }
    sites = by_id(doc["sites"])
    assert set(sites) >= {"kab-nunukan", "kec-lumbis", "kec-lumbis-ogong", "kota-samarinda"}
    assert sites["kec-lumbis"]["service"]["state"] == "unavailable"
    links = by_id(doc["links"])
    assert links[CUT]["state"] == "down"
    assert links["kec-lumbis-ogong--kec-lumbis"]["state"] == "unreachable"
    assert doc["summary"]["state"] == "down"
    # pusat-noc names the hub's uplink the other way round: one link, both agents
    uplink = by_id(doc["links"])["kab-nunukan--pusat-dc"]
    assert sorted(s["link"] for s in uplink["seen_by"]) == [
        "kab-nunukan--pusat-dc",
        "pusat-dc--kab-nunukan",
    ]
    assert doc["links"][0]["id"] == CUT  # problems first


def test_scope_by_agent_and_by_kabupaten(stand_in_fleet: StandInFleet) -> None:
    url = stand_in_fleet.prometheus.url
    pusat = read_fleet(Fleet(url, Settings(Scope(agents=("pusat-noc",)))))
    assert [a["name"] for a in pusat["agents"]] == ["pusat-noc"]
    assert {s["agent"] for link in pusat["links"] for s in link["seen_by"]} == {"pusat-noc"}
    samarinda = read_fleet(Fleet(url, Settings(Scope(kabupaten="kota-samarinda"))))
    assert {link["id"] for link in samarinda["links"]} == {"pusat-dc--kota-samarinda"}
    assert {s["id"] for s in samarinda["sites"]} == {"kota-samarinda", "pusat-dc"}


def test_a_stopped_agent_is_silent_with_when_it_was_last_seen(
    stand_in_fleet: StandInFleet,
) -> None:
    prometheus = stand_in_fleet.prometheus
    stand_in_fleet.pusat.stop()
    stopped = time.time()
    wait_until(lambda: prometheus.query('up{agent="pusat-noc"} == 0'), 20, "the failed scrape")
    doc = read_fleet(Fleet(prometheus.url))
    (agent,) = [a for a in doc["agents"] if a["name"] == "pusat-noc"]
    assert agent["state"] == "silent" and agent["scrape_failing"]
    last_seen = datetime.fromisoformat(agent["last_seen"]).timestamp()
    # the newest sample is at most a scrape older than the stop; the subquery steps by 1 s
    assert stopped - 2 * SCRAPE - 1 <= last_seen <= stopped + 1
    link = by_id(doc["links"])["pusat-dc--kota-samarinda"]
    assert (link["state"], link["cause"]) == ("unknown", "silent:pusat-noc")
    samarinda = by_id(doc["sites"])["kota-samarinda"]["service"]
    assert samarinda == {"state": "unknown", "via": [], "reason": "silent:pusat-noc"}
    # the hub's uplink is still watched by the hub: its verdict stands
    assert by_id(doc["links"])["kab-nunukan--pusat-dc"]["state"] == "up"
    assert doc["summary"]["state"] == "unknown"
