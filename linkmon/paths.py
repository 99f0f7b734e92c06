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
untouched and ``linkmon trace`` can read the good path while the daemon runs (WAL).
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
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry, Counter, Gauge

from probes import Failure, ProbeSetupError
from probes.trace import MODES, NO_ROUTE, Reply, TraceMode, TraceResult, TraceSpec, trace

from .alerts.text import date
from .clock import SYSTEM_CLOCK, Clock
from .config import Config, HttpProbe, IcmpProbe, Link, TcpProbe
from .history import config_or_exit
from .metrics import LINK_LABELS, link_labels

log = logging.getLogger("linkmon.paths")

Tracer = Callable[[TraceSpec], Awaitable[TraceResult]]
KEEP_TRACES = 100  # per link; the newest good one is always kept

_SCHEMA = """
CREATE TABLE IF NOT EXISTS path_traces (
    id INTEGER PRIMARY KEY, link TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL,
    good INTEGER NOT NULL, change TEXT NOT NULL, trace TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS path_traces_link ON path_traces (link, id);
"""

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "reached": "sampai di {target} pada hop {hop}",
        "last": "jawaban terakhir dari hop {hop}, {address}",
        "silent": "tidak ada hop yang menjawab",
        "no_route": "tidak ada rute dari sini ke {target}",
        "changed": "jalur berbeda dari jalur baik terakhir mulai hop {hop}: sebelumnya {was}, "
        "sekarang {now}",
        "hops": " ({was} → {now} hop)",
        "nothing": "tidak ada",
        "no_answer": "tidak menjawab",
        "same": "sama dengan jalur baik terakhir",
        "no_good": "belum ada jalur baik yang tercatat",
        "title": "Trace {link} ({office} – {peer}, {network}): {mode} ke {target} dari {source}",
        "header": "hop  sekarang                rtt        jalur baik terakhir ({when})",
        "header_no_good": "hop  sekarang                rtt",
        "time_exceeded": "TTL habis",
        "echo_reply": "balasan echo",
        "port_unreachable": "port tertutup",
        "syn_ack": "SYN-ACK",
        "reset": "RST",
        "net_unreachable": "jaringan tak terjangkau",
        "host_unreachable": "host tak terjangkau",
        "prohibited": "diblokir",
        "unreachable": "tak terjangkau",
    },
    "en": {
        "reached": "reached {target} at hop {hop}",
        "last": "last answer from hop {hop}, {address}",
        "silent": "no answer from any hop",
        "no_route": "no route from here to {target}",
        "changed": "path differs from the last good one from hop {hop}: was {was}, now {now}",
        "hops": " ({was} → {now} hops)",
        "nothing": "nothing",
        "no_answer": "no answer",
        "same": "same as the last good path",
        "no_good": "no good path recorded yet",
        "title": "Trace {link} ({office} – {peer}, {network}): {mode} to {target} from {source}",
        "header": "hop  now                     rtt        last good path ({when})",
        "header_no_good": "hop  now                     rtt",
        "time_exceeded": "TTL exceeded",
        "echo_reply": "echo reply",
        "port_unreachable": "port unreachable",
        "syn_ack": "SYN-ACK",
        "reset": "RST",
        "net_unreachable": "network unreachable",
        "host_unreachable": "host unreachable",
        "prohibited": "prohibited",
        "unreachable": "unreachable",
    },
}


# ------------------------------------------------------------------------------ comparing


@dataclass(frozen=True, slots=True)
class PathChange:
    """Where a path parts from the known good one: the first differing hop."""

    hop: int
    was: str | None
    now: str | None
    hops_was: int
    hops_now: int

    def text(self, language: str) -> str:
        words = _WORDS[language]
        was = self.was or words["nothing"]
        now = self.now or words["no_answer"]
        text = words["changed"].format(hop=self.hop, was=was, now=now)
        if self.hops_was != self.hops_now:
            text += words["hops"].format(was=self.hops_was, now=self.hops_now)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "was": self.was,
            "now": self.now,
            "hops_was": self.hops_was,
            "hops_now": self.hops_now,
        }


def compare(good: TraceResult, now: TraceResult) -> PathChange | None:
    """How ``now`` differs from ``good`` (a trace that reached its target), or None.

    A hop that stayed silent in either trace matches any address (routers drop some
    traceroute answers); a different address, or a path of another length, is a change.
    """
    was, new = good.path, now.path
    for index, (a, b) in enumerate(zip(was, new, strict=False)):
        if a is not None and b is not None and a != b:
            return PathChange(index + 1, a, b, len(was), len(new))
    if len(was) == len(new) and now.reached:
        return None
    index = min(len(was), len(new))
    return PathChange(
        index + 1,
        was[index] if index < len(was) else None,
        new[index] if index < len(new) else None,
        len(was),
        len(new),
    )


def where(result: TraceResult, language: str) -> str:
    """Where the path stops, in the agent's language: ``jawaban terakhir dari hop 3, ...``."""
    words = _WORDS[language]
    if result.failure is Failure.AGENT:
        return result.error
    last = result.last_answer
    if last is None:
        if result.error.startswith(NO_ROUTE):
            return words["no_route"].format(target=result.target)
        return result.error or words["silent"]
    if result.reached:
        return words["reached"].format(target=result.target, hop=last.ttl)
    text = words["last"].format(hop=last.ttl, address=last.address)
    if last.reply is not None and last.reply is not Reply.TIME_EXCEEDED:
        text += f" ({words[last.reply.value]})"
    return text


@dataclass(frozen=True, slots=True)
class PathReport:
    """One trace of a link, set against the good path known before it."""

    link: str
    reason: str  # "down" (the link went down), "check" (a check while up), "manual"
    trace: TraceResult
    good: TraceResult | None
    change: PathChange | None

    def text(self, language: str) -> str:
        """``jawaban terakhir dari hop 1, 198.19.0.1; jalur berbeda ... mulai hop 2: ...``."""
        parts = [where(self.trace, language)]
        if self.change is not None:
            parts.append(self.change.text(language))
        return "; ".join(parts)

    def to_dict(self, language: str) -> dict[str, Any]:
        """For the status document and alert annotations."""
        return {
            "link": self.link,
            "reason": self.reason,
            "at": self.trace.started_at,
            "mode": self.trace.mode,
            "target": self.trace.target,
            "reached": self.trace.reached,
            "hops": len(self.trace.path),
            "path": list(self.trace.path),
            "good_path": list(self.good.path) if self.good else None,
            "change": self.change.to_dict() if self.change else None,
            "text": self.text(language),
        }


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


# ------------------------------------------------------------------------------ `linkmon trace`


def render(
    config: Config, link: Link, result: TraceResult, good: TraceResult | None, language: str
) -> str:
    """The trace beside the last good path, for a terminal."""
    words = _WORDS[language]
    office, peer = config.site(link.from_site), config.site(link.to_site)
    port = f":{result.port}" if result.port else ""
    lines = [
        words["title"].format(
            link=link.id,
            office=office.name,
            peer=peer.name,
            network=link.network,
            mode=result.mode,
            target=f"{result.target}{port}",
            source=result.source or "?",
        )
    ]
    if good is not None:
        when = date(good.started_at, office.timezone, language)
        lines.append(words["header"].format(when=when))
    else:
        lines.append(words["header_no_good"])
    for index in range(max(len(result.hops), len(good.path) if good else 0)):
        hop = result.hops[index] if index < len(result.hops) else None
        address = (hop.address or "*") if hop else ""
        if hop and hop.reply not in (None, Reply.TIME_EXCEEDED, Reply.ECHO_REPLY):
            address += f" !{words[hop.reply.value]}" if hop.address != result.target else ""
        rtt = f"{hop.rtt * 1000:.1f} ms" if hop and hop.rtt is not None else ""
        row = f"{index + 1:>3}  {address:<23} {rtt:<10}"
        if good is not None:
            row += f" {(good.path[index] or '*') if index < len(good.path) else ''}"
        lines.append(row.rstrip())
    summary = where(result, language)
    if good is None:
        summary += f"; {words['no_good']}"
    else:
        change = compare(good, result)
        summary += f"; {change.text(language) if change else words['same']}"
    lines.append(summary[0].upper() + summary[1:] + ".")
    return "\n".join(lines)


def run_trace(
    config: Config,
    link_id: str,
    mode: str | None,
    port: int | None,
    max_hops: int,
    as_json: bool,
    language: str | None,
) -> int:
    """`linkmon trace` without the command line: 0 reached, 1 not reached, 2 usage error."""
    lang = language or config.agent.language
    if lang not in _WORDS:
        return _usage(f"--lang must be one of {', '.join(_WORDS)}, not {lang!r}")
    try:
        link = config.link(link_id)
    except KeyError:
        known = ", ".join(k.id for k in config.links)
        return _usage(f"unknown link {link_id!r}; links: {known}")
    chosen = next((m for m in MODES if m == mode), None)
    if mode is not None and chosen is None:
        return _usage(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    try:
        spec = trace_spec(link, chosen, port, max_hops=max_hops)
    except ValueError as exc:
        return _usage(str(exc))
    if spec is None:
        return _usage(f"link {link.id} has no probe with an IPv4 address to trace towards")
    try:
        result = asyncio.run(trace(spec))
    except ProbeSetupError as exc:
        return _usage(str(exc))
    good = None
    database = config.storage.path
    if str(database) != ":memory:" and Path(database).exists():
        with contextlib.suppress(sqlite3.Error):
            book = PathBook(database, readonly=True)
            try:
                good = book.good(link.id)
            finally:
                book.close()
    if as_json:
        change = compare(good, result) if good else None
        doc = {
            "link": link.id,
            "trace": result.to_dict(),
            "where": where(result, lang),
            "good": good.to_dict() if good else None,
            "change": change.to_dict() if change else None,
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(render(config, link, result, good, lang))
    return 0 if result.reached else 1


def _usage(message: str) -> int:
    typer.echo(f"linkmon trace: {message}", err=True)
    return 2


def trace_command(
    link: Annotated[str, typer.Argument(help="Link id from the config.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="linkmon YAML config file.")],
    mode: Annotated[
        str | None,
        typer.Option(help="icmp, udp or tcp; default: the protocol of the link's first probe."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Destination port (udp, tcp).")] = None,
    max_hops: Annotated[int, typer.Option(help="Give up after this many hops.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lang: Annotated[
        str | None, typer.Option(help="id or en; default: the agent's language.")
    ] = None,
) -> None:
    """Trace a link's path now and show it beside the last good path linkmon knows.

    Exit code: 0 the target answered, 1 the path is broken, 2 usage or set-up error.
    """
    raise typer.Exit(run_trace(config_or_exit(config), link, mode, port, max_hops, as_json, lang))
