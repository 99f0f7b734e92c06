"""``linkmon status --prometheus``: the single-agent command, fed the fleet's document.

Run as a real process against a real Prometheus scraping stand-in agents: the exit codes,
the tree, ``--json`` and ``--nagios`` are what a NOC officer or Nagios gets.
"""

from __future__ import annotations

import json
import subprocess

from tests.linkmon.fleet.conftest import StandInFleet
from tests.support.daemon import LINKMON, free_port
from tests.support.wait import wait_until

UPLINK = ("kab-nunukan--pusat-dc", "pusat-dc--kab-nunukan")  # the hub's and pusat's names


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKMON, "status", *args], capture_output=True, text=True, timeout=60)


def test_a_cut_seen_from_both_ends(stand_in_fleet: StandInFleet) -> None:
    url = stand_in_fleet.prometheus.url
    stand_in_fleet.nunukan.cut(UPLINK[0])
    stand_in_fleet.pusat.cut(UPLINK[1])
    wait_until(
        lambda: len(stand_in_fleet.prometheus.query('linkmon_link_state{state="down"} == 1')) == 2,
        20,
        "both agents' verdicts in Prometheus",
    )
    text = status("--prometheus", url, "--lang", "en")
    assert text.returncode == 2, text.stdout + text.stderr
    assert "seen from both ends: kab-nunukan down, pusat-noc down" in text.stdout, text.stdout
    indonesian = status("--prometheus", url)
    assert "terlihat dari kedua ujung: kab-nunukan turun, pusat-noc turun" in indonesian.stdout

    stand_in_fleet.pusat.restore(UPLINK[1])
    wait_until(
        lambda: len(stand_in_fleet.prometheus.query('linkmon_link_state{state="down"} == 1')) == 1,
        20,
        "pusat's verdict back to up",
    )
    text = status("--prometheus", url, "--lang", "en")
    assert "seen from one end only: kab-nunukan down, pusat-noc up" in text.stdout


def test_json_nagios_and_a_kabupaten(stand_in_fleet: StandInFleet) -> None:
    url = stand_in_fleet.prometheus.url
    doc = json.loads(status("--prometheus", url, "--json").stdout)
    assert {a["name"] for a in doc["agents"]} == {"kab-nunukan", "pusat-noc"}
    only = json.loads(status("--prometheus", url, "--kabupaten", "kota-samarinda", "--json").stdout)
    assert [link["id"] for link in only["links"]] == ["pusat-dc--kota-samarinda"]
    samarinda = status(
        "--prometheus", url, "--kabupaten", "kota-samarinda", "--nagios", "--lang", "en"
    )
    assert samarinda.returncode == 0
    assert samarinda.stdout.startswith("LINKMON OK: all 1 links up; 1/1 offices online | ")

    stand_in_fleet.pusat.stop()
    wait_until(
        lambda: stand_in_fleet.prometheus.query('up{agent="pusat-noc"} == 0'),
        20,
        "the failed scrape",
    )
    silent = status(
        "--prometheus", url, "--kabupaten", "kota-samarinda", "--nagios", "--lang", "en"
    )
    assert silent.returncode == 3
    line = silent.stdout
    assert line.startswith("LINKMON UNKNOWN: 1 of 1 links unknown (pusat-dc--kota-samarinda); ")
    assert "silent agents: pusat-noc; 0/1 offices online | " in line
    text = status("--prometheus", url, "--kabupaten", "kota-samarinda", "--lang", "en")
    assert "agent silent: pusat-noc last seen " in text.stdout
    assert "UP" not in text.stdout.split("Pusat", 1)[1]  # its link is never shown as up


def test_prometheus_unreachable_is_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = status("--prometheus", url)
    assert done.returncode == 3
    assert done.stderr == (
        f"linkmon status: cannot read the fleet from Prometheus at {url}: ConnectError: "
        "All connection attempts failed\n"
    )
    nagios = status("--prometheus", url, "--nagios")
    assert (nagios.returncode, nagios.stdout.split(":", 1)[0]) == (3, "LINKMON UNKNOWN")
