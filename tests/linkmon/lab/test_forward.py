"""The host port that leads into a lab namespace (how the demo shows linkmon's pages)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from linkmon.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.root]


def test_host_port_reaches_the_hub_loopback(clean_lab: Lab) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clean_lab.forward("kab-nunukan", 80, port)  # the hub's own HTTP health service
    for _ in range(3):  # each request a fresh connection through the forward
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok", "site": "kab-nunukan"}
    forwards = [p for p in clean_lab.status()["processes"] if p["role"] == "forward"]
    assert forwards[-1]["alive"]
    # It lives in the hub's namespace, where `lab down` looks for processes.
    where = clean_lab.exec("kab-nunukan", ["ip", "netns", "identify", str(forwards[-1]["pid"])])
    assert where.stdout.strip() == clean_lab.netns("kab-nunukan")
