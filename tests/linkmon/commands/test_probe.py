"""`linkmon probe` as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.support.daemon import LINKMON, free_port


def linkmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKMON, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.root
def test_probe_icmp_prints_what_it_measured() -> None:
    done = linkmon("probe", "icmp", "127.0.0.1", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert "icmp 127.0.0.1: OK" in done.stdout
    assert "3 sent, 3 received, 0% loss" in done.stdout


def test_probe_tcp_json_for_an_open_and_a_closed_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        done = linkmon("probe", "tcp", f"127.0.0.1:{port}", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["kind"], result["success"]) == ("tcp", True)
    assert 0 < result["duration_seconds"] < 1

    done = linkmon("probe", "tcp", f"127.0.0.1:{free_port()}", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["failure"] == "refused"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("probe", "smtp", "127.0.0.1"), "smtp"),
        (("probe", "tcp", "127.0.0.1"), "port"),
    ],
)
def test_probe_with_bad_input_says_what_was_wrong(args: tuple[str, ...], message: str) -> None:
    done = linkmon(*args)
    assert done.returncode == 2
    assert message in done.stderr
