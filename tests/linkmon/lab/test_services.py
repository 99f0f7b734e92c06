"""The stand-in services, on loopback: what the lab's probes will meet at pusat and the hub."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.daemon import free_port


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[tuple[dict[str, int], Path]]:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ports = {"http": free_port(), "https": free_port(), "tcp": free_port()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "linkmon.lab.services",
            "--site",
            "pusat-dc",
            "--http",
            str(ports["http"]),
            "--https",
            str(ports["https"]),
            "--tls",
            str(pem),
            "--tcp",
            str(ports["tcp"]),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield ports, tmp_path / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_http_health_names_the_site(services: tuple[dict[str, int], Path]) -> None:
    ports, _ = services
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/health", timeout=5) as reply:
        assert reply.status == 200
        assert json.loads(reply.read()) == {"status": "ok", "site": "pusat-dc"}
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/missing", timeout=5)
    assert caught.value.code == 404


def test_https_health_verifies_against_the_lab_ca(services: tuple[dict[str, int], Path]) -> None:
    ports, ca_file = services
    url = f"https://127.0.0.1:{ports['https']}/health"
    trusting = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(url, timeout=5, context=trusting) as reply:
        assert json.loads(reply.read())["site"] == "pusat-dc"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())


def test_tcp_listener_sends_a_banner(services: tuple[dict[str, int], Path]) -> None:
    ports, _ = services
    with socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=5) as conn:
        assert conn.recv(100) == b"linkmon-lab pusat-dc\r\n"
