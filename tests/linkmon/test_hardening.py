"""A real `linkmon run` against what production throws at it.

- No endpoint makes linkmon probe a target of the caller's choosing (the SSRF of
  blackbox_exporter's ``/probe?target=``, CVE-2020-16248); ``/-/reload`` is off unless enabled.
- A read-only or full state volume: a clear error, logged once, and probing and alerting go on.
- Hostile targets (endless headers, slowloris, TLS garbage, silence, redirect loops, a name
  server that never answers) never stall the scheduler, and every probe of them returns
  within its timeout.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import Samples
from tests.support.hostile import HostileTargets
from tests.support.loopback import (
    LinkmonProcess,
    SwitchableLink,
    free_port,
    histogram,
    link_yaml,
    running,
    tcp_probe,
    wait_for_connection,
    wait_until,
    write_config,
)
from tests.support.receiver import running_receiver


@pytest.fixture
def canary() -> Iterator[socket.socket]:
    """A loopback port no config names: any connection to it is a probe a caller chose."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


def attempts_to_choose_a_target(canary_port: int) -> list[tuple[str, str, dict[str, object]]]:
    target = f"127.0.0.1:{canary_port}"
    url = f"http://{target}/"
    config = f"""links:
  - {{id: evil, from: kab-a, to: pusat-dc, network: vpn,
     probes: [{{kind: tcp, target: "{target}"}}]}}
"""
    query = {
        "target": target,
        "module": "tcp_connect",
        "url": url,
        "host": "127.0.0.1",
        "port": str(canary_port),
    }
    attempts: list[tuple[str, str, dict[str, object]]] = []
    for path in (
        "/probe",
        "/api/v1/probe",
        "/api/v1/status",
        "/metrics",
        "/",
        "/-/ready",
        "/readyz",
        "/healthz",
        "/api/v1/openapi.json",
        "/static/app.js",
    ):
        attempts.append(("GET", path, {"params": query}))
    attempts += [
        ("GET", f"/probe/{target}", {}),
        ("GET", f"/{url}", {}),
        ("POST", "/probe", {"json": query}),
        ("POST", "/api/v1/probe", {"json": query}),
        ("POST", "/api/v1/status", {"json": query}),
        ("POST", "/-/reload", {"json": {"target": target, "links": [{"probes": [query]}]}}),
        (
            "POST",
            "/-/reload",
            {"content": config.encode(), "headers": {"Content-Type": "application/yaml"}},
        ),
        ("POST", "/-/reload", {"params": {"config": config, "file": "/etc/passwd", **query}}),
        (
            "GET",
            "/metrics",
            {
                "headers": {
                    "Host": target,
                    "X-Forwarded-Host": target,
                    "X-Forwarded-For": "127.0.0.1",
                }
            },
        ),
        ("GET", "/static/..%2f..%2fconfig.py", {}),
    ]
    return attempts


def test_no_endpoint_probes_a_target_the_caller_chooses(
    tmp_path: Path, canary: socket.socket
) -> None:
    canary_port = canary.getsockname()[1]
    port = free_port()
    config = write_config(tmp_path / "linkmon.yml", port=port, enable_reload=True)
    with running(config, port=port) as linkmon:
        answers: Counter[int] = Counter()
        for method, path, options in attempts_to_choose_a_target(canary_port):
            response = httpx.request(method, linkmon.base_url + path, timeout=10, **options)  # type: ignore[arg-type]
            answers[response.status_code] += 1
            if path in ("/probe", "/api/v1/probe") or path.startswith("/probe/"):
                assert response.status_code in (404, 405), (method, path, response.status_code)
            assert str(canary_port) not in response.text, (method, path)
        # Several probe rounds later, still nobody has touched the canary.
        assert not wait_for_connection(canary, 1.5), "linkmon connected to a caller's target"
        assert str(canary_port) not in httpx.get(linkmon.base_url + "/metrics").text
        status = httpx.get(linkmon.base_url + "/api/v1/status").json()
        assert [link["id"] for link in status["links"]] == ["kab-a--dc"]
        assert str(canary_port) not in json.dumps(status)
        assert answers[200] > 0 and answers[404] > 0, answers
        assert "Traceback" not in linkmon.output()


def new_link(port: int) -> str:
    return link_yaml("kec-b--kab", tcp_probe(f"127.0.0.1:{port}"))


def test_reload_over_http_is_off_unless_enabled(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "linkmon.yml", port=port)
    with running(config, port=port) as linkmon:
        before = linkmon.value("linkmon_config_last_reload_success_timestamp_seconds")
        write_config(config, port=port, links=new_link(port))
        refused = linkmon.post("/-/reload")
        assert refused.status_code == 403
        assert "enable_reload" in refused.text
        time.sleep(0.5)
        assert linkmon.value("linkmon_link_up", link="kec-b--kab") is None  # not reloaded
        assert linkmon.value("linkmon_config_last_reload_success_timestamp_seconds") == before
        assert linkmon.get("/-/reload").status_code == 405
        linkmon.process.send_signal(signal.SIGHUP)  # the operator's way still works
        wait_until(
            lambda: linkmon.value("linkmon_link_up", link="kec-b--kab") == 1,
            10,
            "the new link after SIGHUP",
        )

    port = free_port()
    config = write_config(tmp_path / "enabled.yml", port=port, enable_reload=True)
    with running(config, port=port) as linkmon:
        write_config(config, port=port, enable_reload=True, links=new_link(port))
        accepted = linkmon.post("/-/reload")
        assert accepted.status_code == 200, accepted.text
        wait_until(
            lambda: linkmon.value("linkmon_link_up", link="kec-b--kab") == 1,
            10,
            "the new link after POST /-/reload",
        )


# -- the state volume fails ---------------------------------------------------------------------


@pytest.fixture
def state_volume(tmp_path: Path) -> Iterator[Path]:
    """A mount point for a tiny tmpfs, unmounted whatever happens."""
    mount_point = tmp_path / "state"
    mount_point.mkdir()
    try:
        yield mount_point
    finally:
        if subprocess.run(["mountpoint", "-q", str(mount_point)]).returncode == 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def mount_tmpfs(mount_point: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "linkmon-test", str(mount_point)], check=True
    )


def fill(volume: Path) -> None:
    """Take every free block of the volume."""
    with (volume / "filler").open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert shutil.disk_usage(volume).free < 4096


def outage_and_recovery(
    linkmon: LinkmonProcess,
    link: SwitchableLink,
    receiver_bodies: Callable[[], list[dict[str, object]]],
) -> None:
    """Cut the link, see it page; restore it, see it resolve; probing counted all along."""
    rounds = linkmon.value("linkmon_probe_failures_total", link="kec-b--kab", reason="refused")
    link.down()
    wait_until(
        lambda: [b["status"] for b in receiver_bodies()] == ["firing"],
        15,
        "the firing alert at the receiver",
    )
    link.up()
    wait_until(
        lambda: [b["status"] for b in receiver_bodies()] == ["firing", "resolved"],
        15,
        "the resolved alert at the receiver",
    )
    after = linkmon.value("linkmon_probe_failures_total", link="kec-b--kab", reason="refused")
    assert (after or 0) >= (rounds or 0) + 2


@pytest.mark.root
@pytest.mark.parametrize("case", ["read-only", "full-at-start", "fills-while-running"])
def test_a_broken_state_volume_is_reported_once_and_probing_and_alerting_go_on(
    tmp_path: Path, state_volume: Path, case: str
) -> None:
    mount_tmpfs(
        state_volume,
        {
            "read-only": "size=256k,ro",
            "full-at-start": "size=64k",
            "fills-while-running": "size=1m",
        }[case],
    )
    link = SwitchableLink()
    port = free_port()
    links = link_yaml("kec-b--kab", tcp_probe(link.target))
    try:
        with running_receiver(tmp_path / "received.jsonl") as receiver:
            config = write_config(
                tmp_path / "linkmon.yml",
                port=port,
                links=links,
                storage=state_volume / "linkmon.db",
                receiver_url=receiver.url,
            )
            with running(config, port=port) as linkmon:
                wait_until(
                    lambda: linkmon.value("linkmon_link_up", link="kec-b--kab") == 1,
                    10,
                    "the link up",
                )
                if case == "fills-while-running":
                    fill(state_volume)
                outage_and_recovery(linkmon, link, receiver.delivered)
                time.sleep(0.5)
                log = linkmon.output()
    finally:
        link.close()
    errors = [line for line in log.splitlines() if "state is kept in memory only" in line]
    assert errors, log
    assert len(errors) == len(set(e.split(" ", 2)[2] for e in errors)), "a cause logged twice"
    expected = {
        "read-only": "is it writable by the linkmon user",
        "full-at-start": "the disk is full",
        "fills-while-running": "the disk is full",
    }[case]
    assert any(expected in e for e in errors), errors
    assert str(state_volume / "linkmon.db") in errors[0]
    assert "Traceback" not in log


# -- hostile targets ----------------------------------------------------------------------------

DNS_BLACKHOLE = "127.77.0.53"
NEVER_RESOLVES = "never.linkmon-test.invalid"
INTERVAL, TIMEOUT = 0.5, 0.4


@pytest.fixture
def hostile() -> Iterator[HostileTargets]:
    targets = HostileTargets(dns=DNS_BLACKHOLE)
    try:
        yield targets
    finally:
        targets.stop()


def links_with(own_port: int, hostile_probes: list[str]) -> str:
    """A healthy uplink (linkmon's own port by TCP and by name over HTTP, and ICMP) and a
    link whose probes all point at hostile targets."""
    return link_yaml(
        "kab-a--dc",
        tcp_probe(f"127.0.0.1:{own_port}"),
        f'{{kind: http, url: "http://localhost:{own_port}/healthz"}}',
        "{kind: icmp, target: 127.0.0.1}",
    ) + link_yaml("kec-b--kab", *hostile_probes)


def http_hostile_probes(ports: dict[str, int]) -> dict[str, str]:
    """target label -> probe config, for every hostile HTTP(S) behaviour that must fail.

    (An endless body is not among them: cut at the body cap, a 200 is a success.)"""
    urls = [
        f"http://127.0.0.1:{ports[name]}/"
        for name in ("huge_headers", "long_header_line", "slowloris", "silent", "redirect_loop")
    ]
    urls += [f"https://127.0.0.1:{ports['tls_garbage']}/", f"https://127.0.0.1:{ports['silent']}/"]
    return {url: f'{{kind: http, url: "{url}"}}' for url in urls}


def dns_hostile_probes() -> dict[str, str]:
    return {
        f"http://{NEVER_RESOLVES}/": f'{{kind: http, url: "http://{NEVER_RESOLVES}/"}}',
        f"{NEVER_RESOLVES}:80": f'{{kind: tcp, target: "{NEVER_RESOLVES}:80"}}',
    }


def watch_under_hostility(tmp_path: Path, hostile_probes: dict[str, str]) -> None:
    """Run linkmon with these hostile probes for a while and check it kept its schedule.

    linkmon runs in a mount namespace of its own whose resolv.conf names only a loopback
    server that swallows queries: no DNS query leaves the machine, and none is answered.
    """
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {DNS_BLACKHOLE}\noptions timeout:2 attempts:2\n")
    own_resolver = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        str(resolv),
    ]
    port = free_port()
    config = write_config(
        tmp_path / "linkmon.yml",
        port=port,
        links=links_with(port, list(hostile_probes.values())),
        interval=f"{INTERVAL}s",
        timeout=f"{TIMEOUT}s",
    )
    scrapes: list[float] = []
    with running(config, port=port, prefix=own_resolver) as linkmon:

        def scrape() -> Samples:
            began = time.monotonic()
            samples = linkmon.metrics()
            scrapes.append(time.monotonic() - began)
            return samples

        time.sleep(4 * INTERVAL)  # every hostile probe in full swing
        first = scrape()
        start = time.monotonic()
        last = first
        while time.monotonic() - start < 6.0:
            time.sleep(0.3)
            last = scrape()
        elapsed = time.monotonic() - start
        log = linkmon.output()

    assert max(scrapes) < 2.0, f"/metrics scrapes took {[round(s, 2) for s in scrapes]} s"
    lag_before = histogram(first, "linkmon_scheduler_lag_seconds")
    lag = {
        le: n - lag_before[le] for le, n in histogram(last, "linkmon_scheduler_lag_seconds").items()
    }
    rounds = lag[float("inf")]
    assert rounds >= 0.7 * (3 + len(hostile_probes)) * elapsed / INTERVAL, (rounds, elapsed)
    assert lag[0.25] == rounds, f"probe rounds started over 250 ms late: {lag}"
    assert lag[0.05] >= 0.95 * rounds, f"more than 5 % of rounds over 50 ms late: {lag}"

    def total(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in last.items() if n == name and set(labels.items()) <= ls)

    # Every round of every hostile probe ended in time, as a failure with a reason.
    assert total("linkmon_probe_errors_total") == 0, log
    assert total("linkmon_scheduler_rounds_skipped_total") == 0
    for target in hostile_probes:
        assert total("linkmon_probe_success", target=target) == 0, target
        failed = total("linkmon_probe_failures_total", target=target)
        assert failed >= 0.7 * (time.monotonic() - start + 4 * INTERVAL) / INTERVAL - 2, (
            target,
            failed,
        )
    # The healthy probes beside them kept succeeding, ICMP included; /metrics kept answering.
    assert total("linkmon_probe_success", link="kab-a--dc") == 3
    assert total("linkmon_probe_failures_total", link="kab-a--dc") == 0
    sent = total("linkmon_probe_packets_sent_total", target="127.0.0.1")
    assert total("linkmon_probe_packets_received_total", target="127.0.0.1") == sent > 0
    assert "Traceback" not in log


@pytest.mark.root
def test_hostile_http_targets_never_stall_the_scheduler(
    tmp_path: Path, hostile: HostileTargets
) -> None:
    watch_under_hostility(tmp_path, http_hostile_probes(hostile.ports))


@pytest.mark.root
def test_a_name_server_that_never_answers_stalls_nothing(
    tmp_path: Path, hostile: HostileTargets
) -> None:
    watch_under_hostility(tmp_path, dns_hostile_probes())
