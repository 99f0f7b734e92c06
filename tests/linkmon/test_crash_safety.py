"""`kill -9` at random moments through outages and recoveries: no alert lost, none doubled.

The link is a loopback TCP port opened and closed by a thread on a random schedule; linkmon
(200 ms rounds, down after 2) is killed with SIGKILL at a random moment of each of 50 runs and
started again at once; a real webhook receiver process records every delivery. Then linkmon
runs once more until it has settled and stops cleanly.

What must hold — at-least-once delivery, in order, deduplicated by the alert's identity:
a notification is identified by (fingerprint, startsAt, status) — the fingerprint is the label
set's, the same for every outage of the link, and startsAt names the outage. A redelivery after
a kill can only repeat the notification just delivered (per-link order is kept), so with
consecutive repeats collapsed the receiver's log must read firing(o1), resolved(o1),
firing(o2), resolved(o2), ... with o1 < o2 < ...: every outage paged once and resolved once,
never out of order, none missing. And the outages are exactly those SQLite recorded, all
closed, in a database that passes ``PRAGMA integrity_check``.

Time: each start must be ready (``started as agent``) within START_WITHIN, a bound on the
product that holds on a loaded machine; the loop as a whole has no wall-clock budget. It had
one (120 s for the 50 runs), which measured the machine rather than linkmon: a run is a
start-up (about 0.6 s of CPU, mostly imports, stretched by whatever else runs on the two
cores) plus a random 0-1.2 s before the kill, and under the load of a parallel suite fewer
than 50 fit while every start was sound. The start-ups are printed (median and longest) so
that a slow one shows; how fast linkmon starts is measured in ``bench/startup.py``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from linkmon.alerts.model import rfc3339
from linkmon.storage import Storage
from tests.support.loopback import (
    SwitchableLink,
    free_port,
    link_yaml,
    start_linkmon,
    tcp_probe,
    wait_until,
    write_config,
)
from tests.support.receiver import running_receiver

RUNS = 50
START_WITHIN = 20.0  # seconds from exec to "started as agent", on a loaded machine too
KILL_WITHIN = 1.2  # each run is killed a random 0 to KILL_WITHIN s after it started
SETTLE_WITHIN = 30.0  # the last run: the link up and every alert delivered


class Flapper(threading.Thread):
    """Cuts and restores the link on a random schedule until told to stop (then leaves it up)."""

    def __init__(self, link: SwitchableLink, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.link, self.rng = link, rng
        self.stopping = threading.Event()
        self.cuts = 0

    def run(self) -> None:
        while not self.stopping.wait(self.rng.uniform(0.8, 2.0)):
            self.link.down()
            self.cuts += 1
            if self.stopping.wait(self.rng.uniform(0.8, 2.0)):
                break
            self.link.up()
        self.link.up()


def last_status(records: list[dict[str, Any]]) -> str | None:
    """The status of the last notification the receiver accepted, if any."""
    accepted = [r["body"]["alerts"][-1]["status"] for r in records if r["answered"] == 200]
    return accepted[-1] if accepted else None


@pytest.mark.timeout(RUNS * (START_WITHIN + KILL_WITHIN) + SETTLE_WITHIN + 60)
def test_kill_9_loop_delivers_every_outage_once_in_order(tmp_path: Path) -> None:
    seed = int(os.environ.get("LINKMON_CRASH_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    began = time.monotonic()
    link = SwitchableLink()
    port = free_port()
    config_path = tmp_path / "linkmon.yml"
    log = tmp_path / "linkmon.log"
    links = link_yaml("kec-b--kab", tcp_probe(link.target))
    flapper = Flapper(link, random.Random(seed + 1))
    try:
        with running_receiver(tmp_path / "received.jsonl") as receiver:
            config = write_config(
                config_path,
                port=port,
                links=links,
                receiver_url=receiver.url,
                down_after=2,
                up_after=1,
            )
            config.write_text(
                config.read_text() + "  flapping: {changes: 1000, window: 10s}\n"
            )  # page every outage
            flapper.start()
            start_ups = []
            for _ in range(RUNS):
                exec_at = time.monotonic()
                linkmon = start_linkmon(config, port=port, log=log)
                try:
                    linkmon.wait_started(START_WITHIN)
                    start_ups.append(time.monotonic() - exec_at)
                    time.sleep(rng.uniform(0.0, KILL_WITHIN))  # a random moment to die at
                finally:
                    linkmon.kill(signal.SIGKILL)
            flapper.stopping.set()
            flapper.join(10)

            linkmon = start_linkmon(config, port=port, log=log)
            try:
                linkmon.wait_started()
                wait_until(
                    lambda: (
                        linkmon.value("linkmon_link_up", link="kec-b--kab") == 1
                        and linkmon.value("linkmon_alerts_queued", receiver="oncall") == 0
                        and last_status(receiver.records()) in (None, "resolved")
                    ),
                    SETTLE_WITHIN,
                    "the link up, the outbox empty and the last outage resolved",
                )
                linkmon.kill(signal.SIGTERM)
                assert linkmon.process.returncode == 0
            finally:
                linkmon.kill()
            deliveries = receiver.records()
    finally:
        flapper.stopping.set()
        link.close()

    notifications = [
        (alert["fingerprint"], alert["startsAt"], alert["status"])
        for record in deliveries
        if record["answered"] == 200
        for alert in record["body"]["alerts"]
    ]
    assert {record["body"]["alerts"][0]["labels"]["alertname"] for record in deliveries} <= {
        "LinkDown"
    }
    collapsed = [n for i, n in enumerate(notifications) if i == 0 or n != notifications[i - 1]]
    assert len(collapsed) % 2 == 0, collapsed[-3:]
    outages_paged = []
    for firing, resolved in zip(collapsed[::2], collapsed[1::2], strict=True):
        assert firing[2] == "firing" and resolved[2] == "resolved", (firing, resolved)
        assert firing[:2] == resolved[:2], (firing, resolved)
        outages_paged.append(firing[1])
    assert outages_paged == sorted(set(outages_paged)), "an outage paged twice or out of order"

    with Storage(tmp_path / "linkmon.db", readonly=True) as storage:
        assert storage.integrity_check() == "ok"
        recorded = storage.outages(0, time.time() + 1, link="kec-b--kab")
    assert all(outage.end is not None for outage in recorded)
    assert [rfc3339(outage.start) for outage in recorded] == outages_paged

    output = log.read_text(errors="replace")
    assert output.count("started as agent") == RUNS + 1
    assert "Traceback" not in output and "kept in memory only" not in output
    assert len(outages_paged) >= 5, f"only {len(outages_paged)} outages seen (seed {seed})"
    start_ups.sort()
    print(
        f"seed {seed}: {RUNS} kills, {flapper.cuts} cuts, {len(outages_paged)} outages paged, "
        f"{len(notifications) - len(collapsed)} redeliveries, "
        f"{time.monotonic() - began:.1f} s; start-up median {start_ups[RUNS // 2]:.2f} s, "
        f"longest {start_ups[-1]:.2f} s"
    )
