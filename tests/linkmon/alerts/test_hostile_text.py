"""Hostile text on its way to people: office names from a config, probe details from a hostile
far end (a server's error text), through the alert wording, over HTTP to a real receiver.

``test_model.py`` fuzzes the payload builders with hostile label and annotation values; this
covers what it does not: the wording step (``str.format`` with names like ``{0}`` or
``%s``), the size of what a receiver gets when a detail is a megabyte, and the bytes on the
wire read back by a receiver process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkmon.alerts import text
from linkmon.alerts.model import MAX_ANNOTATION_CHARS, MAX_LABEL_CHARS, Alert
from linkmon.alerts.receivers import Result, WebhookReceiver
from tests.support.receiver import ReceiverProcess

T0 = 1_740_798_000.0
hostile = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=300),
    st.sampled_from(
        [
            "{0}",
            "{office}",
            "{}",
            "%s%n",
            "\r\n\r\nX-Injected: 1",
            "\x00",
            "\ud800",
            "Kantor\u202eBUKAN",
            "🙂" * 1000,
        ]
    ),
    st.sampled_from(["x", "ü\n", "\ud83d"]).map(lambda s: s * (1 << 20)),  # a megabyte
)
ZONES = st.sampled_from(["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"])


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    process = ReceiverProcess(tmp_path_factory.mktemp("receiver") / "received.jsonl")
    try:
        yield process
    finally:
        process.stop()


def wordings(office: text.Place, peer: str, detail: str) -> list[dict[str, str]]:
    return [
        text.link_down(
            "id",
            link="kec-a--kab",
            office=office,
            peer=peer,
            network="m2m",
            cause=detail,
            detail=detail,
            since=T0,
        ),
        text.link_restored(
            "en", link="kec-a--kab", office=office, peer=peer, since=T0, at=T0 + 3600
        ),
        text.link_flapping(
            "id", link="kec-a--kab", office=office, peer=peer, changes=7, window=600, since=T0
        ),
        text.service_unavailable("en", office=office, links=[peer, detail], since=T0),
        text.regional_incident(
            "id", kabupaten=office, down=3, total=5, offices=[peer, detail], cause=detail, since=T0
        ),
    ]


def last_delivery(receiver: ReceiverProcess) -> dict[str, Any]:
    """The receiver's latest record, read from the end of its log (which grows large)."""
    with receiver.log.open("rb") as log:
        log.seek(0, 2)
        log.seek(max(0, log.tell() - (1 << 20)))
        record: dict[str, Any] = json.loads(log.read().splitlines()[-1])
    return record


def deliver(url: str, alert: Alert) -> Result:
    """One notification, as the outbox sends it."""
    sink = WebhookReceiver("oncall", [url])
    [target] = sink.targets

    async def send() -> Result:
        async with httpx.AsyncClient() as client:
            return (await sink.deliver(client, target, alert, T0)).result

    return asyncio.run(send())


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # megabyte reprs
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(office=hostile, peer=hostile, detail=hostile, zone=ZONES)
def test_hostile_names_and_details_reach_the_receiver_intact_and_bounded(
    receiver: ReceiverProcess, office: str, peer: str, detail: str, zone: str
) -> None:
    for words in wordings(text.Place(office, zone), peer, detail):
        assert set(words) == {"summary", "description"}
        alert = Alert.create(
            "LinkDown/kec-a--kab",
            "link:kec-a--kab",
            {"alertname": "LinkDown", "link": "kec-a--kab", "site": office},
            words,
            starts_at=T0,
        )
        assert all(len(v) <= MAX_ANNOTATION_CHARS for v in alert.annotations.values())
        assert deliver(receiver.url, alert) is Result.SUCCESS
        record = last_delivery(receiver)
        # Bounded whatever the input: each label and annotation is cut, and a webhook message
        # carries them twice (common and per alert), at most 4 UTF-8 bytes a character.
        cap = 2 * 4 * (3 * MAX_LABEL_CHARS + 2 * MAX_ANNOTATION_CHARS) + 4096
        assert int(record["headers"]["Content-Length"]) <= cap < 256 * 1024
        [received] = record["body"]["alerts"]
        assert received["labels"] == alert.labels
        assert received["annotations"] == alert.annotations
        assert received["fingerprint"] == alert.fingerprint
        assert "x-injected" not in {k.lower() for k in record["headers"]}


def test_a_megabyte_detail_is_cut_visibly() -> None:
    words = text.link_down(
        "en",
        link="kec-a--kab",
        office=text.Place("Krayan", "Asia/Makassar"),
        peer="Nunukan",
        network="m2m",
        cause="tls",
        detail="z" * (1 << 20),
        since=T0,
    )
    alert = Alert.create(
        "LinkDown/kec-a--kab", "link:kec-a--kab", {"alertname": "LinkDown"}, words, starts_at=T0
    )
    assert len(alert.annotations["description"]) == MAX_ANNOTATION_CHARS
    assert alert.annotations["description"].endswith("…")
    assert alert.annotations["summary"].startswith("Link kec-a--kab (Krayan – Nunukan")
