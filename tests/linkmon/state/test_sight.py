"""linkmon/state/sight.py: an agent that cannot see says so, once, and pages no link for it.

Driven like tests/linkmon/test_state.py (its helpers, a fake clock that moves one round at a
time) and asserted on facts: states, causes, alert keys. The gateway is probed every round, as
the daemon does; ``plan`` says what each link and the gateway answer in a round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from linkmon.state import AlertKey, AlertKind, LinkState, Network, Rules
from linkmon.state.rules import GatewayRule
from probes.base import Failure, ProbeResult
from tests.linkmon.test_state import (
    HTTP,
    ICMP,
    KECAMATAN,
    T0,
    TCP,
    TEN,
    Run,
    link,
    ok,
    rules,
    service,
    silent,
)

GATEWAY = GatewayRule("198.18.0.254", down_after=3, up_after=2)
UPLINKS = ("kab-nunukan--dc", "kab-nunukan--drc")
PAGES = ("LinkDown", "RegionalIncident", "ServiceUnavailable")


def unreachable() -> ProbeResult:
    """What an ICMP probe reports once the agent's own LAN has no route left."""
    return ProbeResult("icmp", "198.18.0.254", success=False, failure=Failure.UNREACHABLE)


def exhausted(kind: str = "icmp") -> ProbeResult:
    return ProbeResult(
        kind, "x", success=False, failure=Failure.AGENT, detail="too many open files (EMFILE)"
    )


class Agent(Run):
    """A run whose agent also pings its LAN gateway every round."""

    def round_with(
        self, gateway: ProbeResult | None, plan: Mapping[str, Sequence[ProbeResult]]
    ) -> None:
        """One round: the links of ``plan``, then the gateway (None: it is not probed now)."""
        for link_id, results in plan.items():
            self.feed(link_id, *results)
        if gateway is not None:
            self.changes.append(self.net.observe_gateway(gateway, self.now))
        self.later(self.interval)

    def pages(self) -> list[tuple[str, str, str]]:
        return [sent for sent in self.sent() if sent[0] in PAGES]


def kabupaten_agent(**kw: Any) -> Agent:
    """A kabupaten agent: its uplinks to DC and DRC, ten kecamatan reached directly."""
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kab-nunukan--drc", "kab-nunukan", "pusat-drc"),
        *(link(f"{k}--kab", k, "kab-nunukan") for k in TEN),
    ]
    kw.setdefault("gateway", GATEWAY)
    return Agent(rules(links, site="kab-nunukan", own_uplinks=frozenset(UPLINKS), **kw))


def everything(answer: ProbeResult, **overrides: ProbeResult) -> dict[str, list[ProbeResult]]:
    plan = {lid: [answer] for lid in (*UPLINKS, *(f"{k}--kab" for k in TEN))}
    plan.update((lid, [result]) for lid, result in overrides.items())
    return plan


def links_of(run: Agent) -> dict[str, tuple[LinkState, str]]:
    return {lid: (snap.state, snap.cause) for lid, snap in run.net.snapshot().items()}


# -- own_lan: the agent's gateway --------------------------------------------------------------


def test_a_lan_cut_is_one_agent_blind_and_no_link_page() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(6):  # the LAN is cut: nothing answers, the gateway neither
        run.round_with(unreachable(), everything(unreachable()))
    assert set(links_of(run).values()) == {(LinkState.UNKNOWN, "own_lan")}
    assert run.net.sight().blind == "own_lan"
    assert run.pages() == []
    assert run.sent() == [("AgentBlind", "own_lan", "firing")]
    [blind] = run.alerts
    assert (blind.cause, blind.detail) == ("own_lan", "unreachable")
    assert blind.since == T0 + 3  # when the gateway was judged down: its third failed round
    # No link ever passed through DOWN on its way to unknown.
    assert LinkState.DOWN not in {state for _, state in run.states}


def test_sight_returns_links_judged_on_fresh_results_without_a_burst() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(6):
        run.round_with(unreachable(), everything(unreachable()))
    for _ in range(4):  # the LAN is back
        run.round_with(ok(), everything(ok()))
    assert set(links_of(run).values()) == {(LinkState.UP, "")}
    assert run.sent() == [
        ("AgentBlind", "own_lan", "firing"),
        ("AgentBlind", "own_lan", "resolved"),
    ]
    assert run.net.sight().blind is None


def test_a_link_of_several_probes_comes_back_up_not_through_degraded() -> None:
    """Its probes answer again at their own phases, some before the gateway is judged up."""
    links = [link("kab-nunukan--dc", "kab-nunukan", "pusat-dc", probes=(ICMP, TCP, HTTP))]
    run = Agent(rules(links, site="kab-nunukan", gateway=GATEWAY))
    good = [ok(), service("tcp"), service("http")]
    run.round_with(ok(), {"kab-nunukan--dc": good})
    for _ in range(4):
        run.round_with(unreachable(), {"kab-nunukan--dc": [unreachable()] * 3})
    back = [
        [unreachable(), service("tcp"), service("http", Failure.UNREACHABLE)],
        [ok(), service("tcp"), service("http", Failure.UNREACHABLE)],
        good,
        good,
    ]
    for results in back:
        run.round_with(ok(), {"kab-nunukan--dc": results})
    assert [state for _, state in run.states] == [
        LinkState.UP,
        LinkState.UNKNOWN,
        LinkState.UP,
    ]


def test_a_link_cut_while_the_agent_was_blind_pages_once_on_fresh_results() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(6):
        run.round_with(unreachable(), everything(unreachable()))
    resolved_at = None
    for i in range(6):  # the LAN is back; Krayan's link was cut meanwhile
        run.round_with(ok(), everything(ok(), **{"kec-a--kab": silent()}))
        if resolved_at is None and ("AgentBlind", "own_lan", "resolved") in run.sent():
            resolved_at = i
    assert resolved_at == 1  # up_after 2 good gateway rounds
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]
    [page] = [a for a in run.alerts if a.key.kind is AlertKind.LINK_DOWN]
    assert page.since >= T0 + 7 + 3  # three fresh failed rounds after sight returned


def test_an_outage_paged_before_the_lan_cut_is_neither_resolved_nor_paged_again() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(4):
        run.round_with(ok(), everything(ok(), **{"kec-a--kab": silent()}))
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]
    for _ in range(5):
        run.round_with(unreachable(), everything(unreachable()))
    assert links_of(run)["kec-a--kab"] == (LinkState.UNKNOWN, "own_lan")
    for _ in range(6):  # sight returns, the link is still cut
        run.round_with(ok(), everything(ok(), **{"kec-a--kab": silent()}))
    assert links_of(run)["kec-a--kab"][0] is LinkState.DOWN
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]
    for _ in range(2):
        run.round_with(ok(), everything(ok()))
    assert run.pages()[-1] == ("LinkDown", "kec-a--kab", "resolved")


def test_a_regional_incident_is_held_while_the_agent_is_blind() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    cut = {f"{k}--kab": silent() for k in TEN[:6]}
    for _ in range(5):
        run.round_with(ok(), everything(ok(), **cut))
    assert run.pages() == [("RegionalIncident", "kab-nunukan", "firing")]
    for _ in range(5):
        run.round_with(unreachable(), everything(unreachable()))
    for _ in range(5):
        run.round_with(ok(), everything(ok(), **cut))
    assert run.pages() == [("RegionalIncident", "kab-nunukan", "firing")]


def test_links_failing_before_the_gateway_is_next_probed_wait_for_it() -> None:
    """The gateway's rounds are slower than the links': a LAN cut still pages no link."""
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for i in range(12):  # the gateway is probed every fourth link round
        run.round_with(unreachable() if i % 4 == 3 else None, everything(unreachable()))
    assert run.pages() == []
    assert ("AgentBlind", "own_lan", "firing") in run.sent()
    assert set(links_of(run).values()) == {(LinkState.UNKNOWN, "own_lan")}


def test_a_link_failing_while_the_gateway_answers_pages_as_soon_as_it_answered() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(4):
        run.round_with(None, everything(ok(), **{"kec-a--kab": silent()}))
    assert run.state("kec-a--kab") is LinkState.UP  # judged down, waiting for the gateway
    assert run.pages() == []
    run.round_with(ok(), everything(ok(), **{"kec-a--kab": silent()}))
    assert run.state("kec-a--kab") is LinkState.DOWN
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]


def test_without_a_gateway_a_link_down_pages_at_once() -> None:
    run = kabupaten_agent(gateway=None)
    for _ in range(3):
        run.round_with(None, everything(ok(), **{"kec-a--kab": silent()}))
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]


# -- own_uplink: every uplink of the agent's office --------------------------------------------


def pusat_view() -> Agent:
    """An agent whose kecamatan are reached through its office's two uplinks (depends_on)."""
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kab-nunukan--drc", "kab-nunukan", "pusat-drc"),
        *(link(f"{k}--kab", k, "kab-nunukan", depends_on=UPLINKS) for k in KECAMATAN),
    ]
    return Agent(rules(links, site="kab-nunukan", own_uplinks=frozenset(UPLINKS)))


def uplinks(dc: ProbeResult, drc: ProbeResult, kec: ProbeResult) -> dict[str, list[ProbeResult]]:
    plan = {f"{k}--kab": [kec] for k in KECAMATAN}
    plan.update({UPLINKS[0]: [dc], UPLINKS[1]: [drc]})
    return plan


def test_every_uplink_down_makes_the_links_behind_unknown_and_the_agent_blind() -> None:
    run = pusat_view()
    run.round_with(None, uplinks(ok(), ok(), ok()))
    for _ in range(5):
        run.round_with(None, uplinks(silent(), silent(), silent()))
    states = links_of(run)
    assert {states[u][0] for u in UPLINKS} == {LinkState.DOWN}  # the office lost them
    assert {states[f"{k}--kab"] for k in KECAMATAN} == {(LinkState.UNKNOWN, "own_uplink")}
    assert not [p for p in run.pages() if p[1].startswith("kec-")]
    [blind] = [a for a in run.alerts if a.key.kind is AlertKind.AGENT_BLIND]
    assert (blind.key.subject, blind.links) == ("own_uplink", UPLINKS)
    for _ in range(4):
        run.round_with(None, uplinks(ok(), ok(), ok()))
    assert run.sent("AgentBlind") == [
        ("AgentBlind", "own_uplink", "firing"),
        ("AgentBlind", "own_uplink", "resolved"),
    ]
    assert {run.state(f"{k}--kab") for k in KECAMATAN} == {LinkState.UP}
    assert not [p for p in run.pages() if p[1].startswith("kec-")]


def test_one_uplink_of_two_down_is_no_blindness() -> None:
    links = [
        link("kab-nunukan--dc", "kab-nunukan", "pusat-dc"),
        link("kab-nunukan--drc", "kab-nunukan", "pusat-drc"),
        link("kec-krayan--kab", "kec-krayan", "kab-nunukan", depends_on=UPLINKS[:1]),
    ]
    run = Agent(rules(links, site="kab-nunukan", own_uplinks=frozenset(UPLINKS)))
    for _ in range(5):
        run.round_with(
            None, {UPLINKS[0]: [silent()], UPLINKS[1]: [ok()], "kec-krayan--kab": [silent()]}
        )
    # Seen through the DRC, the agent is not blind: Krayan is behind a failed uplink.
    assert links_of(run)["kec-krayan--kab"] == (LinkState.UNREACHABLE, "upstream:kab-nunukan--dc")
    assert run.sent("AgentBlind") == []


def test_a_kabupaten_agent_with_nothing_behind_its_uplinks_pages_them_as_links() -> None:
    run = kabupaten_agent(gateway=None)
    run.round_with(None, everything(ok()))
    for _ in range(4):
        run.round_with(None, everything(ok(), **dict.fromkeys(UPLINKS, silent())))
    assert sorted(run.sent()) == [
        ("LinkDown", "kab-nunukan--dc", "firing"),
        ("LinkDown", "kab-nunukan--drc", "firing"),
        ("ServiceUnavailable", "kab-nunukan", "firing"),
    ]


# -- agent_fault: probes the agent itself cannot run -------------------------------------------


def test_probes_the_agent_cannot_run_are_unknown_and_one_agent_fault_pages() -> None:
    run = kabupaten_agent(gateway=None)
    run.round_with(None, everything(ok()))
    for _ in range(5):
        run.round_with(None, everything(exhausted()))
    assert set(links_of(run).values()) == {(LinkState.UNKNOWN, "agent_fault")}
    assert run.pages() == []
    assert run.sent() == [("AgentFault", "fds", "firing")]
    [fault] = run.alerts
    assert fault.detail == "too many open files (EMFILE)"
    assert fault.links == (*UPLINKS, *(f"{k}--kab" for k in TEN))
    assert run.net.sight().faults == (("fds", 12),)
    snap = run.net.snapshot()["kec-a--kab"]
    assert snap.detail == "icmp 198.18.1.1: too many open files (EMFILE)"
    for _ in range(2):  # the fault clears: fresh results decide
        run.round_with(None, everything(ok()))
    assert set(links_of(run).values()) == {(LinkState.UP, "")}
    assert run.sent() == [("AgentFault", "fds", "firing"), ("AgentFault", "fds", "resolved")]
    assert run.net.sight().faults == ()


def test_a_fault_shorter_than_down_after_rounds_counts_neither_way() -> None:
    run = kabupaten_agent(gateway=None)
    for _ in range(3):
        run.round_with(None, everything(ok()))
    for _ in range(2):
        run.round_with(None, everything(exhausted()))
    run.round_with(None, everything(ok()))
    assert set(links_of(run).values()) == {(LinkState.UP, "")}
    assert run.sent() == []


def test_a_link_is_judged_on_the_probes_the_agent_can_still_run() -> None:
    links = [link("kab-nunukan--dc", "kab-nunukan", "pusat-dc", probes=(ICMP, TCP))]
    run = Agent(rules(links, site="kab-nunukan"))
    for _ in range(5):
        run.round_with(None, {"kab-nunukan--dc": [ok(), exhausted("tcp")]})
    assert run.state("kab-nunukan--dc") is LinkState.UP
    assert run.sent() == [("AgentFault", "fds", "firing")]


def test_a_link_down_before_the_fault_keeps_its_page_and_is_not_paged_again() -> None:
    run = kabupaten_agent(gateway=None)
    for _ in range(4):
        run.round_with(None, everything(ok(), **{"kec-a--kab": silent()}))
    for _ in range(4):
        run.round_with(None, everything(ok(), **{"kec-a--kab": exhausted()}))
    assert links_of(run)["kec-a--kab"] == (LinkState.UNKNOWN, "agent_fault")
    for _ in range(5):
        run.round_with(None, everything(ok(), **{"kec-a--kab": silent()}))
    assert run.state("kec-a--kab") is LinkState.DOWN
    assert run.pages() == [("LinkDown", "kec-a--kab", "firing")]


def test_a_fault_of_the_gateway_probe_is_the_agents_not_its_lan() -> None:
    run = kabupaten_agent()
    run.round_with(ok(), everything(ok()))
    for _ in range(4):
        run.round_with(exhausted(), everything(ok(), **{"kec-a--kab": silent()}))
    assert run.net.sight().blind is None
    assert ("AgentFault", "fds", "firing") in run.sent()
    [fault] = [a for a in run.alerts if a.key.kind is AlertKind.AGENT_FAULT]
    assert fault.links == ("agent.gateway",)
    # The gateway vouches for nothing either way: the link's own outage pages.
    assert ("LinkDown", "kec-a--kab", "firing") in run.sent()


# -- restarts and rules --------------------------------------------------------------------


def test_a_restart_while_blind_resolves_nothing_before_the_gateway_is_judged() -> None:
    run = kabupaten_agent()
    key = AlertKey(AlertKind.AGENT_BLIND, "own_lan")
    run.net = Network(run.net.rules, run.now, firing={key: T0 - 60})
    assert run.net.tick(run.now).alerts == ()
    for _ in range(3):
        run.round_with(unreachable(), everything(unreachable()))
    assert run.sent("AgentBlind") == []  # still the one fired before the restart
    for _ in range(2):
        run.round_with(ok(), everything(ok()))
    assert run.sent("AgentBlind") == [("AgentBlind", "own_lan", "resolved")]


def test_rules_from_a_config_name_the_agents_office_uplinks_and_gateway() -> None:
    from linkmon.config import parse_config

    config = parse_config(
        """
agent: {name: noc-nunukan, site: kab-nunukan, gateway: 198.18.0.254}
defaults: {down_after: 4, up_after: 1}
sites:
  - {id: pusat-dc, kind: pusat}
  - {id: pusat-drc, kind: drc}
  - {id: kab-nunukan, kind: kabupaten}
  - {id: kec-krayan, kind: kecamatan, parent: kab-nunukan}
links:
  - {id: kab-nunukan--dc, from: kab-nunukan, to: pusat-dc, network: vpn,
     probes: [{kind: icmp, target: 198.18.1.1}]}
  - {id: kab-nunukan--drc, from: kab-nunukan, to: pusat-drc, network: vpn,
     probes: [{kind: icmp, target: 198.18.2.1}]}
  - {id: kec-krayan--kab, from: kec-krayan, to: kab-nunukan, network: vpn,
     probes: [{kind: icmp, target: 198.18.30.8}]}
"""
    )
    net_rules = Rules.from_config(config)
    # Every link leaving the office, whether anything depends on it or not.
    assert net_rules.own_uplinks == frozenset(UPLINKS)
    assert net_rules.site == "kab-nunukan"
    assert net_rules.gateway == GatewayRule("198.18.0.254", down_after=4, up_after=1)
