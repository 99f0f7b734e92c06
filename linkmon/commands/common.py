"""What every command that reads the config or the state database shares.

Free of typer, so the daemon's front door (:mod:`.run`) uses the same config errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ..config import Config, ConfigError, load_config
from ..storage import Storage, StorageError


class UsageError(Exception):
    """A command-line value is wrong; the message names it and what is expected."""


def config_or_exit(path: Path, load: Callable[[Path], Config] = load_config) -> Config:
    """The config, or exit 2 with every error listed (as ``check-config`` does)."""
    try:
        return load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def open_storage(config: Config) -> Storage:
    """The state database, read-only; StorageError (with the fix) if it cannot be read."""
    if str(config.storage.path) == ":memory:":
        raise StorageError("storage.path is :memory: — nothing is kept to report on")
    return Storage(config.storage.path, readonly=True)


def local(ts: float, timezone: str) -> str:
    """``2026-11-03 08:12 WITA``: sortable, and in the office's own zone."""
    moment = datetime.fromtimestamp(ts, ZoneInfo(timezone))
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"
