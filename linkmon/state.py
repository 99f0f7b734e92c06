"""Link state: turns probe results into what on-call staff need.

Pure logic, no I/O: every method takes ``now`` (unix seconds), so tests drive it with a fake
clock and the daemon with the real one. The daemon feeds each probe result to
:meth:`Network.observe`, calls :meth:`Network.tick` every few seconds (maintenance windows,
flap damping and roll-ups change with time alone), and stores the :class:`Changes` it gets
back in one transaction (transitions, link snapshots and alerts together), so a crash can
never separate "the outage was alerted" from "the alert is queued".

Rules, in the order they apply:

* **Per probe**, consecutive failed and good rounds are counted. A probe's verdict turns
  *failed* after ``down_after`` failed rounds in a row, *good* again after ``up_after`` good
  rounds in a row (the very first good round is enough for a probe never judged before).
* **A link** is DOWN when none of its probes is good, or when its path answers (ICMP good)
  but every service probe (TCP/HTTP) has failed — pusat blocking a kabupaten looks exactly
  like that. It is DEGRADED when some but not all probes failed, or when packet loss or the
  average RTT of its answered ICMP rounds crosses the ``degraded`` thresholds: entered when
  the last 5 rounds cross, left only when the last 20 rounds are clearly below (half the loss
  threshold, 80 % of the RTT threshold). Five echoes give loss in 20 % steps, so a link with
  20 % random loss would otherwise change state every few rounds. UNKNOWN until judged.
* **Diagnosis** names the failed layer: ``path_down`` (nothing answers), ``service_refused``
  (TCP reset while the path answers), ``service_blocked`` (silence from a service while the
  path answers), ``http_status``, ``body_mismatch``, ``dns``, ``tls``, ``service_error``,
  ``icmp_lost`` (some ping targets silent, the rest answers), ``loss``, ``rtt``.
* **Dependencies**: a link that would be DOWN while every ``depends_on`` link is down is
  UNREACHABLE (cause ``upstream:<root link ids>``) and pages no one. If the roots are all the
  agent's own uplinks, it is UNKNOWN (``own_uplink``): the agent is blind, not the link. While
  a parent is failing but not yet judged, a child's DOWN is held back (the parent decides
  within its own ``down_after``), so a hub cut never pages its kecamatan first. When the
  parents recover, an unreachable link stays as it is until fresh results of its own arrive:
  no burst of stale DOWNs.
* **Flapping**: more than ``flapping.changes`` changes into or out of DOWN within
  ``flapping.window`` set ``flapping``; it clears when at most half as many remain.
* **Alerts** are reconciled, not emitted per event: an alert fires when its condition holds
  and nothing suppresses it (maintenance, flapping, a regional roll-up, unreachable), and a
  firing alert resolves only when its condition ends — suppression never swallows a resolve.
  ``LinkDown`` (critical), ``LinkFlapping`` (warning), ``ServiceUnavailable`` (critical; an
  office whose redundant paths are all gone — a single-path office is already paged by its
  LinkDown), ``RegionalIncident`` (critical; at least ``rollup.share`` and ``rollup.min_links``
  of a kabupaten's kecamatan links down together, instead of one page each).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from linkmon.alerts import text
from linkmon.alerts.model import Alert
from probes.base import Failure, ProbeResult

if TYPE_CHECKING:
    from linkmon.config import Config


class LinkState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"


class Availability(StrEnum):
    """Can an office serve citizens online right now."""

    AVAILABLE = "available"
    DEGRADED = "degraded"  # only via the DRC or a backup path
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


SERVING = frozenset({LinkState.UP, LinkState.DEGRADED})
PATH_KINDS = frozenset({"icmp"})
TERMINAL_KINDS = frozenset({"pusat", "drc"})

QUALITY_SHORT = 5
QUALITY_LONG = 20
LOSS_RECOVERY = 0.5
RTT_RECOVERY = 0.8
_DETAIL_CHARS = 200

# How good an office's best path to pusat is, best first: what each grade means for service.
_GRADES = (
    (Availability.AVAILABLE, ""),
    (Availability.DEGRADED, "backup"),
    (Availability.DEGRADED, "drc"),
    (Availability.UNKNOWN, "no_data"),
    (Availability.UNAVAILABLE, "no_path"),
)
_DC, _BACKUP, _DRC, _MAYBE, _DOWN = range(len(_GRADES))

# What a failed service probe means when the path itself answers.
_SERVICE_CAUSE = {
    Failure.REFUSED: "service_refused",
    Failure.TIMEOUT: "service_blocked",
    Failure.UNREACHABLE: "service_blocked",
    Failure.DNS: "dns",
    Failure.TLS: "tls",
    Failure.HTTP_STATUS: "http_status",
    Failure.BODY_MISMATCH: "body_mismatch",
    Failure.TOO_MANY_REDIRECTS: "service_error",
    Failure.PROTOCOL: "service_error",
    Failure.ERROR: "service_error",
    Failure.AGENT: "agent_fault",
}
# Failures that prove the far end answered, so the path is not what broke.
_ANSWERED = frozenset(
    {
        Failure.REFUSED,
        Failure.TLS,
        Failure.HTTP_STATUS,
        Failure.BODY_MISMATCH,
        Failure.TOO_MANY_REDIRECTS,
        Failure.PROTOCOL,
    }
)


# ---------------------------------------------------------------------------------------------
# What the state machine needs to know about the network (built from Config, or by hand)


@dataclass(frozen=True, slots=True)
class ProbeRule:
    kind: str
    target: str


@dataclass(frozen=True, slots=True)
class LinkRule:
    id: str
    from_site: str
    to_site: str
    network: str
    probes: tuple[ProbeRule, ...]
    depends_on: tuple[str, ...] = ()
    down_after: int = 3
    up_after: int = 2
    max_loss: float = 0.2
    max_rtt: float = 0.3
    kabupaten: str | None = None  # the ``kabupaten`` label; default: that of the from site


@dataclass(frozen=True, slots=True)
class SiteRule:
    id: str
    kind: str
    name: str
    timezone: str
    kabupaten: str | None = None


def _no_maintenance(link: str, now: float) -> str | None:
    return None


@dataclass(frozen=True)
class Rules:
    """The parts of the configuration the state machine reads, as plain values.

    ``maintenance(link_id, now)`` names the window covering a link at ``now`` (or None).
    ``own_uplinks``: the agent's own first hops; what lies behind them is unknown when they fail.
    From a config these are the links leaving the agent's site (``agent.site`` when the config
    has it, else the site named like the agent) that other links depend on.
    """

    agent: str
    sites: Mapping[str, SiteRule]
    links: Mapping[str, LinkRule]
    language: str = "id"
    own_uplinks: frozenset[str] = frozenset()
    flap_changes: int = 4
    flap_window: float = 300.0
    rollup_share: float = 0.5
    rollup_min_links: int = 3
    maintenance: Callable[[str, float], str | None] = _no_maintenance

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        agent = config.agent
        sites = {
            s.id: SiteRule(
                id=s.id,
                kind=s.kind,
                name=s.name or s.id,
                timezone=s.timezone or agent.timezone,
                kabupaten=config.kabupaten_of(s.id),
            )
            for s in config.sites
        }
        links = {
            link.id: LinkRule(
                id=link.id,
                from_site=link.from_site,
                to_site=link.to_site,
                network=link.network,
                probes=tuple(ProbeRule(p.kind, p.target_label) for p in link.probes),
                depends_on=tuple(link.depends_on),
                down_after=link.down_after,
                up_after=link.up_after,
                max_loss=link.degraded.loss,
                max_rtt=link.degraded.rtt,
                kabupaten=config.kabupaten_of_link(link.id),
            )
            for link in config.links
        }
        agent_site = getattr(agent, "site", None) or agent.name
        needed = {parent for link in links.values() for parent in link.depends_on}
        own = frozenset(lid for lid in needed if links[lid].from_site == agent_site)
        alerting = config.alerting

        def maintenance(link_id: str, now: float) -> str | None:
            window = config.in_maintenance(link_id, datetime.fromtimestamp(now, UTC))
            return None if window is None else (window.reason or "maintenance")

        return cls(
            agent=agent.name,
            sites=sites,
            links=links,
            language=agent.language,
            own_uplinks=own,
            flap_changes=alerting.flapping.changes,
            flap_window=alerting.flapping.window,
            rollup_share=alerting.rollup.share,
            rollup_min_links=alerting.rollup.min_links,
            # Asked for every link every tick: skip the look-up when no window exists.
            maintenance=maintenance if config.maintenance else _no_maintenance,
        )


# ---------------------------------------------------------------------------------------------
# What the state machine tells the rest of linkmon


@dataclass(frozen=True, slots=True)
class Transition:
    link: str
    old: LinkState
    new: LinkState
    at: float
    cause: str
    detail: str
    site: str = ""


@dataclass(frozen=True, slots=True)
class ProbeSnapshot:
    kind: str
    target: str
    verdict: bool | None
    failures: int
    successes: int
    last_at: float | None = None
    success: bool | None = None
    failure: str | None = None
    detail: str = ""
    duration: float | None = None
    loss: float | None = None
    rtt: float | None = None


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """A link as the status API shows it and storage keeps it across restarts."""

    link: str
    state: LinkState
    since: float
    cause: str
    detail: str = ""
    flapping: bool = False
    maintenance: str | None = None
    upstream: tuple[str, ...] = ()
    loss: float | None = None
    rtt: float | None = None
    probes: tuple[ProbeSnapshot, ...] = ()
    flaps: tuple[float, ...] = ()  # recent changes that page, for flap damping
    flapping_since: float | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "link": self.link,
            "state": self.state.value,
            "since": self.since,
            "cause": self.cause,
            "detail": self.detail,
            "flapping": self.flapping,
            "maintenance": self.maintenance,
            "upstream": list(self.upstream),
            "loss": self.loss,
            "rtt": self.rtt,
            "flaps": list(self.flaps),
            "flapping_since": self.flapping_since,
            "probes": [
                {
                    "kind": p.kind,
                    "target": p.target,
                    "verdict": p.verdict,
                    "failures": p.failures,
                    "successes": p.successes,
                    "last_at": p.last_at,
                    "success": p.success,
                    "failure": p.failure,
                    "detail": p.detail,
                    "duration": p.duration,
                    "loss": p.loss,
                    "rtt": p.rtt,
                }
                for p in self.probes
            ],
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> LinkSnapshot:
        data = json.loads(raw)
        probes = tuple(ProbeSnapshot(**p) for p in data.pop("probes"))
        return cls(
            **{
                **data,
                "state": LinkState(data["state"]),
                "upstream": tuple(data["upstream"]),
                "flaps": tuple(data["flaps"]),
                "probes": probes,
            }
        )


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Whether an office can serve online, and which links carry its path to pusat.

    ``reason``: ``drc`` or ``backup`` when degraded, ``no_path`` when unavailable, ``no_data``
    when the links that could carry it are not judged, ``not_monitored`` when no monitored
    path exists at all.
    """

    site: str
    availability: Availability
    via: tuple[str, ...]
    reason: str
    since: float


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one step of the state machine changed; store it in one transaction."""

    transitions: tuple[Transition, ...] = ()
    alerts: tuple[Alert, ...] = ()
    links: tuple[LinkSnapshot, ...] = ()
    forgotten: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.transitions or self.alerts or self.links or self.forgotten)


_NO_CHANGES = Changes()

# ---------------------------------------------------------------------------------------------
# The machine


@dataclass(eq=False)
class _Probe:
    rule: ProbeRule
    verdict: bool | None = None
    failures: int = 0
    successes: int = 0
    last: ProbeResult | None = None
    last_at: float | None = None
    last_failed: ProbeResult | None = None
    # (sent, received, average RTT) of answered ICMP rounds, for loss and latency judgement
    rounds: deque[tuple[int, int, float | None]] = field(
        default_factory=lambda: deque(maxlen=QUALITY_LONG)
    )

    def record(self, result: ProbeResult, now: float, rule: LinkRule) -> None:
        self.last, self.last_at = result, now
        if result.success:
            self.successes += 1
            self.failures = 0
            if self.verdict is None or (not self.verdict and self.successes >= rule.up_after):
                self.verdict = True
        if result.packets_sent:  # a round that lost every echo is loss too
            self.rounds.append((result.packets_sent, result.packets_received, result.rtt_avg))
        if not result.success:
            self.failures += 1
            self.successes = 0
            self.last_failed = result
            if self.failures >= rule.down_after:
                self.verdict = False
                self.rounds.clear()  # an outage is not loss to hold against the link later

    def forget(self) -> None:
        """Drop the verdict so only fresh results count (after an upstream outage)."""
        self.verdict, self.failures, self.successes = None, 0, 0

    def snapshot(self) -> ProbeSnapshot:
        last = self.last
        return ProbeSnapshot(
            kind=self.rule.kind,
            target=self.rule.target,
            verdict=self.verdict,
            failures=self.failures,
            successes=self.successes,
            last_at=self.last_at,
            success=None if last is None else last.success,
            failure=None if last is None or last.failure is None else last.failure.value,
            detail="" if last is None else last.detail[:_DETAIL_CHARS],
            duration=None if last is None else last.duration,
            loss=None if last is None else last.loss,
            rtt=None if last is None else last.rtt_avg,
        )


@dataclass(eq=False)
class _Link:
    rule: LinkRule
    probes: list[_Probe]
    state: LinkState = LinkState.UNKNOWN
    since: float = 0.0
    cause: str = "no_data"
    detail: str = ""
    roots: frozenset[str] = frozenset()
    quality: frozenset[str] = frozenset()
    suspect: bool = False
    rechecking: bool = False
    flaps: deque[float] = field(default_factory=deque)
    flapping: bool = False
    flapping_since: float = 0.0
    maintenance: str | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def blocks(self) -> bool:
        """Whether links depending on this one have lost their path through it."""
        return self.state in (LinkState.DOWN, LinkState.UNREACHABLE) or (
            self.state is LinkState.UNKNOWN and self.cause == "own_uplink"
        )

    def failing_now(self) -> bool:
        """Trending towards DOWN: some probe failing, none answering in its last round."""
        return any(p.failures for p in self.probes) and not any(p.successes for p in self.probes)

    def figures(self) -> tuple[float | None, float | None]:
        """Loss and mean RTT of the last few answered ICMP rounds (worst ICMP probe)."""
        losses, rtts = [], []
        for p in self.probes:
            if p.rule.kind in PATH_KINDS and p.rounds:
                loss, rtt = _quality(p.rounds, QUALITY_SHORT)
                losses.append(loss)
                if rtt is not None:
                    rtts.append(rtt)
        return (max(losses) if losses else None, max(rtts) if rtts else None)

    def snapshot(self) -> LinkSnapshot:
        loss, rtt = self.figures()
        return LinkSnapshot(
            link=self.id,
            state=self.state,
            since=self.since,
            cause=self.cause,
            detail=self.detail,
            flapping=self.flapping,
            maintenance=self.maintenance,
            upstream=tuple(sorted(self.roots)),
            loss=loss,
            rtt=rtt,
            probes=tuple(p.snapshot() for p in self.probes),
            flaps=tuple(self.flaps),
            flapping_since=self.flapping_since if self.flapping else None,
        )

    def persisted(self) -> tuple[object, ...]:
        return (self.state, self.cause, self.detail, self.roots, self.flapping, self.maintenance)


def _quality(
    rounds: deque[tuple[int, int, float | None]], newest: int = QUALITY_LONG
) -> tuple[float, float | None]:
    """Loss and mean RTT of the ``newest`` rounds, in one pass: it runs on every result."""
    sent = received = answered = 0
    total = 0.0
    for s, r, rtt in itertools.islice(rounds, max(0, len(rounds) - newest), None):
        sent += s
        received += r
        if rtt is not None:
            total += rtt
            answered += 1
    return (1.0 - received / sent if sent else 0.0), (total / answered if answered else None)


def _describe(probe: _Probe) -> str:
    result = probe.last_failed
    if result is None:
        return f"{probe.rule.kind} {probe.rule.target}"
    reason = result.failure.value if result.failure else "failed"
    extra = f" ({result.detail[:_DETAIL_CHARS]})" if result.detail else ""
    return f"{probe.rule.kind} {probe.rule.target}: {reason}{extra}"


def _diagnose(failed: list[_Probe], path_ok: bool) -> tuple[str, str]:
    """Which layer broke, from the failed probes; ``path_ok``: some other probe still answers."""
    detail = "; ".join(_describe(p) for p in failed)
    failures = [
        p.last_failed.failure
        for p in failed
        if p.last_failed is not None and p.last_failed.failure is not None
    ]
    if not path_ok and not any(f in _ANSWERED for f in failures):
        return ("dns" if failures and set(failures) == {Failure.DNS} else "path_down"), detail
    for p in failed:
        reason = p.last_failed.failure if p.last_failed is not None else None
        if p.rule.kind not in PATH_KINDS and reason is not None:
            return _SERVICE_CAUSE[reason], detail
    return "icmp_lost", detail


@dataclass
class _Step:
    """What one step collected, turned into :class:`Changes` at the end."""

    transitions: list[Transition] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    changed: dict[str, _Link] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.transitions or self.alerts or self.changed)


class Network:
    """The whole picture for one agent: every link's state, service per office, alerts."""

    def __init__(
        self,
        config: Config | Rules,
        now: float,
        restored: Mapping[str, LinkSnapshot] | None = None,
        firing: Iterable[Alert] = (),
    ) -> None:
        """Start from ``restored`` snapshots and the ``firing`` alerts storage kept, if any.

        Call :meth:`tick` right away: it resolves alerts whose subject a new configuration
        removed and fires what a restart left pending.
        """
        self._rules = config if isinstance(config, Rules) else Rules.from_config(config)
        self._links: dict[str, _Link] = {}
        self._firing: dict[str, Alert] = {alert.key: alert for alert in firing}
        self._service: dict[str, ServiceStatus] = {}
        self._service_changed: float | None = now  # earliest state change not yet in _service
        self._service_reconciled: dict[str, ServiceStatus] | None = None  # its alerts settled
        self._rollup: set[str] = set()  # kabupaten whose roll-up pages (or is about to)
        self._everything = True  # the next tick re-checks every alert
        # Links whose stored state must go: gone from the config since the last run or reload.
        self._removed = sorted(set(restored or ()) - self._rules.links.keys())
        self._pending = _Step()  # what a reload changed, reported with the next step
        self._index(self._rules)
        for rule in self._rules.links.values():
            snapshot = (restored or {}).get(rule.id)
            self._links[rule.id] = (
                self._restore(rule, snapshot) if snapshot else self._fresh(rule, now)
            )

    # -- public ------------------------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        return self._rules

    def observe(self, link_id: str, probe_index: int, result: ProbeResult, now: float) -> Changes:
        """Take one probe result; returns what changed (possibly nothing).

        A result for a link or probe a reload removed is ignored.
        """
        link = self._links.get(link_id)
        if link is None or not 0 <= probe_index < len(link.probes):
            return Changes()
        link.probes[probe_index].record(result, now, link.rule)
        step = _Step()
        self._settle(step, [link], now)
        return self._finish(step)

    def tick(self, now: float) -> Changes:
        """Apply what time alone changes: maintenance windows, flap damping, pending alerts.

        Call it every few seconds; its cost is one maintenance look-up per link. The first
        tick after start or reload re-checks every alert (what a restart left pending).
        """
        step = _Step()
        windows = self._rules.maintenance is not _no_maintenance
        for link in self._links.values():
            if not (windows or link.flaps or link.flapping or link.maintenance):
                continue  # time alone changes nothing here: the common case at 10,000 links
            before = link.persisted()
            link.maintenance = self._rules.maintenance(link.id, now)
            self._update_flapping(link, now)
            if link.persisted() != before:
                step.changed[link.id] = link
        changed = list(step.changed.values())
        # Against what was last reconciled: a status request (service()) may have refreshed
        # _service since, and its changes still owe their alerts.
        services = (
            self._everything or bool(changed) or self._services() is not self._service_reconciled
        )
        self._reconcile(step, now, changed, changed, everything=self._everything, services=services)
        self._everything = False
        return self._finish(step)

    def reconfigure(self, config: Config | Rules, now: float) -> None:
        """Adopt a new configuration, keeping the state of every link that still exists.

        Probes are matched by kind and target: an unchanged probe keeps its counters, a new
        one starts fresh. Call :meth:`tick` afterwards to resolve alerts of removed links.
        """
        rules = config if isinstance(config, Rules) else Rules.from_config(config)
        old = self._links
        self._rules = rules
        self._index(rules)
        self._links = {}
        for rule in rules.links.values():
            link = old.get(rule.id)
            if link is None:
                self._links[rule.id] = self._fresh(rule, now)
                continue
            kept = {p.rule: p for p in link.probes}
            link.probes = [kept.get(p) or _Probe(p) for p in rule.probes]
            link.rule = rule
            self._links[rule.id] = link
        self._removed += [lid for lid in old if lid not in self._links]
        self._rollup &= self._kecamatan.keys()
        self._service_changed = now
        self._everything = True
        self._settle(self._pending, list(self._links.values()), now)

    def snapshot(self, link_ids: Iterable[str] | None = None) -> dict[str, LinkSnapshot]:
        """Every link, or those of ``link_ids`` that exist."""
        if link_ids is None:
            return {lid: link.snapshot() for lid, link in self._links.items()}
        return {
            lid: link.snapshot() for lid in link_ids if (link := self._links.get(lid)) is not None
        }

    def service(self) -> dict[str, ServiceStatus]:
        """Per office (every site that is not pusat or the DRC)."""
        return dict(self._services())

    def firing(self) -> list[Alert]:
        """Alerts firing now, for the Alertmanager re-send."""
        return list(self._firing.values())

    # -- set-up ------------------------------------------------------------------------------

    def _index(self, rules: Rules) -> None:
        """Lookup tables derived from the rules: dependency order, kabupaten members, paths."""
        links = rules.links
        for link in links.values():
            for parent in link.depends_on:
                if parent not in links:
                    raise ValueError(f"link {link.id}: depends_on names unknown link {parent}")
            for end in (link.from_site, link.to_site):
                if end not in rules.sites:
                    raise ValueError(f"link {link.id}: names unknown site {end}")
        self._order = _topological(links)
        self._children: dict[str, list[str]] = {lid: [] for lid in links}
        for link in links.values():
            for parent in link.depends_on:
                self._children[parent].append(link.id)
        self._kecamatan: dict[str, list[str]] = {}
        self._member_of: dict[str, str] = {}  # kecamatan link → its kabupaten
        for link in links.values():
            site = rules.sites.get(link.from_site)
            if site is not None and site.kind == "kecamatan" and site.kabupaten:
                self._kecamatan.setdefault(site.kabupaten, []).append(link.id)
                self._member_of[link.id] = site.kabupaten
        self._own_links: dict[str, list[str]] = {}
        self._adjacent: dict[str, list[tuple[str, str]]] = {}
        self._primary: set[str] = set()
        seen_pairs: set[frozenset[str]] = set()
        for link in links.values():
            self._own_links.setdefault(link.from_site, []).append(link.id)
            self._adjacent.setdefault(link.from_site, []).append((link.id, link.to_site))
            self._adjacent.setdefault(link.to_site, []).append((link.id, link.from_site))
            pair = frozenset((link.from_site, link.to_site))
            if pair not in seen_pairs:  # the first link listed between two sites is the main one
                seen_pairs.add(pair)
                self._primary.add(link.id)

    def _fresh(self, rule: LinkRule, now: float) -> _Link:
        return _Link(rule=rule, probes=[_Probe(p) for p in rule.probes], since=now)

    def _restore(self, rule: LinkRule, snap: LinkSnapshot) -> _Link:
        link = _Link(
            rule=rule,
            probes=[_Probe(p) for p in rule.probes],
            state=snap.state,
            since=snap.since,
            cause=snap.cause,
            detail=snap.detail,
            roots=frozenset(snap.upstream),
            flaps=deque(snap.flaps),
            flapping=snap.flapping,
            flapping_since=snap.flapping_since or snap.since,
            maintenance=snap.maintenance,
        )
        saved = {(p.kind, p.target): p for p in snap.probes}
        for probe in link.probes:
            old = saved.get((probe.rule.kind, probe.rule.target))
            if old is not None:
                probe.verdict, probe.failures, probe.successes = (
                    old.verdict,
                    old.failures,
                    old.successes,
                )
            elif snap.state in SERVING:
                probe.verdict = True
            elif snap.state in (LinkState.DOWN, LinkState.UNREACHABLE):
                probe.verdict, probe.failures = False, rule.down_after
        return link

    # -- evaluation --------------------------------------------------------------------------

    def _settle(self, step: _Step, start: list[_Link], now: float) -> None:
        """Re-evaluate ``start`` and, in dependency order, every link whose parents changed."""
        queue = [(self._order[link.id], link.id) for link in start]
        heapq.heapify(queue)
        queued = {lid for _, lid in queue}
        touched: list[_Link] = []
        moved: list[_Link] = []  # state or suspicion changed: may change a roll-up
        while queue:
            _, lid = heapq.heappop(queue)
            queued.discard(lid)
            link = self._links[lid]
            before = (link.state, link.cause, link.roots, link.suspect)
            persisted = link.persisted()
            transition = self._evaluate(link, now)
            link.suspect = (
                link.state not in (LinkState.DOWN, LinkState.UNREACHABLE) and link.failing_now()
            )
            if transition is not None:
                step.transitions.append(transition)
                if self._service_changed is None:
                    self._service_changed = now
                self._update_flapping(link, now)
            if link.persisted() != persisted:
                step.changed[lid] = link
            touched.append(link)
            if (link.state, link.suspect) != (before[0], before[3]):
                moved.append(link)
            if (link.state, link.cause, link.roots, link.suspect) != before:
                for child in self._children[lid]:
                    if child not in queued:
                        queued.add(child)
                        heapq.heappush(queue, (self._order[child], child))
        self._reconcile(step, now, touched, moved, everything=False)

    def _evaluate(self, link: _Link, now: float) -> Transition | None:
        state, cause, detail = self._own(link)
        roots: frozenset[str] = frozenset()
        parents = [self._links[p] for p in link.rule.depends_on]
        blocked = bool(parents) and all(p.blocks for p in parents)
        behind = link.state is LinkState.UNREACHABLE or (
            link.state is LinkState.UNKNOWN and link.cause == "own_uplink"
        )
        if behind and not blocked:
            if not link.rechecking:
                # The parents are back: judge this link only on what it answers from now on.
                link.rechecking = True
                for probe in link.probes:
                    probe.forget()
                return None
            if state is LinkState.UNKNOWN:
                return None
        if blocked:
            link.rechecking = False
        if state is LinkState.UNKNOWN and link.state is not LinkState.UNKNOWN:
            return None  # no verdict yet (fresh start of a probe): keep what we knew
        if state is LinkState.DOWN and parents:
            if blocked:
                roots = frozenset().union(
                    *(p.roots if p.state is not LinkState.DOWN else {p.id} for p in parents)
                )
                if roots <= self._rules.own_uplinks:
                    state, cause = LinkState.UNKNOWN, "own_uplink"
                else:
                    state, cause = LinkState.UNREACHABLE, "upstream:" + "+".join(sorted(roots))
            elif all(p.blocks or p.suspect for p in parents):
                return None  # a parent is failing too: let it decide first
        link.rechecking = False
        return self._move(link, state, cause, detail, roots, now)

    def _own(self, link: _Link) -> tuple[LinkState, str, str]:
        """The link judged on its own probes alone."""
        judged = [p for p in link.probes if p.verdict is not None]
        if not judged:
            return LinkState.UNKNOWN, "no_data", ""
        failed = [p for p in judged if not p.verdict]
        if len(failed) == len(judged):
            return (LinkState.DOWN, *_diagnose(failed, path_ok=False))
        service = [p for p in link.probes if p.rule.kind not in PATH_KINDS]
        if service and all(p.verdict is False for p in service):
            # Judged on the services alone only while the path answers: ICMP failing too,
            # just not judged yet (phases differ), is a path down, not a blocked service.
            path = [p for p in link.probes if p.rule.kind in PATH_KINDS]
            path_ok = not path or any(not p.failures for p in path)
            return (
                LinkState.DOWN,
                *_diagnose(service if path_ok else service + path, path_ok=path_ok),
            )
        if link.state in (LinkState.UP, LinkState.DOWN) and any(
            (p.verdict and p.failures) or (p.verdict is False and p.successes) for p in link.probes
        ):
            # A probe is on its way to a new verdict (probes run at different phases, and a
            # silent round is loss too): let down_after / up_after decide first, so a cut or a
            # repair does not pass through DEGRADED on the way.
            return link.state, link.cause, link.detail
        if failed:
            return (LinkState.DEGRADED, *_diagnose(failed, path_ok=True))
        self._judge_quality(link)
        if link.quality:
            loss, rtt = link.figures()
            if "loss" in link.quality:
                return LinkState.DEGRADED, "loss", f"loss {loss or 0.0:.0%}"
            return LinkState.DEGRADED, "rtt", f"rtt {(rtt or 0.0) * 1000:.0f} ms"
        return LinkState.UP, "", ""

    def _judge_quality(self, link: _Link) -> None:
        rule = link.rule
        bad: set[str] = set()
        for p in link.probes:
            if p.rule.kind not in PATH_KINDS or len(p.rounds) < QUALITY_SHORT:
                continue
            # Leaving needs the recent rounds AND the long window clearly below: the long
            # window alone still holds the clean rounds from before the trouble began.
            short_loss, short_rtt = _quality(p.rounds, QUALITY_SHORT)
            long_loss, long_rtt = (
                _quality(p.rounds) if link.quality or short_rtt is None else (0.0, None)
            )  # a link without trouble needs no more
            if rule.max_loss > 0 and (
                short_loss >= rule.max_loss
                or (
                    "loss" in link.quality
                    and max(short_loss, long_loss) >= rule.max_loss * LOSS_RECOVERY
                )
            ):
                bad.add("loss")
            rtts = [v for v in (short_rtt, long_rtt) if v is not None]
            if (
                rule.max_rtt > 0
                and rtts
                and (
                    rtts[0] >= rule.max_rtt
                    or ("rtt" in link.quality and max(rtts) >= rule.max_rtt * RTT_RECOVERY)
                )
            ):
                bad.add("rtt")
        link.quality = frozenset(bad)

    def _move(
        self,
        link: _Link,
        state: LinkState,
        cause: str,
        detail: str,
        roots: frozenset[str],
        now: float,
    ) -> Transition | None:
        old = link.state
        link.cause, link.detail, link.roots = cause, detail, roots
        if state is old:
            return None
        link.state, link.since = state, now
        if (state is LinkState.DOWN and old is not LinkState.UNREACHABLE) or (
            old is LinkState.DOWN and state in SERVING
        ):
            link.flaps.append(now)  # a change that pages: what flap damping counts
        return Transition(
            link=link.id,
            old=old,
            new=state,
            at=now,
            cause=cause,
            detail=detail,
            site=link.rule.from_site,
        )

    def _update_flapping(self, link: _Link, now: float) -> None:
        window, limit = self._rules.flap_window, self._rules.flap_changes
        while link.flaps and link.flaps[0] <= now - window:
            link.flaps.popleft()
        if not link.flapping and len(link.flaps) > limit:
            link.flapping, link.flapping_since = True, now
        elif link.flapping and len(link.flaps) <= limit // 2:
            link.flapping = False

    # -- service availability ------------------------------------------------------------------

    def _services(self) -> dict[str, ServiceStatus]:
        """Service per office, recomputed only after a state change.

        One search from pusat outwards finds, for every office, its best path: each path is
        as good as its worst part (a backup link, the DRC as the end, a link not judged, a
        link down), and an office gets the best of its paths. Paths never run through
        another pusat/DRC site: reaching the DRC is not reaching the DC.
        """
        now = self._service_changed
        if now is None:
            return self._service
        self._service_changed = None
        sites, links = self._rules.sites, self._links
        buckets: list[deque[tuple[str, tuple[str, ...]]]] = [deque() for _ in _GRADES]
        for site in sites.values():
            if site.kind in TERMINAL_KINDS:
                buckets[_DC if site.kind == "pusat" else _DRC].append((site.id, ()))
        best: dict[str, tuple[int, tuple[str, ...]]] = {}
        for grade, bucket in enumerate(buckets):
            while bucket:
                here, path = bucket.popleft()
                if here in best:
                    continue
                best[here] = (grade, path)
                for lid, there in self._adjacent.get(here, ()):
                    if there in best or sites[there].kind in TERMINAL_KINDS:
                        continue
                    link = links[lid]
                    if link.state in SERVING:
                        worst = _DC if lid in self._primary else _BACKUP
                    else:
                        worst = _DOWN if link.state is LinkState.DOWN else _MAYBE
                    buckets[max(grade, worst)].append((there, (lid, *path)))
        result: dict[str, ServiceStatus] = {}
        for site in sites.values():
            if site.kind in TERMINAL_KINDS:
                continue
            grade, via = best.get(site.id, (len(_GRADES), ()))
            availability, reason = (
                _GRADES[grade] if grade < len(_GRADES) else (Availability.UNKNOWN, "not_monitored")
            )
            previous = self._service.get(site.id)
            if previous is not None and (previous.availability, previous.via, previous.reason) == (
                availability,
                via,
                reason,
            ):
                result[site.id] = previous
                continue
            since = previous.since if previous and previous.availability is availability else now
            result[site.id] = ServiceStatus(site.id, availability, via, reason, since)
        self._service = result
        return result

    # -- alerts ------------------------------------------------------------------------------

    def _reconcile(
        self,
        step: _Step,
        now: float,
        links: Iterable[_Link],
        moved: Iterable[_Link],
        everything: bool,
        services: bool = False,
    ) -> None:
        """Fire and resolve what ``links`` (or, with ``everything``, all subjects) call for.

        A kabupaten's roll-up is re-decided when one of its kecamatan links ``moved``; when
        that flips it, all of its links are re-checked (held pages go out, or are held).
        Office alerts (``services``) are left to :meth:`tick`: finding every office's path
        costs a search of the whole network, once per tick rather than per state change.
        """
        subjects = {link.id: link for link in (self._links.values() if everything else links)}
        kabupatens = (
            set(self._kecamatan)
            if everything
            else {self._member_of[link.id] for link in moved if link.id in self._member_of}
        )
        for kab in sorted(kabupatens):
            covered = kab in self._rollup
            self._region(step, kab, now)
            if everything or (kab in self._rollup) != covered:
                subjects.update((lid, self._links[lid]) for lid in self._kecamatan[kab])
        for link in subjects.values():
            self._reconcile_link(step, link, now)
        if services:
            self._reconcile_services(step, now)
        if everything:
            self._resolve_orphans(step, now)

    def _settle_alert(
        self,
        step: _Step,
        key: str,
        holds: bool,
        may_fire: bool,
        fire: Callable[[], Alert],
        resolve: Callable[[Alert], Alert],
    ) -> None:
        current = self._firing.get(key)
        if current is None and holds and may_fire:
            alert = fire()
            self._firing[key] = alert
            step.alerts.append(alert)
        elif current is not None and not holds:
            del self._firing[key]
            step.alerts.append(resolve(current))

    def _labels(
        self, name: str, severity: str, cause: str, site: str, link: LinkRule | None = None
    ) -> dict[str, str]:
        info = self._rules.sites.get(site)
        kabupaten = (link.kabupaten if link else None) or (info.kabupaten if info else None)
        return {
            "alertname": name,
            "agent": self._rules.agent,
            "site": site,
            "kabupaten": kabupaten or "",
            "link": link.id if link else "",
            "network": link.network if link else "",
            "severity": severity,
            "cause": cause,
        }

    def _place(self, site: str) -> text.Place:
        info = self._rules.sites.get(site)
        if info is None:
            return text.Place(site, "UTC")
        return text.Place(info.name, info.timezone)

    def _reconcile_link(self, step: _Step, link: _Link, now: float) -> None:
        down_key, flap_key = f"LinkDown/{link.id}", f"LinkFlapping/{link.id}"
        if (
            link.state is not LinkState.DOWN
            and not link.flapping
            and down_key not in self._firing
            and flap_key not in self._firing
        ):
            return  # nothing to fire, nothing to resolve
        rule, lang = link.rule, self._rules.language
        office, peer = self._place(rule.from_site), self._place(rule.to_site).name
        creating_down = (
            link.state is LinkState.DOWN
            and down_key not in self._firing
            and not link.flapping
            and not self._covered(link)
        )
        if creating_down:
            link.maintenance = self._rules.maintenance(link.id, now)
        self._settle_alert(
            step,
            down_key,
            holds=link.state not in SERVING,
            may_fire=creating_down and link.maintenance is None,
            fire=lambda: Alert.create(
                down_key,
                f"link:{link.id}",
                self._labels("LinkDown", "critical", link.cause, rule.from_site, rule),
                text.link_down(
                    lang,
                    link=link.id,
                    office=office,
                    peer=peer,
                    network=rule.network,
                    cause=link.cause,
                    detail=link.detail,
                    since=link.since,
                ),
                starts_at=link.since,
            ),
            resolve=lambda alert: alert.resolve(
                now,
                text.link_restored(
                    lang, link=link.id, office=office, peer=peer, since=alert.starts_at, at=now
                ),
            ),
        )
        self._settle_alert(
            step,
            flap_key,
            holds=link.flapping,
            may_fire=link.flapping and self._rules.maintenance(link.id, now) is None,
            fire=lambda: Alert.create(
                flap_key,
                f"link:{link.id}",
                self._labels("LinkFlapping", "warning", "flapping", rule.from_site, rule),
                text.link_flapping(
                    lang,
                    link=link.id,
                    office=office,
                    peer=peer,
                    changes=len(link.flaps),
                    window=self._rules.flap_window,
                    since=link.flapping_since,
                ),
                starts_at=link.flapping_since,
            ),
            resolve=lambda alert: alert.resolve(
                now,
                text.link_calm(
                    lang, link=link.id, office=office, peer=peer, since=alert.starts_at, at=now
                ),
            ),
        )

    def _covered(self, link: _Link) -> bool:
        """Whether a regional roll-up pages for this link (or is about to)."""
        return self._member_of.get(link.id) in self._rollup

    def _region(self, step: _Step, kab: str, now: float) -> None:
        """Decide the roll-up for one kabupaten, before its links are reconciled.

        Once at least the roll-up share of its kecamatan links is down, one incident pages
        for all of them until every one is back; while enough are failing to get there, the
        ones already down wait instead of paging one by one.
        """
        members = [self._links[lid] for lid in self._kecamatan[kab]]
        down = [m for m in members if m.state is LinkState.DOWN and m.maintenance is None]
        suspect = [m for m in members if m.suspect and m.maintenance is None]
        need = max(self._rules.rollup_min_links, math.ceil(self._rules.rollup_share * len(members)))
        key = f"RegionalIncident/{kab}"
        firing = key in self._firing
        still_out = any(m.state in (LinkState.DOWN, LinkState.UNREACHABLE) for m in members)
        holds = still_out if firing else len(down) >= need
        if holds or (len(members) >= need and len(down) + len(suspect) >= need):
            self._rollup.add(kab)
        else:
            self._rollup.discard(kab)
        place, lang = self._place(kab), self._rules.language
        causes = sorted((m.cause for m in down), key=lambda c: -sum(d.cause == c for d in down))
        cause = causes[0] if causes else "path_down"
        since = min((m.since for m in down), default=now)
        self._settle_alert(
            step,
            key,
            holds=holds,
            may_fire=True,
            fire=lambda: Alert.create(
                key,
                f"kabupaten:{kab}",
                self._labels("RegionalIncident", "critical", cause, kab),
                text.regional_incident(
                    lang,
                    kabupaten=place,
                    down=len(down),
                    total=len(members),
                    offices=[self._place(m.rule.from_site).name for m in down],
                    cause=cause,
                    since=since,
                ),
                starts_at=since,
            ),
            resolve=lambda alert: alert.resolve(
                now, text.regional_resolved(lang, kabupaten=place, since=alert.starts_at, at=now)
            ),
        )

    def _reconcile_services(self, step: _Step, now: float) -> None:
        self._service_reconciled = self._services()
        for status in self._service_reconciled.values():
            self._reconcile_service(step, status, now)

    def _reconcile_service(self, step: _Step, status: ServiceStatus, now: float) -> None:
        site, lang = status.site, self._rules.language
        own = [self._links[lid] for lid in self._own_links.get(site, ())]
        key = f"ServiceUnavailable/{site}"
        # Only an office that lost every one of its own paths pages here: one with a single
        # link is paged by that link, one behind a failed hub by the hub's alerts.
        root_cause = bool(own) and all(link.state is LinkState.DOWN for link in own)
        may_fire = (
            root_cause
            and len(own) >= 2
            and not any(self._covered(link) for link in own)
            and not all(self._rules.maintenance(link.id, now) for link in own)
        )
        place = self._place(site)
        self._settle_alert(
            step,
            key,
            holds=status.availability is Availability.UNAVAILABLE,
            may_fire=may_fire,
            fire=lambda: Alert.create(
                key,
                f"site:{site}",
                self._labels("ServiceUnavailable", "critical", "no_path", site),
                text.service_unavailable(
                    lang, office=place, links=[link.id for link in own], since=status.since
                ),
                starts_at=status.since,
            ),
            resolve=lambda alert: alert.resolve(
                now, text.service_restored(lang, office=place, since=alert.starts_at, at=now)
            ),
        )

    def _resolve_orphans(self, step: _Step, now: float) -> None:
        """Resolve alerts about links or sites a reload removed: their resolve is still owed."""
        for key, alert in list(self._firing.items()):
            kind, _, subject = key.partition("/")
            gone = (
                subject not in self._links
                if kind in ("LinkDown", "LinkFlapping")
                else subject not in self._rules.sites
            )
            if gone:
                del self._firing[key]
                step.alerts.append(
                    alert.resolve(
                        now,
                        text.link_removed(
                            self._rules.language, link=subject, timezone="UTC", at=now
                        ),
                    )
                )

    def _finish(self, step: _Step) -> Changes:
        if not (step or self._pending or self._removed):
            return _NO_CHANGES  # what nearly every result comes to
        pending, self._pending = self._pending, _Step()
        removed, self._removed = self._removed, []
        step.transitions[:0] = pending.transitions
        step.alerts[:0] = pending.alerts
        step.changed = {**pending.changed, **step.changed}
        return Changes(
            transitions=tuple(step.transitions),
            alerts=tuple(step.alerts),
            links=tuple(
                link.snapshot() for link in step.changed.values() if link.id in self._links
            ),
            forgotten=tuple(removed),
        )


def _topological(links: Mapping[str, LinkRule]) -> dict[str, int]:
    """Position of each link such that parents come before the links depending on them."""
    order: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(lid: str) -> None:
        if lid in order:
            return
        if lid in visiting:
            raise ValueError(f"link {lid}: depends_on forms a cycle")
        visiting.add(lid)
        for parent in links[lid].depends_on:
            visit(parent)
        visiting.discard(lid)
        order[lid] = len(order)

    for lid in links:
        visit(lid)
    return order
