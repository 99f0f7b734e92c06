"""linkmon/config/errors.py: a ConfigError lists every problem as ``path: reason``, the listing
``check-config`` prints names the file once, and a mistake found many times is listed once."""

from __future__ import annotations

from linkmon.config import ConfigError, format_errors
from linkmon.config.errors import Findings, format_path


def test_one_error_is_one_line_and_many_are_a_listing() -> None:
    one = ConfigError("links[0].to: unknown site 'x'", "nunukan.yml")
    assert one.errors == ["links[0].to: unknown site 'x'"]
    assert str(one) == format_errors(one) == "nunukan.yml: links[0].to: unknown site 'x'"
    many = ConfigError(["a: b", "c: d"], "nunukan.yml")
    assert format_errors(many) == "nunukan.yml: 2 errors\n  a: b\n  c: d"


def test_paths_read_as_the_yaml_is_written() -> None:
    assert format_path(("links", 3, "probes", 0, "timeout")) == "links[3].probes[0].timeout"
    assert format_path(("alerting", "receivers", 0, "headers", "X Token")) == (
        'alerting.receivers[0].headers["X Token"]'
    )
    long_key = "a b " * 15
    assert format_path(("agent", long_key)) == f'agent["{long_key[:37]}..."]'
    assert format_path(("agent", "kab\nnunukan")) == 'agent["kab\\nnunukan"]'


def test_a_mistake_found_many_times_is_listed_once() -> None:
    """A default inherited by a hundred probes is one mistake."""
    found = Findings()
    for _ in range(100):
        found.add(("defaults", "timeout"), "must be less than interval 1s")
    found.add((), "the config is empty")
    assert found.messages == [
        "defaults.timeout: must be less than interval 1s",
        "the config is empty",
    ]
