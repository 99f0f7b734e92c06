"""End-to-end tests: linkmon running inside the namespace lab, faults injected for real."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from linkmon.lab import Lab
from tests.support.labs import shipped_lab

_numbers = itertools.count()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """The shipped Nunukan lab for one test module, under a prefix of its own."""
    with shipped_lab(f"e{os.getpid() % 100_000}{next(_numbers)}") as lab:
        yield lab
