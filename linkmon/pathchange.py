"""A trace of a link set against its last good path: where it stops, where it parts from it.

Facts (:class:`PathChange`, :func:`compare`) and the sentence the NOC reads in the status
document and in ``linkmon trace`` (:func:`where`, :meth:`PathReport.text`), in Bahasa
Indonesia or English. :mod:`linkmon.paths` takes the traces and keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probes import Failure
from probes.trace import NO_ROUTE, Reply, TraceResult

_WORDS: dict[str, dict[str, str]] = {
    "id": {
        "reached": "sampai di {target} pada hop {hop}",
        "last": "jawaban terakhir dari hop {hop}, {address}",
        "silent": "tidak ada hop yang menjawab",
        "no_route": "tidak ada rute dari sini ke {target}",
        "changed": "jalur berbeda dari jalur baik terakhir mulai hop {hop}: sebelumnya {was}, "
        "sekarang {now}",
        "hops": " ({was} → {now} hop)",
        "nothing": "tidak ada",
        "no_answer": "tidak menjawab",
        "time_exceeded": "TTL habis",
        "echo_reply": "balasan echo",
        "port_unreachable": "port tertutup",
        "syn_ack": "SYN-ACK",
        "reset": "RST",
        "net_unreachable": "jaringan tak terjangkau",
        "host_unreachable": "host tak terjangkau",
        "prohibited": "diblokir",
        "unreachable": "tak terjangkau",
    },
    "en": {
        "reached": "reached {target} at hop {hop}",
        "last": "last answer from hop {hop}, {address}",
        "silent": "no answer from any hop",
        "no_route": "no route from here to {target}",
        "changed": "path differs from the last good one from hop {hop}: was {was}, now {now}",
        "hops": " ({was} → {now} hops)",
        "nothing": "nothing",
        "no_answer": "no answer",
        "time_exceeded": "TTL exceeded",
        "echo_reply": "echo reply",
        "port_unreachable": "port unreachable",
        "syn_ack": "SYN-ACK",
        "reset": "RST",
        "net_unreachable": "network unreachable",
        "host_unreachable": "host unreachable",
        "prohibited": "prohibited",
        "unreachable": "unreachable",
    },
}


@dataclass(frozen=True, slots=True)
class PathChange:
    """Where a path parts from the known good one: the first differing hop."""

    hop: int
    was: str | None
    now: str | None
    hops_was: int
    hops_now: int

    def text(self, language: str) -> str:
        words = _WORDS[language]
        was = self.was or words["nothing"]
        now = self.now or words["no_answer"]
        text = words["changed"].format(hop=self.hop, was=was, now=now)
        if self.hops_was != self.hops_now:
            text += words["hops"].format(was=self.hops_was, now=self.hops_now)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "was": self.was,
            "now": self.now,
            "hops_was": self.hops_was,
            "hops_now": self.hops_now,
        }


def compare(good: TraceResult, now: TraceResult) -> PathChange | None:
    """How ``now`` differs from ``good`` (a trace that reached its target), or None.

    A hop that stayed silent in either trace matches any address (routers drop some
    traceroute answers); a different address, or a path of another length, is a change.
    """
    was, new = good.path, now.path
    for index, (a, b) in enumerate(zip(was, new, strict=False)):
        if a is not None and b is not None and a != b:
            return PathChange(index + 1, a, b, len(was), len(new))
    if len(was) == len(new) and now.reached:
        return None
    index = min(len(was), len(new))
    return PathChange(
        index + 1,
        was[index] if index < len(was) else None,
        new[index] if index < len(new) else None,
        len(was),
        len(new),
    )


def where(result: TraceResult, language: str) -> str:
    """Where the path stops, in the agent's language: ``jawaban terakhir dari hop 3, ...``."""
    words = _WORDS[language]
    if result.failure is Failure.AGENT:
        return result.error
    last = result.last_answer
    if last is None:
        if result.error.startswith(NO_ROUTE):
            return words["no_route"].format(target=result.target)
        return result.error or words["silent"]
    if result.reached:
        return words["reached"].format(target=result.target, hop=last.ttl)
    text = words["last"].format(hop=last.ttl, address=last.address)
    if last.reply is not None and last.reply is not Reply.TIME_EXCEEDED:
        text += f" ({reply_text(last.reply, language)})"
    return text


@dataclass(frozen=True, slots=True)
class PathReport:
    """One trace of a link, set against the good path known before it."""

    link: str
    reason: str  # "down" (the link went down), "check" (a check while up), "manual"
    trace: TraceResult
    good: TraceResult | None
    change: PathChange | None

    def text(self, language: str) -> str:
        """``jawaban terakhir dari hop 1, 198.19.0.1; jalur berbeda ... mulai hop 2: ...``."""
        parts = [where(self.trace, language)]
        if self.change is not None:
            parts.append(self.change.text(language))
        return "; ".join(parts)

    def to_dict(self, language: str) -> dict[str, Any]:
        """For the status document and alert annotations."""
        return {
            "link": self.link,
            "reason": self.reason,
            "at": self.trace.started_at,
            "mode": self.trace.mode,
            "target": self.trace.target,
            "reached": self.trace.reached,
            "hops": len(self.trace.path),
            "path": list(self.trace.path),
            "good_path": list(self.good.path) if self.good else None,
            "change": self.change.to_dict() if self.change else None,
            "text": self.text(language),
        }


def reply_text(reply: Reply, language: str) -> str:
    """What a hop answered, in words: ``TTL habis``, ``port tertutup``."""
    return _WORDS[language][reply.value]
