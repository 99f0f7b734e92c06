"""The delay bridge itself: its own cost is small and measurable, its controls are strict."""

from __future__ import annotations

import pytest

from linkmon.lab import Lab, LabError
from linkmon.lab.faults import bridge_request

pytestmark = [pytest.mark.lab, pytest.mark.root]

LINK = "kec-sebatik--kab"


def test_bridge_counts_frames_and_its_own_lateness(clean_lab: Lab) -> None:
    lab = clean_lab
    before = lab.bridge_stats(LINK)
    assert lab.ping("kab-nunukan", lab.address("kec-sebatik"), count=50).received == 50
    after = lab.bridge_stats(LINK)
    for direction in ("forward", "reverse"):
        assert after[direction]["frames"] - before[direction]["frames"] >= 50
        assert after[direction]["dropped"] == before[direction]["dropped"]
        # Frames leave within a fraction of a millisecond of when they are due.
        assert 0 < after[direction]["late_avg"] < 0.0005
    assert after["pending"] == 0


def test_overhead_is_a_fraction_of_a_millisecond(clean_lab: Lab) -> None:
    overhead = clean_lab.bridge_overhead(LINK, count=100)
    assert 0 < overhead < 0.001


def test_control_rejects_bad_settings_and_changes_nothing(clean_lab: Lab) -> None:
    control = str(clean_lab.state_dir / f"bridge-{clean_lab.topology.link(LINK).index}.sock")
    with pytest.raises(LabError, match=r"reverse.delay=-1: want delay/jitter in seconds"):
        bridge_request(control, {"forward": {"delay": 0.01}, "reverse": {"delay": -1}})
    with pytest.raises(LabError, match=r"forward.speed=1"):
        bridge_request(control, {"forward": {"speed": 1}})
    assert bridge_request(control, {})["forward"]["delay"] == 0.0
