"""linkmon — Ringkasan NOC: the wall view. How many links are in each state, which offices can
serve citizens online, the open outages with their cause, the health of every agent, then one
row per kabupaten/kota."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard

from .board import Board, agent_variable, kabupaten_variable, linkmon_dashboard
from .panels import (
    column,
    count_stat,
    detail_link,
    link_columns,
    query,
    stat_panel,
    state_timeline,
    table_panel,
    thresholds,
    timeseries_panel,
)
from .states import (
    LINK_STATE_MAPPINGS,
    OUTAGE_CAUSE_MAPPINGS,
    SCRAPE_MAPPINGS,
    SERVICE_MAPPINGS,
    STATE_HELP,
    SUCCESS_MAPPINGS,
    link_state_code,
)

UID = "linkmon-noc"
SELECTION = 'agent=~"$agent",kabupaten=~"$kabupaten"'
AGENT = 'agent=~"$agent"'
# One value per office: the best any agent sees.
OFFICES = f"max by (kabupaten, site) (linkmon_service_available{{{SELECTION}}})"

# (title, state, alarm colour) of the link counts; (title, condition, alarm colour, help) of the
# office counts, from linkmon_service_available.
LINK_COUNTS = (
    ("Link UP", "up", None),
    ("Link DEGRADED", "degraded", "yellow"),
    ("Link DOWN", "down", "red"),
    ("Link UNREACHABLE", "unreachable", "purple"),
)
OFFICE_COUNTS = (
    ("Kantor ONLINE", "== 1", None, "Kantor yang punya jalur kerja ke DC pusat sekarang."),
    (
        "Kantor hanya via DRC",
        "== 0.5",
        "orange",
        "Kantor yang masih bisa melayani, tetapi hanya lewat DRC Batam (DC tidak terjangkau).",
    ),
    (
        "Kantor OFFLINE",
        "== 0",
        "red",
        "Kantor yang tidak bisa melayani online sekarang: linknya sendiri atau uplink "
        "kabupatennya ke DC dan DRC putus.",
    ),
)


def build() -> dashboard.Dashboard:
    board = Board()
    for title, state, alarm in LINK_COUNTS:
        expr = f'count(linkmon_link_state{{{SELECTION},state="{state}"}} == 1)'
        board.add(count_stat(title, STATE_HELP[state], expr, alarm), w=3, h=4)
    for title, condition, alarm, help_text in OFFICE_COUNTS:
        board.add(count_stat(title, help_text, f"count({OFFICES} {condition})", alarm), w=3, h=4)
    board.add(
        count_stat(
            "Agen linkmon DOWN",
            "Agen linkmon yang tidak bisa di-scrape Prometheus: link yang dipantaunya tidak "
            "terlihat sama sekali.",
            'count(up{job="linkmon",agent=~"$agent"} == 0)',
            "red",
        ),
        w=3,
        h=4,
    )
    board.add(open_outages(), w=24, h=8)
    agent_health(board)
    per_kabupaten(board)
    return linkmon_dashboard(
        UID,
        "linkmon — Ringkasan NOC",
        "Semua link dan kantor sekarang: apa yang putus, sejak kapan, kenapa, kantor mana yang "
        "tidak bisa melayani, dan kesehatan agen linkmon.",
        board,
        [agent_variable(), kabupaten_variable()],
        "now-6h",
    )


def open_outages() -> table.Panel:
    """Open outages: duration from the state's start, the state as the cause (down = this link,
    unreachable = an upstream link), and the commonest probe failure reason of the last 15
    minutes. "+ 0 * reason" only carries the reason label; "or on" keeps outages with none."""
    since = f"linkmon_link_state_since_timestamp_seconds{{{SELECTION}}}"
    outage = (
        f"(time() - {since}) * on (agent, link) group_left (state) "
        f'(linkmon_link_state{{{SELECTION},state=~"down|unreachable"}} == 1)'
    )
    reason = (
        "topk by (agent, link) (1, sum by (agent, link, reason) "
        f"(increase(linkmon_probe_failures_total{{{SELECTION}}}[15m])) > 0)"
    )
    return table_panel(
        "Gangguan yang sedang berlangsung",
        "Link yang DOWN (linknya sendiri putus) atau UNREACHABLE (putus karena link di hulunya "
        "DOWN), sejak kapan, dan sebab kegagalan probe yang paling sering 15 menit terakhir.",
        [
            query(
                f"{outage} + on (agent, link) group_left (reason) (0 * {reason})"
                f" or on (agent, link) {outage}",
                instant=True,
            )
        ],
        [
            *link_columns(),
            column("state", "Status", mappings=OUTAGE_CAUSE_MAPPINGS, coloured=True),
            column("reason", "Sebab probe gagal"),
            column("Value", "Durasi", "dtdurations"),
        ],
        sort_by="Durasi",
        links=detail_link("${__data.fields.link}"),
    )


def scheduler_lag(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (agent, le) "
        f"(rate(linkmon_scheduler_lag_seconds_bucket{{{AGENT}}}[$__rate_interval])))"
    )


def agent_health(board: Board) -> None:
    """Is every agent scraped, on its latest config, probing on time and delivering alerts?"""
    board.row("Agen linkmon")
    board.add(
        table_panel(
            "Kesehatan agen",
            "Satu baris per agen: bisa di-scrape, config terakhir berhasil dimuat, keterlambatan "
            "penjadwal probe (p99), alert yang masih antri, jumlah link, versi.",
            [
                query(f'max by (agent) (up{{job="linkmon",{AGENT}}})', instant=True),
                query(
                    f"max by (agent) (linkmon_config_last_reload_successful{{{AGENT}}})",
                    instant=True,
                ),
                query(
                    "time() - max by (agent) "
                    f"(linkmon_config_last_reload_success_timestamp_seconds{{{AGENT}}})",
                    instant=True,
                ),
                query(scheduler_lag(0.99), instant=True),
                query(f"sum by (agent) (linkmon_alerts_queued{{{AGENT}}})", instant=True),
                query(f"count by (agent) (linkmon_link_up{{{AGENT}}})", instant=True),
                query(f"max by (agent, version) (linkmon_build_info{{{AGENT}}})", instant=True),
            ],
            [
                column("agent", "Agen"),
                column("Value #A", "Scrape", mappings=SCRAPE_MAPPINGS, coloured=True),
                column("Value #B", "Reload config", mappings=SUCCESS_MAPPINGS, coloured=True),
                column("Value #C", "Config dimuat", "dtdurations"),
                column(
                    "Value #D",
                    "Lag penjadwal p99",
                    "s",
                    steps=thresholds("green", (0.5, "orange"), (2, "red")),
                    coloured=True,
                ),
                column(
                    "Value #E",
                    "Alert antri",
                    "none",
                    decimals=0,
                    steps=thresholds("green", (1, "orange"), (20, "red")),
                    coloured=True,
                ),
                column("Value #F", "Link", "none", decimals=0),
                column("version", "Versi"),
            ],
            hidden=["Value #G"],
        ),
        w=24,
        h=6,
    )
    board.add(
        timeseries_panel(
            "Keterlambatan penjadwal probe",
            "Seberapa telat probe dijalankan dibanding jadwalnya. Tinggi terus = agen kelebihan "
            "beban; hasil RTT dan deteksi putus jadi terlambat.",
            "s",
            [
                query(scheduler_lag(0.99), "{{agent}} p99"),
                query(scheduler_lag(0.5), "{{agent}} p50"),
            ],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries_panel(
            "Alert antri per receiver",
            "Alert yang belum terkirim. Naik terus = receiver (webhook/Alertmanager) tidak "
            "menerima; linkmon terus mencoba.",
            "none",
            [query(f"linkmon_alerts_queued{{{AGENT}}}", "{{agent}} → {{receiver}}")],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries_panel(
            "Pengiriman alert",
            "Percobaan kirim alert per detik menurut hasil: success, retry (dicoba lagi), "
            "dropped (dibuang karena antrian penuh).",
            "ops",
            [
                query(
                    "sum by (agent, receiver, result) "
                    f"(rate(linkmon_alert_deliveries_total{{{AGENT}}}[$__rate_interval]))",
                    "{{agent}} → {{receiver}}: {{result}}",
                )
            ],
        ),
        w=6,
        h=7,
    )
    board.add(
        timeseries_panel(
            "Error kode probe",
            "Probe yang melempar exception (bug di linkmon, bukan target yang gagal). Harus nol.",
            "ops",
            [
                query(
                    "sum by (agent, kind) "
                    f"(rate(linkmon_probe_errors_total{{{AGENT}}}[$__rate_interval]))",
                    "{{agent}} {{kind}}",
                )
            ],
        ),
        w=6,
        h=7,
    )


def per_kabupaten(board: Board) -> None:
    """One row per kabupaten/kota, repeated over the variable: links, offices, history."""
    board.row("Kabupaten/kota $kabupaten", repeat="kabupaten")
    board.add(
        stat_panel(
            "Status link",
            "Status setiap link di kabupaten/kota ini sekarang. Klik untuk detail link.",
            "none",
            [query(link_state_code(SELECTION, "agent, link"), "{{link}}", instant=True)],
            mappings=LINK_STATE_MAPPINGS,
            show_names=True,
            links=detail_link("${__field.labels.link}"),
        ),
        w=12,
        h=8,
    )
    board.add(
        stat_panel(
            "Kantor: bisa melayani online?",
            "ONLINE: ada jalur ke DC pusat. VIA DRC: hanya lewat DRC Batam. OFFLINE: perekaman "
            "dan pencetakan dokumen online berhenti di kantor ini.",
            "none",
            [query(OFFICES, "{{site}}", instant=True)],
            mappings=SERVICE_MAPPINGS,
            show_names=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        state_timeline(
            "Riwayat status link",
            "Status setiap link dari waktu ke waktu. Klik untuk detail link.",
            [query(link_state_code(SELECTION, "agent, link"), "{{link}}")],
            LINK_STATE_MAPPINGS,
            links=detail_link("${__field.labels.link}"),
        ),
        w=24,
        h=8,
    )
