"""linkmon's code staged where another user can read it, for tests that run it as ``nobody``.

A checkout may sit where only root can read (root's home, any ``mktemp -d`` folder: 0700), and
so may its ``.venv``: code run as nobody from there cannot even be imported. :func:`staged`
copies exactly what nobody needs into a fresh temporary folder every user can read: the
``linkmon`` and ``probes`` packages of this checkout, the installed distributions they need
to run (linkmon's requirements and theirs, without the test extras) and any helper script a
test names. It picks a Python of this version that nobody may run (the one the venv was made
from, or the system's), and removes the folder afterwards. ``readable=False`` stages the
same into a folder only root can read: an installation the service user cannot read.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.loopback import AS_NOBODY, readable_by_nobody

ROOT = Path(__file__).resolve().parents[2]
OWN_PACKAGES = ("linkmon", "probes")


@dataclass(frozen=True)
class Staged:
    """A staged installation: run its code with :attr:`python` and :attr:`env`."""

    root: Path
    python: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(self.root),
            "PYTHONNOUSERSITE": "1",
        }

    @property
    def linkmon(self) -> list[str]:
        """The ``linkmon`` command, as its console script runs it (``-P``: never from the
        current folder, which may be the checkout)."""
        (entry,) = importlib.metadata.entry_points(group="console_scripts", name="linkmon")
        module, _, function = entry.value.partition(":")
        return [self.python, "-P", "-c", f"from {module} import {function}; {function}()"]

    def run(
        self, args: Sequence[str], *, user: str = "nobody", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` as ``user`` (uid and gid; no other group), from ``/``."""
        return subprocess.run(
            [*nobody_prefix(user), self.python, "-P", *args],
            cwd="/",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def nobody_prefix(user: str) -> list[str]:
    return AS_NOBODY if user == "nobody" else ["setpriv", f"--reuid={user}", "--clear-groups"]


def python_nobody_can_run() -> str | None:
    """An interpreter of this Python's version that nobody can run with its standard library:
    the one the venv was made from if nobody may read it, else the system's."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    stdlib = sysconfig.get_paths()["stdlib"]
    candidates = [(base, stdlib), (f"/usr/bin/python{version}", f"/usr/lib/python{version}")]
    for python, library in candidates:
        if Path(python).exists() and readable_by_nobody(python) and readable_by_nobody(library):
            return python
    return None


def _runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The distributions linkmon needs to run: its requirements and theirs, no extras."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = ["linkmon"]
    while todo:
        name = todo.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement of another platform or Python (colorama, exceptiongroup)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return [dist for key, dist in found.items() if key != "linkmon"]


def _copy(source: Path, target: Path) -> None:
    """A hard link where the file is readable by all already (thousands of files: 50 times
    faster than copying here), else a copy made readable; the modification time is kept
    either way, so the cached bytecode stays valid."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = source.stat().st_mode
    if mode & stat.S_IROTH:
        with contextlib.suppress(OSError):  # another file system: copy
            os.link(source, target)
            return
    shutil.copy2(source, target)
    target.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


@contextlib.contextmanager
def staged(helpers: Sequence[Path] = (), *, readable: bool = True) -> Iterator[Staged]:
    """Stage linkmon, what it needs and ``helpers`` (copied to the top of the folder) in a
    temporary folder that every user (``readable``) or only root can read."""
    python = python_nobody_can_run()
    if python is None:
        raise RuntimeError(
            f"no Python {sys.version_info.major}.{sys.version_info.minor} here that nobody "
            f"may run (install python3 from Debian)"
        )
    root = Path(tempfile.mkdtemp(prefix="linkmon-staged-"))
    try:
        for dist in _runtime_distributions():
            for file in dist.files or []:
                if not str(file).startswith(".."):  # scripts in bin/: not needed
                    source = Path(str(dist.locate_file(file)))
                    if source.is_file():
                        _copy(source, root / file)
        for package in OWN_PACKAGES:
            for source in (ROOT / package).rglob("*"):
                if source.is_file():
                    _copy(source, root / source.relative_to(ROOT))
        for helper in helpers:
            _copy(helper, root / helper.name)
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        if not readable:
            root.chmod(0o700)
        elif not readable_by_nobody(str(root / "linkmon")):
            raise RuntimeError(
                f"{root} is not readable by nobody: is TMPDIR ({tempfile.gettempdir()}) "
                f"inside a private folder? Point it at a folder every user can search"
            )
        yield Staged(root, python)
    finally:
        shutil.rmtree(root, ignore_errors=True)
