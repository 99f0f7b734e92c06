"""`linkmon report` in its three formats, and the command, on the hand-computed fixture.

The fixture (tests/testdata/outages/, see tests/support/outages.py) is the one whose figures
``tests/linkmon/test_report.py`` checks; here the same month is laid out as people get it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from linkmon.commands.report import report_command
from linkmon.commands.report_formats import render_csv, render_html, render_text
from linkmon.config import Config
from linkmon.report import Report, build_report
from linkmon.storage import Storage
from tests.support import outages

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
EXPECTED = outages.expected()


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The fixture config in a directory of its own, with its database of outages."""
    return outages.install(tmp_path_factory.mktemp("outages"))


@pytest.fixture(scope="module")
def november(fixture_config: Config) -> Report:
    with Storage(fixture_config.storage.path, readonly=True) as storage:
        return build_report(fixture_config, storage, 2026, 11, outages.REPORTED_AT)


def test_text_report_shows_figures_and_maintenance_in_local_time(november: Report) -> None:
    text = render_text(november, "id")
    assert "Laporan ketersediaan November 2026" in text
    krayan = next(line for line in text.splitlines() if line.strip().startswith("Kecamatan Krayan"))
    assert "WITA" in krayan and "97.090 %" in krayan and "97.619 %" in krayan
    assert re.search(
        r"kab-nunukan--dc\s+2026-11-14 22:00 WITA\s+2026-11-15 02:00 WITA\s+"
        r"Penggantian router",
        text,
    )
    assert len(re.findall(r"kec-aimas--kab\s+2026-11-\d\d 12:00 WIT\s+", text)) == 4
    english = render_text(november, "en")
    assert "Availability report November 2026" in english and "Office" in english


def test_csv_has_every_figure_for_every_row(november: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(november))))
    assert len(rows) == 2 * (len(EXPECTED["links"]) + len(EXPECTED["offices"]))
    by_key = {(r["scope"], r["id"], r["hours"]): r for r in rows}
    aimas = by_key[("office", "kec-aimas", "service")]
    expected = EXPECTED["offices"]["kec-aimas"]["service"]
    assert aimas["timezone"] == "Asia/Jayapura" and aimas["kabupaten"] == "kab-sorong"
    assert int(aimas["downtime_seconds"]) == expected["downtime"]
    assert int(aimas["measured_seconds"]) == expected["measured"]
    assert float(aimas["availability"]) == pytest.approx(1 - 28800 / 514800, abs=1e-6)
    assert by_key[("link", "kab-natuna--dc", "24x7")]["mttr_seconds"] == ""


def test_html_report_prints_offline_in_headless_chromium(november: Report, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: chromium)")
    page = render_html(november, "id")
    # Nothing to fetch: no script, no external stylesheet, image or font.
    assert "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*\"?(https?:)?//", page)
    assert page.count("<svg") == len(november.groups)
    source = tmp_path / "report.html"
    source.write_text(page, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    pdf, png = ARTIFACTS / "report-2026-11.pdf", ARTIFACTS / "report-2026-11.png"
    for out in (pdf, png):
        out.unlink(missing_ok=True)
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    for index, output in enumerate((f"--print-to-pdf={pdf}", f"--screenshot={png}")):
        profile = tmp_path / f"profile-{index}"
        done = subprocess.run(
            [
                *flags,
                f"--user-data-dir={profile}",
                "--window-size=1280,1800",
                output,
                "--no-pdf-header-footer",
                source.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env={**os.environ, "HOME": str(tmp_path)},
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.read_bytes().count(b"/Type /Page") - pdf.read_bytes().count(b"/Type /Pages") >= len(
        november.groups
    ), "one printed page per kabupaten at least"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_command_writes_each_format_and_refuses_bad_input(
    fixture_config: Config, tmp_path: Path
) -> None:
    app = typer.Typer()
    app.command("report")(report_command)
    app.command("other")(lambda: None)  # two commands, so `report` is a subcommand
    config_file = Path(str(fixture_config.storage.path)).with_name("config.yml")
    runner = CliRunner()
    for fmt, marker in (
        ("text", "Laporan ketersediaan"),
        ("csv", "month,scope,id"),
        ("html", "<!DOCTYPE html>"),
    ):
        out = tmp_path / f"report.{fmt}"
        done = runner.invoke(
            app,
            [
                "report",
                "-c",
                str(config_file),
                "--month",
                "2026-10",
                "--format",
                fmt,
                "-o",
                str(out),
            ],
        )
        assert done.exit_code == 0, done.output
        assert marker in out.read_text()
    bad = {
        ("--month", "2026-13"): "--month must be YYYY-MM",
        ("--month", "2030-01"): "2030-01 has not begun yet",
        ("--format", "pdf"): "--format must be one of text, csv, html",
        ("--lang", "jv"): "--lang must be one of id, en",
    }
    for (option, value), message in bad.items():
        args = ["report", "-c", str(config_file), "--month", "2026-11", option, value]
        done = runner.invoke(app, args)
        assert done.exit_code == 2 and message in done.output, (args, done.output)
