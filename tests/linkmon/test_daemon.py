"""`linkmon run` as a real process on loopback targets: metrics, signals, reload."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from linkmon.config import parse_config
from linkmon.daemon import icmp_specs, jobs_for
from linkmon.monitor import GATEWAY_INDEX
from tests.support.daemon import free_port, running_linkmon
from tests.support.wait import wait_until

pytestmark = pytest.mark.root  # raw ICMP sockets


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tcp_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def write_config(
    path: Path, port: int, http_port: int, tcp_port: int, closed_port: int, extra_link: str = ""
) -> Path:
    path.write_text(f"""
agent: {{name: loop-agent, timezone: Asia/Jakarta}}
server: {{listen: "127.0.0.1:{port}", enable_reload: true}}
storage: {{path: {path.parent / "linkmon.db"}}}
defaults:
  {{interval: 500ms, timeout: 400ms, icmp: {{count: 3, spacing: 20ms}}, down_after: 2, up_after: 1}}
sites:
  - {{id: pusat-dc, kind: pusat, name: Data Center}}
  - {{id: kab-a, kind: kabupaten, name: Kabupaten A}}
  - {{id: kec-b, kind: kecamatan, name: Kecamatan B, parent: kab-a}}
links:
  - id: kab-a--dc
    from: kab-a
    to: pusat-dc
    network: vpn
    probes:
      - {{kind: icmp, target: 127.0.0.1}}
      - {{kind: icmp, target: "::1"}}
      - {{kind: tcp, target: "127.0.0.1:{tcp_port}"}}
      - {{kind: http, url: "http://127.0.0.1:{http_port}/health"}}
  - id: kec-b--kab
    from: kec-b
    to: kab-a
    network: m2m
    probes:
      - {{kind: tcp, target: "127.0.0.1:{closed_port}"}}
{extra_link}""")
    return path


@pytest.fixture
def config(tmp_path: Path, http_port: int, tcp_port: int) -> tuple[Path, str]:
    port = free_port()
    return write_config(
        tmp_path / "linkmon.yml", port, http_port, tcp_port, closed_port=free_port()
    ), f"http://127.0.0.1:{port}"


def test_metrics_pass_promtool_and_show_good_and_closed_targets(config: tuple[Path, str]) -> None:
    path, url = config
    with running_linkmon(path, url) as linkmon:
        wait_until(
            lambda: linkmon.value("linkmon_link_state", link="kec-b--kab", state="down") == 1,
            10,
            "closed port link down",
        )
        text = httpx.get(url + "/metrics").text
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, text=True, capture_output=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        samples = linkmon.metrics()
        for kind, target in (("icmp", "127.0.0.1"), ("icmp", "::1"), ("tcp", None), ("http", None)):
            labels = {"link": "kab-a--dc", "kind": kind} | ({"target": target} if target else {})
            assert linkmon.value("linkmon_probe_success", **labels) == 1, labels
        assert linkmon.value("linkmon_probe_success", link="kec-b--kab") == 0
        assert linkmon.value("linkmon_probe_failures_total", link="kec-b--kab", reason="refused")
        assert linkmon.value("linkmon_link_up", link="kab-a--dc") == 1
        assert linkmon.value("linkmon_service_available", site="kec-b") == 0
        received = linkmon.value("linkmon_probe_packets_received_total", target="127.0.0.1")
        assert received is not None and received >= 3
        buckets = [
            v
            for (name, labels), v in samples.items()
            if name == "linkmon_probe_duration_seconds_bucket" and ("target", "::1") in labels
        ]
        assert buckets and max(buckets) >= 3
        assert httpx.get(url + "/readyz").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_within_two_seconds(config: tuple[Path, str], sig: int) -> None:
    path, url = config
    with running_linkmon(path, url) as linkmon:
        wait_until(
            lambda: linkmon.value("linkmon_probe_success", link="kab-a--dc", kind="http") == 1,
            10,
            "first results",
        )
        took = linkmon.stop(sig)
        assert linkmon.process.returncode == 0, linkmon.output()
        assert took < 2.0
        assert "Traceback" not in linkmon.output()


def test_bad_config_on_sighup_keeps_the_old_one_running(config: tuple[Path, str]) -> None:
    path, url = config
    good = path.read_text()
    with running_linkmon(path, url) as linkmon:
        wait_until(
            lambda: linkmon.value("linkmon_config_last_reload_successful") == 1, 10, "first load"
        )
        path.write_text(good.replace("interval: 500ms", "interval: 5 parsecs"))
        linkmon.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: linkmon.value("linkmon_config_last_reload_successful") == 0,
            10,
            "reload failure metric",
        )
        sent = linkmon.value("linkmon_probe_packets_sent_total", target="127.0.0.1") or 0
        wait_until(
            lambda: (
                (linkmon.value("linkmon_probe_packets_sent_total", target="127.0.0.1") or 0)
                > sent + 3
            ),
            5,
            "probing to go on with the old config",
        )
        assert "defaults.interval" in linkmon.output()

        path.write_text(good.replace("interval: 500ms", "interval: 600ms"))
        response = httpx.post(url + "/-/reload")
        assert response.status_code == 200, response.text
        assert linkmon.value("linkmon_config_last_reload_successful") == 1


def test_reload_adds_and_removes_links_keeping_unchanged_state(
    config: tuple[Path, str], tmp_path: Path, http_port: int, tcp_port: int
) -> None:
    path, url = config
    port = int(url.rsplit(":", 1)[1])
    closed = free_port()
    write_config(path, port, http_port, tcp_port, closed)
    with running_linkmon(path, url) as linkmon:
        wait_until(
            lambda: linkmon.value("linkmon_link_state", link="kab-a--dc", state="up") == 1,
            10,
            "uplink up",
        )
        since = linkmon.value("linkmon_link_state_since_timestamp_seconds", link="kab-a--dc")
        extra = """  - id: kec-c--kab
    from: kec-b
    to: kab-a
    network: jip
    probes:
      - {kind: icmp, target: 127.0.0.3}
"""
        write_config(path, port, http_port, tcp_port, closed, extra_link=extra)
        assert httpx.post(url + "/-/reload").status_code == 200
        wait_until(
            lambda: linkmon.value("linkmon_link_state", link="kec-c--kab", state="up") == 1,
            10,
            "new link up",
        )
        assert (
            linkmon.value("linkmon_link_state_since_timestamp_seconds", link="kab-a--dc") == since
        )
        assert httpx.post(url + "/-/reload").status_code == 200


def test_check_config_lists_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("""
sites:
  - {id: kab-a, kind: kabupaten, name: A}
links:
  - {id: l1, from: kab-a, to: nowhere, network: vpn,
     probes: [{kind: tcp, target: "127.0.0.1:80", timeout: 20s}]}
""")
    linkmon = shutil.which("linkmon", path=str(Path(__import__("sys").executable).parent))
    assert linkmon
    done = subprocess.run([linkmon, "check-config", "-c", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "links[0].to" in done.stderr
    assert "links[0].probes[0].timeout" in done.stderr


def test_the_agents_gateway_is_a_job_of_no_link(tmp_path: Path) -> None:
    path = write_config(tmp_path / "linkmon.yml", 9, 9, 9, closed_port=9)
    text = path.read_text().replace(
        "timezone: Asia/Jakarta}", "timezone: Asia/Jakarta, gateway: 127.0.0.2}"
    )
    config = parse_config(text)
    [gateway] = [job for job in jobs_for(config) if job.index == GATEWAY_INDEX]
    assert (gateway.link, gateway.kind, gateway.target) == ("agent.gateway", "icmp", "127.0.0.2")
    assert (gateway.interval, gateway.timeout) == (0.5, 0.4)  # the defaults'
    assert gateway.spec in icmp_specs(config)  # its socket is opened before privileges drop
