"""Link state: turns probe results into facts on-call staff need.

Pure logic, no I/O, no words: every method takes ``now`` (unix seconds), so tests drive it
with a fake clock and the daemon with the real one. The daemon feeds each probe result to
:meth:`Network.observe`, calls :meth:`Network.tick` every few seconds (maintenance windows,
flap damping and roll-ups change with time alone), and gets back :class:`Changes`: link
transitions and snapshots, and alerts that fire or resolve as :class:`AlertChange` facts
(an :class:`AlertKey`, times, cause, figures). ``linkmon.alerts.compose`` puts those into
words; the monitor stores everything of one step in one transaction, so a crash can never
separate "the outage was alerted" from "the alert is queued".

Where each rule lives: :mod:`~linkmon.state.judgement` (a link on its own probes: verdicts,
quality, diagnosis), :mod:`~linkmon.state.network` (dependencies, flap damping, the step),
:mod:`~linkmon.state.alerting` (which alerts fire, roll-ups), :mod:`linkmon.topology`
(which offices can serve), :mod:`~linkmon.state.rules` (what is read from the config).
"""

from linkmon.state.facts import (
    OUT,
    SERVING,
    AlertChange,
    AlertKey,
    AlertKind,
    Changes,
    LinkSnapshot,
    LinkState,
    ProbeSnapshot,
    ServiceStatus,
    Transition,
)
from linkmon.state.network import Network
from linkmon.state.rules import LinkRule, ProbeRule, Rules, SiteRule
from linkmon.topology import Availability

__all__ = [
    "OUT",
    "SERVING",
    "AlertChange",
    "AlertKey",
    "AlertKind",
    "Availability",
    "Changes",
    "LinkRule",
    "LinkSnapshot",
    "LinkState",
    "Network",
    "ProbeRule",
    "ProbeSnapshot",
    "Rules",
    "ServiceStatus",
    "SiteRule",
    "Transition",
]
