"""Helpers for alerting tests: a small network to make real alerts with, and waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from linkmon.alerts.outbox import Outbox
from linkmon.state import Changes, LinkRule, Network, ProbeRule, Rules, SiteRule
from probes.base import Failure, ProbeResult

GOOD = ProbeResult("icmp", "198.18.10.2", success=True, duration=0.01, packets_sent=5,
                   packets_received=5, rtts=(0.01,) * 5)
SILENT = ProbeResult("icmp", "198.18.10.2", success=False, failure=Failure.TIMEOUT,
                     packets_sent=5, packets_received=0)


def network(links: int = 1, name: str = "Kecamatan") -> Network:
    sites = {s.id: s for s in [SiteRule("kab-nunukan", "kabupaten", "Kabupaten Nunukan",
                                        "Asia/Makassar", "kab-nunukan")]}
    rules = {}
    for n in range(links):
        sites[f"kec-{n}"] = SiteRule(f"kec-{n}", "kecamatan", f"{name} {n}",
                                     "Asia/Makassar", "kab-nunukan")
        rules[f"kec-{n}--kab"] = LinkRule(f"kec-{n}--kab", f"kec-{n}", "kab-nunukan", "m2m",
                                          (ProbeRule("icmp", "198.18.10.2"),))
    return Network(Rules(agent="kab-nunukan", sites=sites, links=rules, rollup_min_links=99),
                   time.time())


def rounds(net: Network, link: str, result: ProbeResult, count: int) -> Changes:
    """``count`` rounds of one result; the changes of all of them together."""
    merged = Changes()
    for _ in range(count):
        step = net.observe(link, 0, result, time.time())
        merged = Changes(merged.transitions + step.transitions, merged.alerts + step.alerts,
                         merged.links + step.links)
    return merged


@asynccontextmanager
async def delivering(outbox: Outbox) -> AsyncIterator[Outbox]:
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.05)


def statuses(bodies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["status"], b["alerts"][0]["fingerprint"]) for b in bodies]
