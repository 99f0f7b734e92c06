"""The link state machine, driven by a fake clock: every rule of linkmon.state.

It speaks in facts (states, causes, times, alert keys and figures); what people read is
tested with the composer (tests/linkmon/alerts/test_compose.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from linkmon.state import (
    AlertChange,
    AlertKey,
    AlertKind,
    Availability,
    Changes,
    LinkRule,
    LinkState,
    Network,
    ProbeRule,
    Rules,
    SiteRule,
)
from linkmon.storage import snapshot_from_json, snapshot_json
from probes.base import Failure, ProbeResult

T0 = 1_740_798_000.0  # 2025-03-01 03:00 UTC = 11:00 WITA
ICMP = ProbeRule("icmp", "198.18.1.1")
TCP = ProbeRule("tcp", "198.18.1.1:443")
HTTP = ProbeRule("http", "https://198.18.1.1/health")


def ok(rtt: float = 0.02, lost: int = 0) -> ProbeResult:
    return ProbeResult(
        "icmp",
        "198.18.1.1",
        success=True,
        duration=rtt,
        packets_sent=5,
        packets_received=5 - lost,
        rtts=(rtt,) * (5 - lost),
    )


def silent() -> ProbeResult:
    return ProbeResult(
        "icmp",
        "198.18.1.1",
        success=False,
        failure=Failure.TIMEOUT,
        packets_sent=5,
        packets_received=0,
    )


def service(kind: str, failure: Failure | None = None, detail: str = "") -> ProbeResult:
    return ProbeResult(
        kind, "x", success=failure is None, duration=0.01, failure=failure, detail=detail
    )


def site(id_: str, kind: str, kabupaten: str | None = None) -> SiteRule:
    return SiteRule(id_, kind, id_.replace("-", " ").title(), "Asia/Makassar", kabupaten)


def link(
    id_: str,
    from_: str,
    to: str,
    probes: Sequence[ProbeRule] = (ICMP,),
    depends_on: Sequence[str] = (),
    network: str = "vpn",
) -> LinkRule:
    return LinkRule(
        id_,
        from_,
        to,
        network,
        tuple(probes),
        tuple(depends_on),
        down_after=3,
        up_after=2,
        max_loss=0.2,
        max_rtt=0.3,
    )


def rules(links: Sequence[LinkRule], sites: Sequence[SiteRule] = (), **kw: Any) -> Rules:
    base = [
        site("pusat-dc", "pusat"),
        site("pusat-drc", "drc"),
        site("kab-nunukan", "kabupaten", "kab-nunukan"),
    ]
    all_sites = {s.id: s for s in [*base, *sites]}
    for rule in links:
        for sid in (rule.from_site, rule.to_site):
            if sid not in all_sites:
                all_sites[sid] = site(sid, "kecamatan", "kab-nunukan")
    return Rules(agent="kab-nunukan", sites=all_sites, links={r.id: r for r in links}, **kw)


class Run:
    """A network and a fake clock; collects every change it produced."""

    def __init__(self, net_rules: Rules, interval: float = 1.0) -> None:
        self.now = T0
        self.interval = interval
        self.net = Network(net_rules, self.now)
        self.changes: list[Changes] = []

    def feed(self, link_id: str, *results: ProbeResult) -> Changes:
        """One round of ``link_id``: result i goes to probe i."""
        merged = Changes()
        for index, result in enumerate(results):
            change = self.net.observe(link_id, index, result, self.now)
            self.changes.append(change)
            merged = Changes(merged.transitions + change.transitions, merged.alerts + change.alerts)
        return merged

    def round(self, plan: Mapping[str, Sequence[ProbeResult]]) -> None:
        for link_id, results in plan.items():
            self.feed(link_id, *results)
        self.later(self.interval)

    def later(self, seconds: float) -> None:
        self.now += seconds
        self.changes.append(self.net.tick(self.now))

    def state(self, link_id: str) -> LinkState:
        return self.net.snapshot()[link_id].state

    @property
    def alerts(self) -> list[AlertChange]:
        return [a for c in self.changes for a in c.alerts]

    def sent(self, name: str | None = None) -> list[tuple[str, str, str]]:
        """(alertname, subject, status) of every alert produced, in order."""
        return [
            (a.key.kind.value, a.key.subject, "firing" if a.firing else "resolved")
            for a in self.alerts
            if name is None or a.key.kind == name
        ]

    @property
    def states(self) -> list[tuple[str, LinkState]]:
        return [(t.link, t.new) for c in self.changes for t in c.transitions]


def single(probes: Sequence[ProbeRule] = (ICMP,)) -> Run:
    return Run(rules([link("kec-krayan--kab", "kec-krayan", "kab-nunukan", probes, network="m2m")]))


# -- down_after / up_after -----------------------------------------------------------------


def test_down_after_consecutive_failures_pages_once_with_its_cause() -> None:
    run = single()
    run.round({"kec-krayan--kab": [ok()]})
    assert run.state("kec-krayan--kab") is LinkState.UP
    run.round({"kec-krayan--kab": [silent()]})
    run.round({"kec-krayan--kab": [silent()]})
    assert run.state("kec-krayan--kab") is LinkState.UP
    assert run.alerts == []
    run.round({"kec-krayan--kab": [silent()]})
    assert run.state("kec-krayan--kab") is LinkState.DOWN
    for _ in range(5):
        run.round({"kec-krayan--kab": [silent()]})
    [alert] = run.alerts
    assert alert.firing
    assert alert.key == AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab")
    assert (alert.cause, alert.detail) == ("path_down", "icmp 198.18.1.1: timeout")
    assert alert.since == T0 + 3


def test_up_after_consecutive_good_rounds_resolves_same_alert() -> None:
    run = single()
    for _ in range(4):
        run.round({"kec-krayan--kab": [silent()]})
    run.round({"kec-krayan--kab": [ok()]})
    assert run.state("kec-krayan--kab") is LinkState.DOWN
    run.round({"kec-krayan--kab": [silent()]})  # one good round is not enough
    run.round({"kec-krayan--kab": [ok()]})
    assert run.state("kec-krayan--kab") is LinkState.DOWN
    run.round({"kec-krayan--kab": [ok()]})
    assert run.state("kec-krayan--kab") is LinkState.UP
    firing, resolved = run.alerts
    assert (firing.firing, resolved.firing) == (True, False)
    assert firing.key == resolved.key
    assert resolved.since == firing.since  # the resolve says how long it lasted
    assert resolved.at == run.now - 1
    assert not resolved.removed


def test_first_good_round_is_up_without_alert() -> None:
    run = single()
    assert run.state("kec-krayan--kab") is LinkState.UNKNOWN
    run.round({"kec-krayan--kab": [ok()]})
    assert run.states == [("kec-krayan--kab", LinkState.UP)]
    assert run.alerts == []


# -- degraded ------------------------------------------------------------------------------


def test_loss_above_threshold_degrades_and_recovers() -> None:
    run = single()
    for _ in range(5):
        run.round({"kec-krayan--kab": [ok(lost=2)]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (LinkState.DEGRADED, "loss")
    assert snap.loss == pytest.approx(0.4)
    for _ in range(30):
        run.round({"kec-krayan--kab": [ok()]})
    assert run.state("kec-krayan--kab") is LinkState.UP
    assert run.alerts == []


def test_loss_that_starts_after_clean_rounds_stays_degraded_while_it_lasts() -> None:
    """Seen in the demo: a lossy link went degraded -> up after 2 s while the loss went on.
    A round that lost every echo is loss too, and leaving degraded needs the recent rounds
    clean as well (the long window still holds the clean rounds from before)."""

    def echoes(lost: int) -> ProbeResult:  # 3 echoes a round, as on a thin kecamatan link
        return ProbeResult(
            "icmp",
            "198.18.1.1",
            success=lost < 3,
            duration=0.02,
            failure=Failure.TIMEOUT if lost == 3 else None,
            packets_sent=3,
            packets_received=3 - lost,
            rtts=(0.02,) * (3 - lost),
        )

    run = single()
    for _ in range(15):
        run.round({"kec-krayan--kab": [echoes(0)]})
    seen = []
    for lost in (0, 1, 1, 1, 1, 1, 0, 1, 0, 3, 0, 0, 1, 2, 1, 0, 1, 1, 2, 0):  # ~30 % loss
        run.round({"kec-krayan--kab": [echoes(lost)]})
        seen.append(run.state("kec-krayan--kab"))
    first = seen.index(LinkState.DEGRADED)
    assert set(seen[first:]) == {LinkState.DEGRADED}, seen


def test_rtt_above_threshold_degrades() -> None:
    run = single()
    for _ in range(5):
        run.round({"kec-krayan--kab": [ok(rtt=0.45)]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause, snap.detail) == (LinkState.DEGRADED, "rtt", "rtt 450 ms")
    for _ in range(25):
        run.round({"kec-krayan--kab": [ok(rtt=0.05)]})
    assert run.state("kec-krayan--kab") is LinkState.UP


def test_twenty_percent_random_loss_is_degraded_never_down() -> None:
    rng = random.Random(20)
    run = single()
    seen = []
    for _ in range(300):
        lost = sum(rng.random() < 0.2 for _ in range(5))
        run.round({"kec-krayan--kab": [ok(lost=lost) if lost < 5 else silent()]})
        seen.append(run.state("kec-krayan--kab"))
    assert LinkState.DOWN not in seen
    assert run.alerts == []
    assert seen[-250:].count(LinkState.DEGRADED) > 200
    assert len(run.states) <= 5  # hysteresis: no state change every few rounds


def test_probes_failing_together_go_down_without_passing_degraded() -> None:
    """Probes of one link run at different phases: the ICMP probe may reach down_after a
    round before the HTTP probe does. Seen in the demo: up -> degraded -> down for a cut."""
    run = single((ICMP, HTTP))
    run.round({"kec-krayan--kab": [ok(), service("http")]})
    timeout = service("http", Failure.TIMEOUT, "timed out")
    for _ in range(3):  # each round: the ICMP result first, the HTTP one half a second later
        run.changes.append(run.net.observe("kec-krayan--kab", 0, silent(), run.now))
        run.changes.append(run.net.observe("kec-krayan--kab", 1, timeout, run.now + 0.5))
        run.later(1.0)
    assert run.states == [("kec-krayan--kab", LinkState.UP), ("kec-krayan--kab", LinkState.DOWN)]


def test_silent_rounds_before_down_after_are_not_loss_degradation() -> None:
    run = single()
    for _ in range(5):
        run.round({"kec-krayan--kab": [ok()]})
    for _ in range(3):
        run.round({"kec-krayan--kab": [silent()]})
    assert run.states == [("kec-krayan--kab", LinkState.UP), ("kec-krayan--kab", LinkState.DOWN)]


def test_some_but_not_all_probes_failing_is_degraded() -> None:
    http2 = ProbeRule("http", "https://198.18.1.1/other")
    run = single((ICMP, HTTP, http2))
    bad = service("http", Failure.HTTP_STATUS, "HTTP 500")
    for _ in range(3):
        run.round({"kec-krayan--kab": [ok(), service("http"), bad]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (LinkState.DEGRADED, "http_status")
    assert "https://198.18.1.1/other: http_status (HTTP 500)" in snap.detail
    assert run.alerts == []


# -- diagnosis -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("icmp", "tcp", "http", "state", "cause"),
    [
        (
            silent(),
            service("tcp", Failure.TIMEOUT),
            service("http", Failure.TIMEOUT),
            LinkState.DOWN,
            "path_down",
        ),
        (
            ok(),
            service("tcp", Failure.REFUSED),
            service("http", Failure.REFUSED),
            LinkState.DOWN,
            "service_refused",
        ),
        (
            ok(),
            service("tcp", Failure.TIMEOUT),
            service("http", Failure.TIMEOUT),
            LinkState.DOWN,
            "service_blocked",
        ),
        (
            ok(),
            service("tcp"),
            service("http", Failure.HTTP_STATUS, "HTTP 403"),
            LinkState.DEGRADED,
            "http_status",
        ),
        (
            ok(),
            service("tcp"),
            service("http", Failure.TLS, "certificate expired"),
            LinkState.DEGRADED,
            "tls",
        ),
        (ok(), service("tcp"), service("http", Failure.DNS, "NXDOMAIN"), LinkState.DEGRADED, "dns"),
        (
            ok(),
            service("tcp"),
            service("http", Failure.BODY_MISMATCH),
            LinkState.DEGRADED,
            "body_mismatch",
        ),
        # ICMP filtered but the host resets TCP: the path answers, the service refuses.
        (
            silent(),
            service("tcp", Failure.REFUSED),
            service("http", Failure.REFUSED),
            LinkState.DOWN,
            "service_refused",
        ),
        (silent(), service("tcp"), service("http"), LinkState.DEGRADED, "icmp_lost"),
    ],
)
def test_diagnosis_names_the_failed_layer(
    icmp: ProbeResult, tcp: ProbeResult, http: ProbeResult, state: LinkState, cause: str
) -> None:
    run = single((ICMP, TCP, HTTP))
    run.round({"kec-krayan--kab": [ok(), service("tcp"), service("http")]})
    for _ in range(3):
        run.round({"kec-krayan--kab": [icmp, tcp, http]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (state, cause)
    if state is LinkState.DOWN:
        [alert] = run.alerts
        assert alert.cause == cause


def test_http_status_only_service_probe_blocked_by_pusat_is_down() -> None:
    run = single((ICMP, HTTP))
    for _ in range(3):
        run.round({"kec-krayan--kab": [ok(), service("http", Failure.HTTP_STATUS, "HTTP 403")]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (LinkState.DOWN, "http_status")
    assert "HTTP 403" in run.alerts[0].detail


def test_only_dns_failing_everywhere_is_named_dns() -> None:
    run = single((HTTP,))
    for _ in range(3):
        run.round({"kec-krayan--kab": [service("http", Failure.DNS)]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (LinkState.DOWN, "dns")


# -- dependencies --------------------------------------------------------------------------

KECAMATAN = ["kec-krayan", "kec-lumbis", "kec-sebuku"]


def hub(
    own_uplinks: frozenset[str] = frozenset(), kecamatan: Sequence[str] = KECAMATAN, **kw: Any
) -> Run:
    """A pusat agent: the hub's uplinks to DC and DRC, kecamatan links behind both."""
    uplinks = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kab-nunukan--drc", "kab-nunukan", "pusat-drc"),
    ]
    kec = [
        link(f"{k}--kab", k, "kab-nunukan", depends_on=("kab-nunukan--dc", "kab-nunukan--drc"))
        for k in kecamatan
    ]
    return Run(rules([*uplinks, *kec], own_uplinks=own_uplinks, **kw))


def all_links(
    run: Run, uplinks: tuple[ProbeResult, ProbeResult], kec: ProbeResult
) -> dict[str, Sequence[ProbeResult]]:
    """One round where the kecamatan links happen to be probed before the uplinks."""
    plan: dict[str, Sequence[ProbeResult]] = {f"{k}--kab": [kec] for k in KECAMATAN}
    plan["kab-nunukan--dc"] = [uplinks[0]]
    plan["kab-nunukan--drc"] = [uplinks[1]]
    return plan


def test_one_parent_down_is_not_unreachable() -> None:
    run = hub(rollup_min_links=10)
    run.round(all_links(run, (ok(), ok()), ok()))
    for _ in range(4):
        run.round(all_links(run, (silent(), ok()), silent()))
    assert run.state("kab-nunukan--dc") is LinkState.DOWN
    assert run.state("kec-krayan--kab") is LinkState.DOWN  # the DRC path was still there
    assert {s for _, s, _ in run.sent("LinkDown")} == {
        "kab-nunukan--dc",
        *(f"{k}--kab" for k in KECAMATAN),
    }


def test_all_parents_down_is_unreachable_and_pages_only_the_uplinks() -> None:
    run = hub()
    run.round(all_links(run, (ok(), ok()), ok()))
    for _ in range(6):
        run.round(all_links(run, (silent(), silent()), silent()))
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert snap.state is LinkState.UNREACHABLE
    assert snap.cause == "upstream:kab-nunukan--dc+kab-nunukan--drc"
    assert snap.upstream == ("kab-nunukan--dc", "kab-nunukan--drc")
    assert sorted(run.sent()) == [
        ("LinkDown", "kab-nunukan--dc", "firing"),
        ("LinkDown", "kab-nunukan--drc", "firing"),
        ("ServiceUnavailable", "kab-nunukan", "firing"),
    ]
    # No kecamatan ever passed through DOWN on its way to unreachable.
    assert ("kec-krayan--kab", LinkState.DOWN) not in run.states


def test_upstream_recovery_brings_no_burst() -> None:
    run = hub()
    run.round(all_links(run, (ok(), ok()), ok()))
    for _ in range(6):
        run.round(all_links(run, (silent(), silent()), silent()))
    before = len(run.alerts)
    # Uplinks come back first (the kecamatan results of those rounds are still stale).
    run.round(all_links(run, (ok(), ok()), silent()))
    run.round(all_links(run, (ok(), ok()), silent()))
    assert run.state("kab-nunukan--dc") is LinkState.UP
    run.round(all_links(run, (ok(), ok()), ok()))
    assert run.state("kec-krayan--kab") is LinkState.UP
    for _ in range(3):
        run.round(all_links(run, (ok(), ok()), ok()))
    new = run.sent()[before:]
    assert sorted(new) == [
        ("LinkDown", "kab-nunukan--dc", "resolved"),
        ("LinkDown", "kab-nunukan--drc", "resolved"),
        ("ServiceUnavailable", "kab-nunukan", "resolved"),
    ]


def test_link_still_down_after_upstream_recovery_pages_on_fresh_results() -> None:
    run = hub()
    run.round(all_links(run, (ok(), ok()), ok()))
    for _ in range(5):
        run.round(all_links(run, (silent(), silent()), silent()))
    for _ in range(2):
        run.round(all_links(run, (ok(), ok()), silent()))
    assert run.state("kec-krayan--kab") is LinkState.UNREACHABLE
    assert run.sent("LinkDown")[-1][2] == "resolved"
    for _ in range(3):
        run.round(all_links(run, (ok(), ok()), silent()))
    assert run.state("kec-krayan--kab") is LinkState.DOWN
    assert ("LinkDown", "kec-krayan--kab", "firing") in run.sent()


def test_own_uplink_down_makes_links_behind_it_unknown() -> None:
    run = hub(own_uplinks=frozenset({"kab-nunukan--dc", "kab-nunukan--drc"}))
    run.round(all_links(run, (ok(), ok()), ok()))
    for _ in range(4):
        run.round(all_links(run, (silent(), silent()), silent()))
    snap = run.net.snapshot()["kec-lumbis--kab"]
    assert (snap.state, snap.cause) == (LinkState.UNKNOWN, "own_uplink")
    assert not [s for s in run.sent("LinkDown") if s[1].startswith("kec-")]


def test_unreachable_cause_names_the_root_of_a_chain() -> None:
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kec-krayan--kab", "kec-krayan", "kab-nunukan", depends_on=("kab-nunukan--dc",)),
        link("desa-x--kec", "desa-x", "kec-krayan", depends_on=("kec-krayan--kab",)),
    ]
    run = Run(rules(links))
    for _ in range(5):
        run.round(
            {
                "desa-x--kec": [silent()],
                "kec-krayan--kab": [silent()],
                "kab-nunukan--dc": [silent()],
            }
        )
    snap = run.net.snapshot()["desa-x--kec"]
    assert (snap.state, snap.cause) == (LinkState.UNREACHABLE, "upstream:kab-nunukan--dc")
    assert run.sent() == [("LinkDown", "kab-nunukan--dc", "firing")]


# -- flapping ------------------------------------------------------------------------------


def test_flapping_link_gets_one_flapping_alert_not_dozens() -> None:
    run = single()
    run.net = Network(
        rules(
            [link("kec-krayan--kab", "kec-krayan", "kab-nunukan")], flap_changes=4, flap_window=60.0
        ),
        run.now,
    )
    for i in range(40):
        run.round({"kec-krayan--kab": [silent() if (i // 3) % 2 == 0 else ok()]})
    flapping = run.sent("LinkFlapping")
    assert flapping == [("LinkFlapping", "kec-krayan--kab", "firing")]
    [flap] = [a for a in run.alerts if a.key.kind is AlertKind.LINK_FLAPPING]
    assert (flap.cause, flap.changes, flap.window) == ("flapping", 5, 60.0)  # more than 4
    assert len(run.sent("LinkDown")) <= 4  # the changes before flapping was recognised
    assert run.net.snapshot()["kec-krayan--kab"].flapping
    for _ in range(70):  # calm: up for longer than the window
        run.round({"kec-krayan--kab": [ok()]})
    assert run.sent("LinkFlapping")[-1] == ("LinkFlapping", "kec-krayan--kab", "resolved")
    assert not run.net.snapshot()["kec-krayan--kab"].flapping
    down = run.sent("LinkDown")
    assert [s for _, _, s in down].count("firing") == [s for _, _, s in down].count("resolved")


# -- regional roll-up ----------------------------------------------------------------------

TEN = [f"kec-{n}" for n in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")]


def region(**kw: Any) -> Run:
    links = [link(f"{k}--kab", k, "kab-nunukan") for k in TEN]
    return Run(rules(links, rollup_share=0.5, rollup_min_links=3, **kw))


def test_many_kecamatan_down_together_is_one_regional_incident() -> None:
    run = region()
    run.round({f"{k}--kab": [ok()] for k in TEN})
    for _ in range(5):
        run.round({f"{k}--kab": [silent() if k in TEN[:6] else ok()] for k in TEN})
    assert [run.state(f"{k}--kab") for k in TEN[:6]] == [LinkState.DOWN] * 6
    assert run.sent() == [("RegionalIncident", "kab-nunukan", "firing")]
    [incident] = run.alerts
    assert incident.cause == "path_down"
    # Fired when the fifth of ten went down (share 0.5), naming the kecamatan cut off.
    assert (incident.down, incident.total) == (5, 10)
    assert incident.offices == tuple(TEN[:5])
    assert incident.since == T0 + 3
    for _ in range(3):
        run.round({f"{k}--kab": [ok()] for k in TEN})
    assert run.sent() == [
        ("RegionalIncident", "kab-nunukan", "firing"),
        ("RegionalIncident", "kab-nunukan", "resolved"),
    ]


def test_reconfigure_removing_a_kabupatens_kecamatan_resolves_its_incident_as_removed() -> None:
    run = region()
    run.round({f"{k}--kab": [ok()] for k in TEN})
    for _ in range(5):
        run.round({f"{k}--kab": [silent() if k in TEN[:6] else ok()] for k in TEN})
    run.net.reconfigure(rules([link("kab-nunukan--dc", "kab-nunukan", "pusat-dc")]), run.now)
    change = run.net.tick(run.now)
    [resolved] = change.alerts
    incident = AlertKey(AlertKind.REGIONAL_INCIDENT, "kab-nunukan")
    assert (resolved.key, resolved.firing, resolved.removed) == (incident, False, True)
    assert (resolved.since, resolved.at) == (T0 + 3, run.now)


def test_single_kecamatan_down_pages_its_link_not_a_region() -> None:
    run = region()
    run.round({f"{k}--kab": [ok()] for k in TEN})
    for _ in range(4):
        run.round({f"{k}--kab": [silent() if k == "kec-c" else ok()] for k in TEN})
    assert run.sent() == [("LinkDown", "kec-c--kab", "firing")]


# -- maintenance ---------------------------------------------------------------------------


def test_maintenance_suppresses_creation_and_is_shown() -> None:
    windows = {"kec-krayan--kab": (T0, T0 + 10)}

    def lookup(link_id: str, now: float) -> str | None:
        start, end = windows.get(link_id, (0.0, 0.0))
        return "ganti router" if start <= now < end else None

    run = Run(rules([link("kec-krayan--kab", "kec-krayan", "kab-nunukan")], maintenance=lookup))
    for _ in range(6):
        run.round({"kec-krayan--kab": [silent()]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.maintenance) == (LinkState.DOWN, "ganti router")
    assert run.alerts == []
    for _ in range(6):  # the work overran: once the window ends, the outage pages
        run.round({"kec-krayan--kab": [silent()]})
    assert run.sent() == [("LinkDown", "kec-krayan--kab", "firing")]
    assert run.alerts[0].since == T0 + 2  # when it really went down


def test_maintenance_never_swallows_a_resolve() -> None:
    windows: dict[str, tuple[float, float]] = {}

    def lookup(link_id: str, now: float) -> str | None:
        start, end = windows.get(link_id, (0.0, 0.0))
        return "perbaikan" if start <= now < end else None

    run = Run(rules([link("kec-krayan--kab", "kec-krayan", "kab-nunukan")], maintenance=lookup))
    for _ in range(4):
        run.round({"kec-krayan--kab": [silent()]})
    windows["kec-krayan--kab"] = (run.now, run.now + 100)
    for _ in range(2):
        run.round({"kec-krayan--kab": [ok()]})
    assert run.sent() == [
        ("LinkDown", "kec-krayan--kab", "firing"),
        ("LinkDown", "kec-krayan--kab", "resolved"),
    ]


# -- service availability ------------------------------------------------------------------


def test_service_via_dc_drc_and_none() -> None:
    run = hub()
    run.round(all_links(run, (ok(), ok()), ok()))
    svc = run.net.service()
    assert svc["kec-krayan"].availability is Availability.AVAILABLE
    assert svc["kec-krayan"].via == ("kec-krayan--kab", "kab-nunukan--dc")
    for _ in range(3):
        run.round(all_links(run, (silent(), ok()), ok()))
    svc = run.net.service()
    assert (svc["kab-nunukan"].availability, svc["kab-nunukan"].reason) == (
        Availability.DEGRADED,
        "drc",
    )
    assert svc["kec-sebuku"].via == ("kec-sebuku--kab", "kab-nunukan--drc")
    for _ in range(3):
        run.round(all_links(run, (silent(), silent()), ok()))
    svc = run.net.service()
    assert {s.availability for s in svc.values()} == {Availability.UNAVAILABLE}
    assert ("ServiceUnavailable", "kab-nunukan", "firing") in run.sent()
    [page] = [a for a in run.alerts if a.key.kind is AlertKind.SERVICE_UNAVAILABLE]
    assert (page.cause, page.links) == ("no_path", ("kab-nunukan--dc", "kab-nunukan--drc"))
    assert page.since == svc["kab-nunukan"].since
    # The kecamatan behind the hub inherit it: no page each.
    assert not [a for a in run.sent("ServiceUnavailable") if a[1].startswith("kec-")]


def _krayan_with_backup() -> tuple[Run, dict[str, list[ProbeResult]]]:
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kec-krayan--kab", "kec-krayan", "kab-nunukan", network="m2m"),
        link("kec-krayan--kab-starlink", "kec-krayan", "kab-nunukan", network="starlink"),
    ]
    run = Run(rules(links))
    plan = {
        "kab-nunukan--dc": [ok()],
        "kec-krayan--kab": [ok()],
        "kec-krayan--kab-starlink": [ok()],
    }
    run.round(plan)
    return run, plan


def test_parallel_backup_link_serves_degraded() -> None:
    run, plan = _krayan_with_backup()
    assert run.net.service()["kec-krayan"].availability is Availability.AVAILABLE
    for _ in range(3):
        run.round({**plan, "kec-krayan--kab": [silent()]})
    status = run.net.service()["kec-krayan"]
    assert (status.availability, status.reason) == (Availability.DEGRADED, "backup")
    assert status.via == ("kec-krayan--kab-starlink", "kab-nunukan--dc")
    for _ in range(3):
        run.round({**plan, "kec-krayan--kab": [silent()], "kec-krayan--kab-starlink": [silent()]})
    assert run.net.service()["kec-krayan"].availability is Availability.UNAVAILABLE
    assert ("ServiceUnavailable", "kec-krayan", "firing") in run.sent()


def test_office_without_monitored_path_is_unknown() -> None:
    run = single()
    run.round({"kec-krayan--kab": [ok()]})
    status = run.net.service()["kec-krayan"]
    assert (status.availability, status.reason) == (Availability.UNKNOWN, "not_monitored")


# -- reload and restart --------------------------------------------------------------------


def down_link_run() -> Run:
    run = Run(
        rules(
            [
                link("kec-krayan--kab", "kec-krayan", "kab-nunukan", (ICMP, TCP)),
                link("kec-lumbis--kab", "kec-lumbis", "kab-nunukan"),
            ]
        )
    )
    for _ in range(4):
        run.round(
            {
                "kec-krayan--kab": [silent(), service("tcp", Failure.TIMEOUT)],
                "kec-lumbis--kab": [ok()],
            }
        )
    return run


def test_reconfigure_keeps_state_of_unchanged_links() -> None:
    run = down_link_run()
    before = run.net.snapshot()
    tcp_moved = ProbeRule("tcp", "198.18.1.1:8443")
    run.net.reconfigure(
        rules(
            [
                link("kec-krayan--kab", "kec-krayan", "kab-nunukan", (ICMP, tcp_moved)),
                link("kec-lumbis--kab", "kec-lumbis", "kab-nunukan"),
            ]
        ),
        run.now,
    )
    run.later(1)
    after = run.net.snapshot()
    assert after["kec-krayan--kab"].state is LinkState.DOWN
    assert after["kec-krayan--kab"].since == before["kec-krayan--kab"].since
    assert after["kec-krayan--kab"].probes[0] == before["kec-krayan--kab"].probes[0]
    assert after["kec-krayan--kab"].probes[1].verdict is None  # a new probe starts fresh
    assert after["kec-lumbis--kab"].state is LinkState.UP
    assert run.sent() == [("LinkDown", "kec-krayan--kab", "firing")]


def test_reconfigure_removing_a_link_resolves_its_alert() -> None:
    run = down_link_run()
    run.net.reconfigure(rules([link("kec-lumbis--kab", "kec-lumbis", "kab-nunukan")]), run.now)
    change = run.net.tick(run.now)
    assert [(a.key, a.firing, a.removed) for a in change.alerts] == [
        (AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab"), False, True)
    ]
    assert change.forgotten == ("kec-krayan--kab",)
    assert "kec-krayan--kab" not in run.net.snapshot()


def test_restart_from_snapshot_does_not_page_again_and_still_resolves() -> None:
    run = down_link_run()
    saved = {k: snapshot_from_json(snapshot_json(v)) for k, v in run.net.snapshot().items()}
    firing = run.net.firing()
    again = Run(run.net.rules)
    again.now = run.now + 30
    again.net = Network(run.net.rules, again.now, restored=saved, firing=firing)
    again.later(1)
    for _ in range(3):
        again.round(
            {
                "kec-krayan--kab": [silent(), service("tcp", Failure.TIMEOUT)],
                "kec-lumbis--kab": [ok()],
            }
        )
    assert again.alerts == []
    assert again.state("kec-krayan--kab") is LinkState.DOWN
    for _ in range(2):
        again.round({"kec-krayan--kab": [ok(), service("tcp")], "kec-lumbis--kab": [ok()]})
    [resolved] = again.alerts
    [(key, since)] = firing.items()
    assert (resolved.firing, resolved.key, resolved.since) == (False, key, since)


def test_changes_carry_snapshots_of_links_that_changed() -> None:
    run = single()
    first = run.feed("kec-krayan--kab", ok())
    assert first.transitions
    assert [s.link for s in run.changes[-1].links] == ["kec-krayan--kab"]
    assert not run.feed("kec-krayan--kab", ok())  # nothing persisted changed


def test_result_for_unknown_link_is_ignored() -> None:
    run = single()
    assert not run.net.observe("gone", 0, ok(), run.now)
    assert not run.net.observe("kec-krayan--kab", 7, ok(), run.now)


def test_restart_with_a_link_gone_from_the_config_forgets_it() -> None:
    run = down_link_run()
    saved = run.net.snapshot()
    only_lumbis = rules([link("kec-lumbis--kab", "kec-lumbis", "kab-nunukan")])
    net = Network(only_lumbis, run.now + 60, restored=saved, firing=run.net.firing())
    change = net.tick(run.now + 60)
    assert change.forgotten == ("kec-krayan--kab",)
    assert [(a.key, a.firing, a.removed) for a in change.alerts] == [
        (AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab"), False, True)
    ]
    assert not net.tick(run.now + 61)


def test_reconfigure_removing_an_office_resolves_its_alerts_as_removed() -> None:
    run, plan = _krayan_with_backup()
    for _ in range(3):
        run.round({**plan, "kec-krayan--kab": [silent()], "kec-krayan--kab-starlink": [silent()]})
    assert ("ServiceUnavailable", "kec-krayan", "firing") in run.sent()
    run.net.reconfigure(rules([link("kab-nunukan--dc", "kab-nunukan", "pusat-dc")]), run.now)
    change = run.net.tick(run.now)
    assert {(a.key, a.firing, a.removed) for a in change.alerts} == {
        (AlertKey(AlertKind.SERVICE_UNAVAILABLE, "kec-krayan"), False, True),
        (AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab"), False, True),
        (AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab-starlink"), False, True),
    }
    assert run.net.firing() == {}


def test_alert_keys_read_back_from_their_stored_form() -> None:
    key = AlertKey(AlertKind.SERVICE_UNAVAILABLE, "kec-krayan")
    assert str(key) == "ServiceUnavailable/kec-krayan"
    assert AlertKey.parse(str(key)) == key
    for bad in ("LinkDown", "LinkDown/", "Nope/kec-krayan", ""):
        with pytest.raises(ValueError, match="not an alert key"):
            AlertKey.parse(bad)


def test_restart_while_flapping_keeps_damping() -> None:
    run = Run(
        rules(
            [link("kec-krayan--kab", "kec-krayan", "kab-nunukan")], flap_changes=2, flap_window=60.0
        )
    )
    for i in range(12):
        run.round({"kec-krayan--kab": [silent() if (i // 3) % 2 == 0 else ok()]})
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert snap.flapping and snap.flapping_since is not None
    restored = snapshot_from_json(snapshot_json(snap))
    again = Network(
        run.net.rules, run.now, restored={"kec-krayan--kab": restored}, firing=run.net.firing()
    )
    assert not again.tick(run.now).alerts  # the flapping alert is already out
    assert again.snapshot()["kec-krayan--kab"].flapping_since == snap.flapping_since


NUNUKAN = """
agent: {name: kab-nunukan, timezone: Asia/Makassar, language: en}
sites:
  - {id: pusat-dc, kind: pusat, name: Data Center Ditjen Dukcapil, timezone: Asia/Jakarta}
  - {id: prov-kaltara, kind: provinsi, name: Kalimantan Utara}
  - {id: kab-nunukan, kind: kabupaten, name: Disdukcapil Nunukan, parent: prov-kaltara}
  - {id: kec-krayan, kind: kecamatan, name: Kecamatan Krayan, parent: kab-nunukan}
links:
  - id: kab-nunukan--dc
    from: kab-nunukan
    to: pusat-dc
    network: vpn
    probes: [{kind: icmp, target: 198.18.1.1}]
  - id: kec-krayan--kab
    from: kec-krayan
    to: kab-nunukan
    network: m2m
    depends_on: [kab-nunukan--dc]
    down_after: 2
    probes: [{kind: icmp, target: 198.18.10.2}, {kind: tcp, target: "198.18.10.2:443"}]
maintenance:
  - {links: [kec-krayan--kab], start: "2025-03-01 11:30", end: "2025-03-01 12:00",
     reason: ganti router}
alerting:
  flapping: {changes: 3, window: 2m}
  rollup: {share: 0.6, min_links: 4}
"""


def test_rules_from_a_real_config() -> None:
    from linkmon.config import parse_config

    config = parse_config(NUNUKAN)
    net_rules = Rules.from_config(config)
    krayan = net_rules.links["kec-krayan--kab"]
    assert krayan.probes == (ProbeRule("icmp", "198.18.10.2"), ProbeRule("tcp", "198.18.10.2:443"))
    assert (krayan.down_after, krayan.up_after, krayan.kabupaten) == (2, 2, "kab-nunukan")
    assert net_rules.sites["kec-krayan"].kabupaten == "kab-nunukan"
    assert net_rules.own_uplinks == frozenset({"kab-nunukan--dc"})  # agent named like its site
    assert (net_rules.flap_changes, net_rules.flap_window) == (3, 120.0)
    assert (net_rules.rollup_share, net_rules.rollup_min_links) == (0.6, 4)
    # 11:30–12:00 WITA is 03:30–04:00 UTC.
    assert net_rules.maintenance("kec-krayan--kab", T0 + 1800) == "ganti router"
    assert net_rules.maintenance("kec-krayan--kab", T0 + 3600) is None
    assert net_rules.maintenance("kab-nunukan--dc", T0 + 1800) is None

    run = Run(net_rules)
    run.net = Network(config, run.now)
    for _ in range(3):
        run.round(
            {
                "kab-nunukan--dc": [ok()],
                "kec-krayan--kab": [silent(), service("tcp", Failure.TIMEOUT)],
            }
        )
    [alert] = run.alerts
    assert (alert.key, alert.since) == (AlertKey(AlertKind.LINK_DOWN, "kec-krayan--kab"), T0 + 1)
    for _ in range(3):  # the agent's own uplink fails: the kecamatan behind it are unknown
        run.round(
            {
                "kab-nunukan--dc": [silent()],
                "kec-krayan--kab": [silent(), service("tcp", Failure.TIMEOUT)],
            }
        )
    snap = run.net.snapshot()["kec-krayan--kab"]
    assert (snap.state, snap.cause) == (LinkState.UNKNOWN, "own_uplink")


# -- fixes found by the lab end-to-end tests -------------------------------------------------


def _krayan_behind_hub() -> tuple[Run, dict[str, list[ProbeResult]]]:
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link(
            "kec-krayan--kab",
            "kec-krayan",
            "kab-nunukan",
            network="m2m",
            depends_on=["kab-nunukan--dc"],
        ),
        link(
            "kec-krayan--kab-starlink",
            "kec-krayan",
            "kab-nunukan",
            network="starlink",
            depends_on=["kab-nunukan--dc"],
        ),
    ]
    run = Run(rules(links))
    plan = {
        "kab-nunukan--dc": [ok()],
        "kec-krayan--kab": [ok()],
        "kec-krayan--kab-starlink": [ok()],
    }
    run.round(plan)
    return run, plan


def test_office_with_two_paths_behind_a_failed_hub_is_not_paged() -> None:
    """Both Krayan links unreachable because the hub's uplink failed: the uplink pages, not
    Krayan's ServiceUnavailable (an unreachable link is not a failed path of its own)."""
    run, plan = _krayan_behind_hub()
    for _ in range(6):
        run.round({name: [silent()] for name in plan})
    assert run.state("kec-krayan--kab") is LinkState.UNREACHABLE
    assert run.net.service()["kec-krayan"].availability is Availability.UNAVAILABLE
    assert run.sent() == [("LinkDown", "kab-nunukan--dc", "firing")]


def test_reading_the_status_between_a_change_and_the_tick_still_pages_the_office() -> None:
    """service() (the status API) refreshes the cached service map; the next tick must still
    reconcile the office alerts against it."""
    run, plan = _krayan_behind_hub()
    for _ in range(3):
        for name in ("kec-krayan--kab", "kec-krayan--kab-starlink"):
            run.feed(name, silent())
        run.feed("kab-nunukan--dc", ok())
        run.net.service()  # a status request before the tick
        run.later(1.0)
    assert ("ServiceUnavailable", "kec-krayan", "firing") in run.sent()


def test_services_judged_failed_before_icmp_is_still_a_path_down() -> None:
    """TCP/HTTP may reach down_after before ICMP does (phases differ): with ICMP failing too,
    the cause is the path, not a blocked service."""
    run = single((ICMP, HTTP))
    run.round({"kec-krayan--kab": [ok(), service("http")]})
    timeout = service("http", Failure.TIMEOUT, "timed out")
    for _ in range(3):  # the HTTP result first, the ICMP one half a second later
        run.changes.append(run.net.observe("kec-krayan--kab", 1, timeout, run.now))
        run.changes.append(run.net.observe("kec-krayan--kab", 0, silent(), run.now + 0.5))
        run.later(1.0)
    down = [t for c in run.changes for t in c.transitions if t.new is LinkState.DOWN]
    assert [t.cause for t in down] == ["path_down"]  # the cause the page carries
    assert [a.cause for a in run.alerts] == ["path_down"]
