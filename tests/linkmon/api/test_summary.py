"""The summary rules of the status document, which the daemon and `linkmon status --site` share."""

from __future__ import annotations

from linkmon.api.summary import summarize
from tests.support.status_fixture import all_up, nunukan_status


def test_summary_of_the_fixture_is_what_the_daemon_reported() -> None:
    doc = nunukan_status()
    assert summarize(doc["sites"], doc["links"], doc["maintenance"]) == doc["summary"]
    up = all_up(doc)
    assert summarize(up["sites"], up["links"], up["maintenance"]) == up["summary"]
