"""Which offices can serve: one answer for the live state and the monthly report.

The fixture has a link behind a failed upstream (Tarakan Barat's link, seen through Tarakan's
DC uplink) and a link behind the agent's own failed uplink (Krayan's): the first is out, so
its office cannot serve; the second is unknown, so its office's time is not measured. The
agreement test drives the state machine through both, stores what it changes as the daemon
does, and reads the report of the same time: office by office, the same downtime and the same
unmeasured time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from linkmon.config import parse_config
from linkmon.report import build_report
from linkmon.state import Availability, LinkState, Network
from linkmon.storage import Storage
from linkmon.topology import NOT_MONITORED, Reach, Topology
from tests.support.alerting import GOOD, SILENT

T0 = 1_794_268_800.0  # 2026-11-10 00:00 UTC
STEP = 10.0
FIXTURE = """
agent: {{name: kab-nunukan, timezone: Asia/Makassar}}
storage: {{path: {db}}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center Ditjen Dukcapil}}
  - {{id: pusat-drc, kind: drc, name: DRC Batam}}
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan}}
  - {{id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}}
  - {{id: kab-tarakan, kind: kota, name: Disdukcapil Tarakan}}
  - {{id: kec-tarakan-barat, kind: kecamatan, name: Tarakan Barat, parent: kab-tarakan}}
links:
  - {{id: kab-nunukan--dc, from: kab-nunukan, to: pusat-dc, network: vpn,
     probes: [{{kind: icmp, target: 198.18.1.1}}]}}
  - {{id: kab-nunukan--drc, from: kab-nunukan, to: pusat-drc, network: vpn,
     probes: [{{kind: icmp, target: 198.18.2.1}}]}}
  - {{id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: m2m,
     depends_on: [kab-nunukan--dc], probes: [{{kind: icmp, target: 198.18.30.8}}]}}
  - {{id: kab-tarakan--dc, from: kab-tarakan, to: pusat-dc, network: jip,
     probes: [{{kind: icmp, target: 198.18.1.1}}]}}
  - {{id: kab-tarakan--drc, from: kab-tarakan, to: pusat-drc, network: vpn,
     probes: [{{kind: icmp, target: 198.18.2.1}}]}}
  - {{id: kec-tarakan-barat--kab, from: kec-tarakan-barat, to: kab-tarakan, network: jip,
     depends_on: [kab-tarakan--dc], probes: [{{kind: icmp, target: 198.18.40.2}}]}}
"""
# Rounds of 10 s, and the links silent in them: Tarakan's DC uplink fails (its kecamatan
# link, probed through it, is silent too), everything comes back, then the agent's own DC
# uplink fails the same way.
PLAN = [
    (6, set()),
    (15, {"kab-tarakan--dc", "kec-tarakan-barat--kab"}),
    (15, set()),
    (15, {"kab-nunukan--dc", "kec-krayan--kab"}),
    (15, set()),
]


def test_report_and_live_state_agree_on_offices_behind_a_failed_upstream(
    tmp_path: Path,
) -> None:
    config = parse_config(FIXTURE.format(db=tmp_path / "state.db"))
    live: dict[str, Counter[Availability]] = defaultdict(Counter)  # rounds of STEP seconds
    seen: set[tuple[str, LinkState]] = set()
    now = T0
    with Storage(config.storage.path) as storage:
        net = Network(config, now)
        for rounds, silent in PLAN:
            for _ in range(rounds):
                for link in config.links:
                    result = SILENT if link.id in silent else GOOD
                    storage.record(net.observe(link.id, 0, result, now), now)
                storage.record(net.tick(now), now)
                seen |= {(lid, snap.state) for lid, snap in net.snapshot().items()}
                for office, status in net.service().items():
                    live[office][status.availability] += 1
                now += STEP
        report = build_report(config, storage, 2026, 11, now)

    # The fixture does what it says: one link behind a failed upstream, one behind the
    # agent's own failed uplink.
    assert ("kec-tarakan-barat--kab", LinkState.UNREACHABLE) in seen
    assert ("kec-krayan--kab", LinkState.UNKNOWN) in seen
    assert ("kec-krayan--kab", LinkState.UNREACHABLE) not in seen
    offices = {row.id: row for group in report.groups for row in group.offices}
    assert set(offices) == set(live)
    assert set(live) == {"kab-nunukan", "kec-krayan", "kab-tarakan", "kec-tarakan-barat"}
    rows = {office: row.full for office, row in offices.items()}
    for office, row in rows.items():
        start, end = offices[office].period
        unmeasured = end - start - row.measured
        assert (row.downtime, unmeasured) == (
            live[office][Availability.UNAVAILABLE] * STEP,
            live[office][Availability.UNKNOWN] * STEP,
        ), office
    # The one answer: behind a failed upstream is out, behind the agent's own uplink unknown.
    assert live["kec-tarakan-barat"][Availability.UNAVAILABLE] >= 10
    assert rows["kec-tarakan-barat"].outages == 1
    assert live["kec-krayan"][Availability.UNKNOWN] >= 10
    assert live["kec-krayan"][Availability.UNAVAILABLE] == 0
    assert live["kab-tarakan"][Availability.DEGRADED] >= 10  # via the DRC: serving
    assert rows["kab-tarakan"].downtime == 0


# -- the search itself --------------------------------------------------------------------------


def hub() -> Topology:
    """Nunukan with a DC and a DRC uplink; Krayan on an M2M link with a Starlink backup;
    Sebatik on a link of its own; Lumbis with no link at all."""
    return Topology(
        {
            "pusat-dc": "pusat",
            "pusat-drc": "drc",
            "kab-nunukan": "kabupaten",
            "kec-krayan": "kecamatan",
            "kec-sebatik": "kecamatan",
            "kec-lumbis": "kecamatan",
        },
        [
            ("kab--dc", "kab-nunukan", "pusat-dc"),
            ("kab--drc", "kab-nunukan", "pusat-drc"),
            ("krayan--kab", "kec-krayan", "kab-nunukan"),
            ("krayan--kab-starlink", "kec-krayan", "kab-nunukan"),
            ("sebatik--kab", "kec-sebatik", "kab-nunukan"),
        ],
    )


@pytest.mark.parametrize(
    ("out", "unknown", "krayan"),
    [
        ((), (), Reach(Availability.AVAILABLE, ("krayan--kab", "kab--dc"), "")),
        (
            ("krayan--kab",),
            (),
            Reach(Availability.DEGRADED, ("krayan--kab-starlink", "kab--dc"), "backup"),
        ),
        (("kab--dc",), (), Reach(Availability.DEGRADED, ("krayan--kab", "kab--drc"), "drc")),
        (
            ("kab--dc", "kab--drc"),
            (),
            Reach(Availability.UNAVAILABLE, ("krayan--kab", "kab--dc"), "no_path"),
        ),
        (
            ("krayan--kab",),
            ("krayan--kab-starlink",),
            Reach(Availability.UNKNOWN, ("krayan--kab-starlink", "kab--dc"), "no_data"),
        ),
    ],
)
def test_an_office_gets_the_best_of_its_paths(
    out: tuple[str, ...], unknown: tuple[str, ...], krayan: Reach
) -> None:
    assert hub().reach(out, unknown)["kec-krayan"] == krayan


def test_an_office_without_any_link_is_not_monitored() -> None:
    found = hub().reach()
    assert found["kec-lumbis"] is NOT_MONITORED
    assert set(found) == {"kab-nunukan", "kec-krayan", "kec-sebatik", "kec-lumbis"}


def test_areas_are_the_offices_only_their_own_links_affect() -> None:
    topology = Topology(
        {"pusat-dc": "pusat", "kab-a": "kabupaten", "kec-a": "kecamatan", "kab-b": "kabupaten"},
        [
            ("kab-a--dc", "kab-a", "pusat-dc"),
            ("kec-a--kab", "kec-a", "kab-a"),
            ("kab-b--dc", "kab-b", "pusat-dc"),
        ],
    )
    areas = topology.areas()
    assert [(area.offices, area.links()) for area in areas] == [
        (("kab-a", "kec-a"), ["kab-a--dc", "kec-a--kab"]),
        (("kab-b",), ["kab-b--dc"]),
    ]
    assert areas[0].reach(out={"kab-a--dc"}) == {
        office: reach
        for office, reach in topology.reach(out={"kab-a--dc"}).items()
        if office in ("kab-a", "kec-a")
    }


def test_a_link_to_an_unknown_site_is_refused() -> None:
    with pytest.raises(ValueError, match="link x: names unknown site kec-nowhere"):
        Topology({"pusat-dc": "pusat"}, [("x", "kec-nowhere", "pusat-dc")])
