"""Durable delivery against a real receiver process: retries, order, bounds, crash safety.

Backoff runs on a fake clock where the test is about it: the receiver process answers in real
time, the outbox waits only when the test moves its clock.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from linkmon.alerts.outbox import Outbox
from linkmon.alerts.receivers import WebhookReceiver, build_receivers
from linkmon.config import load_config
from linkmon.storage import Storage, StorageError
from tests.support.alerting import (
    GOOD,
    SILENT,
    Agent,
    commit,
    delivering,
    network,
    rounds,
    statuses,
)
from tests.support.child import ROOT
from tests.support.clock import FakeClock
from tests.support.daemon import free_port
from tests.support.receiver import running_receiver
from tests.support.wait import wait_for

STEP = 0.05  # shorter than any backoff here: one step never lets two retries through


async def idle(outbox: Outbox, clock: FakeClock) -> None:
    """Until the outbox waits on its clock again (a retry it was woken for has been answered)."""
    await wait_for(lambda: clock.sleepers == 1, 5, "the outbox waiting on its clock")


async def next_retry(outbox: Outbox, clock: FakeClock) -> float:
    """Move the clock in steps until the outbox retries once more; the clock time it took."""
    before = outbox.deliveries[("oncall", "retry")]
    waited = 0.0
    while outbox.deliveries[("oncall", "retry")] == before and waited < 10:
        await clock.advance(STEP)
        waited += STEP
        await idle(outbox, clock)
    assert outbox.deliveries[("oncall", "retry")] == before + 1
    return waited


async def test_receiver_failing_across_outage_gets_firing_then_resolved_once(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with running_receiver(tmp_path / "rx.jsonl", fail_seconds=3600) as rx:
        storage = Storage(tmp_path / "state.db")
        outbox = Outbox(
            [WebhookReceiver("oncall", [rx.url])],
            storage,
            backoff_base=0.2,
            backoff_cap=1.0,
            clock=clock,
        )
        net = network()
        async with delivering(outbox):
            commit(outbox, storage, rounds(net, "kec-0--kab", SILENT, 3))
            await wait_for(lambda: outbox.deliveries[("oncall", "retry")] == 1, 5, "a refusal")
            await idle(outbox, clock)
            commit(outbox, storage, rounds(net, "kec-0--kab", GOOD, 2))
            assert outbox.queued() == {"oncall": 2}
            # Backoff on the clock, doubling with jitter: 0.1-0.2 s, then 0.2-0.4 s (counted
            # from the step in which the previous retry was answered: one step either way).
            assert 0.1 <= await next_retry(outbox, clock) <= 0.2 + STEP
            assert 0.2 - STEP <= await next_retry(outbox, clock) <= 0.4 + STEP
            rx.fail(0)  # the receiver is back
            await clock.advance(1.0)
            await wait_for(lambda: len(rx.delivered()) >= 2, 15, "firing and resolved")
            # The receiver logs a body before its answer reaches the outbox.
            await wait_for(lambda: outbox.queued() == {"oncall": 0}, 5, "an empty queue")
        bodies = rx.delivered()
        fingerprint = bodies[0]["alerts"][0]["fingerprint"]
        assert statuses(bodies) == [("firing", fingerprint), ("resolved", fingerprint)]
        refused = [r for r in rx.records() if r["answered"] == 503]
        assert len(refused) >= 3  # it really was retried across the failure
        assert outbox.deliveries[("oncall", "retry")] == len(refused)
        assert outbox.deliveries[("oncall", "success")] == 2
        assert outbox.queued() == {"oncall": 0}
        assert storage.pending() == []
        first = bodies[0]
        assert first["version"] == "4"
        assert first["receiver"] == "oncall"
        assert first["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert first["alerts"][0]["labels"]["link"] == "kec-0--kab"
        assert bodies[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


async def test_rejected_notification_is_dropped_and_counted(tmp_path: Path) -> None:
    clock = FakeClock()
    with running_receiver(tmp_path / "rx.jsonl", fail_seconds=60, fail_status=400) as rx:
        counted: list[tuple[str, str]] = []
        storage = Storage(tmp_path / "s.db")
        outbox = Outbox(
            [WebhookReceiver("oncall", [rx.url])],
            storage,
            backoff_base=0.1,
            on_delivery=lambda r, result: counted.append((r, result)),
            clock=clock,
        )
        async with delivering(outbox):
            commit(outbox, storage, rounds(network(), "kec-0--kab", SILENT, 3))
            await wait_for(lambda: outbox.queued() == {"oncall": 0}, 5, "an empty queue")
            await clock.advance(120)  # past any backoff: a retry would have been sent
        assert [r["answered"] for r in rx.records()] == [400]  # not retried
        assert counted == [("oncall", "dropped")]


async def test_order_kept_per_link_while_receiver_is_down(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    storage = Storage(tmp_path / "s.db")
    outbox = Outbox(
        [WebhookReceiver("oncall", [url])],
        storage,
        backoff_base=0.2,
        backoff_cap=0.5,
    )
    net = network(links=3)
    async with delivering(outbox):
        for n in range(3):
            commit(outbox, storage, rounds(net, f"kec-{n}--kab", SILENT, 3))
        for n in (2, 0, 1):
            commit(outbox, storage, rounds(net, f"kec-{n}--kab", GOOD, 2))
        # nothing listens: connection refused, retried
        await wait_for(lambda: outbox.deliveries[("oncall", "retry")] >= 3, 10, "3 retries")
        with running_receiver(tmp_path / "rx.jsonl", port=port) as rx:
            await wait_for(lambda: len(rx.delivered()) >= 6, 10, "6 notifications")
            bodies = rx.delivered()
    per_link: dict[str, list[str]] = {}
    for body in bodies:
        per_link.setdefault(body["alerts"][0]["labels"]["link"], []).append(body["status"])
    assert per_link == {f"kec-{n}--kab": ["firing", "resolved"] for n in range(3)}


def test_full_outbox_drops_oldest_superseded_first(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "s.db")
    outbox = Outbox(
        [WebhookReceiver("oncall", ["http://127.0.0.1:9/hook"])], storage, max_entries=3
    )
    net = network(links=3)
    commit(outbox, storage, rounds(net, "kec-0--kab", SILENT, 3))
    commit(outbox, storage, rounds(net, "kec-0--kab", GOOD, 2))
    commit(outbox, storage, rounds(net, "kec-1--kab", SILENT, 3))
    commit(outbox, storage, rounds(net, "kec-2--kab", SILENT, 3))
    left = [(e.alert.key, e.alert.status) for e in storage.pending()]
    assert left == [
        ("LinkDown/kec-0--kab", "resolved"),
        ("LinkDown/kec-1--kab", "firing"),
        ("LinkDown/kec-2--kab", "firing"),
    ]
    assert outbox.deliveries[("oncall", "dropped")] == 1
    assert outbox.queued() == {"oncall": 3}


async def test_alerts_still_delivered_when_storage_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage(tmp_path / "s.db")
    with running_receiver(tmp_path / "rx.jsonl") as rx:
        outbox = Outbox([WebhookReceiver("oncall", [rx.url])], storage)
        # A real "database or disk is full": SQLite may not grow the file any further, and
        # the alert (a long office name) needs new pages.
        raw = storage._db  # noqa: SLF001 - reaching in is the only way to cap this one file
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count={pages}")
        net = network(name="Kecamatan " * 600)
        async with delivering(outbox):
            with pytest.raises(StorageError, match="disk is full"):
                for _ in range(3):
                    commit(outbox, storage, rounds(net, "kec-0--kab", SILENT, 1))
            await wait_for(lambda: len(rx.delivered()) == 1, 5, "the firing")
        assert rx.delivered()[0]["status"] == "firing"


async def test_secrets_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-token-42"
    with running_receiver(tmp_path / "rx.jsonl", fail_seconds=1.0) as rx:
        url = f"http://127.0.0.1:{rx.port}/bot{secret}/hook?key={secret}"
        dead = f"http://user:{secret}@127.0.0.1:{free_port()}/bot{secret}/hook"
        receiver = WebhookReceiver(
            "oncall", [url, dead], headers={"Authorization": f"Bearer {secret}"}
        )
        storage = Storage(tmp_path / "s.db")
        outbox = Outbox([receiver], storage, backoff_base=0.2, backoff_cap=0.4)
        caplog.set_level(logging.DEBUG)
        async with delivering(outbox):
            commit(outbox, storage, rounds(network(), "kec-0--kab", SILENT, 3))
            await wait_for(lambda: len(rx.delivered()) == 1, 10, "the firing")
            # more failures to log: the dead URL keeps being retried
            await wait_for(lambda: outbox.deliveries[("oncall", "retry")] >= 4, 10, "retries")
        [record] = [r for r in rx.records() if r["answered"] == 200]
        assert record["headers"]["Authorization"] == f"Bearer {secret}"
        assert record["path"] == f"/bot{secret}/hook?key={secret}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "oncall" in logged  # the failures were logged...
    assert secret not in logged  # ...without the token
    stored = (tmp_path / "s.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("s.db-wal")
    )
    assert secret.encode() not in stored


CONFIG = """
agent: {{name: kab-nunukan, timezone: Asia/Makassar}}
storage: {{path: {db}}}
sites:
  - {{id: prov-kaltara, kind: provinsi, name: Kalimantan Utara}}
  - {{id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan, parent: prov-kaltara}}
  - {{id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}}
links:
  - id: kec-krayan--kab
    from: kec-krayan
    to: kab-nunukan
    network: m2m
    probes: [{{kind: icmp, target: 198.18.10.2}}]
alerting:
  receivers: [{{name: oncall, kind: webhook, url: "http://127.0.0.1:{port}/hook"}}]
"""

# The agent's life up to the kill: the link goes down, the alert is committed, the receiver
# is unreachable so it stays queued, and its delivery has failed a few times; then it waits
# to be killed.
BEFORE_KILL = textwrap.dedent("""
    import asyncio, sys
    from linkmon.alerts.outbox import Outbox
    from linkmon.alerts.receivers import build_receivers
    from linkmon.config import load_config
    from linkmon.storage import Storage
    from tests.support.alerting import SILENT, Agent, commit, rounds

    config = load_config(sys.argv[1])
    storage = Storage(config.storage.path)
    agent = Agent.from_config(config)
    failed = asyncio.Event()
    outbox = Outbox(build_receivers(config.alerting), storage, backoff_base=0.05,
                    backoff_cap=0.1, on_delivery=lambda name, result: failed.set())

    async def main():
        task = asyncio.create_task(outbox.run())
        commit(outbox, storage, rounds(agent, "kec-krayan--kab", SILENT, 3))
        print("alerted", flush=True)
        await failed.wait()
        print("refused", flush=True)
        await task

    asyncio.run(main())
""")


async def test_kill_9_during_outage_then_restart_no_second_firing(tmp_path: Path) -> None:
    port = free_port()
    config_file = tmp_path / "linkmon.yml"
    config_file.write_text(CONFIG.format(db=tmp_path / "state.db", port=port))
    agent = subprocess.Popen(
        [sys.executable, "-c", BEFORE_KILL, str(config_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == "alerted"
        assert agent.stdout.readline().strip() == "refused"  # a delivery attempt failed
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        if agent.stdout is not None:
            agent.stdout.close()

    config = load_config(config_file)
    storage = Storage(config.storage.path)
    assert storage.integrity_check() == "ok"
    net = Agent.from_config(config, storage)
    with running_receiver(tmp_path / "rx.jsonl", port=port) as rx:
        outbox = Outbox(
            build_receivers(config.alerting),
            storage,
            firing=net.firing,
            backoff_base=0.1,
            backoff_cap=0.2,
        )
        async with delivering(outbox):
            commit(outbox, storage, net.tick())
            again = rounds(net, "kec-krayan--kab", SILENT, 4)
            assert again.alerts == ()  # still down: already alerted before the kill
            commit(outbox, storage, again)
            await wait_for(lambda: len(rx.delivered()) == 1, 5, "the firing")
            commit(outbox, storage, rounds(net, "kec-krayan--kab", GOOD, 2))
            await wait_for(lambda: len(rx.delivered()) == 2, 5, "the resolve")
            await wait_for(lambda: storage.pending() == [], 5, "an empty outbox")
    bodies = rx.delivered()
    fingerprint = bodies[0]["alerts"][0]["fingerprint"]
    assert statuses(bodies) == [("firing", fingerprint), ("resolved", fingerprint)]
    assert storage.pending() == []
    [outage] = storage.outages(0, time.time() + 1)
    assert outage.link == "kec-krayan--kab" and outage.end is not None


def test_receivers_from_config_resolve_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKMON_TEST_TOKEN", "tok-123")
    config_file = tmp_path / "linkmon.yml"
    receivers = textwrap.indent(
        textwrap.dedent("""
        resend_interval: 30s
        receivers:
          - name: oncall
            kind: webhook
            url: "http://127.0.0.1:9/hook"
            headers: {Authorization: "Bearer ${LINKMON_TEST_TOKEN}"}
          - {name: am, kind: alertmanager, urls: ["http://127.0.0.1:9093", "http://[::1]:9094/"]}
        """),
        "  ",
    )
    head = CONFIG.format(db=tmp_path / "state.db", port=9).split("\nalerting:")[0]
    config_file.write_text(f"{head}\nalerting:{receivers}")
    webhook, am = build_receivers(load_config(config_file).alerting)
    assert webhook.headers == {"Authorization": "Bearer tok-123"}
    assert list(webhook.targets.values()) == ["http://127.0.0.1:9/hook"]
    assert am.resend_interval == 30.0
    assert [am.endpoint(u) for u in am.targets.values()] == [
        "http://127.0.0.1:9093/api/v2/alerts",
        "http://[::1]:9094/api/v2/alerts",
    ]
