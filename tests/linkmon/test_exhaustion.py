"""A hostile client that holds thousands of connections never costs a link its `up`.

The reproduction of issue #12, item 2, on a real `linkmon run` with its open-file limit at
1,024 (soft and hard, so that raising the soft limit at start cannot hide anything): 3,000
connections held against its port, half silent, half slow-loris, each one the daemon closes
opened again at once. Throughout, the ICMP and the TCP link stay up, no LinkDown reaches the
webhook receiver, `/healthz` answers on a new connection within 1 s, the log stays small, and
an agent-level metric says what ran out.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import value
from tests.support.idle_clients import holding_idle_connections
from tests.support.loopback import (
    SwitchableLink,
    free_port,
    link_yaml,
    running,
    tcp_probe,
    wait_until,
    write_config,
)
from tests.support.receiver import running_receiver

pytestmark = pytest.mark.root  # a raw ICMP socket

OPEN_FILES = 1024
CONNECTIONS = 3000
HOLD = 20.0  # seconds of abuse watched
HEALTHZ_WITHIN = 1.0
LOG_GROWTH_LIMIT = 100_000  # bytes
LINKS = ("kab-a--dc", "kec-b--kab")


def timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response | None]:
    """One request and how long it took; ``client`` opens a new connection for each, as a
    scraper or `linkmon status` does."""
    started = time.monotonic()
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return time.monotonic() - started, None
    return time.monotonic() - started, response


def test_thousands_of_idle_connections_starve_no_probe(tmp_path: Path) -> None:
    target = SwitchableLink()
    port = free_port()
    links = link_yaml("kab-a--dc", "{kind: icmp, target: 127.0.0.1}") + link_yaml(
        "kec-b--kab", tcp_probe(target.target)
    )
    try:
        with running_receiver(tmp_path / "received.jsonl") as receiver:
            config = write_config(
                tmp_path / "linkmon.yml",
                port=port,
                links=links,
                receiver_url=receiver.url,
                interval="500ms",
                timeout="400ms",
            )
            prefix = ["prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}"]
            with running(config, port=port, prefix=prefix) as linkmon:
                wait_until(
                    lambda: all(linkmon.value("linkmon_link_up", link=id) == 1 for id in LINKS),
                    15,
                    "both links up",
                )
                log_before = linkmon.log.stat().st_size
                healthz: list[float] = []
                not_up: list[str] = []
                new_connections = httpx.Client(
                    timeout=5, limits=httpx.Limits(max_keepalive_connections=0)
                )
                with (
                    new_connections as client,
                    holding_idle_connections(port, CONNECTIONS, seconds=HOLD + 15) as clients,
                ):
                    deadline = time.monotonic() + HOLD
                    while time.monotonic() < deadline:
                        seconds, response = timed_get(client, linkmon.base_url + "/healthz")
                        healthz.append(seconds if response and response.status_code == 200 else 99)
                        _, status = timed_get(client, linkmon.base_url + "/api/v1/status")
                        if status is None or status.status_code != 200:
                            not_up.append(f"status API did not answer ({status})")
                            continue
                        not_up += [
                            f"{link['id']}: {link['state']} {link['cause']} {link['detail']}"
                            for link in status.json()["links"]
                            if link["state"] != "up"
                        ]
                    held = linkmon.value("linkmon_http_connections")
                    counts = clients.stop()
                samples = linkmon.metrics()
                log_growth = linkmon.log.stat().st_size - log_before
                output = linkmon.output()
            alerts = [a for body in receiver.delivered() for a in body["alerts"]]
    finally:
        target.close()

    healthz.sort()
    print(
        f"healthz: {len(healthz)} answers, median {healthz[len(healthz) // 2]:.3f} s, "
        f"p99 {healthz[len(healthz) * 99 // 100]:.3f} s, max {healthz[-1]:.3f} s; "
        f"clients: {counts}; log grew by {log_growth} bytes"
    )
    # The abuse was real to the end: connections were shed, and the web side still full.
    assert counts.get("closed_by_server", 0) > 0, counts
    limit = value(samples, "linkmon_http_connections_max")
    assert held is not None and limit is not None and held > 0.9 * limit, (held, limit)
    assert not not_up, not_up[:10]
    assert healthz[-1] < HEALTHZ_WITHIN, healthz[-10:]
    assert not [a for a in alerts if a["labels"]["alertname"] == "LinkDown"], alerts
    assert log_growth < LOG_GROWTH_LIMIT, output[-3000:]
    exhausted = {
        dict(labels)["resource"]: v
        for (name, labels), v in samples.items()
        if name == "linkmon_agent_resource_exhausted_total"
    }
    assert exhausted.get("http_connections", 0) > 0, exhausted
    assert "Traceback" not in output, output[-3000:]
