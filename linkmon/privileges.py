"""The service user (``linkmon run --user U``): checked as U before root is given up, then become.

Python imports code on demand long after start-up (``encodings.idna`` at the first name
lookup, uvicorn's HTTP protocol at the first connection) and a reload reads the config file
again: a user that cannot read the installation or the config would break probes one by one,
later, as tracebacks. So what U will need is tested *as U* (a shell's ``test``, run with U's
uid and gid: the kernel's answer, ACLs and every folder on the way included) before anything
is opened, and every problem goes into one line that names its fix.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# One shell runs every test: each argument is "MODE:PATH" (r, rx, x or wx); those U fails
# are printed back, one a line.
_ACCESS_SCRIPT = """
for want; do
  mode=${want%%:*}; path=${want#*:}
  case $mode in
    r) test -r "$path" ;;
    rx) test -r "$path" -a -x "$path" ;;
    x) test -x "$path" ;;
    wx) test -w "$path" -a -x "$path" ;;
  esac || printf '%s\\n' "$want"
done
"""


log = logging.getLogger("linkmon")


class StartRefused(Exception):
    """Why linkmon cannot start as the service user: one line, the fix included."""


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int

    @property
    def group(self) -> str:
        try:
            return grp.getgrgid(self.gid).gr_name
        except KeyError:
            return str(self.gid)


def service_user(name: str) -> ServiceUser | None:
    """The user to become, or None when linkmon already runs as that user."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise StartRefused(f"--user {name}: no such user") from None
    if os.geteuid() != 0:
        if os.geteuid() == entry.pw_uid:
            return None
        raise StartRefused(
            f"--user {name} needs linkmon started as root (it runs as uid {os.geteuid()}); "
            f"without root, start it as {name} directly"
        )
    if entry.pw_uid == 0:
        raise StartRefused(f"--user {name}: that is root; name an unprivileged user")
    return ServiceUser(name, entry.pw_uid, entry.pw_gid)


def code_paths() -> list[Path]:
    """Where the code this process runs comes from: each ``sys.path`` folder a loaded module
    lives in (the standard library, site-packages), the folder of each loaded package that
    lives elsewhere (linkmon itself, installed editable from a checkout), and the Python
    executable (a large config is loaded in a child process)."""
    entries = sorted(
        {os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)}, key=len, reverse=True
    )
    found: set[str] = set()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        file = os.path.abspath(file)
        entry = next((e for e in entries if file.startswith(e + os.sep)), None)
        if entry is not None:
            found.add(entry)
        elif "." not in name:
            found.add(os.path.dirname(file))
    return [Path(p) for p in sorted(found)]


def check_access(user: ServiceUser, config_file: Path, storage: Path | None) -> None:
    """Raise :class:`StartRefused` naming everything ``user`` could not do once root is gone:
    read linkmon's code, read the config (a reload reads it again), write the storage folder.
    A storage folder root cannot write either is left alone: that is a read-only volume, which
    the daemon survives (state in memory) and reports itself."""
    config_file = config_file.absolute()
    wanted = [("rx", path) for path in code_paths()]
    wanted.append(("x", Path(os.path.realpath(sys.executable))))
    wanted.append(("r", config_file))
    folder = storage.absolute().parent if storage is not None else None
    if folder is not None and os.access(folder, os.W_OK | os.X_OK):
        wanted.append(("wx", folder))
    failed = set(_fails_as(user, [f"{mode}:{path}" for mode, path in wanted]))
    if not failed:
        return
    code = [path for mode, path in wanted if mode in ("rx", "x") and f"{mode}:{path}" in failed]
    problems = []
    if code:
        problems.append(
            f"cannot read {', '.join(map(str, _outermost(code)))} (the code linkmon runs): "
            f"install Python and linkmon where {user.name} can read them (not under /root or "
            f"another private folder)"
        )
    if f"r:{config_file}" in failed:
        problems.append(
            f"cannot read the config file {config_file} (a reload reads it again): make it "
            f"readable by {user.name} (chgrp {user.group} FILE; chmod g+r FILE) and the "
            f"folders above it searchable"
        )
    if folder is not None and f"wx:{folder}" in failed:
        problems.append(
            f"cannot write the storage folder {folder}: chown {user.name} {folder}, or set "
            f"storage.path to a folder {user.name} owns"
        )
    raise StartRefused(f"--user {user.name} " + "; ".join(problems))


def _fails_as(user: ServiceUser, wanted: list[str]) -> list[str]:
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", _ACCESS_SCRIPT, "sh", *wanted],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise StartRefused(f"--user {user.name}: cannot check what it may read: {exc}") from None
    return done.stdout.splitlines()


def _outermost(paths: list[Path]) -> list[Path]:
    """Each path once, and none inside another one listed (the parent says it all)."""
    kept: list[Path] = []
    for path in sorted(set(paths)):
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return kept


def drop_privileges(user: ServiceUser) -> None:
    """Become ``user`` for good once the raw ICMP sockets and the listener are open.

    The open sockets keep working; nothing else of root's stays (groups, capabilities), and
    the switch is checked: if root could be regained, linkmon refuses to go on.
    """
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    try:
        os.setuid(0)
    except PermissionError:
        log.info("dropped privileges to %s (uid %d, gid %d)", user.name, user.uid, user.gid)
        return
    raise StartRefused(f"could not drop root privileges to {user.name}")
