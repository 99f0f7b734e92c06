"""Least privilege: linkmon probes ICMP without being root, and says clearly when it cannot.

Three ways to run it, each shown on a real `linkmon run` probing 127.0.0.1 by ICMP:
started as root with ``--user nobody`` (the raw socket is opened, then root is dropped for
good); as nobody holding only CAP_NET_RAW (systemd ``AmbientCapabilities=CAP_NET_RAW``,
docker ``--cap-add NET_RAW``); as nobody whose group ``net.ipv4.ping_group_range`` admits.
With neither, the start fails with the fix named.
"""

from __future__ import annotations

import grp
import pwd
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import loopback
from tests.support.loopback import (
    AS_NOBODY,
    LinkmonProcess,
    free_port,
    link_yaml,
    nobody_dir,
    readable_by_nobody,
    running,
    start_linkmon,
    tcp_probe,
    wait_until,
    write_config,
)

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


PATHS = sysconfig.get_paths()


@pytest.fixture(scope="module")
def runnable_by_nobody() -> dict[str, object]:
    found = loopback.runnable_by_nobody()
    if found is None:
        pytest.skip("no Python here that nobody may read")
    return found


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
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, object]
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
    home: Path, runnable_by_nobody: dict[str, object]
) -> None:
    port = free_port()
    with running(
        icmp_config(home, port), port=port, extra=["--user", "nobody"], **runnable_by_nobody
    ) as linkmon:
        wait_until(lambda: linkmon.value("linkmon_link_up", link="kab-a--dc") == 1, 10, "up")
    owners = {path.name: path.stat().st_uid for path in home.glob("linkmon.db*")}
    assert owners and set(owners.values()) == {NOBODY}, owners


def test_user_that_cannot_read_python_is_a_clear_start_error(home: Path) -> None:
    if readable_by_nobody(PATHS["stdlib"]):
        pytest.skip("this Python is readable by nobody")
    output = start_fails(home, extra=["--user", "nobody"])
    assert "--user nobody cannot read" in output and PATHS["stdlib"] in output


def test_nobody_with_only_cap_net_raw_probes_icmp(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, object]
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
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, object]
) -> None:
    ping_group_range.write_text(f"{NOGROUP} {NOGROUP}")
    port = free_port()
    with running(
        icmp_config(home, port), port=port, prefix=AS_NOBODY, **runnable_by_nobody
    ) as linkmon:
        icmp_answered(linkmon)
        assert int(process_status(linkmon.pid)["CapEff"], 16) == 0


def start_fails(home: Path, **kw: object) -> str:
    port = free_port()
    linkmon = start_linkmon(icmp_config(home, port), port=port, **kw)  # type: ignore[arg-type]
    try:
        assert linkmon.wait_exit() != 0
    finally:
        linkmon.kill()
    output = linkmon.output()
    assert "Traceback" not in output, output
    return output


def test_neither_capability_nor_ping_group_range_is_a_clear_start_error(
    home: Path, ping_group_range: Path, runnable_by_nobody: dict[str, object]
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
    home: Path, prefix: list[str], user: str, message: str, runnable_by_nobody: dict[str, object]
) -> None:
    assert message in start_fails(home, prefix=prefix, extra=["--user", user], **runnable_by_nobody)
