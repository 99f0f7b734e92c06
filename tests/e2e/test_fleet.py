"""Issue 17: the whole fleet in one picture, from a real Prometheus scraping three real agents.

- kab-nunukan: linkmon in the lab's hub namespace (config/lab-nunukan.yml), its uplinks and
  its five kecamatan over real lab links;
- pusat-dc: linkmon in the data center's namespace (config/lab-pusat.yml), the hub's uplink
  seen from the other end and the kecamatan through the hub;
- kab-malinau: a second kabupaten (under the province Kalimantan Utara), a real linkmon on the
  host probing loopback targets (the lab has one kabupaten; its own links are not cut here).

Prometheus (Debian's) scrapes all three every second, as ``prometheus/prometheus.example.yml``
does every 15 s. Every verdict comes from ``linkmon status --prometheus`` run as a process:
what a NOC officer or Nagios gets.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from linkmon.commands.status_formats import render
from linkmon.fleet import Fleet, read_fleet
from linkmon.lab import Lab
from tests.support.daemon import (
    LINKMON,
    Linkmon,
    free_port,
    lab_config,
    linkmon_in_lab,
    running_linkmon,
)
from tests.support.labs import shipped_lab
from tests.support.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

CONFIG_DIR = Path(__file__).parents[2] / "config"
NUNUKAN_OFFICES = (
    "Disdukcapil Kabupaten Nunukan",
    "Kecamatan Nunukan Selatan",
    "Kecamatan Sebatik",
    "Kecamatan Krayan",
    "Kecamatan Lumbis",
    "Kecamatan Sebuku",
)
MALINAU_KECAMATAN = ("Kecamatan Malinau Kota", "Kecamatan Mentarang", "Kecamatan Sungai Boh")
MALINAU_OFFICES = ("Provinsi Kalimantan Utara", "Disdukcapil Kabupaten Malinau", *MALINAU_KECAMATAN)
UPLINK = "kab-nunukan--dc"
KECAMATAN_CUT = "kec-lumbis--kab"


def malinau_config(workdir: Path) -> tuple[Path, str]:
    """Kabupaten Malinau on loopback: ICMP to 127.0.0.x answers as long as the host runs."""
    listen = f"127.0.0.1:{free_port()}"
    kecamatan = [
        ("kec-malinau-kota", "Kecamatan Malinau Kota", "jip"),
        ("kec-mentarang", "Kecamatan Mentarang", "vpn"),
        ("kec-sungai-boh", "Kecamatan Sungai Boh", "m2m"),
    ]
    config: dict[str, Any] = {
        "agent": {"name": "kab-malinau", "timezone": "Asia/Makassar", "language": "id"},
        "server": {"listen": listen},
        "storage": {"path": str(workdir / "linkmon.db")},
        "defaults": {
            "interval": "1s",
            "timeout": "800ms",
            "icmp": {"count": 2, "spacing": "100ms", "size": 56},
        },
        "sites": [
            {"id": "pusat-dc", "kind": "pusat", "name": "Data Center Ditjen Dukcapil",
             "timezone": "Asia/Jakarta"},
            {"id": "prov-kaltara", "kind": "provinsi", "name": "Provinsi Kalimantan Utara"},
            {"id": "kab-malinau", "kind": "kabupaten", "parent": "prov-kaltara",
             "name": "Disdukcapil Kabupaten Malinau"},
            *({"id": kec, "kind": "kecamatan", "parent": "kab-malinau", "name": name}
              for kec, name, _ in kecamatan),
        ],
        "links": [
            # the province's own uplink, watched from Malinau too
            {"id": "prov-kaltara--dc", "from": "prov-kaltara", "to": "pusat-dc",
             "network": "jip", "probes": [{"kind": "icmp", "target": "127.0.0.10"}]},
            {"id": "kab-malinau--dc", "from": "kab-malinau", "to": "pusat-dc",
             "network": "vpn", "probes": [{"kind": "icmp", "target": "127.0.0.1"}]},
            *({"id": f"{kec}--kab", "from": kec, "to": "kab-malinau", "network": network,
               "probes": [{"kind": "icmp", "target": f"127.0.0.{n}"}]}
              for n, (kec, _, network) in enumerate(kecamatan, start=2)),
        ],
    }  # fmt: skip
    path = workdir / "malinau.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, f"http://{listen}"


@dataclass
class LabFleet:
    lab: Lab
    prometheus: PrometheusServer
    agents: dict[str, Linkmon]
    start_malinau: Callable[[], Linkmon]

    def status(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``linkmon status --prometheus`` as a NOC officer runs it."""
        return subprocess.run(
            [LINKMON, "status", "--prometheus", self.prometheus.url, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def wait(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Until the fleet's document (as the command builds it) satisfies ``check``."""
        found: dict[str, Any] = {}

        def ready() -> bool:
            found.update(read_fleet(Fleet(self.prometheus.url)))
            return check(found)

        try:
            wait_until(ready, 30, what, every=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{render(found, 'en')}") from None
        return found


def links(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {link["id"]: link for link in doc["links"]}


def service(doc: dict[str, Any], site: str) -> str:
    return str(next(s for s in doc["sites"] if s["id"] == site)["service"]["state"])


def all_up(doc: dict[str, Any]) -> bool:
    agents = {agent["name"] for agent in doc["agents"] if agent["state"] == "up"}
    return agents == {"kab-nunukan", "pusat-dc", "kab-malinau"} and doc["summary"]["state"] == "up"


def _ready(daemon: Linkmon) -> bool:
    return httpx.get(daemon.url + "/readyz", timeout=2).status_code == 200


@pytest.fixture(scope="module")
def lab_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(shipped_lab(f"f{os.getpid() % 100_000}"))
        agents: dict[str, Linkmon] = {}
        for site, name in (("kab-nunukan", "lab-nunukan.yml"), ("pusat-dc", "lab-pusat.yml")):
            workdir = tmp / site
            workdir.mkdir()
            config = lab_config(CONFIG_DIR / name, workdir)
            agents[site] = stack.enter_context(linkmon_in_lab(lab, site, config))
        malinau_dir = tmp / "kab-malinau"
        malinau_dir.mkdir()
        malinau, malinau_url = malinau_config(malinau_dir)

        def start_malinau() -> Linkmon:
            agents["kab-malinau"] = stack.enter_context(running_linkmon(malinau, malinau_url))
            return agents["kab-malinau"]

        start_malinau()
        for site, daemon in agents.items():
            wait_until(lambda d=daemon: _ready(d), 20, f"linkmon {site} ready")  # type: ignore[misc]
        targets = [
            ScrapeTarget(daemon.url.removeprefix("http://"), {"agent": name})
            for name, daemon in agents.items()
        ]
        prometheus = stack.enter_context(running_prometheus(tmp / "prometheus", targets))
        fleet = LabFleet(lab, prometheus, agents, start_malinau)
        fleet.wait(all_up, "three agents up and every link up in Prometheus")
        yield fleet


def test_every_office_of_both_kabupaten(lab_fleet: LabFleet) -> None:
    shown = lab_fleet.status("--lang", "en")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for office in (*NUNUKAN_OFFICES, *MALINAU_OFFICES):
        assert office in shown.stdout, office
    assert "Agents: 3" in shown.stdout
    assert "Offices able to serve online: 11 of 11" in shown.stdout
    nagios = lab_fleet.status("--nagios", "--lang", "en")
    assert nagios.returncode == 0
    assert nagios.stdout.startswith("LINKMON OK: all 13 links up; 11/11 offices online | ")


def test_a_kecamatan_cut_is_exit_2_and_names_the_office(lab_fleet: LabFleet) -> None:
    lab_fleet.lab.cut(KECAMATAN_CUT)
    try:
        # the office serves while any agent still sees a path: until both have judged the cut
        lab_fleet.wait(
            lambda doc: (
                links(doc)[KECAMATAN_CUT]["seen_from"] == "both"
                and service(doc, "kec-lumbis") == "unavailable"
            ),
            "both agents' verdicts on the cut in Prometheus",
        )
        shown = lab_fleet.status("--lang", "en")
        assert shown.returncode == 2, shown.stdout + shown.stderr
        cannot_serve = next(
            line for line in shown.stdout.splitlines() if line.startswith("  Cannot serve")
        )
        assert cannot_serve == "  Cannot serve (1): Kecamatan Lumbis"
        # both agents look at Lumbis (pusat through the hub): both see it down
        assert "seen from both ends: kab-nunukan down, pusat-dc down" in shown.stdout
        nagios = lab_fleet.status("--nagios", "--lang", "en")
        assert nagios.returncode == 2
        assert nagios.stdout.startswith(f"LINKMON CRITICAL: 1 of 13 links down ({KECAMATAN_CUT})")
    finally:
        lab_fleet.lab.restore(KECAMATAN_CUT)
        lab_fleet.wait(all_up, "Lumbis back up")


def test_the_shared_uplink_cut_is_seen_from_both_ends(lab_fleet: LabFleet) -> None:
    lab_fleet.lab.cut(UPLINK)
    try:
        doc = lab_fleet.wait(
            lambda doc: links(doc)[UPLINK]["seen_from"] == "both", "both agents see the cut"
        )
        assert [(s["agent"], s["state"]) for s in links(doc)[UPLINK]["seen_by"]] == [
            ("kab-nunukan", "down"),
            ("pusat-dc", "down"),
        ]
        shown = lab_fleet.status("--lang", "en")
        assert shown.returncode == 2
        assert "seen from both ends: kab-nunukan down, pusat-dc down" in shown.stdout
        # the hub still sees its kecamatan directly: pusat's "unreachable" does not hide them
        assert links(doc)["kec-krayan--kab"]["state"] == "up"
        indonesian = lab_fleet.status()
        assert "terlihat dari kedua ujung: kab-nunukan turun, pusat-dc turun" in indonesian.stdout
    finally:
        lab_fleet.lab.restore(UPLINK)
        lab_fleet.wait(all_up, "the uplink back up")


def test_a_stopped_agent_is_unknown_with_last_seen_never_up(lab_fleet: LabFleet) -> None:
    malinau = lab_fleet.agents["kab-malinau"]
    malinau.stop()
    try:
        doc = lab_fleet.wait(
            lambda doc: any(
                a["name"] == "kab-malinau" and a["state"] == "silent" for a in doc["agents"]
            ),
            "kab-malinau silent",
        )
        malinau_links = [
            link for link in doc["links"] if link["seen_by"][0]["agent"] == "kab-malinau"
        ]
        assert len(malinau_links) == 5
        assert {(link["state"], link["cause"]) for link in malinau_links} == {
            ("unknown", "silent:kab-malinau")
        }
        shown = lab_fleet.status("--lang", "en")
        assert shown.returncode == 3, shown.stdout + shown.stderr
        assert "Agents: 3 · agent silent: kab-malinau last seen " in shown.stdout
        offices = shown.stdout.split("Offices able to serve online", 2)[2]
        unknown = " ".join(offices.split("  Unknown", 1)[1].split("  Online", 1)[0].split())
        assert unknown == "(5): " + ", ".join(sorted(MALINAU_OFFICES))
        tree = shown.stdout.split("Open outages", 1)[0]
        for link in malinau_links:
            (line,) = [line for line in tree.splitlines() if f"{link['id']} " in line]
            assert " UNKNOWN " in line, line  # never UP
        indonesian = lab_fleet.status()
        assert "agen tidak melapor: kab-malinau terakhir terlihat " in indonesian.stdout
    finally:
        lab_fleet.start_malinau()
        lab_fleet.wait(all_up, "kab-malinau back")
