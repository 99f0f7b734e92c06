"""Where a probe result becomes state, metrics, stored history and alerts.

The state machine (:mod:`linkmon.state`) is pure; this module gives it the clock and the
I/O, and owns each step's transaction: the state's :class:`~linkmon.state.Changes` (facts),
their alerts in words (:class:`~linkmon.alerts.compose.Composer`), one storage write of
transitions, link snapshots, alerts and outbox entries together, then delivery (the outbox)
and the metrics. Storage failing (full disk, read-only directory) is logged once per cause
and never stops probing or alerting: alerts are then held in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from probes import Failure, ProbeResult
from probes.base import agent_resource

from .alerts.compose import Composer
from .alerts.model import Alert
from .alerts.outbox import Outbox, OutboxEntry, Routes
from .alerts.receivers import build_receivers
from .api.status import status_document
from .clock import SYSTEM_CLOCK, Clock
from .config import Config
from .metrics import Metrics, link_labels, site_labels
from .paths import PathWatch, open_book
from .state import Changes, LinkSnapshot, Network, Rules
from .storage import Storage, StorageError

log = logging.getLogger("linkmon")

TICK = 1.0  # maintenance windows, flap damping and roll-ups move with time alone
SAVE_EVERY = 60.0  # per-probe counters to disk (transitions are stored as they happen)
SAVE_SLICE = 50  # links per write: a few milliseconds of the event loop each
SERVICE_METRIC = {"available": 1.0, "degraded": 0.5, "unavailable": 0.0}
GATEWAY_INDEX = -1  # the probe index of the agent's gateway: a probe of no link


class Monitor:
    def __init__(self, config: Config, metrics: Metrics, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self._storage_errors: set[str] = set()
        self.storage = self._open_storage(config)
        restored: dict[str, LinkSnapshot] = {}
        firing: list[Alert] = []
        if self.storage is not None:
            try:
                restored = self.storage.load_links()
                firing = self.storage.load_firing()
            except StorageError as exc:
                self._storage_failed(exc)
        rules = Rules.from_config(config)
        agent = config.agent
        self.composer = Composer(
            rules, language=agent.language, timezone=agent.timezone, firing=firing
        )
        self.network = Network(rules, clock.time(), restored=restored, firing=self.composer.began())
        self.outbox = Outbox(
            build_receivers(config.alerting, external_url=f"http://{config.server.listen}/"),
            self.storage,
            firing=self.composer.firing,
            max_entries=config.alerting.outbox_max,
            on_delivery=self._delivered,
            clock=clock,
        )
        self.paths = PathWatch(
            config,
            metrics.registry,
            book=open_book(config.storage.path),
            link_states=lambda: self._states,
            clock=clock,
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
        self._apply(self.network.tick(self._clock.time()))
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
        last_save = self._clock.monotonic()
        while True:
            await self._clock.sleep(TICK)
            self._apply(self.network.tick(self._clock.time()))
            if self._services_stale:
                self._services_stale = False
                self._publish_services()
            self._publish_sight()
            for receiver, count in self.outbox.queued().items():
                self.metrics.alerts_queued.labels(self.metrics.agent, receiver).set(count)
            if self._clock.monotonic() - last_save >= SAVE_EVERY:
                await self._save_links_in_slices()
                last_save = self._clock.monotonic()

    # -- the data path ---------------------------------------------------------------------

    def observe(self, link_id: str, index: int, result: ProbeResult, at: float) -> None:
        """A probe's result; ``index`` -1 is the agent's gateway (see ``daemon.jobs_for``)."""
        if result.failure is Failure.AGENT:
            self.metrics.exhausted(agent_resource(result.detail))
        if index == GATEWAY_INDEX:
            self._apply(self.network.observe_gateway(result, at))
            return
        labels = self._probe_labels.get((link_id, index))
        if labels is None:  # a result of a probe a reload removed
            return
        self.metrics.observe_probe(labels, result)
        self._apply(self.network.observe(link_id, index, result, at))

    def _apply(self, changes: Changes) -> None:
        """One step: the facts in words, stored in one transaction, then delivered."""
        if not changes:
            return
        alerts = self.composer.compose(changes.alerts)
        now = self._clock.time()
        try:
            self.outbox.commit(alerts, lambda routes: self._record(changes, alerts, now, routes))
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
        rules = Rules.from_config(config)
        self.network.reconfigure(rules, self._clock.time())
        self.composer.reconfigure(
            rules, language=config.agent.language, timezone=config.agent.timezone
        )
        self.paths.reconfigure(config)
        self.outbox.reconfigure(
            build_receivers(config.alerting, external_url=f"http://{config.server.listen}/")
        )
        self._index(config)
        self.metrics.forget(
            [labels for key, labels in old_probes.items() if self._probe_labels.get(key) != labels],
            [labels for key, labels in old_links.items() if self._labels.get(key) != labels],
        )
        self._apply(self.network.tick(self._clock.time()))
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
        self._publish_sight()
        self.metrics.set_sites(site_labels(self.config, site) for site in self.config.sites)
        kinds = {probe.kind for link in self.config.links for probe in link.probes}
        for kind in kinds:
            self.metrics.probe_errors.labels(self.metrics.agent, kind)
        for receiver in self.config.alerting.receivers:
            self.metrics.alerts_queued.labels(self.metrics.agent, receiver.name)
            for result in ("success", "retry", "dropped"):
                self.metrics.alert_deliveries.labels(self.metrics.agent, receiver.name, result)

    def _publish_sight(self) -> None:
        sight = self.network.sight()
        self.metrics.set_sight(sight.blind, dict(sight.faults))

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

    def _record(
        self, changes: Changes, alerts: Sequence[Alert], now: float, routes: Routes
    ) -> list[OutboxEntry]:
        if self.storage is None:
            return []
        return self.storage.record(changes, now, alerts=alerts, routes=routes)

    def _save_links(self, link_ids: Iterable[str] | None = None) -> None:
        if self.storage is None:
            return
        try:
            self.storage.save_links(self.network.snapshot(link_ids).values(), self._clock.time())
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

    def status(self, version: str, started_at: float) -> dict[str, Any]:
        """What ``GET /api/v1/status`` serves (:mod:`linkmon.api.status`), as of this clock."""
        return status_document(
            self.config,
            self.network,
            self.paths,
            now=self._clock.time(),
            version=version,
            started_at=started_at,
        )
