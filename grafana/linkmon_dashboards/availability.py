"""linkmon — Ketersediaan: over the selected range (default: this month), availability per link
and per office, the number of outages, total downtime and state changes, per kabupaten/kota."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard

from .board import Board, agent_variable, kabupaten_variable, linkmon_dashboard
from .panels import (
    availability_bars,
    availability_column,
    availability_stat,
    column,
    detail_link,
    link_columns,
    query,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

UID = "linkmon-availability"
SELECTION = 'agent=~"$agent",kabupaten=~"$kabupaten"'
LINK_UP = f"linkmon_link_up{{{SELECTION}}}"
LINK_AVAILABILITY = f"avg_over_time({LINK_UP}[$__range])"
# Outages overlapping the range, from the up/down edges of linkmon_link_up: (changes + 1 - up_now)
# / 2 rounded up counts an outage already open at the start and one still open now.
OUTAGES = f"ceil((changes({LINK_UP}[$__range]) + 1 - {LINK_UP}) / 2)"
DOWNTIME = f"(1 - {LINK_AVAILABILITY}) * $__range_s"
ONLINE = f"(linkmon_service_available{{{SELECTION}}} > bool 0)"
OFFICE_AVAILABILITY = f"avg_over_time({ONLINE}[$__range:])"


def build() -> dashboard.Dashboard:
    board = Board()
    board.add(
        availability_stat(
            "Ketersediaan link",
            "Rata-rata bagian waktu link UP (atau DEGRADED) dalam rentang "
            "waktu yang dipilih, semua link terpilih.",
            LINK_AVAILABILITY,
        ),
        w=6,
        h=4,
    )
    board.add(
        availability_stat(
            "Kantor bisa melayani online",
            "Rata-rata bagian waktu kantor bisa melayani online "
            "(lewat DC atau DRC) dalam rentang waktu yang dipilih.",
            OFFICE_AVAILABILITY,
        ),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Jumlah gangguan link",
            "Berapa kali link turun (UP ke tidak UP) dalam rentang "
            "waktu yang dipilih, termasuk yang masih berlangsung.",
            "none",
            [query(f"sum({OUTAGES})", instant=True)],
            steps=thresholds("green", (1, "orange")),
        ).decimals(0),
        w=6,
        h=4,
    )
    board.add(
        stat_panel(
            "Total waktu putus",
            "Jumlah waktu putus semua link terpilih dalam rentang waktu yang dipilih.",
            "dtdurations",
            [query(f"sum({DOWNTIME})", instant=True)],
            color="text",
        ),
        w=6,
        h=4,
    )
    board.add(
        availability_bars(
            "Ketersediaan link per kabupaten/kota",
            "Rata-rata ketersediaan link setiap kabupaten/kota dalam rentang waktu yang dipilih.",
            [query(f"avg by (kabupaten) ({LINK_AVAILABILITY})", "{{kabupaten}}", instant=True)],
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Ketersediaan link dari waktu ke waktu",
            "Rata-rata ketersediaan link setiap kabupaten/kota per selang waktu grafik.",
            "percentunit",
            [query(f"avg by (kabupaten) (avg_over_time({LINK_UP}[$__interval]))", "{{kabupaten}}")],
            minimum=0,
            maximum=1,
        ),
        w=12,
        h=8,
    )
    board.add(
        table_panel(
            "Ketersediaan per link",
            "Setiap link dalam rentang waktu yang dipilih: ketersediaan, jumlah gangguan, total "
            "waktu putus, jumlah perubahan status (termasuk DEGRADED).",
            [
                query(LINK_AVAILABILITY, instant=True),
                query(OUTAGES, instant=True),
                query(DOWNTIME, instant=True),
                query(
                    f"round(increase(linkmon_link_state_changes_total{{{SELECTION}}}[$__range]))",
                    instant=True,
                ),
            ],
            [
                *link_columns(),
                availability_column("Value #A", "Ketersediaan"),
                column("Value #B", "Gangguan", "none", decimals=0),
                column("Value #C", "Total putus", "dtdurations"),
                column("Value #D", "Perubahan status", "none", decimals=0),
            ],
            sort_by="Total putus",
            links=detail_link("${__data.fields.link}"),
        ),
        w=24,
        h=10,
    )
    board.add(
        table_panel(
            "Ketersediaan per kantor",
            "Bagian waktu setiap kantor bisa melayani online: lewat DC atau DRC, lewat DC saja, "
            "dan total waktu tidak bisa melayani.",
            [
                query(OFFICE_AVAILABILITY, instant=True),
                query(
                    f"avg_over_time((linkmon_service_available{{{SELECTION}}} == bool 1)"
                    "[$__range:])",
                    instant=True,
                ),
                query(f"(1 - {OFFICE_AVAILABILITY}) * $__range_s", instant=True),
            ],
            [
                column("site", "Kantor"),
                column("kabupaten", "Kabupaten/kota"),
                column("agent", "Agen"),
                availability_column("Value #A", "Bisa melayani"),
                column("Value #B", "Lewat DC", "percentunit", decimals=2),
                column("Value #C", "Total tidak bisa melayani", "dtdurations"),
            ],
            sort_by="Total tidak bisa melayani",
        ),
        w=24,
        h=8,
    )
    return linkmon_dashboard(
        UID,
        "linkmon — Ketersediaan",
        "Ketersediaan per link dan per kantor dalam rentang waktu yang dipilih (bawaan: bulan "
        "ini), jumlah gangguan dan total waktu putus.",
        board,
        [agent_variable(), kabupaten_variable()],
        "now/M",
    )
