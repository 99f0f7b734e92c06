"""One lab per test session, under a prefix of its own so a developer's running lab is untouched."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from linkmon.lab import Lab
from linkmon.lab.lab import STATE_ROOT
from tests.support.labs import require_lab, shipped_lab


@pytest.fixture(scope="session")
def root() -> None:
    """Skip unless root with the tools the lab drives."""
    require_lab()


@pytest.fixture(scope="session")
def lab(root: None) -> Iterator[Lab]:
    """The shipped Nunukan lab, up for the whole session and always taken down."""
    with shipped_lab(f"t{os.getpid() % 10_000_000}") as lab:
        yield lab


@pytest.fixture()
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The session lab with no fault in force before and after the test."""
    lab.restore_all()
    try:
        yield lab
    finally:
        lab.restore_all()


_prefixes = iter(range(100))


@pytest.fixture()
def prefix(root: None) -> Iterator[str]:
    """A lab prefix of this test's own; whatever the test leaves is removed afterwards."""
    name = f"c{os.getpid() % 100_000}{next(_prefixes):02d}"
    try:
        yield name
    finally:
        Lab.teardown(name)


def find_leftovers(prefix: str, pids: set[int]) -> list[str]:
    """Anything of this prefix still in the kernel or on disk, found without the lab code."""
    found = [
        n
        for n in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.split()
        if n.startswith(f"{prefix}-")
    ]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {line}" for line in links.splitlines() if prefix in line]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"table {line}" for line in tables.splitlines() if prefix in line]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            mine = int(entry.name) in pids or f" {prefix}-" in cmdline or f" {prefix} " in cmdline
            if mine and not zombie and "pytest" not in cmdline:
                found.append(f"process {entry.name}: {cmdline}")
    if (STATE_ROOT / prefix).exists():
        found.append(f"state dir {STATE_ROOT / prefix}")
    return found


@pytest.fixture()
def leftovers() -> Callable[[str, set[int]], list[str]]:
    """:func:`find_leftovers` for tests (a conftest cannot be imported from)."""
    return find_leftovers
