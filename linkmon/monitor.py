"""Where a probe result becomes state, metrics, stored history and alerts.

The state machine (:mod:`linkmon.state`) is pure; this module gives it the clock and the
I/O: each step's :class:`~linkmon.state.Changes` go to storage and the outbox in one
transaction, then to the metrics. Storage failing (full disk, read-only directory) is logged
once per cause and never stops probing or alerting: alerts are then held in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from probes import ProbeResult

from .alerts.outbox import Outbox
from .alerts.receivers import build_receivers
from .config import Config, Link
from .metrics import Metrics, link_labels, site_labels
from .paths import PathWatch, open_book
from .state import Changes, LinkSnapshot, Network, ServiceStatus
from .storage import Storage, StorageError
from .summary import summarize

log = logging.getLogger("linkmon")

TICK = 1.0  # maintenance windows, flap damping and roll-ups move with time alone
SAVE_EVERY = 60.0  # per-probe counters to disk (transitions are stored as they happen)
SAVE_SLICE = 50  # links per write: a few milliseconds of the event loop each
SERVICE_METRIC = {"available": 1.0, "degraded": 0.5, "unavailable": 0.0}


class Monitor:
    def __init__(
        self, config: Config, metrics: Metrics, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self._storage_errors: set[str] = set()
        self.storage = self._open_storage(config)
        now = clock()
        restored: dict[str, LinkSnapshot] = {}
        firing = []
        if self.storage is not None:
            try:
                restored = self.storage.load_links()
                firing = self.storage.load_firing()
            except StorageError as exc:
                self._storage_failed(exc)
        self.network = Network(config, now, restored=restored, firing=firing)
        self.outbox = Outbox(
            build_receivers(config.alerting, external_url=f"http://{config.server.listen}/"),
            self.storage,
            firing=self.network.firing,
            max_entries=config.alerting.outbox_max,
            on_delivery=self._delivered,
        )
        self.paths = PathWatch(
            config,
            metrics.registry,
            book=open_book(config.storage.path),
            link_states=lambda: self._states,
        )
        # link id -> state as last published; the path checks read it every second, and a
        # full network snapshot for that cost 15 % of a core at 10,000 links
        self._states: dict[str, str] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._probe_labels: dict[tuple[str, int], dict[str, str]] = {}
        self._index(config)
        self._tasks: list[asyncio.Task[None]] = []
        self._services_stale = False
        self._publish_all()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._apply(self.network.tick(self._clock()))
        self._tasks = [
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self._ticker(), name="state ticker"),
        ]
        await self.paths.start()

    async def stop(self) -> None:
        await self.paths.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._save_links()
        if self.storage is not None:
            self.storage.close()

    async def _ticker(self) -> None:
        last_save = self._clock()
        while True:
            await asyncio.sleep(TICK)
            now = self._clock()
            self._apply(self.network.tick(now))
            if self._services_stale:
                self._services_stale = False
                self._publish_services()
            for receiver, count in self.outbox.queued().items():
                self.metrics.alerts_queued.labels(self.metrics.agent, receiver).set(count)
            if now - last_save >= SAVE_EVERY:
                await self._save_links_in_slices()
                last_save = now

    # -- the data path ---------------------------------------------------------------------

    def observe(self, link_id: str, index: int, result: ProbeResult, at: float) -> None:
        labels = self._probe_labels.get((link_id, index))
        if labels is None:  # a result of a probe a reload removed
            return
        self.metrics.observe_probe(labels, result)
        self._apply(self.network.observe(link_id, index, result, at))

    def _apply(self, changes: Changes) -> None:
        if not changes:
            return
        now = self._clock()
        try:
            self.outbox.commit(changes, now)
        except StorageError as exc:
            self._storage_failed(exc)
        for transition in changes.transitions:
            self.paths.link_changed(transition.link, transition.new.value)
            # The first verdict on each link is news to nobody: 10,000 warnings at start-up
            log.log(
                logging.INFO if transition.old.value == "unknown" else logging.WARNING,
                "link %s: %s -> %s (%s) %s",
                transition.link,
                transition.old.value,
                transition.new.value,
                transition.cause,
                transition.detail,
            )
        changed = {t.link for t in changes.transitions}
        for snapshot in changes.links:
            self._publish_link(snapshot, changed=snapshot.link in changed)
        if changes.transitions or changes.forgotten:
            # Recomputing every office's path costs ms at national scale: once per tick.
            self._services_stale = True

    def reconfigure(self, config: Config) -> None:
        old_probes = dict(self._probe_labels)
        old_links = dict(self._labels)
        self.config = config
        self.network.reconfigure(config, self._clock())
        self.paths.reconfigure(config)
        self.outbox.reconfigure(
            build_receivers(config.alerting, external_url=f"http://{config.server.listen}/")
        )
        self._index(config)
        self.metrics.forget(
            [labels for key, labels in old_probes.items() if self._probe_labels.get(key) != labels],
            [labels for key, labels in old_links.items() if self._labels.get(key) != labels],
        )
        self._apply(self.network.tick(self._clock()))
        self._publish_all()

    # -- metrics ---------------------------------------------------------------------------

    def _index(self, config: Config) -> None:
        self._labels = {link.id: link_labels(config, link) for link in config.links}
        self._probe_labels = {
            (link.id, i): {
                **self._labels[link.id],
                "kind": probe.kind,
                "target": probe.target_label,
            }
            for link in config.links
            for i, probe in enumerate(link.probes)
        }

    def _publish_all(self) -> None:
        self._states = {}
        for snapshot in self.network.snapshot().values():
            self._publish_link(snapshot, changed=False)
        self._publish_services()
        self.metrics.set_sites(site_labels(self.config, site) for site in self.config.sites)
        kinds = {probe.kind for link in self.config.links for probe in link.probes}
        for kind in kinds:
            self.metrics.probe_errors.labels(self.metrics.agent, kind)
        for receiver in self.config.alerting.receivers:
            self.metrics.alerts_queued.labels(self.metrics.agent, receiver.name)
            for result in ("success", "retry", "dropped"):
                self.metrics.alert_deliveries.labels(self.metrics.agent, receiver.name, result)

    def _publish_link(self, snapshot: LinkSnapshot, changed: bool) -> None:
        self._states[snapshot.link] = snapshot.state.value
        labels = self._labels.get(snapshot.link)
        if labels is not None:
            self.metrics.set_link(
                labels,
                snapshot.state.value,
                snapshot.since,
                snapshot.flapping,
                snapshot.maintenance is not None,
                changed,
            )

    def _publish_services(self) -> None:
        for site, status in self.network.service().items():
            self.metrics.set_service(
                site,
                self.config.kabupaten_of(site) or "",
                SERVICE_METRIC.get(status.availability.value),
            )

    def _delivered(self, receiver: str, result: str) -> None:
        self.metrics.alert_deliveries.labels(self.metrics.agent, receiver, result).inc()

    # -- storage ---------------------------------------------------------------------------

    def _open_storage(self, config: Config) -> Storage | None:
        try:
            return Storage(config.storage.path)
        except StorageError as exc:
            self._storage_failed(exc)
            return None

    def _save_links(self, link_ids: Iterable[str] | None = None) -> None:
        if self.storage is None:
            return
        try:
            self.storage.save_links(self.network.snapshot(link_ids).values(), self._clock())
        except StorageError as exc:
            self._storage_failed(exc)

    async def _save_links_in_slices(self) -> None:
        """Saving 10,000 links at once held the event loop 0.4 s, so every probe round due
        meanwhile started late; in slices, with the loop free in between, none waits long."""
        link_ids = list(self._labels)
        for start in range(0, len(link_ids), SAVE_SLICE):
            self._save_links(link_ids[start : start + SAVE_SLICE])
            await asyncio.sleep(0)

    def _storage_failed(self, exc: StorageError) -> None:
        if str(exc) not in self._storage_errors:
            self._storage_errors.add(str(exc))
            log.error("%s — probing and alerting go on; state is kept in memory only", exc)

    # -- the status document ---------------------------------------------------------------

    def _path_text(self, link_id: str) -> str | None:
        """Where the trace taken when the link went down stopped."""
        report = self.paths.report(link_id)
        if report is None or report.reason != "down":
            return None
        return report.text(self.config.agent.language)

    def status(self, version: str, started_at: float) -> dict[str, Any]:
        config = self.config
        snapshots = self.network.snapshot()
        services = self.network.service()
        sites = [_site_doc(config, site.id, services) for site in config.sites]
        links = [
            _link_doc(config, link, snapshots[link.id], self._path_text(link.id))
            for link in config.links
            if link.id in snapshots
        ]
        windows = _maintenance_docs(config, self._clock())
        outages = [
            {
                "link": doc["id"],
                "state": doc["state"],
                "since": doc["since"],
                "cause": doc["cause"] or "",
                "alerted": _alerted(self.network, doc["id"]),
            }
            for doc in links
            if doc["state"] in ("down", "unreachable")
        ]
        agent = config.agent
        return {
            "agent": {
                "name": agent.name,
                "timezone": agent.timezone,
                "zone_abbr": _zone_abbr(agent.timezone),
                "language": agent.language,
                "version": version,
                "started_at": _iso(started_at),
            },
            "generated_at": _iso(self._clock()),
            "summary": summarize(sites, links, windows),
            "sites": sites,
            "links": links,
            "outages": outages,
            "maintenance": windows,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


def _zone_abbr(timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(timezone)).tzname() or timezone


def _site_doc(
    config: Config, site_id: str, services: Mapping[str, ServiceStatus]
) -> dict[str, Any]:
    site = config.site(site_id)
    timezone = site.timezone or config.agent.timezone
    status = services.get(site_id)
    service = (
        None
        if site.kind in ("pusat", "drc") or status is None
        else {"state": status.availability.value, "via": list(status.via), "reason": status.reason}
    )
    return {
        "id": site.id,
        "kind": site.kind,
        "name": site.name or site.id,
        "parent": site.parent,
        "kabupaten": config.kabupaten_of(site.id),
        "timezone": timezone,
        "zone_abbr": _zone_abbr(timezone),
        "service": service,
    }


def _link_doc(config: Config, link: Link, snap: LinkSnapshot, path: str | None) -> dict[str, Any]:
    maintenance = None
    if snap.maintenance is not None:
        window = config.in_maintenance(link.id, datetime.now(UTC))
        until = _window_end(config, link.id, window)
        maintenance = {"reason": snap.maintenance, "until": until}
    return {
        "id": link.id,
        "from": link.from_site,
        "to": link.to_site,
        "network": link.network,
        "state": snap.state.value,
        "since": _iso(snap.since),
        "cause": snap.cause or None,
        "detail": snap.detail,
        "flapping": snap.flapping,
        "maintenance": maintenance,
        "depends_on": list(link.depends_on),
        "unreachable_via": snap.upstream[0] if snap.upstream else None,
        "path": path if snap.state.value == "down" else None,
        "rtt_seconds": snap.rtt,
        "loss": snap.loss,
        "probes": [
            {
                "kind": p.kind,
                "target": p.target,
                "success": p.success,
                "failure": p.failure,
                "detail": p.detail,
                "duration_seconds": p.duration,
                "loss": p.loss,
                "at": _iso_or_none(p.last_at),
            }
            for p in snap.probes
        ],
    }


def _window_end(config: Config, link_id: str, window: object) -> str | None:
    now = datetime.now(UTC)
    for start, end, found in config.maintenance_periods(link_id, now, now):
        if found is window and start <= now <= end:
            return end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _maintenance_docs(config: Config, now_ts: float) -> list[dict[str, Any]]:
    now = datetime.fromtimestamp(now_ts, UTC)
    docs = []
    for link in config.links:
        for start, end, window in config.maintenance_periods(link.id, now, now):
            if start <= now <= end:
                docs.append(
                    {
                        "links": list(window.links),
                        "sites": list(window.sites),
                        "reason": window.reason or "",
                        "start": _iso(start.timestamp()),
                        "end": _iso(end.timestamp()),
                    }
                )
    unique = {tuple(sorted((k, str(v)) for k, v in d.items())): d for d in docs}
    return list(unique.values())


def _alerted(network: Network, link_id: str) -> bool:
    return any(alert.labels.get("link") == link_id for alert in network.firing())
