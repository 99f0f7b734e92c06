"""What the state machine tells the rest of linkmon: facts, never words.

A link's state and how it got there (:class:`Transition`, :class:`LinkSnapshot`), an office's
service (:class:`ServiceStatus`), and which alerts fire or resolve (:class:`AlertChange`,
named by an :class:`AlertKey`). Labels, sentences, languages and time zones are the edge's
business (``linkmon.alerts.compose``); storage decides how these are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from linkmon.topology import Availability


class LinkState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"


SERVING = frozenset({LinkState.UP, LinkState.DEGRADED})
OUT = frozenset({LinkState.DOWN, LinkState.UNREACHABLE})


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


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Whether an office can serve online, and which links carry its path to pusat.

    ``reason`` as :class:`linkmon.topology.Reach` gives it; ``since``: when the office's
    availability last changed.
    """

    site: str
    availability: Availability
    via: tuple[str, ...]
    reason: str
    since: float


class AlertKind(StrEnum):
    """What an alert is about; its ``alertname`` on the wire."""

    LINK_DOWN = "LinkDown"  # subject: a link
    LINK_FLAPPING = "LinkFlapping"  # subject: a link
    SERVICE_UNAVAILABLE = "ServiceUnavailable"  # subject: an office (site)
    REGIONAL_INCIDENT = "RegionalIncident"  # subject: a kabupaten (site)

    @property
    def about_link(self) -> bool:
        return self in (AlertKind.LINK_DOWN, AlertKind.LINK_FLAPPING)


class AlertKey(NamedTuple):
    """One alert's identity inside this agent: at most one fires per key at a time.

    A named tuple, not a dataclass: the firing book is looked up by key after every probe
    result, and a tuple hashes in C (a dataclass's ``__hash__`` is Python, 1 µs a result).
    """

    kind: AlertKind
    subject: str

    def __str__(self) -> str:
        """``LinkDown/kec-krayan--kab``: how the key is stored (:meth:`parse` reads it)."""
        return f"{self.kind.value}/{self.subject}"

    @classmethod
    def parse(cls, text: str) -> AlertKey:
        kind, slash, subject = text.partition("/")
        try:
            if slash and subject:
                return cls(AlertKind(kind), subject)
        except ValueError:
            pass
        raise ValueError(f"not an alert key: {text!r}")


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert that fires or resolves: the facts a composer puts into words.

    ``since``: when the condition began (the alert's start, for a resolve too); ``at``: when
    this change was decided. ``removed``: resolved because a reload took its subject out of
    the configuration. The figures are those of the alert's kind:

    * LinkDown: ``cause`` (the diagnosis) and ``detail`` (which probes failed, how);
    * LinkFlapping: ``changes`` into or out of DOWN within ``window`` seconds;
    * ServiceUnavailable: ``links``, the office's own links, all down;
    * RegionalIncident: ``down`` of ``total`` kecamatan links, the ``offices`` at their far
      ends (site ids, in configuration order), the main ``cause``.

    A resolve carries only the key and the times.
    """

    key: AlertKey
    firing: bool
    since: float
    at: float
    cause: str = ""
    detail: str = ""
    changes: int = 0
    window: float = 0.0
    links: tuple[str, ...] = ()
    down: int = 0
    total: int = 0
    offices: tuple[str, ...] = ()
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one step of the state machine changed; store it in one transaction."""

    transitions: tuple[Transition, ...] = ()
    alerts: tuple[AlertChange, ...] = ()
    links: tuple[LinkSnapshot, ...] = ()
    forgotten: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.transitions or self.alerts or self.links or self.forgotten)
