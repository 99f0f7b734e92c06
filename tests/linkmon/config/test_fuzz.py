"""The whole loader (linkmon/config/loading.py) on random and mangled input: random text and
bytes, random structures of the config's own keys, good configs with random edits. Whatever
comes in, the loader raises nothing but ConfigError (never quoting a secret), and what it
accepts the daemon can use without an exception."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkmon.config import Config, ConfigError, IcmpProbe, load_config, parse_config
from tests.linkmon.config.cases import EXAMPLES, FILE_SECRET, SECRETS, TESTDATA, utc


def exercise(config: Config) -> None:
    """What the daemon does with a config it got: nothing here may raise, and what each probe
    and office runs with holds together."""
    repr(config)
    config.model_dump_json()
    now = utc("2026-11-30T14:00")
    for site in config.sites:
        assert config.kabupaten_of(site.id) in (None, *(s.id for s in config.sites))
        assert site.zone.key == site.timezone
        assert site.service_hours.start < site.service_hours.end
    for link in config.links:
        config.in_maintenance(link.id, now)
        config.kabupaten_of_link(link.id)
        for probe in link.probes:
            probe.spec()
            assert probe.timeout < probe.interval
            if isinstance(probe, IcmpProbe):
                assert probe.count * probe.spacing < probe.timeout


def load_or_config_error(text: str) -> None:
    try:
        config = parse_config(text)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        return
    exercise(config)


FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(st.text(max_size=500))
def test_random_text_raises_only_config_error(text: str) -> None:
    load_or_config_error(text)


@FUZZ
@given(st.binary(max_size=500))
def test_random_bytes_raise_only_config_error(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".yml") as handle:
        handle.write(data)
        handle.flush()
        with contextlib.suppress(ConfigError):
            exercise(load_config(handle.name))


KEYS = sorted(
    {
        *("agent", "server", "storage", "defaults", "sites", "links", "alerting", "maintenance"),
        *("name", "timezone", "language", "listen", "web_config", "enable_reload", "path"),
        "metrics_detail",
        *("interval", "timeout", "icmp", "count", "spacing", "size", "down_after", "up_after"),
        *("degraded", "loss", "rtt", "service_hours", "days", "start", "end", "id", "kind"),
        *("parent", "from", "to", "network", "depends_on", "probes", "target", "source", "url"),
        *("interface", "expect_status", "body_match", "body_regex", "headers", "receivers"),
        *("urls", "send_resolved", "resend_interval", "flapping", "rollup", "outbox_max"),
        *("changes", "window", "share", "min_links", "links", "weekdays", "reason", "<<"),
    }
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "10s",
            "0s",
            "-1s",
            "1m30s",
            "500ms",
            "1e400h",
            "10",
            "icmp",
            "tcp",
            "http",
            "kabupaten",
            "kecamatan",
            "pusat",
            "vpn",
            "198.18.1.1",
            "::1",
            "[::1]:80",
            "198.18.1.1:443",
            "https://198.18.1.1/",
            "Asia/Makassar",
            "08:00",
            "2026-11-30 22:00",
            "${HOME}",
            "${LINKMON_NOT_SET}",
            "file:/nonexistent",
            "mon",
            "a\nb",
            "é" * 400,
        ]
    ),  # fmt: skip
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), STRUCTURES, max_size=8))
def test_random_structures_raise_only_config_error(document: dict[str, Any]) -> None:
    load_or_config_error(yaml.safe_dump(document, allow_unicode=True))


BASES = [
    yaml.safe_load((EXAMPLES / "nunukan.yml").read_text()),
    yaml.safe_load((TESTDATA / "good-full.yml").read_text()),
]


def node_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    paths = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(node_paths(child, (*prefix, key)))
    return paths


@st.composite
def mangled_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A good config with up to three random edits: a key dropped, a value replaced by
    something of the wrong type (huge, unicode, newlines), an item duplicated, a key renamed."""
    document: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = node_paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        edit = draw(st.sampled_from(["drop", "replace", "duplicate", "rename"]))
        if edit == "drop":
            del parent[key]
        elif edit == "replace":
            parent[key] = draw(STRUCTURES | st.just("x" * 20_000) | st.just("\u202e\n\0\t"))
        elif edit == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif edit == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS) | st.text(max_size=8))] = parent.pop(key)
    return document


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=mangled_configs())
def test_mangled_good_configs_raise_only_config_error(
    document: dict[str, Any], secrets_env: None
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        config = parse_config(text, base_dir=TESTDATA)
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        for secret in [*SECRETS.values(), FILE_SECRET]:
            assert secret not in str(exc)
        return
    exercise(config)
