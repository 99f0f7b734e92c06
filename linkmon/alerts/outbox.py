"""Durable alert delivery: nothing lost while a receiver (or the network) is down.

:meth:`Outbox.commit` stores a state-machine step and queues its alerts for every delivery
target in one SQLite transaction. One task per target then delivers its queue:

* **order per subject**: only the oldest entry of each group (one link, one office, one
  kabupaten) may be sent, so a resolve never overtakes its firing; other groups go on;
* **retries** on 5xx and network errors with exponential backoff and jitter (``backoff_base``
  doubling up to ``backoff_cap``), per entry; a rejection (4xx) is dropped and counted;
* **at-least-once**: an entry leaves the database only after its receiver accepted it, so a
  crash between sending and forgetting sends it again, with the same fingerprint;
* **bounded**: past ``max_entries`` per target the oldest *superseded* entry goes first (a
  notification about an alert that has a newer one queued: a firing whose resolve waits
  behind it), else the oldest; each counted as dropped;
* **re-send** to Alertmanager: every ``resend_interval`` while its queue is empty, the firing
  alerts (and those resolved within ``resolved_resend_for``) are posted again.

If storage fails, alerts are still queued in memory and delivered (only a crash would lose
them) and :class:`~linkmon.storage.StorageError` tells the daemon to log it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from linkmon.alerts.model import Alert
from linkmon.alerts.receivers import Delivery, Receiver, Result, safe_url
from linkmon.state import Changes
from linkmon.storage import Storage, StorageError

log = logging.getLogger(__name__)

DeliveryHook = Callable[[str, str], None]


def _nowhere(alert: Alert) -> list[str]:
    return []


@dataclass(eq=False)
class _Item:
    alert: Alert
    entry_id: int | None  # None: held in memory only (storage failing)
    attempts: int = 0
    next_try: float = 0.0


@dataclass(eq=False)
class _Target:
    id: str
    receiver: Receiver
    queue: list[_Item] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_refresh: float = 0.0
    resolved: dict[str, Alert] = field(default_factory=dict)  # recently resolved, by fingerprint
    failing: bool = False

    @property
    def url(self) -> str:
        return self.receiver.targets[self.id]

    def where(self) -> str:
        return f"{self.receiver.name} ({safe_url(self.url)})"


class Outbox:
    """Queues and delivers alerts to every receiver; see the module docstring for the rules."""

    def __init__(
        self,
        receivers: Sequence[Receiver],
        storage: Storage | None,
        *,
        firing: Callable[[], Sequence[Alert]] = tuple,
        max_entries: int = 10_000,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        resolved_resend_for: float = 900.0,
        on_delivery: DeliveryHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._firing = firing
        self.max_entries = max_entries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.resolved_resend_for = resolved_resend_for
        self._on_delivery = on_delivery
        self._clock = clock
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self._targets: dict[str, _Target] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._in_memory = False  # storage failed: keep queueing in memory until drained
        self._client: httpx.AsyncClient | None = None
        self.reconfigure(receivers)
        if storage is not None:
            for entry in storage.pending():
                target = self._targets.get(entry.target)
                if target is not None:
                    target.queue.append(_Item(entry.alert, entry.id))
            for target in self._targets.values():
                self._bound(target)

    # -- public ------------------------------------------------------------------------------

    @property
    def targets(self) -> list[str]:
        return list(self._targets)

    def queued(self) -> dict[str, int]:
        """Undelivered notifications per receiver name (``linkmon_alerts_queued``)."""
        counts: Counter[str] = Counter({t.receiver.name: 0 for t in self._targets.values()})
        for target in self._targets.values():
            counts[target.receiver.name] += len(target.queue)
        return dict(counts)

    def commit(self, changes: Changes, now: float) -> None:
        """Store ``changes`` and queue their alerts, atomically; then wake the senders.

        Raises StorageError if storage failed; the alerts are queued in memory regardless.
        """
        error: StorageError | None = None
        durable = self._storage is not None and not self._in_memory
        entries = []
        if self._storage is not None:
            try:
                entries = self._storage.record(changes, now, self._routes if durable else _nowhere)
            except StorageError as exc:
                error, durable = exc, False
                self._in_memory = True
        items = (
            [(self._targets[e.target], _Item(e.alert, e.id)) for e in entries]
            if durable
            else [
                (self._targets[t], _Item(alert, None))
                for alert in changes.alerts
                for t in self._routes(alert)
            ]
        )
        for target, item in items:
            target.queue.append(item)
            self._bound(target)
            target.wake.set()
        if error is not None:
            raise error

    def reconfigure(self, receivers: Sequence[Receiver]) -> None:
        """Adopt new receivers; queues of targets that stay (same name and URL) are kept."""
        old = self._targets
        self._targets = {}
        for receiver in receivers:
            for target_id in receiver.targets:
                target = old.get(target_id)
                if target is None:
                    target = _Target(target_id, receiver)
                target.receiver = receiver
                self._targets[target_id] = target
        for target_id in old.keys() - self._targets.keys():
            task = self._tasks.pop(target_id, None)
            if task is not None:
                task.cancel()
        if self._storage is not None:
            try:
                dropped = self._storage.keep_targets(self._targets)
            except StorageError as exc:
                log.error("alert outbox: %s", exc)
            else:
                if dropped:
                    log.warning(
                        "alert outbox: dropped %d notifications for receivers no longer configured",
                        dropped,
                    )
        if self._running:
            self._start_tasks()

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._running = True
        try:
            self._start_tasks()
            await asyncio.Event().wait()
        finally:
            self._running = False
            tasks = list(self._tasks.values())
            self._tasks.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------

    def _routes(self, alert: Alert) -> list[str]:
        return [t.id for t in self._targets.values() if t.receiver.wants(alert)]

    def _start_tasks(self) -> None:
        for target_id, target in self._targets.items():
            if target_id not in self._tasks:
                self._tasks[target_id] = asyncio.create_task(
                    self._deliver_forever(target), name=f"outbox {target.where()}"
                )

    def _count(self, target: _Target, result: Result) -> None:
        self.deliveries[(target.receiver.name, result.value)] += 1
        if self._on_delivery is not None:
            self._on_delivery(target.receiver.name, result.value)

    def _forget(self, target: _Target, items: Sequence[_Item]) -> None:
        for item in items:
            if item in target.queue:
                target.queue.remove(item)
        ids = [item.entry_id for item in items if item.entry_id is not None]
        if ids and self._storage is not None:
            try:
                self._storage.remove(ids)
            except StorageError as exc:
                log.error("alert outbox: %s (the entries may be sent again after a restart)", exc)
        if self._in_memory and not any(
            item.entry_id is None for t in self._targets.values() for item in t.queue
        ):
            self._in_memory = False

    def _bound(self, target: _Target) -> None:
        while len(target.queue) > self.max_entries:
            newest: dict[str, int] = {}
            for index, item in enumerate(target.queue):
                newest[item.alert.fingerprint] = index
            victim = next(
                (
                    item
                    for index, item in enumerate(target.queue)
                    if newest[item.alert.fingerprint] > index
                ),
                target.queue[0],
            )
            log.warning(
                "alert outbox for %s full (%d): dropping %s %s of %s",
                target.where(),
                self.max_entries,
                victim.alert.status,
                victim.alert.name,
                victim.alert.key,
            )
            self._forget(target, [victim])
            self._count(target, Result.DROPPED)

    def _next(self, target: _Target, now: float) -> tuple[_Item | None, float]:
        """The oldest sendable entry (first of its group, not backing off), else the wait."""
        seen: set[str] = set()
        wait = float("inf")
        for item in target.queue:
            group = item.alert.group
            if group in seen:
                continue
            seen.add(group)
            if item.next_try <= now:
                return item, 0.0
            wait = min(wait, item.next_try - now)
        return None, wait

    def _backoff(self, attempts: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempts - 1))
        return delay * random.uniform(0.5, 1.0)

    async def _deliver_forever(self, target: _Target) -> None:
        assert self._client is not None
        client = self._client
        while True:
            target.wake.clear()
            now = self._clock()
            item, wait = self._next(target, now)
            if item is not None:
                await self._deliver(client, target, item, now)
                continue
            interval = target.receiver.resend_interval
            if interval is not None and not target.queue:
                if now >= target.next_refresh:
                    await self._refresh(client, target, now)
                    target.next_refresh = now + interval
                wait = min(wait, target.next_refresh - now)
            with contextlib.suppress(TimeoutError):
                timeout = None if wait == float("inf") else max(wait, 0.001)
                await asyncio.wait_for(target.wake.wait(), timeout)

    async def _deliver(
        self, client: httpx.AsyncClient, target: _Target, item: _Item, now: float
    ) -> None:
        alert = item.alert
        outcome = await target.receiver.deliver(client, target.id, alert, now)
        self._count(target, outcome.result)
        if outcome.result is Result.RETRY:
            item.attempts += 1
            item.next_try = self._clock() + self._backoff(item.attempts)
            if not target.failing:
                log.warning(
                    "alert delivery to %s failed (%s); retrying with backoff",
                    target.where(),
                    outcome.reason,
                )
            target.failing = True
            return
        if target.failing:
            log.info("alert delivery to %s works again", target.where())
            target.failing = False
            for waiting in target.queue:  # the receiver is back: no need to wait out backoffs
                waiting.next_try = 0.0
        if outcome.result is Result.DROPPED:
            log.error(
                "alert delivery to %s rejected (%s): dropped %s %s of %s",
                target.where(),
                outcome.reason,
                alert.status,
                alert.name,
                alert.key,
            )
        elif alert.ends_at is not None and target.receiver.resend_interval is not None:
            target.resolved[alert.fingerprint] = alert
        self._forget(target, [item])

    async def _refresh(self, client: httpx.AsyncClient, target: _Target, now: float) -> None:
        target.resolved = {
            fp: a
            for fp, a in target.resolved.items()
            if a.ends_at is not None and now - a.ends_at < self.resolved_resend_for
        }
        alerts = [*self._firing(), *target.resolved.values()]
        if not alerts:
            return
        outcome: Delivery = await target.receiver.refresh(client, target.id, alerts, now)
        if outcome.result is not Result.SUCCESS:
            log.debug("re-send to %s failed (%s)", target.where(), outcome.reason)
