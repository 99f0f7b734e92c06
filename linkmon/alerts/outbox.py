"""Durable alert delivery: nothing lost while a receiver (or the network) is down.

:meth:`Outbox.commit` has the caller store a state-machine step with an outbox entry for each
alert and delivery target (one transaction, :class:`OutboxStore`), and queues what was
stored. One task per target then delivers its queue:

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

If the store fails, alerts are still queued in memory and delivered (only a crash would lose
them) and the store's :class:`OutboxStoreError` tells the daemon to log it. Backoff, retry
waits and re-sends go by the :class:`~linkmon.clock.Clock` it is given, so a test drives them
with a fake one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from linkmon.alerts.model import Alert
from linkmon.alerts.receivers import Delivery, Receiver, Result, safe_url
from linkmon.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

DeliveryHook = Callable[[str, str], None]
Routes = Callable[[Alert], Iterable[str]]  # the delivery targets an alert is queued for


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One notification owed to one delivery target (a receiver URL), as stored."""

    id: int
    target: str
    alert: Alert
    enqueued: float


class OutboxStoreError(Exception):
    """The store behind the outbox failed; the message names what and the fix."""


class OutboxStore(Protocol):
    """Where queued notifications survive a restart (:class:`linkmon.storage.Storage`).

    Its methods raise :class:`OutboxStoreError` when the store cannot be used.
    """

    def pending(self) -> Sequence[OutboxEntry]:
        """Undelivered entries, oldest first."""
        ...

    def remove(self, entry_ids: Iterable[int]) -> None:
        """Forget entries that were delivered or dropped."""
        ...

    def keep_targets(self, targets: Iterable[str]) -> int:
        """Drop entries for targets no longer configured; returns how many went."""
        ...


def _nowhere(alert: Alert) -> list[str]:
    return []


@dataclass(eq=False)
class _Item:
    alert: Alert
    entry_id: int | None  # None: held in memory only (storage failing)
    attempts: int = 0
    next_try: float = 0.0  # the clock's monotonic time


@dataclass(eq=False)
class _Target:
    id: str
    receiver: Receiver
    queue: list[_Item] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_refresh: float = 0.0  # the clock's monotonic time
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
        store: OutboxStore | None,
        *,
        firing: Callable[[], Sequence[Alert]] = tuple,
        max_entries: int = 10_000,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        resolved_resend_for: float = 900.0,
        on_delivery: DeliveryHook | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
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
        if store is not None:
            for entry in store.pending():
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

    def commit(
        self, alerts: Sequence[Alert], record: Callable[[Routes], Sequence[OutboxEntry]]
    ) -> None:
        """Queue ``alerts`` as ``record`` stores them; then wake the senders.

        ``record(routes)`` is the caller's one transaction: whatever else the step changed,
        and an outbox entry for each alert and each target ``routes(alert)`` names; it returns
        those entries. While the store fails (and until what it could not hold is delivered)
        the routes name no target, and the alerts are queued in memory. An OutboxStoreError
        from ``record`` is raised again once the alerts are queued.
        """
        error: OutboxStoreError | None = None
        durable = self._store is not None and not self._in_memory
        entries: Sequence[OutboxEntry] = ()
        try:
            entries = record(self._routes if durable else _nowhere)
        except OutboxStoreError as exc:
            error, durable = exc, False
            self._in_memory = True
        items = (
            [(self._targets[e.target], _Item(e.alert, e.id)) for e in entries]
            if durable
            else [
                (self._targets[t], _Item(alert, None))
                for alert in alerts
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
        if self._store is not None:
            try:
                dropped = self._store.keep_targets(self._targets)
            except OutboxStoreError as exc:
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
        if ids and self._store is not None:
            try:
                self._store.remove(ids)
            except OutboxStoreError as exc:
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
            now = self._clock.monotonic()
            item, wait = self._next(target, now)
            if item is not None:
                await self._deliver(client, target, item)
                continue
            interval = target.receiver.resend_interval
            if interval is not None and not target.queue:
                if now >= target.next_refresh:
                    await self._refresh(client, target)
                    target.next_refresh = now + interval
                wait = min(wait, target.next_refresh - now)
            await self._idle(target, wait)

    async def _idle(self, target: _Target, wait: float) -> None:
        """Until something is queued for ``target`` or ``wait`` seconds pass on the clock."""
        if wait == float("inf"):
            await target.wake.wait()
            return
        timer = asyncio.ensure_future(self._clock.sleep(max(wait, 0.001)))
        woken = asyncio.ensure_future(target.wake.wait())
        try:
            await asyncio.wait((timer, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            woken.cancel()

    async def _deliver(self, client: httpx.AsyncClient, target: _Target, item: _Item) -> None:
        alert = item.alert
        outcome = await target.receiver.deliver(client, target.id, alert, self._clock.time())
        self._count(target, outcome.result)
        if outcome.result is Result.RETRY:
            item.attempts += 1
            item.next_try = self._clock.monotonic() + self._backoff(item.attempts)
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

    async def _refresh(self, client: httpx.AsyncClient, target: _Target) -> None:
        now = self._clock.time()
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
