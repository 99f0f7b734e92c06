"""Least privilege: linkmon probes ICMP without being root, and says clearly when it cannot.

Three ways to run it, each shown on a real `linkmon run` probing 127.0.0.1 by ICMP:
started as root with ``--user nobody`` (the raw socket is opened, then root is dropped for
good); as nobody holding only CAP_NET_RAW (systemd ``AmbientCapabilities=CAP_NET_RAW``,
docker ``--cap-add NET_RAW``); as nobody whose group ``net.ipv4.ping_group_range`` admits.
With neither, the start fails with the fix named. linkmon runs from a copy staged where
nobody can read it (``staged_for_nobody``), whatever folder the checkout is in; an
installation, a config or a storage folder ``--user`` cannot use is one line at start.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.loopback import (
    AS_NOBODY,
    LinkmonProcess,
    free_port,
    link_yaml,
    nobody_dir,
    running,
    start_linkmon,
    tcp_probe,
    wait_until,
    write_config,
)
from tests.support.staged import Staged, staged

pytestmark = pytest.mark.root

NOBODY = pwd.getpwnam("nobody").pw_uid
NOGROUP = grp.getgrnam("nogroup").gr_gid
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
CAP_NET_RAW = 1 << 13
ONLY_NET_RAW = [
    *AS_NOBODY,
    "--inh-caps=-all,+net_raw",
    "--ambient-caps=-all,+net_raw",
    "--bounding-set=-all,+net_raw",
]


@pytest.fixture
def runnable_by_nobody(staged_for_nobody: Staged) -> dict[str, Any]:
    """How ``start_linkmon`` runs the staged copy."""
    return {"command": staged_for_nobody.linkmon, "env": staged_for_nobody.env}


@pytest.fixture
def ping_group_range() -> Iterator[Path]:
    """The sysctl, put back as it was whatever the test does to it."""
    saved = PING_GROUP_RANGE.read_text()
    try:
        yield PING_GROUP_RANGE
    finally:
        PING_GROUP_RANGE.write_text(saved)


@pytest.fixture
def home() -> Iterator[Path]:
    """Config and state where nobody can read and write (pytest's tmp_path is root-only)."""
    with nobody_dir("linkmon-privileges-") as path:
        yield path


def icmp_config(home: Path, port: int) -> Path:
    config = write_config(
        home / "linkmon.yml",
        port=port,
        links=link_yaml(
            "kab-a--dc", "{kind: icmp, target: 127.0.0.1}", tcp_probe(f"127.0.0.1:{port}")
        ),
    )
    config.chmod(0o644)
    return config


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def ids(field: str) -> set[int]:
    return {int(n) for n in field.split()}


def icmp_answered(linkmon: LinkmonProcess, more_than: float = 0) -> float:
    """Echo replies received so far, once more than ``more_than`` (and no echo lost)."""

    def grown() -> float:
        received = linkmon.value("linkmon_probe_packets_received_total", kind="icmp") or 0
        return received if received > more_than else 0

    received = wait_until(grown, 10, "ICMP echo replies")
    assert linkmon.value("linkmon_probe_success", kind="icmp") == 1
    return received


def test_started_as_root_with_user_drops_everything_but_keeps_its_raw_socket(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    ping_group_range.write_text("1 0")  # no datagram ICMP for anyone: only the raw socket works
    port = free_port()
    with running(
        icmp_config(home, port), port=port, extra=["--user", "nobody"], **runnable_by_nobody
    ) as linkmon:
        before = icmp_answered(linkmon)
        status = process_status(linkmon.pid)
        assert ids(status["Uid"]) == {NOBODY} and ids(status["Gid"]) == {NOGROUP}
        assert status["Groups"].strip() == ""
        for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            assert int(status[caps], 16) == 0, (caps, status[caps])
        icmp_answered(linkmon, more_than=before)  # probing goes on as nobody
        assert linkmon.value("linkmon_link_up", link="kab-a--dc") == 1
        output = linkmon.output()
    assert "dropped privileges to nobody" in output
    assert "Traceback" not in output and "ERROR" not in output, output


def test_state_files_belong_to_the_service_user(
    home: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    port = free_port()
    with running(
        icmp_config(home, port), port=port, extra=["--user", "nobody"], **runnable_by_nobody
    ) as linkmon:
        wait_until(lambda: linkmon.value("linkmon_link_up", link="kab-a--dc") == 1, 10, "up")
    owners = {path.name: path.stat().st_uid for path in home.glob("linkmon.db*")}
    assert owners and set(owners.values()) == {NOBODY}, owners


def test_nobody_with_only_cap_net_raw_probes_icmp(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    ping_group_range.write_text("1 0")
    port = free_port()
    with running(
        icmp_config(home, port), port=port, prefix=ONLY_NET_RAW, **runnable_by_nobody
    ) as linkmon:
        icmp_answered(linkmon)
        status = process_status(linkmon.pid)
        assert ids(status["Uid"]) == {NOBODY}
        assert int(status["CapEff"], 16) == CAP_NET_RAW
        assert int(status["CapBnd"], 16) == CAP_NET_RAW
        assert "running as root" not in linkmon.output()


def test_nobody_in_ping_group_range_probes_icmp_without_any_capability(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    ping_group_range.write_text(f"{NOGROUP} {NOGROUP}")
    port = free_port()
    with running(
        icmp_config(home, port), port=port, prefix=AS_NOBODY, **runnable_by_nobody
    ) as linkmon:
        icmp_answered(linkmon)
        assert int(process_status(linkmon.pid)["CapEff"], 16) == 0


def start_fails(home: Path, config: Path | None = None, **kw: object) -> str:
    port = free_port()
    config = config or icmp_config(home, port)
    linkmon = start_linkmon(config, port=port, **kw)  # type: ignore[arg-type]
    try:
        assert linkmon.wait_exit() == 2
    finally:
        linkmon.kill()
    output = linkmon.output()
    assert "Traceback" not in output, output
    return output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_an_installation_the_user_cannot_read_is_one_line_at_start(home: Path) -> None:
    """The check runs as the user before root is given up: without it, linkmon would drop,
    then fail at the first module it imports later (a traceback, probes dying one by one)."""
    with staged(readable=False) as private:
        line = one_line(
            start_fails(home, extra=["--user", "nobody"], command=private.linkmon, env=private.env)
        )
        assert f"--user nobody cannot read {private.root} (the code linkmon runs)" in line
    assert "install Python and linkmon where nobody can read them" in line
    assert "dropped privileges" not in line


def test_a_config_the_user_cannot_read_is_one_line_at_start(
    home: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    config = icmp_config(home, free_port())
    config.chmod(0o600)
    line = one_line(start_fails(home, config, extra=["--user", "nobody"], **runnable_by_nobody))
    assert f"--user nobody cannot read the config file {config}" in line
    assert "chgrp nogroup FILE; chmod g+r FILE" in line


def test_a_storage_folder_the_user_cannot_write_is_one_line_at_start(
    home: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    state = home / "state"
    state.mkdir(mode=0o755)  # root's
    port = free_port()
    config = write_config(
        home / "linkmon.yml",
        port=port,
        links=link_yaml("kab-a--dc", "{kind: icmp, target: 127.0.0.1}"),
        storage=state / "linkmon.db",
    )
    line = one_line(start_fails(home, config, extra=["--user", "nobody"], **runnable_by_nobody))
    assert f"--user nobody cannot write the storage folder {state}: chown nobody {state}" in line


def test_neither_capability_nor_ping_group_range_is_a_clear_start_error(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, Any]
) -> None:
    ping_group_range.write_text("1 0")
    output = start_fails(home, prefix=AS_NOBODY, **runnable_by_nobody)
    assert "cannot start" in output
    assert "CAP_NET_RAW" in output
    assert f"net.ipv4.ping_group_range='{NOGROUP} {NOGROUP}'" in output


@pytest.mark.parametrize(
    ("prefix", "user", "message"),
    [
        ((), "no-such-linkmon-user", "--user no-such-linkmon-user: no such user"),
        (ONLY_NET_RAW, "root", "--user root needs linkmon started as root"),
        ((), "root", "--user root: that is root"),
    ],
)
def test_bad_user_is_a_clear_start_error(
    home: Path, prefix: list[str], user: str, message: str, runnable_by_nobody: dict[str, Any]
) -> None:
    assert message in start_fails(home, prefix=prefix, extra=["--user", user], **runnable_by_nobody)
