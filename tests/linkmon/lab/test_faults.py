"""Faults on the real lab, each checked with an independent tool (iputils ping, TCP, curl).

The lab is the ground truth every detection test stands on, so its impairments are measured
here from outside the lab code: delay and loss are what was asked, cut and blackhole drop
everything (differently), refuse keeps ICMP answering.
"""

from __future__ import annotations

import statistics
import sys
import time

import pytest

from linkmon.lab import Lab, LabError

pytestmark = [pytest.mark.lab, pytest.mark.root]

KRAYAN = "kec-krayan--kab"
UPLINK = "kab-nunukan--dc"
HUB = "kab-nunukan"


def connect(lab: Lab, site: str, host: str, port: int) -> str:
    """TCP connect from inside a site: 'ok', 'refused' or 'timeout'."""
    script = (
        "import socket,sys\n"
        f"try: socket.create_connection(({host!r}, {port}), timeout=1).close(); print('ok')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('timeout' if isinstance(e, TimeoutError) else e)\n"
    )
    return lab.exec(site, [sys.executable, "-c", script]).stdout.strip()


def link_flags(lab: Lab, site: str, device: str) -> str:
    return lab.exec(site, ["ip", "-br", "link", "show", device], check=True).stdout


def test_kecamatan_is_reached_through_the_hub(clean_lab: Lab) -> None:
    lab = clean_lab
    krayan = lab.address("kec-krayan")
    assert lab.ping(HUB, krayan, count=5).received == 5
    # From pusat the kecamatan is two hops away: TTL 1 dies at the hub, TTL 2 arrives.
    hub_on_uplink = str(lab.topology.link(UPLINK).from_end.interface.ip)
    expired = lab.ping("pusat-dc", krayan, count=2, ttl=1)
    assert expired.received == 0
    assert (
        all(f"From {hub_on_uplink} " in e and "Time to live exceeded" in e for e in expired.errors)
        and len(expired.errors) == 2
    )
    assert lab.ping("pusat-dc", krayan, count=2, ttl=2).received == 2


def test_delay_each_way_doubles_into_the_rtt(clean_lab: Lab) -> None:
    lab = clean_lab
    overhead = lab.bridge_overhead(KRAYAN)
    assert 0 < overhead < 0.002
    lab.delay(KRAYAN, 0.040)
    rtt = lab.ping(HUB, lab.address("kec-krayan"), count=40, interval=0.02).median
    assert rtt == pytest.approx(0.080 + overhead, abs=0.001)
    lab.delay(KRAYAN, 0.040, direction="reverse")  # forward keeps its 40 ms
    lab.delay(KRAYAN, 0.0, direction="forward")
    rtt = lab.ping(HUB, lab.address("kec-krayan"), count=40, interval=0.02).median
    assert rtt == pytest.approx(0.040 + overhead, abs=0.001)


def test_jitter_spreads_rtts_around_the_delay(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.delay(KRAYAN, 0.030, jitter=0.010)
    rtts = lab.ping(HUB, lab.address("kec-krayan"), count=100, interval=0.01).rtts
    assert len(rtts) >= 95
    # Two uniform ±10 ms draws: RTT within 60 ± 20 ms, standard deviation 10·√(2/3) ≈ 8.2 ms.
    # (A busy machine may hold up the odd ping reply itself, hence 95 % and not all.)
    assert sum(0.0395 <= rtt <= 0.0815 for rtt in rtts) >= 0.95 * len(rtts)
    assert min(rtts) >= 0.0395
    assert 0.006 < statistics.pstdev(rtts) < 0.011
    assert statistics.median(rtts) == pytest.approx(0.060, abs=0.004)


def test_loss_is_what_a_ping_sees(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.loss(KRAYAN, 0.10)
    # 400 echoes: ±5 points is over 3 standard deviations of a 10 % binomial.
    seen = lab.ping(HUB, lab.address("kec-krayan"), count=400, interval=0.005)
    assert seen.sent == 400
    assert seen.loss == pytest.approx(0.10, abs=0.05)
    lab.loss(KRAYAN, 0.0)
    assert lab.ping(HUB, lab.address("kec-krayan"), count=50).loss == 0


def test_one_way_loss_drops_that_direction_only(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.loss(KRAYAN, 1.0, direction="forward")  # kecamatan -> hub: replies to the hub die
    assert lab.ping(HUB, lab.address("kec-krayan"), count=5).received == 0
    stats = lab.bridge_stats(KRAYAN)
    assert stats["reverse"]["frames"] > 0  # the echoes still crossed towards the kecamatan


def test_cut_and_restore(clean_lab: Lab) -> None:
    lab = clean_lab
    krayan = lab.address("kec-krayan")
    lab.cut(KRAYAN)
    assert "DOWN" in link_flags(lab, HUB, "kec-krayan")
    assert lab.ping(HUB, krayan, count=3).received == 0
    from_pusat = lab.ping("pusat-dc", krayan, count=3)
    assert from_pusat.received == 0 and all("Unreachable" in e for e in from_pusat.errors)
    lab.cut("kec-sebatik--kab")  # a second cut at the hub, restored independently
    lab.restore(KRAYAN)
    assert lab.ping(HUB, krayan, count=5).received == 5
    assert lab.ping("pusat-dc", krayan, count=5).received == 5  # routes came back too
    assert lab.ping(HUB, lab.address("kec-sebatik"), count=2).received == 0
    lab.restore("kec-sebatik--kab")
    assert lab.ping("pusat-dc", lab.address("kec-sebatik"), count=5).received == 5


def test_blackhole_drops_silently_with_the_link_up(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.blackhole(UPLINK)
    assert "LOWER_UP" in link_flags(lab, HUB, "pusat-dc")
    silent = lab.ping(HUB, lab.address("pusat-dc"), count=3, wait=0.3)
    assert (silent.received, silent.errors) == (0, ())
    assert connect(lab, HUB, lab.address("pusat-dc"), 9000) == "timeout"
    assert lab.ping(HUB, lab.address("pusat-drc"), count=3).received == 3  # the DRC is fine
    lab.restore(UPLINK)
    assert lab.ping(HUB, lab.address("pusat-dc"), count=3).received == 3


def test_refused_service_still_answers_ping(clean_lab: Lab) -> None:
    lab = clean_lab
    dc = lab.address("pusat-dc")
    assert connect(lab, HUB, dc, 9000) == "ok"
    lab.refuse("pusat-dc")
    assert lab.ping(HUB, dc, count=3).received == 3
    assert connect(lab, HUB, dc, 9000) == "refused"
    assert connect(lab, HUB, dc, 443) == "refused"
    curl = lab.exec(HUB, ["curl", "-sS", "-m", "2", f"http://{dc}/health"])
    assert curl.returncode == 7 and "Couldn't connect" in curl.stderr
    assert connect(lab, HUB, lab.address("pusat-drc"), 9000) == "ok"
    lab.restore("pusat-dc")
    https = lab.exec(
        HUB, ["curl", "-sS", "-m", "2", "--cacert", str(lab.ca_file), f"https://{dc}/health"]
    )
    assert '"site":"pusat-dc"' in https.stdout


def test_flapping_toggles_until_restored(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.flap(KRAYAN, 0.3)
    seen: set[bool] = set()
    deadline = time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add("LOWER_UP" in link_flags(lab, HUB, "kec-krayan"))
        time.sleep(0.05)
    assert seen == {True, False}
    pid = next(k for k in lab.status()["links"] if k["id"] == KRAYAN)["faults"]["flap"]["pid"]
    lab.restore(KRAYAN)
    assert not [p for p in lab.status()["processes"] if p["pid"] == pid]
    assert lab.ping(HUB, lab.address("kec-krayan"), count=3).received == 3


def test_bad_fault_requests_are_refused_clearly(clean_lab: Lab) -> None:
    lab = clean_lab
    with pytest.raises(LabError, match="unknown link 'kec-nowhere--kab'"):
        lab.cut("kec-nowhere--kab")
    with pytest.raises(LabError, match="loss must be between 0 and 100 %"):
        lab.loss(KRAYAN, 1.5)
    with pytest.raises(LabError, match="want 0 <= jitter <= delay"):
        lab.delay(KRAYAN, 0.010, jitter=0.020)
    with pytest.raises(LabError, match="direction must be one of both, forward, reverse"):
        lab.delay(KRAYAN, 0.010, direction="up")
    with pytest.raises(LabError, match="kec-krayan runs no services to refuse"):
        lab.refuse("kec-krayan")
    lab.loss(KRAYAN, 0.5)
    with pytest.raises(LabError, match="has faults in force"):
        lab.bridge_overhead(KRAYAN)
