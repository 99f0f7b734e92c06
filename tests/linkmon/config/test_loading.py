"""linkmon/config/loading.py: a file becomes a Config or a ConfigError that lists every
mistake at once (items with errors set aside, the checks still run on the rest); file-level
problems are config errors too; every example in config/ loads."""

from __future__ import annotations

import ipaddress
import urllib.parse
from pathlib import Path

import pytest

from linkmon.config import (
    Config,
    ConfigError,
    IcmpProbe,
    TcpProbe,
    format_errors,
    load_config,
    parse_config,
)
from tests.linkmon.config import (
    test_crosschecks,
    test_inheritance,
    test_messages,
    test_reading,
    test_scalars,
    test_secrets,
)
from tests.linkmon.config.cases import EXAMPLES, TESTDATA, Table, assert_refused, each_file

PLACEHOLDERS = ipaddress.ip_network("198.18.0.0/15")

INVALID: Table = [
    ("invalid-storage-directory", ["storage.path: {dir} is a directory"]),
    (
        "invalid-three-errors",
        [
            "agent.language: must be 'id' or 'en', got 'jv'",
            "links[0].probes[0].retries: unknown key (allowed: kind, interval, timeout, source, "
            "target, count, spacing, size, interface)",
            "links[0].timeout: must be less than interval 10s",
        ],
    ),
    ("invalid-web-config-missing", ["server.web_config: no such file: {dir}/missing-web.yml"]),
]


@each_file(INVALID)
def test_unusable_file_fails_with_exact_errors(name: str, expected: list[str]) -> None:
    assert_refused(name, expected)


TABLES: dict[str, Table] = {
    "loading": INVALID,
    "reading": test_reading.INVALID,
    "messages": test_messages.INVALID,
    "scalars": test_scalars.INVALID,
    "secrets": test_secrets.INVALID,
    "inheritance": test_inheritance.INVALID,
    "crosschecks": test_crosschecks.INVALID,
}


def test_every_invalid_fixture_is_in_one_table() -> None:
    """Each bad file is checked, by the tests of the module that refuses it, once."""
    on_disk = {path.stem for path in TESTDATA.glob("invalid-*.yml")}
    listed = [name for table in TABLES.values() for name, _ in table]
    assert sorted(listed) == sorted(on_disk)
    assert len(on_disk) > 80


def test_every_error_is_reported_at_once() -> None:
    """A type error, an unknown key and a cross-check failure in one file: three messages."""
    with pytest.raises(ConfigError) as caught:
        load_config(TESTDATA / "invalid-three-errors.yml")
    assert len(caught.value.errors) == 3
    listing = format_errors(caught.value)
    assert listing.splitlines()[0] == f"{TESTDATA / 'invalid-three-errors.yml'}: 3 errors"
    assert [line.strip() for line in listing.splitlines()[1:]] == caught.value.errors


def test_errors_in_many_items_are_all_listed_with_their_own_index() -> None:
    links = "\n".join(
        f"  - {{id: l{i}, from: a, to: b, network: vpn, probes: [{{kind: icmp, target: 10.0.0.{i},"
        f" count: {0 if i % 2 else 1}}}]}}"
        for i in range(20)
    )
    text = f"sites: [{{id: a, kind: kabupaten}}, {{id: b, kind: pusat}}]\nlinks:\n{links}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [
        f"links[{i}].probes[0].count: must be at least 1" for i in range(1, 20, 2)
    ]


def test_file_level_problems_are_config_errors(tmp_path: Path) -> None:
    cases: dict[Path, str] = {
        tmp_path / "missing.yml": "no such file",
        tmp_path: "is a directory, not a config file",
        Path("/dev/null"): "is not a regular file",
    }
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes("agent:\n  name: caf\xe9\n".encode("latin-1"))
    cases[latin1] = "line 2: not valid UTF-8 (byte 0xe9 at offset 18)"
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    cases[empty] = "the config is empty"
    for path, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert caught.value.errors == [message]
        assert str(caught.value) == f"{path}: {message}"


def test_unusable_paths_are_named_not_raised(tmp_path: Path) -> None:
    long_name = "x" * 300
    text = f"""
server: {{web_config: {tmp_path}}}
storage: {{path: {long_name}/linkmon.db}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=tmp_path)
    assert caught.value.errors == [
        f"server.web_config: not a regular file: {tmp_path}",
        f"storage.path: cannot use {str(tmp_path / long_name)[:97]}...: File name too long",
    ]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbf" + (TESTDATA / "good-minimal.yml").read_bytes())
    assert len(load_config(path).links) == 1


# ---- the examples

NUNUKAN_KECAMATAN = [
    "Nunukan", "Nunukan Selatan", "Sebatik", "Sebatik Barat", "Sebatik Timur", "Sebatik Tengah",
    "Sebatik Utara", "Krayan", "Krayan Selatan", "Krayan Tengah", "Krayan Timur", "Krayan Barat",
    "Lumbis", "Lumbis Ogong", "Lumbis Pansiangan", "Lumbis Hulu", "Sebuku", "Tulin Onsoi",
    "Sembakung", "Sembakung Atulai", "Sei Menggaris",
]  # fmt: skip


def addresses(config: Config) -> list[str]:
    """Every address an example makes linkmon talk to: probe targets, sources, receivers."""
    found: list[str] = []
    for link in config.links:
        for probe in link.probes:
            if isinstance(probe, IcmpProbe):
                found.append(probe.target)
            elif isinstance(probe, TcpProbe):
                found.append(probe.host)
            else:
                found.append(urllib.parse.urlsplit(probe.url).hostname or "")
            if probe.source:
                found.append(probe.source)
    for receiver in config.alerting.receivers:
        found.extend(
            urllib.parse.urlsplit(u.get_secret_value()).hostname or "" for u in receiver.urls
        )
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yml")))
def test_example_loads_and_uses_only_placeholder_addresses(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.links
    # The lab configs also name loopback (the demo's receiver in the hub's namespace).
    lab = name.startswith("lab-")
    for address in map(ipaddress.ip_address, addresses(config)):
        assert address in PLACEHOLDERS or (lab and address.is_loopback), address
    for link in config.links:
        for probe in link.probes:
            probe.spec()


def test_nunukan_example_covers_the_kabupaten() -> None:
    config = load_config(EXAMPLES / "nunukan.yml")
    assert config.agent.timezone == "Asia/Makassar"
    assert config.site("pusat-dc").timezone == config.site("pusat-drc").timezone == "Asia/Jakarta"
    kecamatan = config.children("kab-nunukan")
    assert [site.name for site in kecamatan] == [f"Kecamatan {n}" for n in NUNUKAN_KECAMATAN]
    uplinks = {"kab-nunukan--dc", "kab-nunukan--drc"}
    assert {link.id for link in config.links_from("kab-nunukan")} == uplinks
    for link_id in uplinks:
        assert {p.kind for p in config.link(link_id).probes} == {"icmp", "tcp", "http"}
    parallel = 0
    for site in kecamatan:
        links = config.links_from(site.id)
        assert links and all(link.to_site == "kab-nunukan" for link in links)
        assert all(not link.depends_on for link in links)  # the agent reaches them directly
        assert all(isinstance(p, IcmpProbe) and p.size <= 32 for k in links for p in k.probes)
        parallel += len({link.network for link in links}) > 1
    assert parallel >= 2
    assert {link.network for link in config.links} >= {"m2m", "jip", "vpn", "starlink"}


def test_kaltim_example_covers_the_first_jip_members() -> None:
    config = load_config(EXAMPLES / "kaltim-jip.yml")
    members = config.children("prov-kaltim")
    assert [site.name.split(maxsplit=2)[-1] for site in members] == [
        "Samarinda",
        "Kutai Kartanegara",
        "Balikpapan",
        "Paser",
        "Bontang",
    ]
    for site in members:
        assert config.kabupaten_of(site.id) == site.id
        assert [link.network for link in config.links_from(site.id)] == ["jip"]
    assert {link.to_site for link in config.links_from("prov-kaltim")} == {"pusat-dc", "pusat-drc"}
