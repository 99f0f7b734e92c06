"""Test helpers that run as their own process (``python -m tests.support.NAME``), stopped by PID.

Each prints one line on stdout once it is listening; the parent reads that line to learn its
ports. Kept to the standard library: the helpers import it in their own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def start_helper(
    module: str,
    args: Sequence[str],
    ready: str,
    failure: str,
    popen: Callable[..., subprocess.Popen[Any]] = subprocess.Popen,
) -> tuple[subprocess.Popen[Any], str]:
    """Start ``python -m module args`` (through ``popen``, say a lab namespace's) from the
    repository root; return it and its first stdout line, which must start with ``ready``.
    Otherwise it is stopped and RuntimeError says ``failure`` and the line."""
    proc = popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line: str = proc.stdout.readline()
    if not line.startswith(ready):
        stop_process(proc)
        raise RuntimeError(f"{failure}: {line!r}")
    return proc, line


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Kill (by PID) unless it has exited, reap it, and close its stdout pipe if any."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
