"""The one door the daemon and the CLI use: :class:`Prober` runs any kind of probe.

The Prober builds every kind of the registry (:mod:`probes.registry`) with what they share
(the ICMP sockets, the HTTP SSL contexts and clients, the concurrency bounds) and sends each
round to its kind by the spec's type. ``begin(spec, deadline, report)`` is the shape every kind
has (:class:`~probes.base.Probe`): the daemon's scheduler uses it, with deadlines it owns.
``run(spec, timeout)`` and ``run_many(specs, timeout)`` await rounds instead, for one-off
probes (``linkmon probe``) and benchmarks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from functools import partial
from types import TracebackType
from typing import Any, cast

from probes.base import Probe, ProbeResult, ProbeSetupError, Report, Round, report_soon, settle
from probes.http import DEFAULT_CONCURRENCY as HTTP_CONCURRENCY
from probes.icmp import IcmpProbe, IcmpSpec
from probes.icmp_engine import IcmpEngine
from probes.icmp_socket import IcmpMode
from probes.registry import REGISTRY, ProbeOptions, ProbeSpec
from probes.tcp import DEFAULT_CONCURRENCY as TCP_CONCURRENCY


class Prober:
    """Runs probes of every kind with shared resources; use as ``async with Prober() as p``."""

    def __init__(
        self,
        *,
        icmp_mode: IcmpMode = "auto",
        tcp_concurrency: int = TCP_CONCURRENCY,
        http_concurrency: int = HTTP_CONCURRENCY,
        ca_file: str | None = None,
    ) -> None:
        options = ProbeOptions(icmp_mode, tcp_concurrency, http_concurrency, ca_file)
        self._probes: dict[type, Probe[Any]] = {
            kind.spec: kind.build(options) for kind in REGISTRY.values()
        }
        self._closed = False

    @property
    def icmp_engines(self) -> tuple[IcmpEngine, ...]:
        """The ICMP engines open now: one socket each."""
        return cast(IcmpProbe, self._probes[IcmpSpec]).engines

    async def start(self, specs: Iterable[ProbeSpec] = (), *, families: Iterable[int] = ()) -> None:
        """Open now the ICMP sockets these probes (or these unbound families) will need.

        A missing permission then fails at start-up, not at the first round, and the sockets
        exist before a daemon drops its privileges. Pass the specs rather than the families:
        sockets bound to a source or interface open only for specs. Host names are resolved at
        run time, so their sockets open on first use.
        """
        icmp = cast(IcmpProbe, self._probes[IcmpSpec])
        icmp.open_for([spec for spec in specs if isinstance(spec, IcmpSpec)], families)

    async def close(self) -> None:
        self._closed = True
        for probe in self._probes.values():
            await probe.close()

    async def __aenter__(self) -> Prober:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def begin(self, spec: ProbeSpec, deadline: float, report: Report) -> Round:
        """Start a round of ``spec``; ``report`` gets its result (or the set-up fault that kept
        it from running) once, from the event loop, by ``deadline`` (event-loop time).

        Raises only for what is not a probe spec.
        """
        probe = self._probes.get(type(spec))
        if probe is None:
            raise TypeError(f"not a probe spec: {spec!r}")
        if self._closed:
            return report_soon(report, ProbeSetupError("the prober is closed"))
        try:
            return probe.begin(spec, deadline, report)
        except Exception as exc:  # a set-up fault known at once, or a bug: the caller hears
            return report_soon(report, exc)

    async def run(self, spec: ProbeSpec, timeout: float) -> ProbeResult:
        """Run one probe now and await its result (within ``timeout`` seconds); only set-up
        faults raise."""
        if timeout <= 0:
            raise ValueError(f"probe timeout must be positive, got {timeout}")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[ProbeResult | Exception] = loop.create_future()
        started = self.begin(spec, loop.time() + timeout, partial(settle, done))
        try:
            outcome = await done
        finally:
            started.cancel()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def run_many(self, specs: Sequence[ProbeSpec], timeout: float) -> list[ProbeResult]:
        """Run probes all at once and await them all; results in the order of ``specs``.

        Nothing per round but the round itself: ICMP rounds to addresses need no task here
        either (see bench/icmp_scale.py).
        """
        if timeout <= 0:
            raise ValueError(f"probe timeout must be positive, got {timeout}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        outcomes: list[ProbeResult | Exception | None] = [None] * len(specs)
        waiting = len(specs)
        every = loop.create_future()

        def report(index: int, outcome: ProbeResult | Exception) -> None:
            nonlocal waiting
            outcomes[index] = outcome
            waiting -= 1
            if waiting == 0 and not every.done():
                every.set_result(None)

        rounds = [self.begin(spec, deadline, partial(report, i)) for i, spec in enumerate(specs)]
        try:
            if specs:
                await every
        finally:
            for started in rounds:
                started.cancel()
        results: list[ProbeResult] = []
        for outcome in outcomes:
            if not isinstance(outcome, ProbeResult):
                raise outcome or AssertionError("a round did not report")
            results.append(outcome)
        return results
