"""Judging a link on its own probes: verdicts per probe, quality, and which layer broke.

Rules (the order in which they apply is :func:`judge`'s):

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

:func:`judge` runs for every probe result that may change something: it allocates nothing
for a link whose verdicts stand.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from linkmon.state.facts import AlertKey, AlertKind, LinkSnapshot, LinkState, ProbeSnapshot
from linkmon.state.rules import LinkRule, ProbeRule
from probes.base import Failure, ProbeResult

PATH_KINDS = frozenset({"icmp"})

QUALITY_SHORT = 5
QUALITY_LONG = 20
LOSS_RECOVERY = 0.5
RTT_RECOVERY = 0.8
_DETAIL_CHARS = 200

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


@dataclass(eq=False)
class LiveProbe:
    """One probe of a link: its verdict, the counts that lead to the next, its last results."""

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
class LiveLink:
    """One link as the state machine keeps it between results.

    Its alert keys are made once, here: the alerts are re-checked after every result that
    may change something, and a key made there would be an allocation per result.
    """

    rule: LinkRule
    probes: list[LiveProbe]
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
    down_key: AlertKey = field(init=False)
    flap_key: AlertKey = field(init=False)

    def __post_init__(self) -> None:
        self.down_key = AlertKey(AlertKind.LINK_DOWN, self.rule.id)
        self.flap_key = AlertKey(AlertKind.LINK_FLAPPING, self.rule.id)

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


def _describe(probe: LiveProbe) -> str:
    result = probe.last_failed
    if result is None:
        return f"{probe.rule.kind} {probe.rule.target}"
    reason = result.failure.value if result.failure else "failed"
    extra = f" ({result.detail[:_DETAIL_CHARS]})" if result.detail else ""
    return f"{probe.rule.kind} {probe.rule.target}: {reason}{extra}"


def _diagnose(failed: list[LiveProbe], path_ok: bool) -> tuple[str, str]:
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


def judge(link: LiveLink) -> tuple[LinkState, str, str]:
    """The link judged on its own probes alone: state, cause, detail."""
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
    _judge_quality(link)
    if link.quality:
        loss, rtt = link.figures()
        if "loss" in link.quality:
            return LinkState.DEGRADED, "loss", f"loss {loss or 0.0:.0%}"
        return LinkState.DEGRADED, "rtt", f"rtt {(rtt or 0.0) * 1000:.0f} ms"
    return LinkState.UP, "", ""


def _judge_quality(link: LiveLink) -> None:
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
