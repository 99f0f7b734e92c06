"""Receivers against the real thing: Debian's prometheus-alertmanager, two of them (HA)."""

from __future__ import annotations

import asyncio
import shutil
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
    commit,
    delivering,
    network,
    rounds,
)
from tests.support.daemon import free_port
from tests.support.wait import wait_for

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
    storage = Storage(tmp_path / "state.db")
    outbox = Outbox(
        [receiver],
        storage,
        firing=net.firing,
        backoff_base=0.1,
        backoff_cap=0.3,
    )
    async with delivering(outbox):
        commit(outbox, storage, rounds(net, "kec-0--kab", SILENT, 3))
        [ours] = net.firing()
        for am in cluster:
            await wait_for(holding(am, 1), 5, "the alert in Alertmanager")
            [seen] = am.alerts()
            assert seen["labels"] == ours.labels
            assert seen["annotations"] == ours.annotations
            assert seen["fingerprint"] == ours.fingerprint  # Alertmanager's own hash
            assert seen["status"]["state"] == "active"
        # endsAt is 4 re-sends ahead (2 s): only the re-sends keep it alive past that. The
        # wait is what is tested: Alertmanager's own clock has to pass endsAt.
        await asyncio.sleep(3.0)
        assert [len(am.alerts()) for am in cluster] == [1, 1]
        # An Alertmanager restarted without its data relearns the alert from the re-send.
        cluster[0].stop()
        shutil.rmtree(tmp_path / "am0" / "data")
        cluster[0] = Alertmanager(tmp_path / "am0", cluster[0].port)
        await wait_for(holding(cluster[0], 1), 5, "the alert relearned")
        commit(outbox, storage, rounds(net, "kec-0--kab", GOOD, 2))
        for am in cluster:
            await wait_for(holding(am, 0), 5, "the alert resolved")
        # firing and resolved, to each; counted when the answer arrives, after the listing
        await wait_for(lambda: outbox.deliveries[("am", "success")] == 4, 5, "4 deliveries")
    assert outbox.queued() == {"am": 0}


async def test_alertmanager_down_then_up_gets_the_queued_alert(tmp_path: Path) -> None:
    port = free_port()
    net = network()
    receiver = AlertmanagerReceiver("am", [f"http://127.0.0.1:{port}"], resend_interval=60)
    storage = Storage(tmp_path / "state.db")
    outbox = Outbox(
        [receiver],
        storage,
        firing=net.firing,
        backoff_base=0.1,
        backoff_cap=0.3,
    )
    async with delivering(outbox):
        commit(outbox, storage, rounds(net, "kec-0--kab", SILENT, 3))
        await wait_for(lambda: outbox.deliveries[("am", "retry")] >= 2, 5, "refused twice")
        assert outbox.queued() == {"am": 1}
        am = Alertmanager(tmp_path / "am", port)
        try:
            await wait_for(holding(am, 1), 5, "the queued alert in Alertmanager")
            assert am.alerts()[0]["labels"]["link"] == "kec-0--kab"
            # Alertmanager lists the alert before its answer reaches the outbox: only that
            # answer takes the alert off the queue.
            await wait_for(lambda: outbox.queued() == {"am": 0}, 5, "an empty queue")
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
