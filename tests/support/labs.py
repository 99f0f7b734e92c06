"""The shipped Nunukan lab for tests, and the same with the hub office's LAN: skipped where it
cannot be built, always taken down."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from linkmon.lab import SHIPPED_LAB, Lab

OFFICE_PC, OFFICE_LAN = "kab-nunukan-noc", "kab-nunukan--lan"


def require_lab() -> None:
    """Skip unless root with the tools the lab drives."""
    if os.geteuid() != 0:
        pytest.skip("the lab builds network namespaces: run as root")
    for tool in ("ip", "nft", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: iproute2, nftables, iputils-ping)")


@contextlib.contextmanager
def shipped_lab(prefix: str) -> Iterator[Lab]:
    """The lab under ``prefix`` (a developer's running lab is untouched), torn down even when
    building it failed half way."""
    require_lab()
    try:
        yield Lab.up(SHIPPED_LAB, prefix=prefix)
    finally:
        Lab.teardown(prefix)


@contextlib.contextmanager
def office_lan_lab(prefix: str, folder: Path) -> Iterator[Lab]:
    """The shipped lab plus the hub office's LAN: a PC (``OFFICE_PC``, 198.18.0.253) behind
    the hub's router on a link of its own (``OFFICE_LAN``, a veth: a LAN switch port), so that
    a linkmon on that PC reaches everything through its gateway, the hub's end of that link.
    The lab file is written to ``folder``; the shipped lab is left as it is."""
    lab_file = yaml.safe_load(SHIPPED_LAB.read_text())
    lab_file["sites"].append({"id": OFFICE_PC, "kind": "kabupaten", "address": "198.18.0.253"})
    lab_file["links"].append(
        {
            "id": OFFICE_LAN,
            "from": OFFICE_PC,
            "to": "kab-nunukan",
            "network": "lan",
            "bridge": False,
        }
    )
    path = folder / "nunukan-office-lan.yml"
    path.write_text(yaml.safe_dump(lab_file, sort_keys=False))
    require_lab()
    try:
        yield Lab.up(path, prefix=prefix)
    finally:
        Lab.teardown(prefix)


def gateway_of(lab: Lab) -> str:
    """The office PC's gateway: the hub router's end of the office LAN."""
    return str(lab.topology.link(OFFICE_LAN).end("kab-nunukan").interface.ip)
