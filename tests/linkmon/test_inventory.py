"""``linkmon inventory``: spreadsheet exports in, one checked config per agent out, or every
problem by line and column and nothing written. Fixtures: ``tests/testdata/inventory/`` (sample
data, see its README)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from linkmon.config import Config, load_config, parse_config
from linkmon.inventory import (
    NETWORKS,
    PROVINCE_ZONES,
    InventoryError,
    read_offices,
    run_inventory,
    slug,
)
from tests.support.daemon import LINKMON

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "testdata" / "inventory"
TEMPLATE = ROOT / "config" / "inventory" / "template.yml"
NUNUKAN = ROOT / "config" / "nunukan.yml"


def linkmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKMON, *args], capture_output=True, text=True, timeout=60)


def errors_of(csv_name: str, tmp_path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        run_inventory(DATA / csv_name, tmp_path / "out", TEMPLATE)
    assert not (tmp_path / "out").exists(), "nothing is written when a row is bad"
    return caught.value.errors


def test_nunukan_21_kecamatan_make_a_config_that_passes_check_config(tmp_path: Path) -> None:
    out = tmp_path / "agents"
    done = linkmon(
        "inventory", str(DATA / "nunukan.csv"), "--out", str(out), "--template", str(TEMPLATE)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out / 'kab-nunukan.yml'}\n"
    assert sorted(p.name for p in out.iterdir()) == ["kab-nunukan.yml"]
    checked = linkmon("check-config", "-c", str(out / "kab-nunukan.yml"))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.endswith("OK (24 sites, 25 links, 28 probes)\n")

    generated, example = load_config(out / "kab-nunukan.yml"), load_config(NUNUKAN)
    assert generated.agent.name == "kab-nunukan" and generated.agent.timezone == "Asia/Makassar"

    def kecamatan(config: Config) -> list[tuple[str, str, str | None]]:
        return [(s.id, s.name, s.parent) for s in config.sites if s.kind == "kecamatan"]

    assert len(kecamatan(generated)) == 21
    assert kecamatan(generated) == kecamatan(example)  # the same ids, names and parent
    # The same links as the hand-written example, the backups named as backups.
    renamed = {
        "kec-krayan--kab--starlink": "kec-krayan--kab--backup",
        "kec-lumbis-ogong--kab--starlink": "kec-lumbis-ogong--kab--backup",
    }
    assert [link.id for link in generated.links] == [renamed.get(x.id, x.id) for x in example.links]
    for mine, theirs in zip(generated.links, example.links, strict=True):
        assert (mine.from_site, mine.to_site, mine.network) == (
            theirs.from_site,
            theirs.to_site,
            theirs.network,
        )
        assert [p.target_label for p in mine.probes][:1] == [p.target_label for p in theirs.probes][
            :1
        ]


def test_a_backup_follows_its_primary_explicitly(tmp_path: Path) -> None:
    (path,) = run_inventory(DATA / "nunukan.csv", tmp_path, TEMPLATE)
    links = yaml.safe_load(path.read_text(encoding="utf-8"))["links"]
    ids = [link["id"] for link in links]
    backup = ids.index("kec-krayan--kab--backup")
    assert ids[backup - 1] == "kec-krayan--kab"  # listed first: the main link
    assert links[backup]["network"] == "starlink" and links[backup]["interval"] == "30s"
    assert links[backup]["probes"] == [{"kind": "icmp", "target": "198.18.40.8"}]
    assert (
        "A `--backup` link is the backup path of the link listed just before it" in path.read_text()
    )


def test_an_excel_export_in_indonesian_locale(tmp_path: Path) -> None:
    """BOM, `;` separators, CRLF, headers in other case, names with Kab./Kota prefixes,
    a quoted field: two agents, one a kota; a backup without a network is `internet`."""
    paths = run_inventory(DATA / "kaltara-excel-id.csv", tmp_path, TEMPLATE)
    assert [p.name for p in paths] == ["kab-nunukan.yml", "kota-tarakan.yml"]
    tarakan = parse_config(paths[1].read_text(encoding="utf-8"), base_dir=tmp_path)
    assert tarakan.site("kota-tarakan").kind == "kota"
    assert [s.id for s in tarakan.sites if s.kind == "kecamatan"] == [
        "kec-tarakan-barat",
        "kec-tarakan-tengah",
        "kec-tarakan-timur",
        "kec-tarakan-utara",
    ]
    (backup,) = [link for link in tarakan.links if link.id.endswith("--backup")]
    assert backup.network == "internet"
    assert tarakan.storage.path == Path("/var/lib/linkmon/kota-tarakan.db")
    nunukan = parse_config(paths[0].read_text(encoding="utf-8"), base_dir=tmp_path)
    assert [s.id for s in nunukan.sites if s.kind == "kecamatan"] == ["kec-nunukan", "kec-krayan"]


def test_bad_rows_are_all_reported_by_line_and_column(tmp_path: Path) -> None:
    at = "bad-rows.csv:"
    assert errors_of("bad-rows.csv", tmp_path) == [
        f"{at}3: column 1 (kode): '65.3.02' is not a kecamatan code: expected PP.KK.CC, "
        "e.g. 65.03.01",
        f"{at}4: column 1 (kode): 65.04.01 is not under Nunukan, which is 65.03 (line 2)",
        f"{at}5: column 3 (kecamatan): duplicate kecamatan: first on line 2",
        f"{at}6: column 5 (address): '198.18.30.600' is not an IP address (the office "
        "router's, e.g. 198.18.30.8)",
        f"{at}7: column 4 (network): unknown network 'fiber' (one of m2m, jip, vpn, internet, "
        "starlink, other)",
        f"{at}8: column 3 (kecamatan): is empty",
        f"{at}9: column 2 (kabupaten): 'Kota Nunukan' is a kota but 65.03.09 is a kabupaten "
        "code (01-69)",
        f"{at}10: 8 fields, the header has 7 (a ',' inside a name needs quotes)",
        f"{at}11: column 5 (address): address 198.18.20.1 already on line 2",
        f"{at}12: column 7 (backup_network): a backup network without a backup address",
        f"{at}13: column 1 (kode): code 65.03.01 already on line 2",
        f"{at}14: column 1 (kode): 65.03.14 is under 65.03 = Nunukan (line 2), not Malinau",
        f"{at}15: column 1 (kode): '99.01.01': 99 is not a province code",
        f"{at}16: column 6 (backup_address): the same address as the primary link (198.18.30.16)",
    ]


def test_bad_header(tmp_path: Path) -> None:
    known = "kode, kabupaten, kecamatan, network, address, backup_address, backup_network"
    assert errors_of("bad-header.csv", tmp_path) == [
        f"bad-header.csv:1: column 4 (jaringan): unknown column 'jaringan' (known: {known})",
        f"bad-header.csv:1: column 6 (catatan): unknown column 'catatan' (known: {known})",
        "bad-header.csv:1: missing column 'network'",
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bad-windows-1252.csv",
            "bad-windows-1252.csv:3: not UTF-8 (byte 0x96, character 42 of the line): "
            'save the sheet as "CSV UTF-8"',
        ),
        (
            "bad-utf16.csv",
            'bad-utf16.csv:1: UTF-16 text ("Unicode text"): save the sheet as "CSV UTF-8"',
        ),
    ],
)
def test_encodings_other_than_utf8_are_refused_with_the_fix(
    name: str, message: str, tmp_path: Path
) -> None:
    assert errors_of(name, tmp_path) == [message]


def test_nothing_is_written_when_any_row_is_bad(tmp_path: Path) -> None:
    """Good rows of one kabupaten and one bad row: no file, and an earlier file stays as it was."""
    out = tmp_path / "agents"
    out.mkdir()
    (out / "kab-nunukan.yml").write_text("# the running config\n")
    good = (DATA / "nunukan.csv").read_text(encoding="utf-8")
    bad = tmp_path / "offices.csv"
    bad.write_text(good + "65.71.01,Kota Tarakan,Tarakan Barat,jip,not-an-address,,\n")
    done = linkmon("inventory", str(bad), "--out", str(out), "--template", str(TEMPLATE))
    assert done.returncode == 2
    assert done.stderr == (
        "offices.csv:23: column 5 (address): 'not-an-address' is not an IP address "
        "(the office router's, e.g. 198.18.30.8)\n1 error, nothing written\n"
    )
    assert done.stdout == ""
    assert [p.name for p in out.iterdir()] == ["kab-nunukan.yml"]
    assert (out / "kab-nunukan.yml").read_text() == "# the running config\n"


def test_a_generated_config_that_fails_validation_writes_nothing(tmp_path: Path) -> None:
    """The template's mistake shows in every agent's config: named by file, nothing written."""
    template = tmp_path / "base.yml"
    template.write_text("defaults: {interval: 1s, timeout: 2s}\n")
    with pytest.raises(InventoryError) as caught:
        run_inventory(DATA / "kaltara-excel-id.csv", tmp_path / "out", template)
    files = [re.match(r"(\S+?\.yml): ", e) for e in caught.value.errors]
    assert {m[1] for m in files if m} == {
        str(tmp_path / "out" / "kab-nunukan.yml"),
        str(tmp_path / "out" / "kota-tarakan.yml"),
    }
    assert all("defaults" in e for e in caught.value.errors)
    assert not (tmp_path / "out").exists()


def test_template_mistakes_are_named(tmp_path: Path) -> None:
    template = tmp_path / "base.yml"
    template.write_text("agents: {}\ninventory:\n  uplinks: [{network: vpn}]\n  backup: {}\n")
    with pytest.raises(InventoryError) as caught:
        run_inventory(DATA / "nunukan.csv", tmp_path / "out", template)
    source = str(template)
    assert caught.value.errors == [
        f"{source}: agents: not a config section (known: agent, server, storage, defaults, "
        "sites, links, alerting, maintenance, inventory)",
        f"{source}: inventory.backup: unknown (uplinks, kecamatan_link, backup_link)",
        f"{source}: inventory.uplinks[0]: needs `to` (a site of the template)",
    ]


def test_without_a_template_only_the_kabupaten_and_its_kecamatan(tmp_path: Path) -> None:
    (path,) = run_inventory(DATA / "nunukan.csv", tmp_path)
    config = parse_config(path.read_text(encoding="utf-8"), base_dir=tmp_path)
    assert {s.kind for s in config.sites} == {"kabupaten", "kecamatan"}
    assert len(config.links) == 23


@pytest.mark.parametrize("network", NETWORKS)
def test_every_network_the_inventory_accepts_is_one_the_config_accepts(
    network: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "one.csv"
    sheet.write_text(
        "kode,kabupaten,kecamatan,network,address,backup_address,backup_network\n"
        f"65.03.08,Nunukan,Krayan,{network},198.18.30.8,198.18.40.8,{network}\n"
    )
    (path,) = run_inventory(sheet, tmp_path / "out")
    links = parse_config(path.read_text(encoding="utf-8"), base_dir=tmp_path).links
    assert [link.network for link in links] == [network, network]


def test_province_codes_give_real_zones() -> None:
    assert all(ZoneInfo(zone).key == zone for zone in PROVINCE_ZONES.values())
    assert PROVINCE_ZONES["65"] == "Asia/Makassar"  # Kalimantan Utara: WITA
    assert PROVINCE_ZONES["31"] == "Asia/Jakarta" and PROVINCE_ZONES["81"] == "Asia/Jayapura"


def test_site_ids_from_names() -> None:
    assert slug("Sei Menggaris") == "sei-menggaris"
    assert slug("  Tulin  Onsoi ") == "tulin-onsoi"
    assert slug("Lumbis’ Ogong") == "lumbis-ogong"
    assert slug("Pulau Derawan (Tanjung Batu)") == "pulau-derawan-tanjung-batu"


def test_a_name_that_gives_no_id_and_an_empty_sheet(tmp_path: Path) -> None:
    header = "kode,kabupaten,kecamatan,network,address\n"
    with pytest.raises(InventoryError) as caught:
        read_offices((header + "65.03.01,Nunukan,---,jip,198.18.20.1\n").encode(), "x.csv")
    assert caught.value.errors == [
        "x.csv:2: column 3 (kecamatan): '---' gives no usable site id ('kec-')"
    ]
    with pytest.raises(InventoryError) as caught:
        read_offices(header.encode(), "x.csv")
    assert caught.value.errors == ["x.csv: no office: one row per kecamatan after the header"]
    with pytest.raises(InventoryError) as caught:
        read_offices(b"\n\n", "x.csv")
    assert caught.value.errors == ["x.csv: empty: expected a header line and one row per office"]
