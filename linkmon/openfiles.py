"""The process's open-file limit, and how it is shared between probing and the web side.

Every probe in flight, every path trace, the SQLite files, the alert outbox and every HTTP
connection of a client hold a file descriptor, all under one RLIMIT_NOFILE. When a client
held 3,000 idle connections against a daemon at the usual soft limit of 1,024, a TCP probe to
a healthy target failed with EMFILE and its link was paged as down. So the soft limit is
raised to the hard one at start, and the web side gets only what is left once probing has
its reserve: the limit less what is open at start less :func:`probe_reserve`.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger("linkmon")

# What one path trace holds at most (scapy's send and receive sockets, a pipe), and how many
# run at once (linkmon.paths.PathLimits.concurrent).
TRACE_FILES = 3
TRACES_AT_ONCE = 4
STORAGE_FILES = 12  # the state and the trace databases: each file, -wal, -shm, a temp file
ICMP_OPENED_LATER = 4  # engines for host names, opened on first use (one per family, bound)
MARGIN = 64  # what no count above foresees (a log file reopened, a TLS library's random)
# The web side never holds fewer (it must answer /healthz) nor more (a status page, a few
# scrapers and `linkmon status` need dozens) connections than this.
WEB_MIN = 8
WEB_MAX = 1024


_EXHAUSTED = {
    errno.EMFILE: "fds",
    errno.ENFILE: "fds",
    errno.ENOBUFS: "buffers",
    errno.ENOMEM: "memory",
}


def exhausted_resource(error: int | None) -> str | None:
    """What ran out when a call failed with ``error`` (the ``resource`` label of
    ``linkmon_agent_resource_exhausted_total``), or None if it is not a want of resources."""
    return _EXHAUSTED.get(error or 0)


def raise_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("open files: cannot raise the soft limit %d to %d: %s", soft, hard, exc)
            return soft
        log.info("open files: soft limit raised from %d to the hard limit %d", soft, hard)
        return hard
    log.info("open files: limit %d", soft)
    return soft


def current_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def in_use() -> int:
    """File descriptors open in this process now."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:
        return 0


def probe_reserve(config: Config, *, probes_in_flight: int, lookups_at_once: int) -> int:
    """File descriptors probing, tracing, storage and alerting may need at once, beyond what
    is open at start: a socket per TCP or HTTP probe in flight (the scheduler runs at most
    ``probes_in_flight``), one per name lookup running, each path trace's sockets, the SQLite
    files, two connections per receiver URL, and a margin."""
    kinds = Counter(probe.kind for link in config.links for probe in link.probes)
    sockets = min(kinds["tcp"] + kinds["http"], probes_in_flight)
    receiver_urls = sum(len(receiver.urls) for receiver in config.alerting.receivers)
    return (
        sockets
        + lookups_at_once
        + TRACES_AT_ONCE * TRACE_FILES
        + STORAGE_FILES
        + 2 * receiver_urls
        + ICMP_OPENED_LATER
        + MARGIN
    )


@dataclass(frozen=True)
class FileBudget:
    """How the open-file limit is shared: what the web side may use for connections."""

    limit: int
    open_at_start: int
    probe_reserve: int

    @property
    def web_connections(self) -> int:
        left = self.limit - self.open_at_start - self.probe_reserve
        return max(WEB_MIN, min(WEB_MAX, left))

    @property
    def too_small(self) -> bool:
        """The limit leaves the web side less than its minimum: probing may run short."""
        return self.limit - self.open_at_start - self.probe_reserve < WEB_MIN
