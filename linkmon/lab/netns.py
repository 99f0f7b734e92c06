"""Thin wrappers over `ip`, `nft` and setns(2): the only place the lab touches the kernel.

Every command that fails raises :class:`LabError` with the command and what it printed, so a
missing package or a name clash reads as itself rather than as a stack trace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from linkmon.lab.topology import LabError

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a command, return its stdout; on failure raise LabError with its stderr."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed (Debian: iproute2, nftables)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv)}` did not finish within 30 s") from exc
    if check and done.returncode != 0:
        where = f" (input: {stdin.strip()!r})" if stdin and len(stdin) < 2000 else ""
        raise LabError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}{where}")
    return done.stdout


def ip_batch(netns: str | None, commands: Iterable[str]) -> None:
    """Run many `ip` commands in one process (one fork instead of dozens)."""
    lines = "\n".join(commands)
    if lines:
        run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], stdin=lines + "\n")


def namespaces(prefix: str) -> list[str]:
    """Names of the network namespaces this lab prefix owns (``PREFIX-...``)."""
    names = (line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line)
    return sorted(n for n in names if n.startswith(f"{prefix}-"))


def add_namespace(name: str, sysctls: dict[str, str]) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    if sysctls:
        run(
            ["ip", "netns", "exec", name, "sysctl", "-q", "-w"]
            + [f"{k}={v}" for k, v in sysctls.items()]
        )


def delete_namespace(name: str) -> None:
    run(["ip", "netns", "delete", name], check=False)


def namespace_pids(name: str) -> list[int]:
    """Processes living in the namespace (what `ip netns pids` finds via /proc/PID/ns/net)."""
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in out.split()]


def nft(netns: str, script: str) -> None:
    """Apply an nft script atomically (one transaction) inside a namespace."""
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], stdin=script)


def enter(netns: str) -> None:
    """Move the calling thread into a named network namespace (Python 3.11 lacks os.setns)."""
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def report_ready() -> None:
    """Tell the lab that started this process that its sockets are open, then stop talking.

    The lab reads one line, ``ready``, from our stdout; later output would fill a pipe that
    nobody reads, so stdout goes to /dev/null (logs go to stderr, which is the log file).
    """
    print("ready", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def stop_processes(pids: Iterable[int], grace: float = 2.0) -> set[int]:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left. Returns the
    processes that were running: a pid seen a moment before (a short-lived ``ip`` a lab
    process ran inside a namespace, one already killed) that is gone is not counted."""
    alive = {pid for pid in pids if _running(pid)}
    running = set(alive)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        for pid in sorted(alive):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                alive.discard(pid)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.02)
            alive = {p for p in alive if _running(p)}
        if not alive:
            break
    return running


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaped or not, a zombie is done)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
