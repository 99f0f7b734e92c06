"""linkmon/config/reading.py: YAML is read as written (YAML 1.2 scalars), and what cannot be
read (syntax, tabs, duplicate keys, Python tags, alias bombs) is refused with line and column."""

from __future__ import annotations

from datetime import time

import pytest

from linkmon.config import ConfigError, parse_config
from linkmon.config.reading import MAX_YAML_DEPTH
from tests.linkmon.config.cases import Table, assert_refused, each_file

INVALID: Table = [
    ("invalid-empty", ["the config is empty"]),
    (
        "invalid-top-level-list",
        [
            "the top level must be a mapping of sections (agent, sites, links, ...), got a list",
        ],
    ),
    ("invalid-yaml-alias-bomb", ["too large: more than 500000 values (YAML aliases?)"]),
    (
        "invalid-yaml-duplicate-key",
        [
            "line 12, column 5: duplicate key 'interval' (first at line 11)",
        ],
    ),
    (
        "invalid-yaml-python-tag",
        [
            "line 2, column 8: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
        ],
    ),
    ("invalid-yaml-recursive-alias", ["a YAML alias refers to a node that contains it"]),
    ("invalid-yaml-syntax", ["line 9, column 12: expected ',' or ']', but got ':'"]),
    ("invalid-yaml-tab", ["line 3, column 1: found character '\\t' that cannot start any token"]),
]


@each_file(INVALID)
def test_unreadable_file_fails_with_exact_errors(name: str, expected: list[str]) -> None:
    assert_refused(name, expected)


def test_yaml_1_2_scalars_times_and_words_stay_strings() -> None:
    """Unquoted 15:00 is 900 in YAML 1.1 and `no` is false; linkmon reads both as written."""
    text = """
defaults:
  service_hours: {start: 07:30, end: 15:00}
sites: [{id: no, kind: kabupaten}, {id: on, kind: pusat}]
links: [{id: l, from: no, to: on, network: vpn, probes: [{kind: icmp, target: 10.0.0.1}]}]
"""
    config = parse_config(text)
    assert config.defaults.service_hours.start == time(7, 30)
    assert config.defaults.service_hours.end == time(15, 0)
    assert [site.id for site in config.sites] == ["no", "on"]


def test_absurd_nesting_is_refused_before_validation() -> None:
    text = "agent: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [f"nested more than {MAX_YAML_DEPTH} levels deep"]


def test_a_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("agent: {1: x}\n")
    assert caught.value.errors == ["line 1, column 9: keys must be strings, got a number"]
