"""Fixtures shared across the tree: linkmon staged where ``nobody`` can read it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.staged import Staged, staged

RUN_PROBE = Path(__file__).parent / "probes" / "run_probe.py"


@pytest.fixture(scope="session")
def staged_for_nobody() -> Iterator[Staged]:
    """linkmon, what it needs and the probe-runner script, copied once per session where
    nobody can read them (the checkout itself may be private: root's home, ``mktemp -d``)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run code as another user")
    with staged(helpers=[RUN_PROBE]) as install:
        yield install
