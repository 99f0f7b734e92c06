"""The alert model and wire formats, fuzzed with hostile label values."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from linkmon.alerts.model import (
    MAX_ANNOTATION_CHARS,
    MAX_LABEL_CHARS,
    NO_END,
    Alert,
    alertmanager_payload,
    fingerprint,
    rfc3339,
    webhook_payload,
)

LABELS = ("agent", "link", "site", "kabupaten", "network", "severity", "cause")

# Everything a hostile config value or probe detail could hold: any code point including lone
# surrogates and NUL, line breaks, quotes, and megabyte strings.
hostile = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=200),
    st.sampled_from(["\n", "\r\n", '"', "\\", "\x00", "ü", "🙂", "\ud800", "{{x}}", "%s"]).map(
        lambda s: s * (1 << 20) if s in ("ü", "\ud800") else s * 50
    ),
    st.just("x" * (1 << 20)),
)


def alert_of(values: list[str], text: str, resolved: bool) -> Alert:
    labels = {"alertname": "LinkDown", **dict(zip(LABELS, values, strict=False))}
    alert = Alert.create(
        "LinkDown/x",
        "link:x",
        labels,
        {"summary": text, "description": text},
        starts_at=1_740_798_000.0,
    )
    return alert.resolve(1_740_798_060.0) if resolved else alert


def wire(payload: object) -> object:
    """Through the network and back: UTF-8 JSON, as a receiver reads it."""
    return json.loads(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


@settings(max_examples=150, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=len(LABELS)), hostile, st.booleans())
def test_webhook_payload_is_valid_json_and_round_trips(
    values: list[str], text: str, resolved: bool
) -> None:
    alert = alert_of(values, text, resolved)
    payload = webhook_payload(alert, receiver="oncall")
    back = wire(payload)
    assert back == payload
    assert isinstance(back, dict)
    [item] = back["alerts"]
    assert item["labels"] == alert.labels
    assert item["annotations"] == alert.annotations
    assert item["fingerprint"] == fingerprint(item["labels"]) == alert.fingerprint
    assert back["status"] == item["status"] == ("resolved" if resolved else "firing")
    assert (item["endsAt"] == NO_END) is not resolved
    assert all(len(v) <= MAX_LABEL_CHARS for v in alert.labels.values())
    assert all(len(v) <= MAX_ANNOTATION_CHARS for v in alert.annotations.values())
    assert Alert.from_json(alert.to_json()) == alert


@settings(max_examples=100, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=len(LABELS)), hostile)
def test_alertmanager_payload_is_valid_json_and_round_trips(values: list[str], text: str) -> None:
    firing = alert_of(values, text, resolved=False)
    resolved = firing.resolve(1_740_798_600.0)
    payload = alertmanager_payload([firing, resolved], now=1_740_798_100.0, resend_interval=60)
    assert wire(payload) == payload
    assert [p["labels"] for p in payload] == [firing.labels, firing.labels]
    assert [p["endsAt"] for p in payload] == [
        rfc3339(1_740_798_100.0 + 240),
        rfc3339(1_740_798_600.0),
    ]


def test_fingerprint_is_alertmanagers() -> None:
    # Values read back from Alertmanager 0.25 (GET /api/v2/alerts) for the same labels.
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"alertname": "LinkDown", "link": "x", "agent": "a"}) == "5a8a0dfeb6b1e6d2"


def test_empty_label_values_are_left_out_and_alertname_required() -> None:
    alert = Alert.create("k", "g", {"alertname": "LinkDown", "kabupaten": ""}, {}, 0.0)
    assert alert.labels == {"alertname": "LinkDown"}
    try:
        Alert.create("k", "g", {"link": "x"}, {}, 0.0)
    except ValueError as exc:
        assert "alertname" in str(exc)
    else:
        raise AssertionError("an alert without alertname was accepted")


def test_rfc3339() -> None:
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    assert rfc3339(1_740_798_000.25) == "2025-03-01T03:00:00.250Z"
