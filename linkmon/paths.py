"""Where does a link's path break, and did it change? Traceroutes per link, kept in SQLite.

:class:`PathWatch` traces a link the moment it goes down (the NOC's first question: our side,
the telco, or pusat?) and, while it is up, every ``check_every`` to learn its last known good
path and notice when that path changes (a new hop, a longer path): those changes are logged,
stored and counted (``linkmon_path_changes_total``); ``linkmon_path_hops`` is the length of
the current good path.

Traces are rate-limited per link — at most ``per_window`` per ``window`` (default 2 per 5
minutes), so a flapping link does not trace on every flap — and at most ``concurrent`` run at
once. One trace is at most 32 small packets at 20 per second (:mod:`probes.trace`), under
8 kbit/s: a 128 kbit/s kecamatan line hardly notices.

Each trace uses the protocol of the link's first probe with an IPv4 target (ICMP echo, or a
TCP SYN to the port of a TCP or HTTP probe) and its source address, so firewalls treat it as
they treat the probe. Links whose probes aim only at host names or IPv6 are not traced.

The paths live in the state database (``storage.path``) in a table of their own,
``path_traces``, written through a connection of this module: the daemon's storage schema is
untouched and ``linkmon trace`` can read the good path while the daemon runs (WAL). How a
trace compares with the good path, and how that is said, is :mod:`linkmon.pathchange`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import json
import logging
import math
import sqlite3
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from probes import Failure, ProbeSetupError
from probes.trace import TraceMode, TraceResult, TraceSpec, trace

from .clock import SYSTEM_CLOCK, Clock
from .config import Config, HttpProbe, IcmpProbe, Link, TcpProbe
from .metrics import LINK_LABELS, link_labels
from .pathchange import PathChange, PathReport, compare

log = logging.getLogger("linkmon.paths")

Tracer = Callable[[TraceSpec], Awaitable[TraceResult]]
KEEP_TRACES = 100  # per link; the newest good one is always kept

_SCHEMA = """
CREATE TABLE IF NOT EXISTS path_traces (
    id INTEGER PRIMARY KEY, link TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL,
    good INTEGER NOT NULL, change TEXT NOT NULL, trace TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS path_traces_link ON path_traces (link, id);
"""


# ------------------------------------------------------------------------------ the book


class PathBook:
    """Every link's traces in the state database: the newest, and the newest good one.

    SQLite problems are the caller's to handle (:class:`sqlite3.Error`); the daemon logs them
    and goes on probing.
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = str(path)
        if readonly:
            uri = f"{Path(path).resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(
                uri, uri=True, timeout=5, isolation_level=None, check_same_thread=False
            )
        else:
            self._db = sqlite3.connect(
                self.path, timeout=5, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # Traces are history, not alerts: a power cut may lose the last few, never the
            # file; and no fsync per trace (5 a second on a national agent).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, params: tuple[object, ...]) -> TraceResult | None:
        try:
            row = self._db.execute(sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a database no trace was ever stored in
                return None
            raise
        return None if row is None else TraceResult.from_dict(json.loads(row[0]))

    def good(self, link: str) -> TraceResult | None:
        """The newest trace of ``link`` that reached its target."""
        return self._one(
            "SELECT trace FROM path_traces WHERE link = ? AND good = 1 ORDER BY id DESC LIMIT 1",
            (link,),
        )

    def last(self, link: str) -> TraceResult | None:
        return self._one(
            "SELECT trace FROM path_traces WHERE link = ? ORDER BY id DESC LIMIT 1", (link,)
        )

    def record(self, report: PathReport) -> None:
        change = json.dumps(report.change.to_dict()) if report.change else ""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO path_traces (link, at, reason, good, change, trace) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report.link,
                    report.trace.started_at,
                    report.reason,
                    int(report.trace.reached),
                    change,
                    json.dumps(report.trace.to_dict()),
                ),
            )
            self._db.execute(
                "DELETE FROM path_traces WHERE link = ?1 AND id NOT IN "
                "(SELECT id FROM path_traces WHERE link = ?1 ORDER BY id DESC LIMIT ?2) "
                "AND id != coalesce((SELECT max(id) FROM path_traces WHERE link = ?1 "
                "AND good = 1), -1)",
                (report.link, KEEP_TRACES),
            )
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def changes(self, link: str | None = None) -> list[tuple[str, float, PathChange]]:
        """Path changes seen while the link was up, oldest first: (link, when, change)."""
        sql = "SELECT link, at, change FROM path_traces WHERE reason = 'check' AND change != ''"
        params: tuple[object, ...] = ()
        if link is not None:
            sql += " AND link = ?"
            params = (link,)
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [(str(r[0]), float(r[1]), PathChange(**json.loads(r[2]))) for r in rows]


def open_book(path: str | Path) -> PathBook | None:
    """The book in the state database at ``path``; None (logged) if SQLite refuses it, so
    traces still run and show where a path stops, only nothing is kept."""
    try:
        return PathBook(path)
    except sqlite3.Error as exc:
        log.error("%s: cannot keep link paths: %s — traces go on, in memory only", path, exc)
        return None


# ------------------------------------------------------------------------------ what to trace


def trace_spec(
    link: Link, mode: TraceMode | None = None, port: int | None = None, **options: Any
) -> TraceSpec | None:
    """The trace for a link: to its first probe's IPv4 target, in that probe's protocol
    (ICMP, or TCP to the probe's port), from its source address. None if no probe has one.
    ``mode`` and ``port`` override the protocol; ``options`` go to :class:`TraceSpec`."""
    for probe in link.probes:
        if isinstance(probe, IcmpProbe):
            host, probe_mode, probe_port = probe.target, "icmp", None
        elif isinstance(probe, TcpProbe):
            host, probe_mode, probe_port = probe.host, "tcp", probe.port
        else:
            host, probe_mode, probe_port = _http_target(probe)
        try:
            if ipaddress.ip_address(host).version != 4:
                continue
        except ValueError:
            continue
        chosen: TraceMode = mode or ("tcp" if probe_mode == "tcp" else "icmp")
        chosen_port = port if port is not None else probe_port if chosen == "tcp" else None
        return TraceSpec(host, chosen, chosen_port, source=probe.source, **options)
    return None


def _http_target(probe: HttpProbe) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(probe.url)
    return (parts.hostname or "", "tcp", parts.port or (443 if parts.scheme == "https" else 80))


# ------------------------------------------------------------------------------ metrics


class PathMetrics:
    """``linkmon_path_hops`` and ``linkmon_path_changes_total``, on the daemon's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hops = Gauge(
            "linkmon_path_hops",
            "Hops to the target on the link's last known good path.",
            LINK_LABELS,
            registry=registry,
        )
        self.changes = Counter(
            "linkmon_path_changes",
            "Path changes (another hop, another length) seen while up.",
            LINK_LABELS,
            registry=registry,
        )


# ------------------------------------------------------------------------------ the watch


@dataclass(frozen=True, slots=True)
class PathLimits:
    """How often links are traced: keep traces rare on thin links."""

    per_window: int = 2
    window: float = 300.0
    check_every: float = 1800.0
    concurrent: int = 4
    tick: float = 5.0
    # Checks while up start at most this often (per second), or as often as re-tracing every
    # link once per check_every needs: 10,000 links then cost 5.6 traces a second, not a burst
    # of 10,000 at start-up. Traces of links going down are never held back by it.
    check_rate: float = 1.0


class PathWatch:
    """Traces links on going down and now and then while up; keeps their good paths.

    The daemon calls :meth:`link_changed` on every link state transition and gives
    ``link_states`` (link id → state) so that checks run only on links that are up.
    ``on_trace`` gets every :class:`PathReport` (to put where the path stops into the
    status and the alert).
    """

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry,
        *,
        book: PathBook | None = None,
        limits: PathLimits = PathLimits(),
        tracer: Tracer = trace,
        clock: Clock = SYSTEM_CLOCK,
        link_states: Callable[[], Mapping[str, str]] = dict,
        on_trace: Callable[[PathReport], None] | None = None,
    ) -> None:
        self.limits = limits
        self.book = book
        self.metrics = PathMetrics(registry)
        self._tracer = tracer
        self._clock = clock
        self._link_states = link_states
        self._on_trace = on_trace
        self._started: dict[str, deque[float]] = {}
        self._running: dict[str, asyncio.Task[PathReport | None]] = {}
        self._waiting_down: set[str] = set()
        self._good: dict[str, TraceResult] = {}
        self._last: dict[str, PathReport] = {}
        self._semaphore = asyncio.Semaphore(limits.concurrent)
        self._checking: set[str] = set()
        self._check_queue: deque[str] = deque()
        self._due: list[tuple[float, str]] = []  # (when a check is due, link): one per link
        self._scheduled: set[str] = set()
        self._check_credit = float(limits.concurrent)
        self._loop_task: asyncio.Task[None] | None = None
        self._errors: set[str] = set()
        self._disabled = ""
        self.reconfigure(config)

    # -- what the daemon calls ------------------------------------------------------------

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._checks(), name="path checks")

    async def stop(self) -> None:
        self._check_queue.clear()
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.book is not None:
            self.book.close()

    def link_changed(self, link_id: str, state: str) -> None:
        """A link changed state: on ``down``, trace it now (or as soon as the limit allows)."""
        if state != "down":
            self._waiting_down.discard(link_id)
            return
        if not self._begin(link_id, "down"):
            self._waiting_down.add(link_id)

    def reconfigure(self, config: Config) -> None:
        """Take a new config: links that went away are forgotten (metrics too)."""
        old_labels = getattr(self, "_labels", {})
        self.config = config
        self._specs = {
            link.id: spec for link in config.links if (spec := trace_spec(link)) is not None
        }
        self._labels = {link.id: link_labels(config, link) for link in config.links}
        for link_id, labels in old_labels.items():
            if self._labels.get(link_id) != labels:
                self._forget(link_id, labels)
        for link_id in self._specs:
            if link_id not in self._good:
                good = self._stored(partial(PathBook.good, link=link_id))
                if good is not None:
                    self._good[link_id] = good
                    self._set_hops(link_id, good)
            if link_id not in self._scheduled:
                self._schedule(link_id, self._newest(link_id) + self.limits.check_every)

    def report(self, link_id: str) -> PathReport | None:
        """The link's newest trace this run, against the good path known before it."""
        return self._last.get(link_id)

    async def trace_now(self, link_id: str, reason: str = "manual") -> PathReport | None:
        """Trace a link now, within the limits; None if the limit or a running trace stops it."""
        if not self._begin(link_id, reason):
            return None
        return await self._running[link_id]

    # -- scheduling -----------------------------------------------------------------------

    def _allowed(self, link_id: str, now: float) -> bool:
        if link_id in self._running or link_id not in self._specs or self._disabled:
            return False
        started = self._started.setdefault(link_id, deque())
        while started and started[0] <= now - self.limits.window:
            started.popleft()
        return len(started) < self.limits.per_window

    def _begin(self, link_id: str, reason: str) -> bool:
        now = self._clock.time()
        if not self._allowed(link_id, now):
            return False
        self._started[link_id].append(now)
        self._running[link_id] = asyncio.create_task(
            self._run(link_id, reason), name=f"trace {link_id}"
        )
        return True

    async def _checks(self) -> None:
        clock = self._clock
        last = clock.monotonic()
        while True:
            now = clock.time()
            for link_id in sorted(self._waiting_down):
                if self._begin(link_id, "down"):
                    self._waiting_down.discard(link_id)
            elapsed, last = clock.monotonic() - last, clock.monotonic()
            self._start_checks(now, elapsed)
            await clock.sleep(self.limits.tick)

    def _start_checks(self, now: float, elapsed: float) -> None:
        """Start the most overdue checks the budget allows, never more than ``concurrent`` at
        once (a task per due link would be 10,000 tasks on a national agent's start). Links
        wait in a heap by due time, so a tick looks only at those due, not at every link."""
        limits = self.limits
        rate = max(limits.check_rate, len(self._specs) / limits.check_every)
        ceiling = max(float(limits.concurrent), 2 * rate * limits.tick)
        self._check_credit = min(self._check_credit + elapsed * rate, ceiling)
        states = self._link_states()
        while (
            self._due
            and self._due[0][0] <= now
            and len(self._check_queue) < int(self._check_credit)
        ):
            _, link_id = heapq.heappop(self._due)
            if link_id not in self._specs:
                self._scheduled.discard(link_id)
                continue
            due = self._newest(link_id) + limits.check_every
            if due > now:  # traced meanwhile (it went down, or by hand)
                heapq.heappush(self._due, (due, link_id))
            elif states.get(link_id) not in ("up", "degraded"):
                heapq.heappush(self._due, (now + limits.check_every, link_id))
            else:
                self._check_queue.append(link_id)
        self._next_checks()

    def _schedule(self, link_id: str, due: float) -> None:
        heapq.heappush(self._due, (due, link_id))
        self._scheduled.add(link_id)

    def _next_checks(self) -> None:
        while self._check_queue and len(self._checking) < self.limits.concurrent:
            link_id = self._check_queue.popleft()
            if self._begin(link_id, "check"):
                self._check_credit -= 1
                self._checking.add(link_id)
                self._running[link_id].add_done_callback(partial(self._check_done, link_id))
            else:  # over the link's own limit, or tracing already: look again next tick
                heapq.heappush(self._due, (self._clock.time() + self.limits.tick, link_id))

    def _check_done(self, link_id: str, _: object) -> None:
        self._checking.discard(link_id)
        heapq.heappush(self._due, (self._newest(link_id) + self.limits.check_every, link_id))
        self._next_checks()

    def _newest(self, link_id: str) -> float:
        """When the link was last traced (-inf: never), from this run or the stored good path."""
        last = self._last.get(link_id)
        good = self._good.get(link_id)
        return max(
            last.trace.started_at if last else -math.inf, good.started_at if good else -math.inf
        )

    # -- one trace ------------------------------------------------------------------------

    async def _run(self, link_id: str, reason: str) -> PathReport | None:
        try:
            async with self._semaphore:
                spec = self._specs.get(link_id)
                if spec is None:
                    return None
                try:
                    result = await self._tracer(spec)
                except ProbeSetupError as exc:
                    self._disabled = str(exc)
                    log.error("path traces are off: %s", exc)
                    return None
            if result.failure is Failure.AGENT:  # this host could not trace: nothing learnt
                message = "path traces fail on this host: %s (logged once per cause)"
                self._log_once(result.error, message, result.error)
                return None
            return self._learn(link_id, reason, result)
        finally:
            self._running.pop(link_id, None)

    def _learn(self, link_id: str, reason: str, result: TraceResult) -> PathReport:
        good = self._good.get(link_id)
        change = compare(good, result) if good is not None else None
        report = PathReport(link_id, reason, result, good, change)
        language = self.config.agent.language
        if reason == "down" or not result.reached:
            log.warning(
                "link %s %s: trace to %s: %s", link_id, reason, result.target, report.text(language)
            )
        elif change is not None:
            log.warning("link %s: path changed: %s", link_id, change.text(language))
            labels = self._labels.get(link_id)
            if labels is not None:
                self.metrics.changes.labels(**labels).inc()
        if result.reached:
            self._good[link_id] = result
            self._set_hops(link_id, result)
        self._last[link_id] = report
        self._stored(partial(PathBook.record, report=report))
        if self._on_trace is not None:
            self._on_trace(report)
        return report

    def _set_hops(self, link_id: str, result: TraceResult) -> None:
        labels = self._labels.get(link_id)
        if labels is not None:
            self.metrics.hops.labels(**labels).set(len(result.path))
            self.metrics.changes.labels(**labels)

    def _forget(self, link_id: str, labels: dict[str, str]) -> None:
        for store in (self._good, self._last, self._started):
            store.pop(link_id, None)
        self._waiting_down.discard(link_id)
        for metric in (self.metrics.hops, self.metrics.changes):
            with contextlib.suppress(KeyError):
                metric.remove(*(labels[name] for name in LINK_LABELS))

    def _stored(self, action: Callable[[PathBook], Any]) -> Any:
        """Run a book action (if there is a book); a database problem is logged once and
        never stops the watch."""
        if self.book is None:
            return None
        try:
            return action(self.book)
        except sqlite3.Error as exc:
            message = "%s: cannot store traces: %s — traces go on, in memory only"
            self._log_once(str(exc), message, self.book.path, exc)
            return None

    def _log_once(self, cause: str, message: str, *args: object) -> None:
        if cause not in self._errors:
            self._errors.add(cause)
            log.error(message, *args)
