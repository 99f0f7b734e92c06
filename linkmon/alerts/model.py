"""The alert, its identity, and the two wire formats Alertmanager users already speak.

Labels are an alert's identity (as in Alertmanager): the fingerprint is Alertmanager's own
FNV-1a hash of the sorted label pairs, so a receiver that deduplicates on it sees the same
value Alertmanager would show. Annotations are the human text and may change between sends.

Values are made safe once, when the alert is built: any string (unicode, newlines, lone
surrogates, megabytes of it) ends up valid UTF-8 of bounded length, so every payload is
valid JSON and reads back to exactly the alert that was built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

WEBHOOK_VERSION = "4"
# Alertmanager's rendering of "no end known" for a firing alert.
NO_END = "0001-01-01T00:00:00Z"
# Prometheus sends firing alerts with endsAt this many resend intervals ahead, so an
# Alertmanager that stops hearing from us resolves them on its own, but not too eagerly.
ENDS_AT_RESENDS = 4

MAX_LABEL_CHARS = 1024
MAX_ANNOTATION_CHARS = 8192

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF


def _clean(value: str, limit: int) -> str:
    """Valid UTF-8 (lone surrogates escaped), cut to ``limit`` characters with a visible mark."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _fnv1a(data: bytes, h: int) -> int:
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint (prometheus/common ``labelSetToFingerprint``)."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        h = _fnv1a(name.encode(), h)
        h = _fnv1a(bytes([_SEPARATOR]), h)
        h = _fnv1a(labels[name].encode(), h)
        h = _fnv1a(bytes([_SEPARATOR]), h)
    return f"{h:016x}"


def rfc3339(ts: float | None) -> str:
    """UTC timestamp as Alertmanager writes it; ``None`` is the zero time (no end known)."""
    if ts is None:
        return NO_END
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as sent: firing while ``ends_at`` is None, resolved once it is set.

    ``key`` names what the alert is about inside this agent (``LinkDown/kec-krayan--kab``)
    and ``group`` is the delivery order group (``link:kec-krayan--kab``): notifications of one
    group are delivered in the order they were made, so a resolve never overtakes its firing.
    Build alerts with :meth:`create`, which makes every value safe.
    """

    key: str
    group: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None = None
    generator_url: str = ""
    fingerprint: str = field(default="", compare=False)

    @classmethod
    def create(
        cls,
        key: str,
        group: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        starts_at: float,
        ends_at: float | None = None,
        generator_url: str = "",
    ) -> Alert:
        """Build an alert; empty label values are left out (Alertmanager treats them as absent)."""
        clean_labels = {
            _clean(k, MAX_LABEL_CHARS): _clean(v, MAX_LABEL_CHARS)
            for k, v in sorted(labels.items())
            if v
        }
        if "alertname" not in clean_labels:
            raise ValueError("an alert needs an alertname label")
        clean_annotations = {
            _clean(k, MAX_LABEL_CHARS): _clean(v, MAX_ANNOTATION_CHARS)
            for k, v in sorted(annotations.items())
        }
        return cls(
            key=key,
            group=group,
            labels=clean_labels,
            annotations=clean_annotations,
            starts_at=starts_at,
            ends_at=ends_at,
            generator_url=_clean(generator_url, MAX_ANNOTATION_CHARS),
            fingerprint=fingerprint(clean_labels),
        )

    @property
    def status(self) -> str:
        return "firing" if self.ends_at is None else "resolved"

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    def resolve(self, at: float, annotations: Mapping[str, str] | None = None) -> Alert:
        """The same alert (same labels, same fingerprint), resolved at ``at``."""
        text = (
            self.annotations
            if annotations is None
            else {
                _clean(k, MAX_LABEL_CHARS): _clean(v, MAX_ANNOTATION_CHARS)
                for k, v in sorted(annotations.items())
            }
        )
        return replace(self, ends_at=at, annotations=text)

    def to_json(self) -> str:
        """Stored form (SQLite); :meth:`from_json` reads it back exactly."""
        return json.dumps(
            {
                "key": self.key,
                "group": self.group,
                "labels": self.labels,
                "annotations": self.annotations,
                "startsAt": self.starts_at,
                "endsAt": self.ends_at,
                "generatorURL": self.generator_url,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data = json.loads(text)
        labels = {str(k): str(v) for k, v in data["labels"].items()}
        return cls(
            key=str(data["key"]),
            group=str(data["group"]),
            labels=labels,
            annotations={str(k): str(v) for k, v in data["annotations"].items()},
            starts_at=float(data["startsAt"]),
            ends_at=None if data["endsAt"] is None else float(data["endsAt"]),
            generator_url=str(data["generatorURL"]),
            fingerprint=fingerprint(labels),
        )


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def webhook_payload(alert: Alert, *, receiver: str, external_url: str = "") -> dict[str, Any]:
    """Alertmanager webhook message (version "4") carrying one alert.

    One alert per message keeps per-link ordering simple and a retry idempotent; the group
    labels are the alert name and what it is about (link, else site, else kabupaten), as an
    Alertmanager route grouping by those would produce.
    """
    subject = {"alertname": alert.name}
    about = next((k for k in ("link", "site", "kabupaten") if k in alert.labels), None)
    if about is not None:
        subject[about] = alert.labels[about]
    group_key = "{}:{" + ", ".join(f"{k}={_go_quote(v)}" for k, v in subject.items()) + "}"
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": receiver,
        "groupLabels": subject,
        "commonLabels": dict(alert.labels),
        "commonAnnotations": dict(alert.annotations),
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def alertmanager_payload(
    alerts: Sequence[Alert], *, now: float, resend_interval: float
) -> list[dict[str, Any]]:
    """Body of ``POST /api/v2/alerts``, rendered at send time.

    A firing alert carries ``endsAt = now + 4 × resend_interval`` (what Prometheus does): if
    linkmon dies, Alertmanager resolves the alert itself rather than keeping it forever.
    """
    return [
        {
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(
                alert.ends_at
                if alert.ends_at is not None
                else now + ENDS_AT_RESENDS * resend_interval
            ),
            "generatorURL": alert.generator_url,
        }
        for alert in alerts
    ]
