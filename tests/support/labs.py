"""The shipped Nunukan lab for tests: skipped where it cannot be built, always taken down."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from linkmon.lab import SHIPPED_LAB, Lab


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
