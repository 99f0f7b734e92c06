"""Loading a large config in a child process, for the daemon (see ``load_config_apart``)."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError
from .loading import load_config
from .model import Config

log = logging.getLogger(__name__)

LOAD_APART_BYTES = 256 * 1024  # about 1,300 links; below it the parse's heap is small


def load_config_apart(path: str | os.PathLike[str]) -> Config:
    """``load_config`` for the daemon: a large file is loaded in a child process that hands
    back the pickled Config. libyaml builds the whole node tree before Python sees a value,
    and the heap that fragments stays with the process that parsed (80 MB at 10,000 links,
    for the daemon's whole life); the child takes it away when it exits. A small file, or
    a child that cannot run (a daemon that dropped to a user who may not run this Python) or
    whose answer this process cannot read (linkmon upgraded on disk under a running daemon:
    the pickle names classes by module path), is loaded here."""
    file = Path(path)
    try:
        large = file.stat().st_size >= LOAD_APART_BYTES
    except OSError:
        large = False  # load_config names what is wrong with the file
    loaded = _load_in_child(file) if large else None
    if isinstance(loaded, ConfigError):
        raise loaded
    return loaded if loaded is not None else load_config(file)


def _load_in_child(file: Path) -> Config | ConfigError | None:
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "from linkmon.config.apart import _load_for_parent; _load_for_parent()",
                str(file),
            ],
            capture_output=True,
            timeout=600,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot load the config in a child process, loading it here: %s", exc)
        return None
    try:
        loaded = pickle.loads(child.stdout)  # noqa: S301 - our own child's answer
    except Exception as exc:  # noqa: BLE001 - e.g. a child of a newer install, other classes
        log.warning("cannot read what the child process loaded, loading it here: %r", exc)
        return None
    if not isinstance(loaded, Config | ConfigError):
        log.warning("the child process answered a %s, loading the config here", type(loaded))
        return None
    return loaded


def _load_for_parent() -> None:
    """The child of ``load_config_apart``: the loaded Config, or the ConfigError, pickled."""
    try:
        loaded: Config | ConfigError = load_config(sys.argv[1])
    except ConfigError as exc:
        loaded = exc
    sys.stdout.buffer.write(pickle.dumps(loaded, pickle.HIGHEST_PROTOCOL))
