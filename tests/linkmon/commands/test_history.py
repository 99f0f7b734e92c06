"""`linkmon history`: outages from a real state database, in each office's local time."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from linkmon.commands.common import UsageError
from linkmon.commands.history import history_command, parse_when
from linkmon.config import Config
from tests.support import outages

NOW = outages.REPORTED_AT  # 2026-12-05 00:00 UTC
WITA = ZoneInfo("Asia/Makassar")


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return outages.install(tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("history")(history_command)
    app.command("other")(lambda: None)  # two commands, so `history` is a subcommand
    return app


def _config_file(config: Config) -> str:
    return str(Path(str(config.storage.path)).with_name("config.yml"))


def _run(app: typer.Typer, config: Config, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["history", "-c", _config_file(config), *args])
    return done.exit_code, done.output


def test_json_lists_every_outage_once_with_local_times(
    app: typer.Typer, fixture_config: Config
) -> None:
    code, out = _run(
        app, fixture_config, "--since", "2026-10-01", "--until", "2026-12-05", "--json"
    )
    assert code == 0, out
    listed = json.loads(out)
    fixture = outages.outages()
    assert [(o["link"], o["start"]) for o in listed] == sorted(
        ((item["link"], _iso(item["start"])) for item in fixture), key=lambda x: x[1]
    )
    krayan = next(o for o in listed if o["link"] == "kec-krayan--kab")
    assert krayan["start_local"] == "2026-11-10 14:00 WITA"
    assert krayan["end_local"] == "2026-11-11 09:30 WITA"
    assert krayan["duration_seconds"] == 19.5 * 3600 and krayan["office"] == "Kecamatan Krayan"
    sorong = next(o for o in listed if o["link"] == "kab-sorong--dc")
    assert sorong["start_local"] == "2026-10-31 20:00 WIT"  # Sorong's own clock
    natuna = [o for o in listed if o["link"] == "kec-bunguran-timur--kab"][-1]
    assert natuna["start_local"] == "2026-11-30 23:30 WIB"
    ongoing = next(o for o in listed if o["ongoing"])
    assert ongoing["link"] == "kec-aimas--kab" and ongoing["end"] is None
    assert ongoing["state"] == "down"
    in_maintenance = {(o["link"], o["start_local"]) for o in listed if o["maintenance"]}
    assert ("kab-nunukan--dc", "2026-11-14 22:10 WITA") in in_maintenance
    assert ("kec-aimas--kab", "2026-11-18 11:30 WIT") in in_maintenance
    assert ("kab-nunukan--dc", "2026-11-16 09:00 WITA") not in in_maintenance


def _iso(text: str) -> str:
    return datetime.fromtimestamp(outages.timestamp(text), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_site_of_a_kabupaten_takes_its_kecamatan_links_too(
    app: typer.Typer, fixture_config: Config
) -> None:
    code, out = _run(
        app,
        fixture_config,
        "--site",
        "kab-nunukan",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--json",
    )
    assert code == 0, out
    links = {o["link"] for o in json.loads(out)}
    assert links == {"kec-krayan--kab", "kab-nunukan--dc", "kab-nunukan--drc"}
    code, out = _run(
        app,
        fixture_config,
        "--site",
        "kec-krayan",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--json",
    )
    assert {o["link"] for o in json.loads(out)} == {"kec-krayan--kab"}


def test_text_table_in_indonesian_and_english(app: typer.Typer, fixture_config: Config) -> None:
    code, out = _run(
        app,
        fixture_config,
        "--link",
        "kec-aimas--kab",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-05",
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Riwayat gangguan noc-fixture") and "(2 gangguan)" in lines[0]
    assert lines[1].split()[:3] == ["link", "kantor", "mulai"]
    ongoing = next(line for line in lines if "2026-11-29 22:00 WIT" in line)
    assert "masih berlangsung" in ongoing and "putus" in ongoing
    earlier = next(line for line in lines if "2026-11-18 11:30 WIT" in line)
    assert "tak terjangkau" in earlier and "[pemeliharaan]" in earlier
    code, out = _run(
        app,
        fixture_config,
        "--link",
        "kec-aimas--kab",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-05",
        "--lang",
        "en",
    )
    assert "Outage history" in out and "ongoing" in out and "path down" in out


def test_relative_since_and_an_empty_window(app: typer.Typer, fixture_config: Config) -> None:
    code, out = _run(app, fixture_config, "--since", "2026-11-02", "--until", "2026-11-07")
    assert code == 0 and "Tidak ada gangguan tercatat." in out
    assert parse_when("7d", WITA, NOW) == NOW - 7 * 86400
    assert parse_when("2026-11-01", WITA, NOW) == outages.timestamp("2026-11-01T00:00+08:00")
    assert parse_when("2026-11-01 08:00", WITA, NOW) == outages.timestamp("2026-11-01T08:00+08:00")
    assert parse_when("2026-11-01T00:00:00Z", WITA, NOW) == outages.timestamp("2026-11-01T00:00Z")


def test_bad_input_gets_a_clear_error(
    app: typer.Typer, fixture_config: Config, tmp_path: Path
) -> None:
    cases = {
        ("--since", "yesterday"): "'yesterday' is not a time",
        ("--site", "kec-nowhere"): "unknown site 'kec-nowhere'",
        ("--link", "kec-nowhere--kab"): "unknown link 'kec-nowhere--kab'",
        ("--until", "2020-01-01"): "must be after --since",
    }
    for args, message in cases.items():
        code, out = _run(app, fixture_config, *args)
        assert code == 2 and message in out, (args, out)
    with pytest.raises(UsageError, match="7d / 12h"):
        parse_when("2026-13-45", WITA, NOW)
    fresh = tmp_path / "config.yml"
    fresh.write_text(
        Path(_config_file(fixture_config)).read_text().replace("outages.db", "never-run.db")
    )
    done = CliRunner().invoke(app, ["history", "-c", str(fresh)])
    assert done.exit_code == 2 and "no such state database" in done.output


def test_reads_while_the_daemon_holds_the_database_open(
    app: typer.Typer, fixture_config: Config
) -> None:
    writer = sqlite3.connect(str(fixture_config.storage.path))
    try:
        writer.execute("BEGIN IMMEDIATE")  # a write transaction in progress (WAL)
        code, out = _run(
            app, fixture_config, "--since", "2026-10-01", "--until", "2026-12-05", "--json"
        )
        assert code == 0 and len(json.loads(out)) == len(outages.outages())
    finally:
        writer.rollback()
        writer.close()
