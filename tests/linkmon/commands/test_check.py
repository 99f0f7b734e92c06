"""`linkmon check-config` as a user runs it, on every example config the project ships."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import LINKMON

EXAMPLES = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yml")))
def test_check_config_accepts_every_example(name: str) -> None:
    done = subprocess.run(
        [LINKMON, "check-config", "-c", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{EXAMPLES / name}: OK (")
