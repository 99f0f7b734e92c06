"""linkmon/durations.py: config durations parse to seconds, refuse bare numbers, print back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkmon.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("2m", 120),
        ("1h", 3600),
        ("1d", 86400),
        ("1m30s", 90),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        ("2s500ms", 2.5),
        (" 10s ", 10),
        ("0s", 0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


USE_A_UNIT = "use a number with a unit (e.g. 500ms, 10s, 2m, 1h or 1m30s)"
ORDER = "units must go from largest to smallest, each once (d, h, m, s, ms)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "duration '10' has no unit: write 10s or 10ms"),
        ("", f"empty duration: {USE_A_UNIT}"),
        ("10x", f"invalid duration '10x': {USE_A_UNIT}"),
        ("10 s", f"invalid duration '10 s': {USE_A_UNIT}"),
        ("1m30", f"invalid duration '1m30': {USE_A_UNIT}"),
        ("-5s", "invalid duration '-5s': must not be negative"),
        ("30s1m", f"invalid duration '30s1m': {ORDER}"),
        ("1s1s", f"invalid duration '1s1s': {ORDER}"),
        ("367d", "duration '367d' is too long (at most 366d)"),
        ("9" * 400 + "h", f"duration '{'9' * 40}...' is too long (at most 366d)"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (2, "2s"),
        (1.5, "1.5s"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (0.1 + 0.2, "300ms"),
        (86400 + 61, "1d1m1s"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=366 * 86400 * 1000))
def test_format_then_parse_round_trips_whole_milliseconds(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-6)
