"""Receivers against the real thing: Debian's prometheus-alertmanager, two of them (HA)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from linkmon.alerts.outbox import Outbox
from linkmon.alerts.receivers import AlertmanagerReceiver, safe_url
from linkmon.storage import Storage
from tests.support.alerting import (
    ALERTMANAGER,
    GOOD,
    SILENT,
    Alertmanager,
    delivering,
    network,
    rounds,
    until,
)
from tests.support.daemon import free_port

pytestmark = pytest.mark.skipif(
    shutil.which(ALERTMANAGER) is None,
    reason="Debian package prometheus-alertmanager not installed",
)


def holding(am: Alertmanager, count: int) -> Callable[[], bool]:
    return lambda: len(am.alerts()) == count


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Alertmanager]]:
    started: list[Alertmanager] = []
    try:
        for n in range(2):
            started.append(Alertmanager(tmp_path / f"am{n}", free_port()))
        yield started
    finally:
        for am in started:
            am.stop()


async def test_alert_in_every_alertmanager_kept_alive_relearned_and_resolved(
    tmp_path: Path, cluster: list[Alertmanager]
) -> None:
    net = network()
    receiver = AlertmanagerReceiver("am", [am.url for am in cluster], resend_interval=0.5)
    outbox = Outbox(
        [receiver],
        Storage(tmp_path / "state.db"),
        firing=net.firing,
        backoff_base=0.1,
        backoff_cap=0.3,
    )
    async with delivering(outbox):
        outbox.commit(rounds(net, "kec-0--kab", SILENT, 3), time.time())
        [ours] = net.firing()
        for am in cluster:
            await until(holding(am, 1), timeout=5)
            [seen] = am.alerts()
            assert seen["labels"] == ours.labels
            assert seen["annotations"] == ours.annotations
            assert seen["fingerprint"] == ours.fingerprint  # Alertmanager's own hash
            assert seen["status"]["state"] == "active"
        # endsAt is 4 re-sends ahead (2 s): only the re-sends keep it alive past that.
        await asyncio.sleep(3.0)
        assert [len(am.alerts()) for am in cluster] == [1, 1]
        # An Alertmanager restarted without its data relearns the alert from the re-send.
        cluster[0].stop()
        shutil.rmtree(tmp_path / "am0" / "data")
        cluster[0] = Alertmanager(tmp_path / "am0", cluster[0].port)
        await until(holding(cluster[0], 1), timeout=5)
        outbox.commit(rounds(net, "kec-0--kab", GOOD, 2), time.time())
        for am in cluster:
            await until(holding(am, 0), timeout=5)
        # firing and resolved, to each; counted when the answer arrives, after the listing
        await until(lambda: outbox.deliveries[("am", "success")] == 4, timeout=5)
    assert outbox.queued() == {"am": 0}


async def test_alertmanager_down_then_up_gets_the_queued_alert(tmp_path: Path) -> None:
    port = free_port()
    net = network()
    receiver = AlertmanagerReceiver("am", [f"http://127.0.0.1:{port}"], resend_interval=60)
    outbox = Outbox(
        [receiver],
        Storage(tmp_path / "state.db"),
        firing=net.firing,
        backoff_base=0.1,
        backoff_cap=0.3,
    )
    async with delivering(outbox):
        outbox.commit(rounds(net, "kec-0--kab", SILENT, 3), time.time())
        await asyncio.sleep(0.5)
        assert outbox.queued() == {"am": 1}
        am = Alertmanager(tmp_path / "am", port)
        try:
            await until(holding(am, 1), timeout=5)
            assert am.alerts()[0]["labels"]["link"] == "kec-0--kab"
            # Alertmanager lists the alert before its answer reaches the outbox: only that
            # answer takes the alert off the queue.
            await until(lambda: outbox.queued() == {"am": 0}, timeout=5)
        finally:
            am.stop()
    assert outbox.deliveries[("am", "success")] == 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://bot:tok@api.example.org:8443/bot123:ABC/send?x=1",
            "https://api.example.org:8443",
        ),
        ("http://[::1]:9093/", "http://[::1]:9093"),
        ("http://127.0.0.1/hook", "http://127.0.0.1"),
    ],
)
def test_safe_url_keeps_only_scheme_host_port(url: str, shown: str) -> None:
    assert safe_url(url) == shown
