"""End-to-end tests: linkmon running inside the namespace lab, faults injected for real."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator

import pytest

from linkmon.lab import SHIPPED_LAB, Lab

_numbers = itertools.count()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """The shipped Nunukan lab for one test module, under a prefix of its own."""
    if os.geteuid() != 0:
        pytest.skip("the lab builds network namespaces: run as root")
    for tool in ("ip", "nft", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: iproute2, nftables, iputils-ping)")
    prefix = f"e{os.getpid() % 100_000}{next(_numbers)}"
    try:
        yield Lab.up(SHIPPED_LAB, prefix=prefix)
    finally:
        Lab.teardown(prefix)
