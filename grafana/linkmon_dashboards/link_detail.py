"""linkmon — Detail link: one link (the ``link`` variable) for the engineer's desk. State and
since when, probe results per kind (ICMP up but TCP/HTTP failing = the service refuses, not the
line), a smokeping-style RTT heatmap, RTT, loss, failures by reason, jitter."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard

from .board import Board, agent_variable, kabupaten_variable, link_variable, linkmon_dashboard
from .panels import (
    DAY,
    LINK_UID,
    query,
    smokeping_heatmap,
    stat_panel,
    state_timeline,
    thresholds,
    timeseries_panel,
)
from .states import LINK_STATE_MAPPINGS, SUCCESS_MAPPINGS, YES_NO_MAPPINGS, link_state_code

SELECTION = 'agent=~"$agent",link="$link"'
# (title, metric, help) of the yes/no tiles: YA is what needs a look.
FLAGS = (
    (
        "Flapping",
        "linkmon_link_flapping",
        "YA: link naik-turun terus; linkmon mengirim satu alert flapping, "
        "bukan puluhan alert putus.",
    ),
    (
        "Maintenance",
        "linkmon_link_in_maintenance",
        "YA: link dalam jadwal maintenance; gangguannya tidak di-page.",
    ),
)


def build() -> dashboard.Dashboard:
    board = Board()
    now(board)
    board.add(
        state_timeline(
            "Riwayat status",
            "Status link ini dari waktu ke waktu, per agen.",
            [query(link_state_code(SELECTION, "agent"), "{{agent}}")],
            LINK_STATE_MAPPINGS,
        ),
        w=24,
        h=4,
    )
    board.add(
        state_timeline(
            "Probe sukses per jenis",
            "Hasil setiap probe (ICMP, TCP, HTTP) per ronde. ICMP OK tetapi TCP/HTTP "
            "GAGAL: jalur hidup, layanannya menolak (seperti akses diblokir pusat).",
            [query(f"linkmon_probe_success{{{SELECTION}}}", "{{kind}} {{target}} ({{agent}})")],
            SUCCESS_MAPPINGS,
        ),
        w=24,
        h=6,
    )
    board.add(
        smokeping_heatmap(
            "RTT ICMP — heatmap ala smokeping",
            "Sebaran RTT ping per selang waktu dari histogram linkmon: pita gelap yang melebar "
            "atau naik = jitter atau antrian di jalur.",
            "sum(rate(linkmon_probe_duration_seconds_bucket"
            f'{{{SELECTION},kind="icmp"}}[$__rate_interval])) by (le)',
        ),
        w=24,
        h=10,
    )
    measurements(board)
    return linkmon_dashboard(
        LINK_UID,
        "linkmon — Detail link",
        "Satu link: status, RTT ala smokeping, loss, hasil probe per jenis, sertifikat TLS.",
        board,
        [agent_variable(), kabupaten_variable(), link_variable()],
        "now-6h",
    )


def now(board: Board) -> None:
    """The tiles on top: state, since when, how often it changed, flapping, maintenance, TLS."""
    board.add(
        stat_panel(
            "Status sekarang",
            "Status link ini menurut setiap agen yang memantaunya.",
            "none",
            [query(link_state_code(SELECTION, "agent"), "{{agent}}", instant=True)],
            mappings=LINK_STATE_MAPPINGS,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Lama di status ini",
            "Sudah berapa lama link ini di status sekarang.",
            "dtdurations",
            [
                query(
                    f"time() - linkmon_link_state_since_timestamp_seconds{{{SELECTION}}}",
                    "{{agent}}",
                    instant=True,
                )
            ],
            color="text",
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Perubahan status",
            "Berapa kali status link ini berubah dalam rentang waktu yang dipilih.",
            "none",
            [
                query(
                    "round(sum by (agent) (increase("
                    f"linkmon_link_state_changes_total{{{SELECTION}}}[$__range])))",
                    "{{agent}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (4, "orange"), (20, "red")),
        ).decimals(0),
        w=4,
        h=4,
    )
    for title, metric, help_text in FLAGS:
        board.add(
            stat_panel(
                title,
                help_text,
                "none",
                [query(f"max by (agent) ({metric}{{{SELECTION}}})", "{{agent}}", instant=True)],
                mappings=YES_NO_MAPPINGS,
            ),
            w=4,
            h=4,
        )
    board.add(
        stat_panel(
            "Sertifikat TLS berakhir dalam",
            "Sisa umur sertifikat TLS setiap target HTTPS link ini. Merah: kurang dari 14 hari.",
            "dtdurations",
            [
                query(
                    f"linkmon_tls_cert_expiry_timestamp_seconds{{{SELECTION}}} - time()",
                    "{{target}}",
                    instant=True,
                )
            ],
            steps=thresholds("red", (14 * DAY, "orange"), (30 * DAY, "green")),
        ).no_value("tidak ada probe HTTPS"),
        w=4,
        h=4,
    )


def probe_duration(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (kind, le) "
        f"(rate(linkmon_probe_duration_seconds_bucket{{{SELECTION}}}[$__rate_interval])))"
    )


def packets(direction: str) -> str:
    return (
        f"sum by (target) "
        f"(rate(linkmon_probe_packets_{direction}_total{{{SELECTION}}}[$__rate_interval]))"
    )


def measurements(board: Board) -> None:
    """RTT, probe duration, loss and failures over time; per-round detail folded away."""
    board.add(
        timeseries_panel(
            "RTT ICMP per ronde",
            "RTT minimum, rata-rata dan maksimum dari echo setiap ronde ping.",
            "s",
            [
                query(
                    f"linkmon_probe_rtt_{stat_name}_seconds{{{SELECTION}}}",
                    f"{label} {{{{target}}}}",
                )
                for stat_name, label in (("min", "min"), ("avg", "rata-rata"), ("max", "maks"))
            ],
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Durasi probe per jenis (p50 / p90 / p99)",
            "Dari histogram: RTT untuk ICMP, waktu connect untuk TCP, seluruh request untuk HTTP.",
            "s",
            [query(probe_duration(q), f"p{round(q * 100)} {{{{kind}}}}") for q in (0.5, 0.9, 0.99)],
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Packet loss",
            "Bagian echo ICMP yang hilang: rata-rata selang waktu (dari "
            "counter) dan per ronde terakhir.",
            "percentunit",
            [
                query(f"1 - {packets('received')} / {packets('sent')}", "loss {{target}}"),
                query(f"linkmon_probe_loss_ratio{{{SELECTION}}}", "loss per ronde {{target}}"),
            ],
            minimum=0,
            maximum=1,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Probe gagal per sebab",
            "timeout, refused, unreachable, dns, tls, "
            "http_status, body_mismatch ...: membedakan jalur putus dari layanan menolak.",
            "none",
            [
                query(
                    "sum by (kind, reason) (increase("
                    f"linkmon_probe_failures_total{{{SELECTION}}}[$__rate_interval]))",
                    "{{kind}}: {{reason}}",
                )
            ],
            bars=True,
        ),
        w=12,
        h=8,
    )
    board.row("Detail per ronde", collapsed=True)
    board.add(
        timeseries_panel(
            "Jitter dan simpangan baku RTT",
            "Jitter dan simpangan baku RTT echo dalam satu ronde ping.",
            "s",
            [
                query(f"linkmon_probe_jitter_seconds{{{SELECTION}}}", "jitter {{target}}"),
                query(f"linkmon_probe_rtt_stddev_seconds{{{SELECTION}}}", "stddev {{target}}"),
            ],
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Paket ICMP terkirim / diterima",
            "Echo per detik: selisihnya adalah loss.",
            "pps",
            [
                query(packets("sent"), "terkirim {{target}}"),
                query(packets("received"), "diterima {{target}}"),
            ],
        ),
        w=12,
        h=8,
    )
