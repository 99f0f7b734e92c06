"""The open-file limit: raised at start, and shared so that probing keeps its reserve."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from linkmon.config import load_config
from linkmon.openfiles import WEB_MAX, WEB_MIN, FileBudget, exhausted_resource, probe_reserve
from tests.support.loopback import link_yaml, tcp_probe, write_config

RAISE = (
    "import resource; from linkmon.openfiles import raise_limit; "
    "print(raise_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
)


@pytest.mark.parametrize(
    ("limits", "expected"), [("1024:4096", "4096 4096 4096"), ("1024:1024", "1024 1024 1024")]
)
def test_the_soft_limit_is_raised_to_the_hard_one(limits: str, expected: str) -> None:
    done = subprocess.run(
        ["prlimit", f"--nofile={limits}", sys.executable, "-c", RAISE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == expected.split()


def config_with(tmp_path: Path, tcp_probes: int) -> Path:
    probes = [tcp_probe(f"127.0.0.1:{10_000 + i}") for i in range(tcp_probes)]
    return write_config(
        tmp_path / "linkmon.yml",
        port=9840,
        links=link_yaml("kab-a--dc", "{kind: icmp, target: 127.0.0.1}", *probes),
        receiver_url="http://127.0.0.1:9999/hook",
    )


def test_the_reserve_grows_with_the_probes_that_may_run_at_once(tmp_path: Path) -> None:
    small = probe_reserve(
        load_config(config_with(tmp_path, 1)), probes_in_flight=2000, lookups_at_once=32
    )
    large = probe_reserve(
        load_config(config_with(tmp_path, 50)), probes_in_flight=2000, lookups_at_once=32
    )
    bounded = probe_reserve(
        load_config(config_with(tmp_path, 50)), probes_in_flight=10, lookups_at_once=32
    )
    assert large - small == 49  # a socket per TCP probe in flight
    assert bounded == small + 9  # no more than the scheduler runs at once
    assert small > 32 + 64  # the lookups and the margin at least


@pytest.mark.parametrize(
    ("limit", "open_at_start", "reserve", "web", "too_small"),
    [
        (1024, 30, 130, 864, False),
        (1_048_576, 30, 2200, WEB_MAX, False),
        (256, 30, 230, WEB_MIN, True),
    ],
)
def test_the_web_side_gets_what_is_left_within_bounds(
    limit: int, open_at_start: int, reserve: int, web: int, too_small: bool
) -> None:
    budget = FileBudget(limit=limit, open_at_start=open_at_start, probe_reserve=reserve)
    assert budget.web_connections == web
    assert budget.too_small is too_small


def test_what_ran_out_is_named_from_the_error() -> None:
    assert exhausted_resource(errno.EMFILE) == "fds"
    assert exhausted_resource(errno.ENFILE) == "fds"
    assert exhausted_resource(errno.ENOBUFS) == "buffers"
    assert exhausted_resource(errno.ENOMEM) == "memory"
    assert exhausted_resource(errno.ECONNREFUSED) is None
    assert exhausted_resource(None) is None
