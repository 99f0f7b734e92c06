"""Issue 17: an agent behind NAT reaches the central Prometheus only by remote write.

A lab of its own (``tests/testdata/lab-nat.yml``): Kabupaten Bulungan's office (linkmon, and
Prometheus in agent mode with the shipped ``prometheus/agent-remote-write.example.yml``)
behind its router, which masquerades what leaves towards the centre (nftables) and lets
nothing new in; the centre (pusat-dc) runs the central Prometheus with
``--web.enable-remote-write-receiver`` and has no route into the office. The test proves the
centre cannot open a connection to the agent, then finds the agent in the fleet view.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from linkmon.fleet import Fleet, Scope, Settings, read_fleet
from linkmon.lab import Lab
from tests.support.daemon import LINKMON, Linkmon, free_port, linkmon_in_lab, parse_metrics
from tests.support.labs import require_lab
from tests.support.prometheus import PROMETHEUS
from tests.support.wait import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

ROOT = Path(__file__).resolve().parents[2]
LAB_FILE = ROOT / "tests" / "testdata" / "lab-nat.yml"
EXAMPLE = ROOT / "prometheus" / "agent-remote-write.example.yml"
CENTRE = "pusat-dc"
OFFICE, ROUTER = "kab-bulungan", "gw-bulungan"
CENTRAL_PORT, AGENT_PORT, LINKMON_PORT = 9090, 9091, 9840
STALE_AFTER = 5.0


def office_config(workdir: Path, lab: Lab) -> Path:
    """Kabupaten Bulungan's agent: its uplink to pusat (ICMP and the centre's TCP port, out
    through the NAT) and one kecamatan on its own side."""
    centre = lab.address(CENTRE)
    config: dict[str, Any] = {
        "agent": {"name": OFFICE, "timezone": "Asia/Makassar", "language": "id"},
        "server": {"listen": f"0.0.0.0:{LINKMON_PORT}"},  # open, as on a real office server
        "storage": {"path": str(workdir / "linkmon.db")},
        "defaults": {"interval": "1s", "timeout": "800ms"},
        "sites": [
            {"id": CENTRE, "kind": "pusat", "name": "Data Center Ditjen Dukcapil",
             "timezone": "Asia/Jakarta"},
            {"id": OFFICE, "kind": "kabupaten", "name": "Disdukcapil Kabupaten Bulungan"},
            {"id": "kec-tj-palas", "kind": "kecamatan", "parent": OFFICE,
             "name": "Kecamatan Tanjung Palas"},
        ],
        "links": [
            {"id": "kab-bulungan--dc", "from": OFFICE, "to": CENTRE, "network": "internet",
             "probes": [{"kind": "icmp", "target": centre},
                        {"kind": "tcp", "target": f"{centre}:{CENTRAL_PORT}"}]},
            {"id": "kec-tj-palas--kab", "from": "kec-tj-palas", "to": OFFICE, "network": "vpn",
             "probes": [{"kind": "icmp", "target": lab.address("kec-tj-palas")}]},
        ],
    }  # fmt: skip
    path = workdir / "linkmon.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def agent_config(workdir: Path, lab: Lab) -> Path:
    """The shipped example, pointed at the lab's centre and scraping every second."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["global"]["scrape_interval"] = "1s"
    (job,) = config["scrape_configs"]
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{LINKMON_PORT}"], "labels": {"agent": OFFICE}}
    ]
    (remote,) = config["remote_write"]
    remote["url"] = f"http://{lab.address(CENTRE)}:{CENTRAL_PORT}/api/v1/write"
    remote["queue_config"]["batch_send_deadline"] = "1s"
    path = workdir / "agent.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def put_office_behind_nat(lab: Lab) -> None:
    """The router masquerades towards the centre and drops new connections from it; the
    centre keeps only its route to the router, as the internet has none into an office."""
    nft = (
        "table ip fleet_nat {\n"
        "  chain nat_out { type nat hook postrouting priority srcnat;"
        f' oifname "{CENTRE}" counter masquerade; }}\n'
        "  chain block_in { type filter hook forward priority filter;"
        f' iifname "{CENTRE}" ct state new drop; }}\n'
        "}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", lab.netns(ROUTER), "nft", "-f", "-"],
        input=nft,
        text=True,
        check=True,
    )
    routes = json.loads(lab.exec(CENTRE, ["ip", "-j", "route", "show", "proto", "boot"]).stdout)
    for route in routes:
        if route["dst"] != f"{lab.address(ROUTER)}":
            lab.exec(CENTRE, ["ip", "route", "del", route["dst"]], check=True)


def masqueraded(lab: Lab) -> int:
    """Connections the router has masqueraded so far (first packets: NAT sees no more)."""
    rules = lab.exec(ROUTER, ["nft", "-j", "list", "chain", "ip", "fleet_nat", "nat_out"]).stdout
    for item in json.loads(rules)["nftables"]:
        for expr in item.get("rule", {}).get("expr", ()):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError(f"no counter in the router's NAT rule: {rules}")


def reachable_from_centre(lab: Lab, address: str, port: int) -> bool:
    with lab.executor(CENTRE) as inside:
        try:
            inside.submit(socket.create_connection, (address, port), 2.0).result().close()
        except OSError:
            return False
    return True


@contextlib.contextmanager
def started(lab: Lab, site: str, argv: list[str], log: Path) -> Iterator[subprocess.Popen[Any]]:
    """A program inside a site's namespace, stopped by its PID (``ip netns exec`` execs)."""
    with log.open("wb") as out:
        process = lab.popen(site, argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[Lab]:
    require_lab()
    if shutil.which("nft") is None or not PROMETHEUS.exists():
        pytest.skip("needs nft and Debian's prometheus")
    prefix = f"n{os.getpid() % 100_000}"
    try:
        yield Lab.up(LAB_FILE, prefix=prefix)
    finally:
        Lab.teardown(prefix)


def test_an_agent_behind_nat_reaches_the_fleet_only_by_remote_write(
    nat_lab: Lab, tmp_path: Path
) -> None:
    lab = nat_lab
    put_office_behind_nat(lab)
    central_config = tmp_path / "central.yml"
    central_config.write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"}}))
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            started(
                lab,
                CENTRE,
                [
                    str(PROMETHEUS),
                    f"--config.file={central_config}",
                    f"--storage.tsdb.path={tmp_path / 'central'}",
                    f"--web.listen-address=0.0.0.0:{CENTRAL_PORT}",
                    "--web.enable-remote-write-receiver",
                    "--log.level=warn",
                ],
                tmp_path / "central.log",
            )
        )
        central_port = free_port()
        lab.forward(CENTRE, CENTRAL_PORT, central_port)
        central = f"http://127.0.0.1:{central_port}"
        wait_until(lambda: _ready(central), 30, "the central Prometheus ready")

        linkmon: Linkmon = stack.enter_context(
            linkmon_in_lab(lab, OFFICE, office_config(tmp_path, lab))
        )
        wait_until(lambda: _ready(linkmon.url), 20, "linkmon behind the NAT ready")
        # The centre cannot open a connection into the office: not to linkmon, not at all.
        assert not reachable_from_centre(lab, lab.address(OFFICE), LINKMON_PORT)
        # ... while the office's uplink probes get out through the NAT
        wait_until(
            lambda: linkmon.value("linkmon_link_up", link="kab-bulungan--dc") == 1,
            20,
            "the office's uplink up through the NAT",
        )

        agent = stack.enter_context(
            started(
                lab,
                OFFICE,
                [
                    str(PROMETHEUS),
                    "--enable-feature=agent",
                    f"--config.file={agent_config(tmp_path, lab)}",
                    f"--storage.agent.path={tmp_path / 'agent'}",
                    f"--web.listen-address=127.0.0.1:{AGENT_PORT}",
                    "--log.level=warn",
                ],
                tmp_path / "agent.log",
            )
        )

        fleet = Fleet(central, Settings(Scope(), stale_after=STALE_AFTER))

        def office_in_fleet() -> dict[str, Any]:
            doc = read_fleet(fleet)
            agents = {a["name"]: a["state"] for a in doc["agents"]}
            return doc if agents.get(OFFICE) == "up" and doc["summary"]["state"] == "up" else {}

        doc = wait_until(office_in_fleet, 60, "the office in the central Prometheus")
        assert {s["id"] for s in doc["sites"]} == {CENTRE, OFFICE, "kec-tj-palas"}

        shown = subprocess.run(
            [LINKMON, "status", "--prometheus", central, "--lang", "en"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        for office in ("Disdukcapil Kabupaten Bulungan", "Kecamatan Tanjung Palas"):
            assert office in shown.stdout
        # Nothing was scraped by the centre: every sample came in by remote write, through NAT.
        targets = httpx.get(central + "/api/v1/targets", timeout=5).json()["data"]
        assert targets["activeTargets"] == []
        central_metrics = parse_metrics(httpx.get(central + "/metrics", timeout=5).text)
        writes = [
            v
            for (name, labels), v in central_metrics.items()
            if name == "prometheus_http_requests_total"
            and ("handler", "/api/v1/write") in labels
            and ("code", "204") in labels
        ]
        assert sum(writes) > 0
        assert masqueraded(lab) > 0  # the remote write left through the router's NAT

        # A cut behind the NAT reaches the centre the same way.
        lab.cut("kec-tj-palas--kab")
        wait_until(
            lambda: read_fleet(fleet)["summary"]["state"] == "down", 30, "the cut at the centre"
        )
        lab.restore("kec-tj-palas--kab")

        # The Prometheus agent stops: remote write leaves no staleness markers, the series
        # linger in instant queries, and only their age makes the office silent.
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)

        def silent() -> dict[str, Any]:
            doc = read_fleet(fleet)
            (office,) = [a for a in doc["agents"] if a["name"] == OFFICE]
            return doc if office["state"] == "silent" else {}

        doc = wait_until(silent, 30, "the office silent once its samples are old")
        (office,) = [a for a in doc["agents"] if a["name"] == OFFICE]
        assert office["last_seen"] is not None and not office["scrape_failing"]
        assert {link["state"] for link in doc["links"]} == {"unknown"}


def _ready(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
